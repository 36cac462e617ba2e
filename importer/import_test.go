package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func fileSHA(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func openWriter(t *testing.T, s *storage.Store) *storage.Writer {
	t.Helper()
	w, err := s.NewWriter(storage.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func groupRecords(t *testing.T, s *storage.Store, key string) []storage.Record {
	t.Helper()
	recs, err := s.Records(context.Background(), storage.RecordFilter{GroupKey: key, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func messagesOf(recs []storage.Record) []storage.Record {
	var out []storage.Record
	for _, r := range recs {
		if r.Kind == string(bot.KindMessage) {
			out = append(out, r)
		}
	}
	return out
}

func TestImportIntoTheStore(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w := openWriter(t, s)
		ro, err := ReadRoster(filepath.Join("testdata", "roster-qq.csv"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "qq-multi-group.txt")
		im := New(w, s, Options{Roster: ro})
		res := im.File(ctx, path)
		if res.Status != storage.ImportComplete || res.Err != nil || res.Records != 10 || res.Stored != 10 || res.Errors != 0 {
			t.Fatalf("first import: %+v", res)
		}
		// The roster file's rows for the two groups: owner since January,
		// the admin's promotion and a member from the first message in
		// the first group; owner and member in the second.
		if res.RosterStored != 5 {
			t.Errorf("roster observations stored: %d, want 5", res.RosterStored)
		}
		sha := fileSHA(t, path)
		if res.SHA256 != sha || res.Size != int64(len(fixture(t, "qq-multi-group.txt"))) {
			t.Fatalf("hash %s size %d", res.SHA256, res.Size)
		}

		// Provenance on every record, and Raw as in the file.
		file := fixture(t, "qq-multi-group.txt")
		msgs := messagesOf(groupRecords(t, s, "qq:738291046"))
		if len(msgs) != 9 {
			t.Fatalf("%d messages in the first group", len(msgs))
		}
		for _, r := range msgs {
			if r.SourceFile != sha || r.SourceUnit != UnitLine || r.SourceFormat != "qq-txt" || r.Importer != "qunshao-import/1 qq-txt/1" {
				t.Errorf("provenance: %+v", r)
			}
			lines := strings.Split(string(file), "\n")
			if !strings.HasPrefix(string(r.Raw), lines[r.SourcePos-1]+"\n") {
				t.Errorf("record at line %d: raw %q does not start with that line %q", r.SourcePos, r.Raw, lines[r.SourcePos-1])
			}
		}
		// Roles from the roster file, and unknown where it says nothing.
		roles := map[string]string{}
		for _, r := range msgs {
			roles[r.ActorID+"@"+r.OccurredAt().Format("15:04:05")] = r.ActorRole + "/" + r.RoleSource
		}
		for k, want := range map[string]string{
			"10001@20:15:05": "owner/roster",
			"10002@20:18:30": "admin/roster",
			"20003@20:17:00": "member/roster",
			"20002@20:16:11": "unknown/none",
			"10000@20:00:01": "unknown/none",
		} {
			if roles[k] != want {
				t.Errorf("role of %s: %s, want %s", k, roles[k], want)
			}
		}
		if role, ok, err := s.RoleAt(ctx, "qq:738291046", "10002", cstTime("2024-11-08 20:17:00")); err != nil || (ok && role == bot.RoleAdmin) {
			t.Errorf("the admin was not admin before the roster's since: %v %v %v", role, ok, err)
		}

		// The imported-files table.
		f, err := s.ImportFile(ctx, sha)
		if err != nil || f == nil {
			t.Fatalf("import_files row: %v %v", f, err)
		}
		if f.Size != res.Size || f.Name != "qq-multi-group.txt" || f.Kind != storage.ImportChat || f.Format != "qq-txt" ||
			f.Status != storage.ImportComplete || f.Records != 10 || f.Stored != 10 || f.NoAlert || f.Runs != 1 || f.FinishedUS == 0 {
			t.Errorf("import_files row: %+v", f)
		}
		if rf, _ := s.ImportFile(ctx, ro.SHA256); rf == nil || rf.Kind != storage.ImportRoster || rf.Records != 3 {
			t.Errorf("roster file row: %+v", rf)
		}
		if none, err := s.ImportFile(ctx, strings.Repeat("0", 64)); none != nil || err != nil {
			t.Errorf("unknown file: %v %v", none, err)
		}
		before, _ := s.CountRecords(ctx)

		// Twice: skipped. Forced: read again, nothing new.
		if again := New(w, s, Options{Roster: ro}).File(ctx, path); again.Status != StatusSkipped {
			t.Fatalf("second import: %+v", again)
		}
		forced := New(w, s, Options{Roster: ro, Force: true, NoAlert: true}).File(ctx, path)
		if forced.Status != storage.ImportComplete || forced.Stored != 0 || forced.Duplicates != 10 || forced.RosterStored != 0 {
			t.Fatalf("forced import: %+v", forced)
		}
		if after, _ := s.CountRecords(ctx); after != before {
			t.Fatalf("records %d after re-import, %d before", after, before)
		}
		// The latest run decides --no-alert.
		if f, _ := s.ImportFile(ctx, sha); !f.NoAlert || f.Runs != 2 || f.Stored != 10 {
			t.Errorf("after forced run: %+v", f)
		}
		// An overlapping export of the same group in another format adds
		// only what is new to the same group.
		nt := New(w, s, Options{}).File(ctx, filepath.Join("testdata", "qqnt.json"))
		if nt.Status != storage.ImportComplete || nt.Stored != 8 {
			t.Fatalf("qqnt import: %+v", nt)
		}
		w.Close(ctx)
		rep, err := s.Verify(ctx, nil)
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %+v", err, rep)
		}
	})
}

// A group that a bot also monitors: its live roster history gives the roles
// of imported messages, with no roster file.
func TestImportUsesLiveRosterHistory(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w := openWriter(t, s)
		live := &bot.Event{Kind: bot.KindRoster, Platform: bot.QQ, Bot: "20009", GroupID: "738291046", Time: cstTime("2024-11-01 09:00:00"),
			Roster: &bot.Roster{Complete: true, Members: []bot.Member{
				{ID: "10001", Nick: "群主小王", Role: bot.RoleOwner},
				{ID: "10002", Nick: "老周", Role: bot.RoleMember},
				{ID: "20002", Nick: "小李", Role: bot.RoleMember},
			}}}
		if _, err := w.Write(ctx, live); err != nil {
			t.Fatal(err)
		}
		promoted := &bot.Event{Kind: bot.KindRoleChange, Platform: bot.QQ, Bot: "20009", GroupID: "738291046", Time: cstTime("2024-11-08 20:18:00"),
			Member: &bot.MemberChange{Member: bot.Member{ID: "10002"}, OldRole: bot.RoleMember, NewRole: bot.RoleAdmin}}
		if _, err := w.Write(ctx, promoted); err != nil {
			t.Fatal(err)
		}
		res := New(w, s, Options{}).File(ctx, filepath.Join("testdata", "qq-multi-group.txt"))
		if res.Status != storage.ImportComplete || res.Stored != 10 {
			t.Fatalf("%+v", res)
		}
		got := map[string]string{}
		for _, r := range messagesOf(groupRecords(t, s, "qq:738291046")) {
			got[r.ActorID+"@"+r.OccurredAt().Format("15:04:05")] = r.ActorRole + "/" + r.RoleSource
		}
		for k, want := range map[string]string{
			"10001@20:15:05": "owner/roster",
			"10002@20:18:30": "admin/roster",
			"20002@20:16:11": "member/roster",
			"20003@20:17:00": "unknown/none", // not in the live roster: not guessed
		} {
			if got[k] != want {
				t.Errorf("role of %s: %s, want %s", k, got[k], want)
			}
		}
		// The name-only group does not join any live history.
		for _, r := range messagesOf(groupRecords(t, s, "qq:name:小满家居福利群")) {
			if r.ActorRole != "unknown" {
				t.Errorf("name-only group: %+v", r)
			}
		}
	})
}

// cancelAfter submits to the store and cancels the import after n events,
// like Ctrl-C half-way.
type cancelAfter struct {
	sub    Submitter
	n      int64
	seen   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Submit(ctx context.Context, ev *bot.Event) (*storage.Ticket, error) {
	if c.seen.Add(1) > c.n {
		c.cancel()
		return nil, context.Canceled
	}
	return c.sub.Submit(ctx, ev)
}

// failAfter stands for a process that dies half-way: after n events
// nothing more reaches the store and the run ends without finishing.
type failAfter struct {
	sub  Submitter
	n    int64
	seen atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (c *failAfter) Submit(ctx context.Context, ev *bot.Event) (*storage.Ticket, error) {
	if c.seen.Add(1) > c.n {
		return nil, errCrash
	}
	return c.sub.Submit(ctx, ev)
}

func genFile(t testing.TB, name string, n int, gen func(w *os.File, n int) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen(f, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInterruptedImportFinishesWithoutDuplicates(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		const n = 3000
		path := genFile(t, "big.txt", n, func(w *os.File, n int) error { return genQQTXT(w, n) })
		s := storagetest.Open(t, b.Config(t))
		w := openWriter(t, s)
		sha := fileSHA(t, path)
		count := func() int {
			return len(messagesOf(groupRecords(t, s, "qq:738291046")))
		}

		// Ctrl-C after 1000 messages.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res := New(&cancelAfter{sub: w, n: 1000, cancel: cancel}, s, Options{SaveEvery: time.Nanosecond}).File(ctx, path)
		if res.Status != storage.ImportInterrupted || !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("interrupted run: %+v", res)
		}
		f, _ := s.ImportFile(context.Background(), sha)
		if f.Status != storage.ImportInterrupted || f.ResumePos <= 1 || f.Stored != 1000 {
			t.Fatalf("after Ctrl-C: %+v", f)
		}
		if got := count(); got != 1000 {
			t.Fatalf("%d messages stored before the interruption, want 1000", got)
		}

		// A crash after 1000 more.
		res = New(&failAfter{sub: w, n: 1000}, s, Options{SaveEvery: time.Nanosecond}).File(context.Background(), path)
		if res.Status != storage.ImportFailed || !errors.Is(res.Err, errCrash) || res.Resumed == 0 {
			t.Fatalf("crashed run: %+v", res)
		}

		// Run again: finishes, nothing twice.
		res = New(w, s, Options{}).File(context.Background(), path)
		if res.Status != storage.ImportComplete || res.Records != n || res.Resumed < 1000 ||
			res.Stored+res.Duplicates+res.Resumed != n {
			t.Fatalf("resumed run: %+v", res)
		}
		if got := count(); got != n {
			t.Fatalf("%d messages after resuming, want %d", got, n)
		}
		f, _ = s.ImportFile(context.Background(), sha)
		if f.Status != storage.ImportComplete || f.Stored != n || f.Runs != 3 {
			t.Fatalf("import_files after resuming: %+v", f)
		}
		// And once more with --force: every message already there.
		res = New(w, s, Options{Force: true}).File(context.Background(), path)
		if res.Stored != 0 || res.Duplicates != n {
			t.Fatalf("forced run: %+v", res)
		}
		w.Close(context.Background())
		if rep, err := s.Verify(context.Background(), nil); err != nil || !rep.OK() {
			t.Fatalf("verify: %v %+v", err, rep)
		}
	})
}

func TestStrictStopsAtTheFirstBadRecord(t *testing.T) {
	s := storagetest.Open(t, storagetest.SQLiteConfig(t))
	w := openWriter(t, s)
	path := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(path, []byte("id,MsgSvrID,type_name,is_sender,talker,room_name,msg,src,CreateTime\n"+
		"1,101,文本,0,wxid_a,1@chatroom,第一条,,2024-11-08 20:15:05\n"+
		"2,102,文本,0,wxid_a,1@chatroom,时间坏了,,2024-13-08 20:15:05\n"+
		"3,103,文本,0,wxid_a,1@chatroom,第三条,,2024-11-08 20:15:07\n"), 0o600)
	res := New(w, s, Options{Strict: true}).File(context.Background(), path)
	if res.Status != storage.ImportFailed || !errors.Is(res.Err, ErrStrict) || res.Errors != 1 ||
		!strings.Contains(res.Err.Error(), "bad.csv:3: missing or bad time") {
		t.Fatalf("strict: %+v", res)
	}
	if got := messagesOf(groupRecords(t, s, "wechat:1@chatroom")); len(got) != 1 {
		t.Fatalf("%d messages stored, want only the one before the bad row", len(got))
	}
	// Without --strict the rest is imported and the bad row reported.
	res = New(w, s, Options{}).File(context.Background(), path)
	if res.Status != storage.ImportComplete || res.Errors != 1 || res.Samples[0].Error() != "bad.csv:3: missing or bad time: \"2024-13-08 20:15:05\"" {
		t.Fatalf("lenient: %+v %v", res, res.Samples)
	}
	if got := messagesOf(groupRecords(t, s, "wechat:1@chatroom")); len(got) != 2 {
		t.Fatalf("%d messages stored, want 2", len(got))
	}
}
