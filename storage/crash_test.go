package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
)

// The crash test re-executes this test binary as a child writer.
const (
	crashDBEnv  = "QUNSHAO_CRASH_CHILD_DB"
	crashRunEnv = "QUNSHAO_CRASH_CHILD_RUN"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashDBEnv); path != "" {
		os.Exit(crashChild(path, os.Getenv(crashRunEnv)))
	}
	os.Exit(m.Run())
}

// crashChild writes messages, roster changes and recalls into the SQLite
// file as fast as it can and prints "ok <group> <message id>" for each
// message once its commit is acknowledged, until it is killed.
func crashChild(path, run string) int {
	ctx := context.Background()
	cfg := storage.DefaultConfig()
	cfg.DSN = path
	cfg.Writer.FlushInterval = 2 * time.Millisecond
	s, err := storage.Open(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := s.EnsureSchema(ctx, true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w, err := s.NewWriter(storage.WriterOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	type pending struct {
		t     *storage.Ticket
		group string
		id    string
	}
	queue := make(chan pending, 256)
	go func() {
		for p := range queue {
			if _, err := p.t.Wait(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "commit:", err)
				os.Exit(3)
			}
			if p.id != "" {
				fmt.Fprintf(out, "ok %s %s\n", p.group, p.id)
				out.Flush()
			}
		}
	}()
	base := time.Date(2024, 6, 10, 20, 0, 0, 0, cst)
	// A bounded stream per child keeps the database, and so the checks
	// after each kill, small; most kills still land mid-stream.
	for i := 0; i < crashEventsPerChild; i++ {
		g := fmt.Sprint(7000 + i%5)
		var ev *bot.Event
		id := ""
		switch {
		case i%37 == 0:
			ev = &bot.Event{Kind: bot.KindRoster, Platform: bot.QQ, GroupID: g, Time: base.Add(time.Duration(i) * time.Millisecond),
				Roster: &bot.Roster{Complete: true, Members: []bot.Member{{ID: "1", Role: bot.RoleOwner}, {ID: fmt.Sprint(2 + i%5), Role: bot.RoleAdmin}}}}
		case i%23 == 0:
			ev = &bot.Event{Kind: bot.KindRecall, Platform: bot.QQ, GroupID: g, Time: base.Add(time.Duration(i) * time.Millisecond),
				Recall: &bot.Recall{MessageID: fmt.Sprintf("r%s-%d", run, i-1)}}
		case i%11 == 0 && run != "0":
			// Redeliver a message an earlier child may have stored.
			id = fmt.Sprintf("r%s-%d", prevRun(run), i)
			ev = msg(id, "1", "again "+id, base.Add(time.Duration(i)*time.Second))
			ev.GroupID = g
		default:
			id = fmt.Sprintf("r%s-%d", run, i)
			ev = msg(id, fmt.Sprint(i%7), strings.Repeat("锁库存", 1+i%40), base.Add(time.Duration(i)*time.Second))
			ev.GroupID = g
		}
		t, err := w.Submit(ctx, ev)
		if err != nil {
			fmt.Fprintln(os.Stderr, "submit:", err)
			return 3
		}
		queue <- pending{t, bot.GroupKey(bot.QQ, g), id}
	}
	time.Sleep(time.Hour) // wait to be killed
	return 4
}

const crashEventsPerChild = 400

func prevRun(run string) string {
	var n int
	fmt.Sscan(run, &n)
	return fmt.Sprint(n - 1)
}

// TestCrashSafety SIGKILLs a writer at random moments, over and over, and
// after each kill checks that the database is intact, that every message
// the writer acknowledged is there, and that every chain verifies.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the binary 60 times; skipped in -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	const kills = 60
	acked := map[string]bool{}
	var lastCount int64
	for run := 0; run < kills; run++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDBEnv+"="+path, fmt.Sprintf("%s=%d", crashRunEnv, run))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		outc := make(chan []byte)
		ready := make(chan struct{})
		go func() {
			var buf bytes.Buffer
			r := bufio.NewReader(stdout)
			signalled := false
			for {
				line, err := r.ReadBytes('\n')
				buf.Write(line)
				if !signalled && string(line) == "ready\n" {
					close(ready)
					signalled = true
				}
				if err != nil {
					break
				}
			}
			outc <- buf.Bytes()
		}()
		// Every fifth child is killed anywhere from start-up on (mid-
		// migration on the first run); the others once they are writing,
		// so the test exercises the writer however slow the machine (or
		// the race detector) makes start-up.
		if run%5 != 0 {
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("run %d: child never became ready: %s", run, stderr.String())
			}
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		out := <-outc
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d: child exited on its own (%v): %s", run, err, stderr.String())
		}
		lines := strings.Split(string(out), "\n")
		// The last line may be cut short by the kill; only whole lines count.
		for _, l := range lines[:len(lines)-1] {
			f := strings.Fields(l)
			if len(f) == 3 && f[0] == "ok" {
				acked[f[1]+"|"+f[2]] = true
			}
		}
		lastCount = checkAfterCrash(t, path, run, acked)
	}
	if len(acked) < 100 || lastCount == 0 {
		t.Fatalf("children acknowledged only %d messages (%d records): the test did not exercise the writer", len(acked), lastCount)
	}
	t.Logf("%d kills, %d acknowledged messages, %d records", kills, len(acked), lastCount)
}

func checkAfterCrash(t *testing.T, path string, run int, acked map[string]bool) int64 {
	t.Helper()
	ctx := context.Background()
	cfg := storage.DefaultConfig()
	cfg.DSN = path
	s, err := storage.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("run %d: reopen: %v", run, err)
	}
	defer s.Close()
	var res []string
	if err := s.DB().Raw("PRAGMA integrity_check").Scan(&res).Error; err != nil || len(res) != 1 || res[0] != "ok" {
		t.Fatalf("run %d: integrity_check = %v, %v", run, res, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v == 0 {
		if len(acked) > 0 {
			t.Fatalf("run %d: schema version %d (%v) after acknowledged writes", run, v, err)
		}
		return 0
	}
	type row struct{ GroupKey, MsgID string }
	var rows []row
	if err := s.DB().Raw("SELECT group_key, msg_id FROM evidence WHERE kind = 'message'").Scan(&rows).Error; err != nil {
		if len(acked) == 0 {
			return 0 // killed during the first migration
		}
		t.Fatalf("run %d: read back: %v", run, err)
	}
	have := make(map[string]bool, len(rows))
	for _, r := range rows {
		have[r.GroupKey+"|"+r.MsgID] = true
	}
	for k := range acked {
		if !have[k] {
			t.Fatalf("run %d: acknowledged message %s is missing after the crash", run, k)
		}
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("run %d: verify: %v", run, err)
	}
	if !rep.OK() {
		t.Fatalf("run %d: chain broken after crash: %v", run, rep.Breaks)
	}
	return rep.Records
}
