package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qunshao/qunshao/storage"
)

func importFixture(name string) string {
	return filepath.Join("..", "..", "importer", "testdata", name)
}

func openDB(t *testing.T, db string) *storage.Store {
	t.Helper()
	cfg := storage.DefaultConfig()
	cfg.DSN = db
	st, err := storage.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestImportCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "q.db")
	env := map[string]string{"QUNSHAO_STORAGE_DSN": db}
	code, out, errs := runCLI(t, env, "import", "--roster", importFixture("roster-qq.csv"), "--progress", "off",
		importFixture("qq-multi-group.txt"), importFixture("qqnt.json"), importFixture("pywxdump.csv"))
	if code != 0 {
		t.Fatalf("import exit %d:\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"qq-multi-group.txt: complete (qq-txt, utf-8",
		"10 records: 10 stored, 0 already stored, 0 errors; 5 roster observations",
		"groups: qq:738291046, qq:name:小满家居福利群",
		"qqnt.json: complete (qqnt-json",
		"pywxdump.csv: complete (pywxdump-csv",
		"total: 3 files (3 complete, 0 skipped, 0 interrupted, 0 failed): 25 records, 25 stored",
		"analysis: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	st := openDB(t, db)
	ctx := context.Background()
	// Imported messages went through the analysis: the owner's task to
	// mass-order and refund is a detection, with the owner's role.
	ds, err := st.Detections(ctx, storage.DetectionFilter{GroupKey: "qq:738291046"})
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for _, d := range ds {
		if d.SenderID == "10001" && d.SenderRole == "owner" && d.Label != "benign" {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("the owner's task was not flagged: %+v", ds)
	}
	files, err := st.ImportFiles(ctx)
	if err != nil || len(files) != 4 { // three exports and the roster
		t.Fatalf("import_files: %+v %v", files, err)
	}
	st.Close()

	// Again: nothing to do; exit 0.
	code, out, _ = runCLI(t, env, "import", "--progress", "off", importFixture("qq-multi-group.txt"))
	if code != 0 || !strings.Contains(out, "qq-multi-group.txt: skipped") {
		t.Fatalf("second import %d:\n%s", code, out)
	}
	// --force --no-alert: read again, nothing stored twice.
	code, out, _ = runCLI(t, env, "import", "--progress", "off", "--force", "--no-alert", importFixture("qq-multi-group.txt"))
	if code != 0 || !strings.Contains(out, "10 records: 0 stored, 10 already stored") || !strings.Contains(out, "--no-alert") {
		t.Fatalf("forced import %d:\n%s", code, out)
	}
	st = openDB(t, db)
	sum := fileSum(t, importFixture("qq-multi-group.txt"))
	if f, err := st.ImportFile(ctx, sum); err != nil || f == nil || !f.NoAlert || f.Stored != 10 {
		t.Fatalf("import_files row: %+v %v", f, err)
	}
	st.Close()
	code, out, _ = runCLI(t, env, "db", "verify")
	if code != 0 || !strings.Contains(out, "all chains intact") {
		t.Fatalf("verify: %d %s", code, out)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	code, out, errs := runCLI(t, nil, "import", "--dry-run", "--progress", "off", path)
	if code != 0 {
		t.Fatalf("dry run: %d %s %s", code, out, errs)
	}
	i := strings.Index(out, "sha256 ")
	if i < 0 {
		t.Fatalf("no hash in %s", out)
	}
	return out[i+7 : i+7+64]
}

func TestImportBadInput(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	env := map[string]string{"QUNSHAO_STORAGE_DSN": db}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n"+
		"1,101,文本,0,wxid_a,1@chatroom,第一条,,2024-11-08 20:15:05\n"+
		"2,102,文本,0,wxid_a,1@chatroom\n"+
		"3,103,文本,0,wxid_a,1@chatroom,第三条,,2024-11-08 20:15:07\n"), 0o600)
	code, out, _ := runCLI(t, env, "import", "--progress", "off", bad)
	if code != 1 || !strings.Contains(out, "bad.csv:3: wrong number of fields: 6 fields, the header has 9") ||
		!strings.Contains(out, "3 records") && !strings.Contains(out, "2 records: 2 stored") || !strings.Contains(out, "errors by reason:") {
		t.Fatalf("bad rows: exit %d\n%s", code, out)
	}
	bad2 := filepath.Join(dir, "bad2.csv")
	os.WriteFile(bad2, []byte(strings.Replace(mustRead(t, bad), "1@chatroom", "2@chatroom", -1)), 0o600)
	code, out, _ = runCLI(t, env, "import", "--progress", "off", "--strict", bad2)
	if code != 1 || !strings.Contains(out, "stopped: stopped at the first bad record (--strict): bad2.csv:3: wrong number of fields") {
		t.Fatalf("strict: exit %d\n%s", code, out)
	}
	zip := filepath.Join(dir, "export.zip")
	os.WriteFile(zip, []byte("PK\x03\x04rest of a zip"), 0o600)
	code, out, _ = runCLI(t, env, "import", "--progress", "off", zip)
	if code != 1 || !strings.Contains(out, "archives are not imported") {
		t.Fatalf("zip: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"import"},
		{"import", "--format", "whatsapp", bad},
		{"import", "--encoding", "latin1", bad},
		{"import", "--progress", "fancy", bad},
		{"import", "--max-record", "10", bad},
		{"import", "--group", "a\x01b", bad},
	} {
		if code, _, errs := runCLI(t, env, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errs)
		}
	}
	// A dry run stores nothing.
	dry := filepath.Join(dir, "dry.db")
	code, out, _ = runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": dry}, "import", "--dry-run", "--progress", "off", importFixture("liuhen.csv"))
	if code != 0 || !strings.Contains(out, "9 records, 0 errors (dry run: nothing stored)") {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if _, err := os.Stat(dry); err == nil {
		t.Error("a dry run created the database")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportKillHelper is the qunshao process TestImportSurvivesKill kills.
func TestImportKillHelper(t *testing.T) {
	if os.Getenv("IMPORT_KILL_HELPER") != "1" {
		t.Skip("runs only as the child of TestImportSurvivesKill")
	}
	os.Exit(run(strings.Split(os.Getenv("IMPORT_KILL_ARGS"), "\n"), os.Stdout, os.Stderr))
}

// TestImportSurvivesKill kills an import (SIGKILL, no chance to clean up)
// once it has saved a resume position, runs it again and checks that every
// message is stored exactly once and the chains verify.
func TestImportSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	export := filepath.Join(dir, "group.txt")
	const n = 8000
	f, _ := os.Create(export)
	bw := bufio.NewWriter(f)
	bw.WriteString("消息记录（此消息记录为文本格式，不支持重新导入）\n\n消息对象:双十一好物互助群(738291046)\n\n")
	base := time.Date(2024, 11, 8, 20, 0, 0, 0, time.FixedZone("CST", 8*3600))
	for i := 0; i < n; i++ {
		fmt.Fprintf(bw, "%s 成员%d(%d)\n第%d条：今晚拍单，收到请回复\n\n", base.Add(time.Duration(i/3)*time.Second).Format("2006-01-02 15:04:05"), i%40, 10000+i%40, i)
	}
	bw.Flush()
	f.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestImportKillHelper$")
	cmd.Env = append(os.Environ(), "IMPORT_KILL_HELPER=1", "QUNSHAO_STORAGE_DSN="+db, "QUNSHAO_LOG_LEVEL=warn",
		"IMPORT_KILL_ARGS="+strings.Join([]string{"import", "--progress", "off", "--save-every", "50ms", export}, "\n"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	deadline := time.Now().Add(2 * time.Minute)
wait:
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			break wait
		case <-time.After(200 * time.Millisecond):
		}
		if resumeSaved(db) {
			cmd.Process.Kill()
			<-exited
			killed = true
			break
		}
	}
	if !killed {
		t.Log("the import finished before it could be killed; checking the rerun only")
	} else {
		st := openDB(t, db)
		fs, _ := st.ImportFiles(context.Background())
		n, _ := st.CountRecords(context.Background())
		t.Logf("killed with %d records stored, resume position line %d", n, fs[0].ResumePos)
		st.Close()
	}
	code, out, errs := runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": db}, "import", "--progress", "off", export)
	if code != 0 {
		t.Fatalf("rerun exit %d:\n%s\n%s", code, out, errs)
	}
	if killed && !strings.Contains(out, "committed by an earlier run") {
		t.Errorf("the rerun did not resume:\n%s", out)
	}
	st := openDB(t, db)
	recs, err := st.Records(context.Background(), storage.RecordFilter{GroupKey: "qq:738291046", Kinds: []string{"message"}, Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d messages stored, want %d", len(recs), n)
	}
	seen := map[int64]bool{}
	for _, r := range recs {
		if seen[r.SourcePos] {
			t.Fatalf("line %d stored twice", r.SourcePos)
		}
		seen[r.SourcePos] = true
	}
	st.Close()
	if code, out, _ := runCLI(t, map[string]string{"QUNSHAO_STORAGE_DSN": db}, "db", "verify"); code != 0 {
		t.Fatalf("verify: %s", out)
	}
}

// resumeSaved reports whether the running import saved a resume position
// past some committed messages (the first message is on line 5).
func resumeSaved(db string) bool {
	if _, err := os.Stat(db); err != nil {
		return false
	}
	cfg := storage.DefaultConfig()
	cfg.DSN = db
	st, err := storage.Open(context.Background(), cfg, nil)
	if err != nil {
		return false
	}
	defer st.Close()
	fs, err := st.ImportFiles(context.Background())
	return err == nil && len(fs) == 1 && fs[0].ResumePos > 5 && fs[0].Stored > 0 && fs[0].Status == storage.ImportRunning
}

// TestImportGigabyteProcess imports a generated 1 GiB export (--dry-run:
// hashing, detection, parsing, events, validation; no store) with a
// qunshao binary built without the race detector, and checks that the
// process's peak resident memory stays far below the file's size. Runs
// with QUNSHAO_TEST_BIG=1 (.ci/run sets it); skipped with -short.
func TestImportGigabyteProcess(t *testing.T) {
	if testing.Short() || os.Getenv("QUNSHAO_TEST_BIG") != "1" {
		t.Skip("set QUNSHAO_TEST_BIG=1 to import a generated 1 GiB export")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "qunshao")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// 1 GiB of QQ TXT: a block of messages minutes apart, repeated.
	var block strings.Builder
	block.WriteString("")
	base := time.Date(2024, 11, 8, 20, 0, 0, 0, time.FixedZone("CST", 8*3600))
	per := 0
	for i := 0; block.Len() < 1<<20; i++ {
		fmt.Fprintf(&block, "%s 成员%d(%d)\n第%d条：今晚8点开始，每人拍5件，不要付款\n\n", base.Add(time.Duration(i/4)*time.Second).Format("2006-01-02 15:04:05"), i%40, 10000+i%40, i)
		per++
	}
	path := filepath.Join(dir, "big.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString("消息记录（此消息记录为文本格式，不支持重新导入）\n\n消息对象:双十一好物互助群(738291046)\n\n")
	blocks := 0
	for written := 0; written < 1<<30; written += block.Len() {
		bw.WriteString(block.String())
		blocks++
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(bin, "import", "--dry-run", "--progress", "off", path)
	cmd.Env = append(os.Environ(), "QUNSHAO_LOG_LEVEL=warn")
	start := time.Now()
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child's peak memory is read from /proc while it runs: VmHWM
	// belongs to the address space exec created, whereas the rusage
	// Maxrss of a child started with CLONE_VM also counts the (large,
	// race-instrumented) test process it was forked from.
	var hwm atomic.Int64
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if kb := vmHWM(cmd.Process.Pid); kb > hwm.Load() {
				hwm.Store(kb)
			}
			select {
			case <-stopPoll:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	close(stopPoll)
	<-polled
	out := stdout.Bytes()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	want := fmt.Sprintf("%d records, 0 errors (dry run", per*blocks)
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	peak := hwm.Load() << 10
	if peak == 0 {
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Skip("no memory figures on this system")
		}
		peak = int64(ru.Maxrss) << 10 // KiB on Linux
	}
	t.Logf("1 GiB, %d messages in %s, peak resident memory %d MiB", per*blocks, time.Since(start).Round(time.Millisecond), peak>>20)
	if peak > 128<<20 {
		t.Errorf("peak resident memory %d MiB for a 1 GiB export", peak>>20)
	}
}

// vmHWM returns a process's peak resident set in KiB from /proc (0 when
// unavailable or the process is gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
