package importer

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeCounter struct{ b, r atomic.Int64 }

func (f *fakeCounter) bytes() int64   { return f.b.Load() }
func (f *fakeCounter) records() int64 { return f.r.Load() }

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressLinesWhenNotATerminal(t *testing.T) {
	var out lockedBuf
	p := &Progress{W: &out, Interval: 20 * time.Millisecond}
	c := &fakeCounter{}
	stop := p.phase("群聊.txt", "importing", 1000, c)
	c.b.Store(250)
	c.r.Store(40)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "\n") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	stop() // idempotent
	got := out.String()
	if !strings.Contains(got, "import 群聊.txt: importing 25.0% (250 B of 1000 B)") || !strings.Contains(got, "40 records") || !strings.Contains(got, "ETA ") {
		t.Fatalf("progress lines:\n%s", got)
	}
	if strings.Contains(got, "\r") || strings.Contains(got, "\x1b[") {
		t.Errorf("terminal control in plain progress: %q", got)
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	var out lockedBuf
	p := &Progress{W: &out, TTY: true}
	c := &fakeCounter{}
	stop := p.phase("a.txt", "hashing", 4096, c)
	c.b.Store(4096)
	time.Sleep(150 * time.Millisecond)
	stop()
	if got := out.String(); !strings.Contains(got, "hashing a.txt") || !strings.Contains(got, "100%") {
		t.Fatalf("bar: %q", got)
	}
	var nothing *Progress
	nothing.phase("x", "y", 1, c)() // a nil Progress shows nothing
}

func TestProgressLine(t *testing.T) {
	got := progressLine("f", "importing", 512<<20, 1<<30, 1000, 10*time.Second)
	want := "import f: importing 50.0% (512.0 MiB of 1.0 GiB), 51.2 MiB/s, ETA 10s, 1000 records (100/s)"
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
