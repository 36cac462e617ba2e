package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/storage"
)

// seedAlerts stores two alerts (one with details) and a dead letter in a
// fresh database, as a running engine would have.
func seedAlerts(t *testing.T, db string) {
	t.Helper()
	cfg := storage.DefaultConfig()
	cfg.DSN = db
	ctx := context.Background()
	st, err := storage.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	det := alert.Details{GroupID: "815530927", GroupName: "双十一好物\x1b[2J互助群",
		Organizers: []notify.Person{{ID: "10001", Nick: "老王", Role: "owner", Messages: 2}},
		Staff:      []notify.Person{{ID: "10001", Nick: "老王", Role: "owner"}, {ID: "10002", Nick: "老周", Role: "admin"}},
		Shops:      []string{"悦宠家居旗舰店"}, Links: []string{"https://m.tb.cn/h.x"},
		Excerpts: []notify.Excerpt{{SenderID: "10001", SenderNick: "老王", SenderRole: "owner", Label: "attack_task", Time: now,
			Rules: []string{"task.stock_lock"}, Parts: []notify.Part{{Text: "每人拍5件，"}, {Text: "锁库存", Marked: true}}}}}
	db1, _ := json.Marshal(det)
	a1 := &storage.Alert{Fingerprint: "fp1", Episode: 1, Category: "attack_task", Platform: "qq", GroupKey: "qq:815530927",
		Shop: "悦宠家居旗舰店", Severity: "high", Status: storage.AlertFiring, StartsUS: now.UnixMicro(), LastSeenUS: now.UnixMicro(),
		ActiveUS: now.UnixMicro(), DetectionCount: 3, Labels: `{"category":"attack_task","group":"qq:815530927"}`, Details: string(db1),
		CreatedUS: now.UnixMicro(), UpdatedUS: now.UnixMicro()}
	a2 := &storage.Alert{Fingerprint: "fp2", Episode: 1, Category: "extortion", Platform: "wechat", GroupKey: "wechat:abc",
		Severity: "critical", Status: storage.AlertFiring, StartsUS: now.UnixMicro(), LastSeenUS: now.UnixMicro(), ActiveUS: now.UnixMicro(),
		DetectionCount: 1, Labels: "{}", Details: "{}", CreatedUS: now.UnixMicro(), UpdatedUS: now.UnixMicro()}
	if err := st.SaveAlerts(ctx, storage.AlertBatch{Alerts: []*storage.Alert{a1, a2},
		Links: []storage.AlertLink{{Alert: a1, DetectionID: 11}, {Alert: a1, DetectionID: 12}}}); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(notify.Notification{ID: "n1", Alerts: []notify.Alert{{ID: a1.ID}}})
	if err := st.EnqueueNotifications(ctx, []storage.OutboxEntry{{DedupKey: "n1", Receiver: "ops", Integration: "webhook[0]",
		GroupKey: "g", Payload: string(payload), State: storage.OutboxDead, Attempts: 1, LastError: "POST https://hooks.example/…: HTTP 400: bad",
		CreatedUS: now.UnixMicro()}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestAlertsCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "q.db")
	seedAlerts(t, db)
	env := map[string]string{"QUNSHAO_STORAGE_DSN": db, "QUNSHAO_ALERTS_CONSOLE_URL": "https://console.example"}

	code, out, errs := runCLI(t, env, "alerts", "list")
	if code != 0 || !strings.Contains(out, "attack_task") || !strings.Contains(out, "extortion") || !strings.Contains(out, "悦宠家居旗舰店") {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	if strings.Contains(out, "\x1b") {
		t.Error("list prints an escape sequence from a group name")
	}
	code, out, _ = runCLI(t, env, "alerts", "list", "--category", "extortion", "--json")
	var list []notify.Alert
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Severity != "critical" {
		t.Fatalf("list --json: %d %s", code, out)
	}

	code, out, errs = runCLI(t, env, "alerts", "show", "1")
	for _, want := range []string{"fingerprint fp1", "detections 11,12", "攻击任务", "«锁库存»", "组织者（发言时的身份）：老王（10001，群主）",
		"当前群主/管理员：老王（10001，群主）、老周（10002，管理员）", "详情：https://console.example/alerts/1", "hxxps://m[.]tb[.]cn/h.x"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s%s", want, out, errs)
		}
	}

	code, out, _ = runCLI(t, env, "alerts", "ack", "1", "--by", "张三", "--comment", "已联系平台")
	if code != 0 || !strings.Contains(out, "acknowledged by 张三") {
		t.Fatalf("ack: %d %s", code, out)
	}
	code, out, _ = runCLI(t, env, "alerts", "resolve", "2", "--by", "张三")
	if code != 0 || !strings.Contains(out, "resolved by 张三") {
		t.Fatalf("resolve: %d %s", code, out)
	}
	code, _, errs = runCLI(t, env, "alerts", "resolve", "2", "--by", "张三")
	if code != 1 || !strings.Contains(errs, "not firing") {
		t.Fatalf("resolve twice: %d %s", code, errs)
	}
	code, out, _ = runCLI(t, env, "alerts", "list", "--status", "firing")
	if code != 0 || !strings.Contains(out, "张三") || strings.Contains(out, "extortion") {
		t.Fatalf("list firing after ack/resolve: %s", out)
	}
	if code, _, errs = runCLI(t, env, "alerts", "show", "99"); code != 1 || !strings.Contains(errs, "no such alert") {
		t.Fatalf("show missing: %d %s", code, errs)
	}
	if code, _, _ = runCLI(t, env, "alerts", "show", "x"); code != 2 {
		t.Fatalf("show bad id: %d", code)
	}

	// Silences.
	code, out, errs = runCLI(t, env, "alerts", "silence", "add", "--matcher", `group="qq:815530927"`, "--matcher", `category=~"attack_.*"`,
		"--duration", "3h", "--comment", "已上报", "--by", "李四")
	if code != 0 || !strings.Contains(out, "silence 1:") {
		t.Fatalf("silence add: %d %s %s", code, out, errs)
	}
	if code, _, errs = runCLI(t, env, "alerts", "silence", "add", "--matcher", `group=~"("`, "--comment", "x", "--by", "x"); code != 2 || !strings.Contains(errs, "matcher") {
		t.Fatalf("bad matcher: %d %s", code, errs)
	}
	if code, _, errs = runCLI(t, env, "alerts", "silence", "add", "--matcher", `group="a"`, "--by", "x"); code != 2 || !strings.Contains(errs, "--comment") {
		t.Fatalf("no comment: %d %s", code, errs)
	}
	code, out, _ = runCLI(t, env, "alerts", "silence", "list")
	if code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "李四") || !strings.Contains(out, `category=~"attack_.*"`) {
		t.Fatalf("silence list: %s", out)
	}
	if code, out, _ = runCLI(t, env, "alerts", "silence", "expire", "1"); code != 0 {
		t.Fatalf("expire: %s", out)
	}
	if _, out, _ = runCLI(t, env, "alerts", "silence", "list"); !strings.Contains(out, "no silences") {
		t.Fatalf("after expire: %s", out)
	}
	if _, out, _ = runCLI(t, env, "alerts", "silence", "list", "--all"); !strings.Contains(out, "expired") {
		t.Fatalf("list --all: %s", out)
	}

	// Dead letters.
	code, out, _ = runCLI(t, env, "alerts", "dead")
	if code != 0 || !strings.Contains(out, "webhook[0]") || !strings.Contains(out, "HTTP 400") {
		t.Fatalf("dead: %s", out)
	}
	if code, _, _ = runCLI(t, env, "alerts", "dead", "retry"); code != 2 {
		t.Fatalf("retry without ids: %d", code)
	}
	code, out, _ = runCLI(t, env, "alerts", "dead", "retry", "--all")
	if code != 0 || !strings.Contains(out, "1 notification(s) queued again") {
		t.Fatalf("retry: %s", out)
	}
	if _, out, _ = runCLI(t, env, "alerts", "dead"); !strings.Contains(out, "no dead letters") {
		t.Fatalf("after retry: %s", out)
	}
}

func TestAlertsTestCommand(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer bad.Close()
	cfgFile := filepath.Join(t.TempDir(), "q.yaml")
	os.WriteFile(cfgFile, []byte(`
alerts:
  allow_private_targets: true
  receivers:
    - name: default
    - name: ops
      webhook_configs:
        - url: `+good.URL+`
          secret: ${HOOK_SECRET}
    - name: broken
      webhook_configs:
        - url: `+good.URL+`
        - url: `+bad.URL+`
`), 0o600)
	env := map[string]string{"QUNSHAO_STORAGE_DSN": filepath.Join(t.TempDir(), "q.db"), "HOOK_SECRET": "s"}
	code, out, errs := runCLI(t, env, "--config", cfgFile, "alerts", "test", "ops")
	if code != 0 || !strings.Contains(out, "ops webhook[0]: ok") || len(bodies) != 1 || !strings.Contains(bodies[0], `"test":true`) {
		t.Fatalf("test ops: %d %s %s %v", code, out, errs, bodies)
	}
	code, out, errs = runCLI(t, env, "--config", cfgFile, "alerts", "test", "broken")
	if code != 1 || !strings.Contains(out, "broken webhook[0]: ok") || !strings.Contains(out, "broken webhook[1]: FAILED (permanent)") ||
		!strings.Contains(errs, "1 of 2 integrations failed") {
		t.Fatalf("test broken: %d %s %s", code, out, errs)
	}
	if code, out, _ = runCLI(t, env, "--config", cfgFile, "alerts", "test", "default"); code != 0 || !strings.Contains(out, "no integrations") {
		t.Fatalf("test default: %d %s", code, out)
	}
	if code, _, errs = runCLI(t, env, "--config", cfgFile, "alerts", "test", "nobody"); code != 2 || !strings.Contains(errs, "have: default, ops, broken") {
		t.Fatalf("test nobody: %d %s", code, errs)
	}
	// Without the opt-in, 127.0.0.1 is refused before anything is sent.
	os.WriteFile(cfgFile, []byte("alerts:\n  receivers:\n    - name: default\n    - name: ops\n      webhook_configs: [{url: \""+good.URL+"\"}]\n"), 0o600)
	code, out, _ = runCLI(t, env, "--config", cfgFile, "alerts", "test", "ops")
	if code != 1 || !strings.Contains(out, "refused by outbound safety") || len(bodies) != 2 {
		t.Fatalf("private target: %d %s (%d bodies)", code, out, len(bodies))
	}
}

// The demo shows the chain from message to alert: alerts printed on the
// terminal as they fire, grouped, inhibited and routed, and kept in the
// history.
func TestDemoShowsAlerts(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	code, out, errs := runCLI(t, nil, "demo", "--db", db)
	if code != 0 {
		t.Fatalf("demo: %d %s", code, errs)
	}
	for _, want := range []string{"🔔 【群哨告警·严重】敲诈勒索：QQ群「双十一好物分享群」", "🔔 【群哨告警·高】攻击任务：QQ群「双十一好物分享群」→ 青禾茶具旗舰店",
		"组织者（发言时的身份）：阿彪推广（2718281828，群主）", "«把他库存全锁住»", "4 alerts raised, 2 notifications"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "🔔 【群哨告警·低】") || strings.Contains(out, "🔔 【群哨告警·中】攻击协同") {
		t.Errorf("low-severity or inhibited alert notified:\n%s", out)
	}
	code, out, _ = runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": db}, "alerts", "list")
	if code != 0 || strings.Count(out, "firing") != 4 || !strings.Contains(out, "wechat:38620519937@chatroom") {
		t.Fatalf("alerts of the demo: %s", out)
	}
}
