package importer

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// zipWith builds a zip archive of the kind attackers send: a zip-slip
// name, a symlink and a highly compressed entry.
func zipWith(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("../../etc/cron.d/evil")
	w.Write([]byte("* * * * * root sh -c 'id'\n"))
	h := &zip.FileHeader{Name: "link", Method: zip.Store}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ = zw.CreateHeader(h)
	w.Write([]byte("/etc/passwd"))
	w, _ = zw.Create("bomb.txt")
	w.Write([]byte(strings.Repeat("0", 1<<20)))
	w, _ = zw.Create("chat.txt")
	w.Write(fixture(t, "qq-multi-group.txt"))
	zw.Close()
	f.Close()
	b, _ := os.ReadFile(path)
	return b
}

func TestRefusedFilesWriteNothing(t *testing.T) {
	random := make([]byte, 8192)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.UintN(256))
	}
	shiftJIS := []byte("\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\x81\x41\x90\xa2\x8a\x45\x81\x42\xff\xfe\xff") // not UTF-8, not GB18030
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"export.zip", zipWith(t), ErrArchive},
		{"export.tar.gz", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), ErrArchive},
		{"binary.bin", random, ErrBinary},
		{"msg.db", append([]byte("SQLite format 3\x00"), make([]byte, 100)...), ErrBinary},
		{"sjis.txt", append([]byte("2024-11-08 20:15:05 a(1)\n"), shiftJIS...), ErrBadEncoding},
		{"be.txt", []byte{0xFE, 0xFF, 0, '1'}, ErrBadEncoding},
		{"empty.txt", nil, ErrEmpty},
		{"notes.txt", []byte("随便写的笔记\n没有格式\n"), ErrUnknownFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storagetest.Open(t, storagetest.SQLiteConfig(t))
			w := openWriter(t, s)
			path := writeFile(t, tc.name, tc.data)
			res := New(w, s, Options{}).File(context.Background(), path)
			if res.Status != storage.ImportFailed || !errors.Is(res.Err, tc.want) {
				t.Fatalf("status %s, err %v; want %v", res.Status, res.Err, tc.want)
			}
			if n, _ := s.CountRecords(context.Background()); n != 0 {
				t.Errorf("%d records written", n)
			}
			if fs, _ := s.ImportFiles(context.Background()); len(fs) != 0 {
				t.Errorf("import_files rows: %+v", fs)
			}
		})
	}
	// A directory is not a file.
	res := New(nil, nil, Options{DryRun: true}).File(context.Background(), t.TempDir())
	if res.Status != storage.ImportFailed || !strings.Contains(res.Err.Error(), "not a regular file") {
		t.Errorf("directory: %+v", res)
	}
	// JSON must be UTF-8.
	path := writeFile(t, "x.json", append([]byte{0xFF, 0xFE}, []byte("{\x00}\x00")...))
	res = New(nil, nil, Options{DryRun: true, Format: "qqnt-json"}).File(context.Background(), path)
	if !errors.Is(res.Err, ErrBadEncoding) {
		t.Errorf("UTF-16 JSON: %+v", res)
	}
}

func TestWrongEncodingForcedIsStillEvidence(t *testing.T) {
	// A GBK export read as UTF-8 yields mojibake, not a crash: the text is
	// stored as received (invalid UTF-8 kept in TextRaw), Raw is exact.
	c := parseBytes(t, qqTXT{}, "gbk.txt", fixture(t, "qq-multi-group.gbk.txt"), func(in *Input) { in.Encoding = UTF8 })
	if len(c.events) == 0 {
		t.Fatal("no events")
	}
}

func TestTruncatedFiles(t *testing.T) {
	b := fixture(t, "qq-multi-group.txt")
	cut := strings.Index(string(b), "拍完截图") + 4 // in the middle of a character
	res := New(nil, nil, Options{DryRun: true}).File(context.Background(), writeFile(t, "cut.txt", b[:cut]))
	if res.Status != StatusChecked || res.Records != 2 {
		t.Fatalf("truncated TXT: %+v", res)
	}
	j := fixture(t, "chatlog.json")
	res = New(nil, nil, Options{DryRun: true}).File(context.Background(), writeFile(t, "cut.json", j[:len(j)/2]))
	if res.Status != StatusChecked || res.Records == 0 || res.ByReason["invalid JSON"] != 1 {
		t.Fatalf("truncated JSON: %+v %v", res, res.Samples)
	}
	c := fixture(t, "pywxdump.csv")
	cutCSV := strings.Index(string(c), "这单要退吗") // inside a quoted field
	res = New(nil, nil, Options{DryRun: true}).File(context.Background(), writeFile(t, "cut.csv", c[:cutCSV]))
	if res.Status != StatusChecked || res.Records != 3 || res.Errors != 1 || res.Samples[0].Line != 5 || res.Samples[0].Reason != "unterminated quoted field" {
		t.Fatalf("truncated CSV: %+v %v", res, res.Samples)
	}
}

// heapWatch samples the heap in use until stopped and returns the peak.
func heapWatch() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

func TestHundredMegabyteLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB file")
	}
	path := filepath.Join(t.TempDir(), "long.txt")
	f, _ := os.Create(path)
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString(qqTXTBanner + "\n\n消息对象:双十一好物互助群(738291046)\n\n2024-11-08 20:15:05 群主小王(10001)\n")
	chunk := strings.Repeat("长", 1<<18) // 768 KiB
	for written := 0; written < 100<<20; written += len(chunk) {
		bw.WriteString(chunk)
	}
	bw.WriteString("\n\n2024-11-08 20:16:05 小李(20002)\n收到\n")
	bw.Flush()
	f.Close()

	runtime.GC()
	stop := heapWatch()
	s := storagetest.Open(t, storagetest.SQLiteConfig(t))
	w := openWriter(t, s)
	res := New(w, s, Options{}).File(context.Background(), path)
	peak := stop()
	if res.Status != storage.ImportComplete || res.Records != 1 || res.Stored != 1 || res.Errors != 1 {
		t.Fatalf("%+v", res)
	}
	if e := res.Samples[0]; e.Line != 5 || e.Reason != "record too long" || !strings.Contains(e.Error(), "long.txt:5: record too long: line 6 is longer than") {
		t.Errorf("error: %v", e)
	}
	if peak > 64<<20 {
		t.Errorf("heap in use peaked at %d MiB for a 100 MB line", peak>>20)
	}
	t.Logf("peak heap in use %d MiB", peak>>20)
}

// TestGigabyteExportInConstantMemory parses a generated export far larger
// than the heap may grow (the whole import path except the store: hashing,
// detection, parsing, events, validation). 1 GiB with QUNSHAO_TEST_BIG=1
// (.ci/run sets it), 64 MiB otherwise and under the race detector, where
// 1 GiB would take minutes (cmd/qunshao's TestImportGigabyteProcess runs
// the 1 GiB import in a binary built without it); skipped with -short.
func TestGigabyteExportInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a large export")
	}
	size := int64(64 << 20)
	if os.Getenv("QUNSHAO_TEST_BIG") == "1" && !raceEnabled {
		size = 1 << 30
	}
	path := filepath.Join(t.TempDir(), "big.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(size / 78) // bytes per generated message
	if err := genQQTXT(f, n); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	f.Close()
	runtime.GC()
	stop := heapWatch()
	start := time.Now()
	res := New(nil, nil, Options{DryRun: true}).File(context.Background(), path)
	peak := stop()
	if res.Status != StatusChecked || res.Records != int64(n) || res.Errors != 0 {
		t.Fatalf("%+v %v", res, res.Samples)
	}
	t.Logf("%d MiB, %d messages in %s (parse %s), peak heap in use %d MiB", fi.Size()>>20, n,
		time.Since(start).Round(time.Millisecond), res.ParseElapsed.Round(time.Millisecond), peak>>20)
	if peak > 64<<20 {
		t.Errorf("heap in use peaked at %d MiB for a %d MiB file", peak>>20, fi.Size()>>20)
	}
}
