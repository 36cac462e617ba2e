package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/storage"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoStoresAndVerifies(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	code, out, errs := runCLI(t, nil, "demo", "--db", db)
	if code != 0 {
		t.Fatalf("demo exit %d: %s %s", code, out, errs)
	}
	for _, want := range []string{
		"双十一好物", "小满家居福利群",
		"admin   老周", // promoted mid-campaign, role at the time recorded
		"[recalled by the sender; kept as evidence]",
		"every link verifies",
		"were recognised as already stored",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Running it again starts from a fresh file.
	if code, _, errs := runCLI(t, nil, "demo", "--db", db); code != 0 {
		t.Fatalf("second demo: %d %s", code, errs)
	}
	// The demo database verifies through the CLI too.
	code, out, _ = runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": db}, "db", "verify")
	if code != 0 || !strings.Contains(out, "all chains intact") {
		t.Fatalf("verify demo db: %d %s", code, out)
	}
}

func TestVerifyReportsTamperingWithExitCode1(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, errs := runCLI(t, nil, "demo", "--db", db); code != 0 {
		t.Fatal(errs)
	}
	cfg := storage.DefaultConfig()
	cfg.DSN = db
	st, err := storage.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TRIGGER evidence_no_update",
		"UPDATE evidence SET text = '今晚没有任务' WHERE group_key = 'qq:815530927' AND msg_id = '77001'",
	} {
		if err := st.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	code, out, errs := runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": db}, "db", "verify")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out, errs)
	}
	for _, want := range []string{"BROKEN", "qq:815530927", "message 77001", "1 broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
}

func TestMigrateAndSchemaChecks(t *testing.T) {
	db := filepath.Join(t.TempDir(), "q.db")
	env := map[string]string{"QUNSHAO_STORAGE_DSN": db}
	code, out, errs := runCLI(t, env, "db", "migrate", "--to", "1")
	if code != 0 || !strings.Contains(out, "schema is at version 1") {
		t.Fatalf("migrate --to 1: %d %s %s", code, out, errs)
	}
	// With auto-migration off, an old schema is refused with advice.
	code, _, errs = runCLI(t, env, "db", "verify")
	if code != 1 || !strings.Contains(errs, "qunshao db migrate") {
		t.Fatalf("verify on old schema: %d %s", code, errs)
	}
	code, out, _ = runCLI(t, env, "db", "migrate")
	if code != 0 || !strings.Contains(out, "applied 3") {
		t.Fatalf("migrate: %d %s", code, out)
	}
}

func TestBadConfigExits2NamingTheKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("storage:\n  writer:\n    batch_sise: 10\n"), 0o600)
	code, _, errs := runCLI(t, nil, "--config", p, "db", "verify")
	if code != 2 || !strings.Contains(errs, "bad.yaml:3") || !strings.Contains(errs, "batch_sise") {
		t.Fatalf("bad key: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, map[string]string{"QUNSHAO_STORAGE_DRIVER": "oracle"}, "serve")
	if code != 2 || !strings.Contains(errs, "storage.driver") {
		t.Fatalf("bad driver: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, nil, "db", "verify", "extra")
	if code != 2 {
		t.Fatalf("extra argument: %d %s", code, errs)
	}
	code, _, errs = runCLI(t, nil, "demo", "--no-such-flag")
	if code != 2 || !strings.Contains(errs, "--help") {
		t.Fatalf("unknown flag: %d %s", code, errs)
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.Contains(out, "qunshao") || !strings.Contains(out, "schema version") {
		t.Fatalf("version: %d %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "--help")
	for _, want := range []string{"serve", "demo", "db", "qunshao demo"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("help lacks %q: %s", want, out)
		}
	}
	code, out, _ = runCLI(t, nil, "config", "env")
	if code != 0 || !strings.Contains(out, "QUNSHAO_STORAGE_WRITER_BATCH_SIZE") {
		t.Fatalf("config env: %s", out)
	}
}

// syncBuffer is written by the server goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	db := filepath.Join(t.TempDir(), "serve.db")
	t.Setenv("QUNSHAO_STORAGE_DSN", db)
	t.Setenv("QUNSHAO_BOTS_ONEBOT_REVERSE_WS_LISTEN", freePort(t))
	var out, errs syncBuffer
	done := make(chan int)
	go func() { done <- run([]string{"serve"}, &out, &errs) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errs.String(), "qunshao serving") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// serve has registered its signal handler before it logs; the signal
	// ends it instead of the test process.
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(errs.String(), "stopped") {
			t.Fatalf("serve exit %d: %s", code, errs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("serve did not create the store: %v", err)
	}
}

func TestScanContract(t *testing.T) {
	in := strings.Join([]string{
		`{"id": 1, "text": "今晚任务：每人去他家拍３件，拍下不要付-款，把库纯锁死", "role": "owner"}`,
		`{"id": "b", "text": "拍下确认收货后五星好评，截图返现5元"}`,
		`not json`,
		`{"id": 4}`,
		``,
		`{"id": 6, "text": "老板，停手费五千，今晚前到账", "role": "boss"}`,
		`{"id": 7, "text": "` + strings.Repeat("退款", 1000) + `"}`,
	}, "\n") + "\n"
	var out bytes.Buffer
	d := testDetector(t)
	if err := scan(d, strings.NewReader(in), &out, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d output lines for 7 input lines:\n%s", len(lines), out.String())
	}
	var first struct {
		ID       int     `json:"id"`
		Label    string  `json:"label"`
		Score    float64 `json:"score"`
		Severity string  `json:"severity"`
		Rules    []struct {
			ID       string   `json:"id"`
			Category string   `json:"category"`
			Spans    [][2]int `json:"spans"`
		} `json:"rules"`
		Entities []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
			Span  [2]int `json:"span"`
		} `json:"entities"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.ID != 1 || first.Label != "attack_task" || first.Score <= 0.5 || first.Severity == "" || len(first.Rules) == 0 || len(first.Rules[0].Spans) == 0 {
		t.Fatalf("first line = %s", lines[0])
	}
	if !strings.Contains(lines[1], `"id":"b"`) || !strings.Contains(lines[1], `"label":"benign"`) {
		t.Fatalf("second line = %s", lines[1])
	}
	for i, want := range map[int]string{2: `"line":3`, 3: `"line":4`, 4: `"line":5`, 5: `"line":6`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"error"`) {
			t.Errorf("line %d = %s, want an error naming %s", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[6], `"id":7`) || strings.Contains(lines[6], `"error"`) {
		t.Errorf("long line = %.100s", lines[6])
	}
}

func TestReplayAndEvalCommands(t *testing.T) {
	code, out, errs := runCLI(t, nil, "replay", "../../demo/logs.jsonl")
	if code != 0 {
		t.Fatalf("replay: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"malicious":true`) || !strings.Contains(lines[1], `"malicious":false`) {
		t.Fatalf("replay output:\n%s", out)
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "malicious", "risk", "organizers", "target_shops"} {
			if _, ok := v[k]; !ok {
				t.Errorf("replay line lacks %q: %s", k, l)
			}
		}
		if len(v) != 5 {
			t.Errorf("replay line has extra keys: %s", l)
		}
	}
	labelled := filepath.Join(t.TempDir(), "l.jsonl")
	os.WriteFile(labelled, []byte(`{"id":"1","text":"每人拍3件不付款，锁他库存","label":"attack_task","evasion":"none","role":"owner"}
{"id":"2","text":"好评返现5元，记得确认收货","label":"benign_promo","evasion":"none","role":"admin"}
`), 0o600)
	code, out, errs = runCLI(t, nil, "eval", labelled, "--json")
	if code != 0 || !strings.Contains(out, `"benign_false_positive_rate"`) || !strings.Contains(out, `"evasion_recall"`) {
		t.Fatalf("eval: %d %s %s", code, out, errs)
	}
	os.WriteFile(labelled, []byte("{\"id\":\"1\",\"text\":\"x\",\"label\":\"spam\"}\n"), 0o600)
	code, _, errs = runCLI(t, nil, "eval", labelled)
	if code == 0 || !strings.Contains(errs, "l.jsonl:1") {
		t.Fatalf("eval of a bad label: %d %s", code, errs)
	}
}

func TestRulesCommands(t *testing.T) {
	code, out, _ := runCLI(t, nil, "rules", "lint")
	if code != 0 || !strings.Contains(out, "rules: ok") {
		t.Fatalf("lint: %d %s", code, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("pack: bad\nrules:\n  - id: x\n    category: attack_task\n    severity: high\n    description: d\n    condition: has(\"nolist\")\n    examples: {positive: [a], negative: [b]}\n"), 0o600)
	code, out, _ = runCLI(t, nil, "rules", "lint", "--dir", dir)
	if code != 1 || !strings.Contains(out, "bad.yaml:3") || !strings.Contains(out, "nolist") {
		t.Fatalf("lint of a bad pack: %d %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "rules", "test")
	if code != 0 || !strings.Contains(out, "0 failed") {
		t.Fatalf("rules test: %d %s", code, out)
	}
}

var (
	detOnce sync.Once
	det     *detect.Detector
)

func testDetector(t *testing.T) *detect.Detector {
	detOnce.Do(func() {
		var err error
		det, err = detect.Build(detect.DefaultConfig(), configs.Files)
		if err != nil {
			panic(err)
		}
	})
	return det
}
