package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

var cst = time.FixedZone("CST", 8*3600)

func at(hhmm string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", "2024-06-10 "+hhmm, cst)
	if err != nil {
		panic(err)
	}
	return t
}

const group = "738291046"

var gk = bot.GroupKey(bot.QQ, group)

func msg(id, sender, text string, t time.Time) *bot.Event {
	return &bot.Event{
		Kind: bot.KindMessage, Platform: bot.QQ, Bot: "10001", GroupID: group, GroupName: "618好物推广互助群", Time: t,
		Raw: []byte(fmt.Sprintf(`{"post_type":"message","message_id":%q,"raw_message":%q}`, id, text)),
		Message: &bot.Message{ID: id, Sender: bot.Member{ID: sender, Nick: "nick-" + sender}, Text: text,
			Segments: []bot.Segment{{Type: bot.SegText, Text: text}}},
	}
}

func roster(t time.Time, complete bool, members ...bot.Member) *bot.Event {
	return &bot.Event{Kind: bot.KindRoster, Platform: bot.QQ, Bot: "10001", GroupID: group, Time: t,
		Roster: &bot.Roster{Members: members, Complete: complete}}
}

func member(kind bot.Kind, t time.Time, c bot.MemberChange) *bot.Event {
	return &bot.Event{Kind: kind, Platform: bot.QQ, Bot: "10001", GroupID: group, Time: t, Member: &c}
}

func newWriter(t *testing.T, s *storage.Store) *storage.Writer {
	t.Helper()
	w, err := s.NewWriter(storage.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func write(t *testing.T, w *storage.Writer, evs ...*bot.Event) []storage.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var tickets []*storage.Ticket
	for _, ev := range evs {
		tk, err := w.Submit(ctx, ev)
		if err != nil {
			t.Fatalf("submit %s %v: %v", ev.Kind, ev.Message, err)
		}
		tickets = append(tickets, tk)
	}
	var out []storage.Result
	for _, tk := range tickets {
		r, err := tk.Wait(ctx)
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func messages(t *testing.T, s *storage.Store) []storage.Record {
	t.Helper()
	recs, err := s.Records(context.Background(), storage.RecordFilter{GroupKey: gk, Kinds: []string{"message"}})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func mustVerify(t *testing.T, s *storage.Store) *storage.VerifyReport {
	t.Helper()
	rep, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("chain broken: %v", rep.Breaks)
	}
	return rep
}

func TestIngestStoresEveryField(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		ev := msg("m1", "2839104756", "@全体成员 今晚有新任务 😀", at("19:58"))
		ev.Message.Sender.Card = "群主大鹏"
		ev.Message.Segments = []bot.Segment{
			{Type: bot.SegAt, Target: "all", Text: "@全体成员"},
			{Type: bot.SegText, Text: " 今晚有新任务 "},
			{Type: bot.SegFace, ID: "14", Text: "[微笑]"},
			{Type: bot.SegImage, ID: "abc.jpg", URL: "https://gchat.qpic.cn/x"},
			{Type: bot.SegRedPacket, Title: "恭喜发财", AmountFen: 888},
		}
		res := write(t, w, ev)
		if res[0].Seq != 1 || res[0].Duplicate {
			t.Fatalf("result = %+v, want first link", res[0])
		}
		recs := messages(t, s)
		if len(recs) != 1 {
			t.Fatalf("stored %d messages, want 1", len(recs))
		}
		r := recs[0]
		if r.Text != ev.Message.Text || r.MsgID != "m1" || r.ActorID != "2839104756" || r.ActorCard != "群主大鹏" ||
			r.GroupName != "618好物推广互助群" || r.BotID != "10001" || !bytes.Equal(r.Raw, ev.Raw) {
			t.Fatalf("stored record differs from event: %+v", r)
		}
		if !r.OccurredAt().Equal(ev.Time) {
			t.Fatalf("time %v, want %v", r.OccurredAt(), ev.Time)
		}
		if _, off := r.OccurredAt().Zone(); off != 8*3600 {
			t.Fatalf("zone offset %d, want +08:00 kept", off)
		}
		for _, want := range []string{`"amount_fen":888`, `"target":"all"`, `"url":"https://gchat.qpic.cn/x"`, `"type":"face"`} {
			if !strings.Contains(r.Segments, want) {
				t.Fatalf("segments %s lack %s", r.Segments, want)
			}
		}
		groups, err := s.Groups(context.Background())
		if err != nil || len(groups) != 1 || groups[0].Name != "618好物推广互助群" || groups[0].Messages != 1 {
			t.Fatalf("groups = %+v, %v", groups, err)
		}
		mustVerify(t, s)
	})
}

func TestIngestIsIdempotent(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		a := msg("m1", "u1", "hello", at("20:00"))
		// Same platform message delivered twice in one batch, then again
		// after a reconnect.
		res := write(t, w, a, msg("m1", "u1", "hello", at("20:00")), msg("m2", "u2", "second", at("20:01")))
		if res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate || res[2].Seq != 2 {
			t.Fatalf("results = %+v", res)
		}
		res = write(t, w, msg("m1", "u1", "hello", at("20:00")))
		if !res[0].Duplicate {
			t.Fatalf("replayed message stored again: %+v", res[0])
		}
		// Sources without ids: content + sender + time.
		noID := func(sender, text string, t time.Time) *bot.Event {
			e := msg("", sender, text, t)
			return e
		}
		res = write(t, w, noID("u3", "同一句话", at("20:02")), noID("u3", "同一句话", at("20:02")),
			noID("u4", "同一句话", at("20:02")), noID("u3", "同一句话", at("20:03")))
		if res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate || res[3].Duplicate {
			t.Fatalf("content-keyed results = %+v", res)
		}
		// A new writer (restart) still knows what was stored.
		w.Close(context.Background())
		w2 := newWriter(t, s)
		res = write(t, w2, msg("m2", "u2", "second", at("20:01")), noID("u3", "同一句话", at("20:02")), msg("m9", "u2", "new", at("20:09")))
		if !res[0].Duplicate || !res[1].Duplicate || res[2].Duplicate || res[2].Seq != 6 {
			t.Fatalf("after restart = %+v", res)
		}
		if n := len(messages(t, s)); n != 6 {
			t.Fatalf("stored %d messages, want 6", n)
		}
		// Short hashed ids (NapCat) can collide: the same id from another
		// sender is another message, not a re-delivery.
		res = write(t, w2, msg("m9", "u7", "collides with u2's id", at("20:10")), msg("m9", "u2", "new", at("20:09")))
		if res[0].Duplicate || !res[1].Duplicate {
			t.Fatalf("colliding ids = %+v", res)
		}
		mustVerify(t, s)
	})
}

// TestRosterHistory follows a group through snapshot, promotion, leave and
// a late snapshot, and checks the role each message records and the staff
// the store reports at several moments.
func TestRosterHistory(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		owner, admin, helper, member2 := "1001", "1002", "1003", "1004"
		write(t, w,
			roster(at("08:00"), true,
				bot.Member{ID: owner, Nick: "大鹏", Role: bot.RoleOwner},
				bot.Member{ID: admin, Nick: "小七", Role: bot.RoleAdmin},
				bot.Member{ID: helper, Nick: "阿杰", Role: bot.RoleMember},
				bot.Member{ID: member2, Nick: "糖糖", Role: bot.RoleMember}),
			msg("1", helper, "收到", at("09:00")),
		)
		// The platform says "owner" with the message, but the roster says
		// member: the roster history wins over the possibly stale sender
		// role.
		stale := msg("2", helper, "我来发任务", at("09:30"))
		stale.Message.Sender.Role = bot.RoleOwner
		write(t, w, stale,
			member(bot.KindRoleChange, at("10:00"), bot.MemberChange{Member: bot.Member{ID: helper}, Operator: owner, OldRole: bot.RoleMember, NewRole: bot.RoleAdmin}),
			msg("3", helper, "拍完截图发我", at("10:05")),
			member(bot.KindLeave, at("11:00"), bot.MemberChange{Member: bot.Member{ID: admin}}),
			msg("4", admin, "我走了还能发吗", at("11:30")),
			member(bot.KindJoin, at("12:00"), bot.MemberChange{Member: bot.Member{ID: "1005", Nick: "新人"}}),
			msg("5", "1005", "新人报到", at("12:01")),
			msg("6", "9999", "没在名单里的人", at("12:02")),
		)
		// An unchanged complete snapshot a little later is not stored again.
		res := write(t, w, roster(at("12:30"), true,
			bot.Member{ID: owner, Nick: "大鹏", Role: bot.RoleOwner},
			bot.Member{ID: helper, Nick: "阿杰", Role: bot.RoleAdmin},
			bot.Member{ID: member2, Nick: "糖糖", Role: bot.RoleMember},
			bot.Member{ID: "1005", Nick: "新人", Role: bot.RoleMember}))
		if !res[0].Unchanged {
			t.Fatalf("unchanged snapshot was stored: %+v", res[0])
		}
		// A later snapshot shows member2 demoted... promoted to admin, and
		// 1005 gone.
		write(t, w, roster(at("13:00"), true,
			bot.Member{ID: owner, Nick: "大鹏", Role: bot.RoleOwner},
			bot.Member{ID: helper, Nick: "阿杰", Role: bot.RoleAdmin},
			bot.Member{ID: member2, Nick: "糖糖", Role: bot.RoleAdmin}),
			msg("7", member2, "今晚我来统计", at("13:10")))

		want := map[string]struct{ role, src string }{
			"1": {"member", storage.RoleSourceRoster},
			"2": {"member", storage.RoleSourceRoster},
			"3": {"admin", storage.RoleSourceRoster},
			"4": {"unknown", storage.RoleSourceNone},
			"5": {"member", storage.RoleSourceRoster},
			"6": {"unknown", storage.RoleSourceNone},
			"7": {"admin", storage.RoleSourceRoster},
		}
		for _, r := range messages(t, s) {
			if w, ok := want[r.MsgID]; !ok || r.ActorRole != w.role || r.RoleSource != w.src {
				t.Errorf("message %s by %s: role %s (%s), want %+v", r.MsgID, r.ActorID, r.ActorRole, r.RoleSource, w)
			}
		}
		roleAt := func(acc string, t0 time.Time) string {
			r, ok, err := s.RoleAt(ctx, gk, acc, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return "-"
			}
			return string(r)
		}
		for _, c := range []struct {
			acc  string
			t    time.Time
			want string
		}{
			{helper, at("07:59"), "-"}, {helper, at("08:00"), "member"}, {helper, at("09:59"), "member"},
			{helper, at("10:00"), "admin"}, {admin, at("10:59"), "admin"}, {admin, at("11:00"), "-"},
			{"1005", at("12:29"), "member"}, {"1005", at("13:00"), "-"}, {member2, at("13:00"), "admin"},
		} {
			if got := roleAt(c.acc, c.t); got != c.want {
				t.Errorf("RoleAt(%s, %s) = %s, want %s", c.acc, c.t.Format("15:04"), got, c.want)
			}
		}
		staff := func(t0 time.Time) string {
			st, err := s.StaffAt(ctx, gk, t0)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, m := range st {
				parts = append(parts, m.AccountID+"="+string(m.Role))
			}
			return strings.Join(parts, ",")
		}
		for _, c := range []struct {
			t    time.Time
			want string
		}{
			{at("07:00"), ""},
			{at("09:00"), "1001=owner,1002=admin"},
			{at("10:30"), "1001=owner,1002=admin,1003=admin"},
			{at("11:30"), "1001=owner,1003=admin"},
			{at("13:30"), "1001=owner,1003=admin,1004=admin"},
		} {
			if got := staff(c.t); got != c.want {
				t.Errorf("StaffAt(%s) = %q, want %q", c.t.Format("15:04"), got, c.want)
			}
		}
		iv, err := s.Memberships(ctx, gk, helper)
		if err != nil {
			t.Fatal(err)
		}
		if len(iv) != 2 || iv[0].Role != bot.RoleMember || !iv[0].Until.Equal(at("10:00")) ||
			iv[1].Role != bot.RoleAdmin || !iv[1].Until.IsZero() || !iv[0].From.Equal(at("08:00")) {
			t.Fatalf("memberships of helper = %+v", iv)
		}
		iv, err = s.Memberships(ctx, gk, admin)
		if err != nil {
			t.Fatal(err)
		}
		if len(iv) != 1 || !iv[0].Until.Equal(at("11:00")) {
			t.Fatalf("memberships of the admin who left = %+v", iv)
		}
		mustVerify(t, s)
	})
}

func TestRecallKeepsTheMessage(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		write(t, w, msg("77", "1001", "每人拍5件不要付款", at("20:30")))
		rc := &bot.Event{Kind: bot.KindRecall, Platform: bot.QQ, GroupID: group, Time: at("20:31"),
			Recall: &bot.Recall{MessageID: "77", SenderID: "1001", Operator: "1001"}}
		res := write(t, w, rc, rc)
		if res[0].Seq != 2 || !res[1].Duplicate {
			t.Fatalf("recall results %+v", res)
		}
		recs, err := s.Records(context.Background(), storage.RecordFilter{GroupKey: gk, MsgID: "77"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Kind != "message" || recs[0].Text != "每人拍5件不要付款" || recs[1].Kind != "recall" || recs[1].OperatorID != "1001" {
			t.Fatalf("records for recalled message: %+v", recs)
		}
		mustVerify(t, s)
	})
}

// TestTamperingIsReported plays an attacker with database access who
// disables the guards and edits, deletes or swaps rows with plain SQL.
func TestTamperingIsReported(t *testing.T) {
	cases := []struct {
		name    string
		sql     string
		problem string
		seq     int64
	}{
		{"edit text", "UPDATE evidence SET text = 'nothing to see' WHERE group_key = ? AND chain_seq = 3", "hash", 3},
		{"edit role", "UPDATE evidence SET meta = REPLACE(meta, '\"role_source\":\"none\"', '\"role_source\":\"roster\"') WHERE group_key = ? AND chain_seq = 2", "hash", 2},
		{"break meta", "UPDATE evidence SET meta = 'not json' WHERE group_key = ? AND chain_seq = 2", "meta", 2},
		{"edit raw payload", "UPDATE evidence SET raw = ? WHERE group_key = ? AND chain_seq = 4", "raw", 4},
		{"delete a record", "DELETE FROM evidence WHERE group_key = ? AND chain_seq = 3", "gap", 3},
		{"edit and rehash one record", "", "prev_hash", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
				s := storagetest.Open(t, b.Config(t))
				w := newWriter(t, s)
				for i := 1; i <= 5; i++ {
					write(t, w, msg(fmt.Sprint(i), "1001", fmt.Sprintf("消息%d", i), at(fmt.Sprintf("20:%02d", i))))
				}
				// A second group whose chain stays intact.
				other := msg("x", "1", "other group", at("20:00"))
				other.GroupID = "555"
				write(t, w, other)
				w.Close(context.Background())
				dropGuards(t, s)
				var err error
				switch c.name {
				case "edit raw payload":
					err = storagetest.Exec(t, s, c.sql, []byte(`{"forged":true}`), gk)
				case "edit and rehash one record":
					// The attacker edits record 3 and recomputes its hash
					// with a made-up value; record 4 still links to the old.
					err = storagetest.Exec(t, s, "UPDATE evidence SET text = 'x', hash = ? WHERE group_key = ? AND chain_seq = 3",
						strings.Repeat("ab", 32), gk)
					if err == nil {
						var rep *storage.VerifyReport
						rep, err = s.Verify(context.Background(), nil)
						// Record 3's own hash check fires first.
						if err == nil && (len(rep.Breaks) != 1 || rep.Breaks[0].Seq != 3 || rep.Breaks[0].Problem != "hash") {
							t.Fatalf("breaks = %+v", rep.Breaks)
						}
						return
					}
				default:
					err = storagetest.Exec(t, s, c.sql, gk)
				}
				if err != nil {
					t.Fatalf("tamper: %v", err)
				}
				rep, err := s.Verify(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() || len(rep.Breaks) != 1 {
					t.Fatalf("tampering not reported (or reported in the intact group): %+v", rep.Breaks)
				}
				br := rep.Breaks[0]
				if br.GroupKey != gk || br.Problem != c.problem || br.Seq != c.seq {
					t.Fatalf("break = %+v, want %s at seq %d", br, c.problem, c.seq)
				}
				if br.Problem != "gap" && br.Problem != "meta" && (br.MsgID != fmt.Sprint(c.seq) || br.Expected == br.Found || br.Expected == "") {
					t.Fatalf("break does not name the message or the hashes: %+v", br)
				}
				if !strings.Contains(br.String(), gk) {
					t.Fatalf("break text %q lacks the group", br.String())
				}
				if _, ok := rep.Heads[bot.GroupKey(bot.QQ, "555")]; !ok {
					t.Fatalf("intact group not verified: %+v", rep.Heads)
				}
			})
		})
	}
}

// dropGuards removes the append-only triggers, as someone with full
// database access could.
func dropGuards(t *testing.T, s *storage.Store) {
	t.Helper()
	var stmts []string
	switch s.Driver() {
	case storage.SQLite:
		stmts = []string{"DROP TRIGGER evidence_no_update", "DROP TRIGGER evidence_no_delete"}
	case storage.Postgres:
		stmts = []string{"ALTER TABLE evidence DISABLE TRIGGER USER"}
	case storage.MySQL:
		stmts = []string{"DROP TRIGGER evidence_no_update", "DROP TRIGGER evidence_no_delete"}
	}
	for _, q := range stmts {
		if err := storagetest.Exec(t, s, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestEvidenceIsAppendOnly(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		write(t, w, msg("1", "1001", "证据", at("20:00")),
			member(bot.KindJoin, at("20:01"), bot.MemberChange{Member: bot.Member{ID: "1002"}}))
		for _, q := range []string{
			"UPDATE evidence SET text = 'changed'",
			"DELETE FROM evidence",
			"UPDATE member_states SET role = 'owner'",
			"DELETE FROM member_states",
		} {
			err := storagetest.Exec(t, s, q)
			if err == nil {
				t.Errorf("%s was allowed", q)
			} else if !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s refused with %v, want the append-only guard", q, err)
			}
		}
		if s.Driver() == storage.Postgres {
			if err := storagetest.Exec(t, s, "TRUNCATE evidence"); err == nil {
				t.Error("TRUNCATE evidence was allowed")
			}
		}
		if recs := messages(t, s); len(recs) != 1 || recs[0].Text != "证据" {
			t.Fatalf("evidence changed: %+v", recs)
		}
		mustVerify(t, s)
	})
}

// TestBadInput feeds the writer what attackers and broken adapters produce
// and checks each is stored faithfully or refused clearly, without harm to
// its neighbours or the chain.
func TestBadInput(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		invalidUTF8 := "退\xff\xfe款\xc3"
		withNUL := "锁\x00库存"
		huge := strings.Repeat("拍下秒退锁库存", 1<<20/21+1) // > 1 MB
		evs := []*bot.Event{
			msg("before", "1", "neighbour before", at("20:00")),
			msg("utf8", "2", invalidUTF8, at("20:01")),
			msg("nul", "3", withNUL, at("20:02")),
			msg("huge", "4", huge, at("20:03")),
			msg("ctl", "5", "\x1b[31m<script>alert(1)</script>=HYPERLINK(\"x\")\u202e", at("20:04")),
			msg("after", "6", "neighbour after", at("20:05")),
		}
		evs[1].Message.Sender.Nick = "bad\xffnick"
		evs[1].Raw = []byte{0xff, 0x00, 0x01, 'x'}
		var tickets []*storage.Ticket
		for _, ev := range evs {
			tk, err := w.Submit(ctx, ev)
			if err != nil {
				t.Fatalf("submit %s: %v", ev.Message.ID, err)
			}
			tickets = append(tickets, tk)
		}
		// Refused before they reach the batch, with the field named.
		refusals := []struct {
			mutate func(*bot.Event)
			field  string
		}{
			{func(e *bot.Event) { e.Message.Sender.Role = "boss" }, "message.sender.role"},
			{func(e *bot.Event) { e.Message.Sender.ID = "" }, "message.sender.id"},
			{func(e *bot.Event) { e.GroupID = "" }, "group_id"},
			{func(e *bot.Event) { e.Time = time.Time{} }, "time"},
			{func(e *bot.Event) { e.Platform = "icq" }, "platform"},
			{func(e *bot.Event) { e.Message = nil }, "message"},
			{func(e *bot.Event) { e.Message.ID = strings.Repeat("9", 200) }, "message.id"},
			{func(e *bot.Event) { e.Message.Segments = []bot.Segment{{Type: "hologram"}} }, "message.segments[0].type"},
		}
		for _, r := range refusals {
			ev := msg("bad", "7", "x", at("20:06"))
			r.mutate(ev)
			_, err := w.Submit(ctx, ev)
			var ve *bot.ValidationError
			if !errors.As(err, &ve) || ve.Field != r.field || !errors.Is(err, bot.ErrInvalid) {
				t.Errorf("want refusal naming %s, got %v", r.field, err)
			}
		}
		tooBig := msg("toobig", "8", strings.Repeat("x", storage.DefaultConfig().Writer.MaxEventBytes+1), at("20:07"))
		if _, err := w.Submit(ctx, tooBig); !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "max_event_bytes") {
			t.Errorf("oversized event: %v", err)
		}
		for i, tk := range tickets {
			if _, err := tk.Wait(ctx); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		byID := map[string]storage.Record{}
		for _, r := range messages(t, s) {
			byID[r.MsgID] = r
		}
		if len(byID) != len(evs) {
			t.Fatalf("stored %d of %d messages", len(byID), len(evs))
		}
		for _, ev := range evs {
			r := byID[ev.Message.ID]
			if string(r.OriginalText()) != ev.Message.Text {
				t.Errorf("message %s: original text not kept (%d bytes vs %d)", ev.Message.ID, len(r.OriginalText()), len(ev.Message.Text))
			}
			if !bytes.Equal(r.Raw, ev.Raw) {
				t.Errorf("message %s: raw payload not kept", ev.Message.ID)
			}
		}
		if r := byID["utf8"]; r.Text != "退\uFFFD款\uFFFD" || r.ActorNick != "bad\uFFFDnick" {
			t.Errorf("invalid UTF-8 stored as %q / %q", r.Text, r.ActorNick)
		}
		if r := byID["nul"]; r.Text != "锁\uFFFD库存" {
			t.Errorf("NUL stored as %q", r.Text)
		}
		if r := byID["huge"]; len(r.Text) != len(huge) {
			t.Errorf("1 MB message stored with %d bytes", len(r.Text))
		}
		mustVerify(t, s)
	})
}

func TestConcurrentSubmittersAndCleanClose(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w, err := s.NewWriter(storage.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewWriter(storage.WriterOptions{}); !errors.Is(err, storage.ErrWriterBusy) {
			t.Fatalf("second writer: %v", err)
		}
		const perGroup, groups = 300, 4
		var wg sync.WaitGroup
		tickets := make(chan *storage.Ticket, perGroup*groups)
		for g := 0; g < groups; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perGroup; i++ {
					ev := msg(fmt.Sprint(i), "1", fmt.Sprintf("g%d m%d", g, i), at("20:00").Add(time.Duration(i)*time.Second))
					ev.GroupID = fmt.Sprint(9000 + g)
					tk, err := w.Submit(ctx, ev)
					if err != nil {
						t.Error(err)
						return
					}
					tickets <- tk
				}
			}()
		}
		wg.Wait()
		close(tickets)
		// Close without waiting for any ticket: everything accepted must be
		// committed by the time Close returns.
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for tk := range tickets {
			select {
			case <-tk.Done():
			default:
				t.Fatal("ticket still pending after Close")
			}
			if _, err := tk.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if total, _ := s.CountRecords(ctx); total != perGroup*groups || n != perGroup*groups {
			t.Fatalf("stored %d, acknowledged %d, want %d", total, n, perGroup*groups)
		}
		if _, err := w.Submit(ctx, msg("late", "1", "x", at("21:00"))); !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("submit after close: %v", err)
		}
		rep := mustVerify(t, s)
		if rep.Groups != groups || rep.Records != perGroup*groups {
			t.Fatalf("verified %d groups %d records", rep.Groups, rep.Records)
		}
		// The store can be written again by a new writer.
		w2, err := s.NewWriter(storage.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w2.Close(ctx)
	})
}

func TestMemberEventsAndGroupChanges(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		w := newWriter(t, s)
		write(t, w,
			roster(at("08:00"), true, bot.Member{ID: "1", Role: bot.RoleOwner}, bot.Member{ID: "2", Role: bot.RoleMember, Card: "老王"}),
			member(bot.KindCardChange, at("08:10"), bot.MemberChange{Member: bot.Member{ID: "2"}, OldCard: "老王", NewCard: "王总"}),
			member(bot.KindMute, at("08:20"), bot.MemberChange{Member: bot.Member{ID: "2"}, Operator: "1", MuteDuration: 10 * time.Minute}),
			member(bot.KindMute, at("08:21"), bot.MemberChange{Operator: "1", MuteDuration: time.Hour}),
			&bot.Event{Kind: bot.KindRename, Platform: bot.QQ, GroupID: group, Time: at("08:30"),
				Rename: &bot.Rename{OldName: "旧名", NewName: "新名字", Operator: "1"}},
			member(bot.KindKick, at("08:40"), bot.MemberChange{Member: bot.Member{ID: "2"}, Operator: "1"}),
			member(bot.KindDisband, at("09:00"), bot.MemberChange{Operator: "1"}),
		)
		recs, err := s.Records(ctx, storage.RecordFilter{GroupKey: gk})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, r := range recs {
			kinds = append(kinds, r.Kind)
		}
		if got := strings.Join(kinds, ","); got != "roster,card_change,mute,mute,rename,kick,disband" {
			t.Fatalf("kinds = %s", got)
		}
		if !strings.Contains(recs[2].Detail, `"mute_seconds":600`) || !strings.Contains(recs[3].Detail, `"whole_group":true`) {
			t.Fatalf("mute details: %s / %s", recs[2].Detail, recs[3].Detail)
		}
		iv, _ := s.Memberships(ctx, gk, "2")
		if len(iv) != 1 || iv[0].Card != "王总" || !iv[0].Until.Equal(at("08:40")) {
			t.Fatalf("memberships = %+v", iv)
		}
		if st, _ := s.StaffAt(ctx, gk, at("09:30")); len(st) != 0 {
			t.Fatalf("staff after disband = %+v", st)
		}
		if st, _ := s.StaffAt(ctx, gk, at("08:50")); len(st) != 1 || st[0].AccountID != "1" {
			t.Fatalf("staff before disband = %+v", st)
		}
		groups, _ := s.Groups(ctx)
		if len(groups) != 1 || groups[0].Name != "新名字" || !groups[0].Disbanded {
			t.Fatalf("group = %+v", groups)
		}
		mustVerify(t, s)
	})
}

// TestBadEventDoesNotTakeItsBatchDown makes the database itself refuse one
// event of a batch: only that event fails, its neighbours are stored and
// the chain has no hole.
func TestBadEventDoesNotTakeItsBatchDown(t *testing.T) {
	ctx := context.Background()
	s := storagetest.Open(t, storagetest.SQLiteConfig(t))
	if err := storagetest.Exec(t, s, `CREATE TRIGGER poison BEFORE INSERT ON evidence WHEN NEW.text = 'poison'
BEGIN SELECT RAISE(ABORT, 'poison refused'); END`); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, s)
	var tickets []*storage.Ticket
	for i := 0; i < 10; i++ {
		text := fmt.Sprintf("消息%d", i)
		if i == 4 {
			text = "poison"
		}
		tk, err := w.Submit(ctx, msg(fmt.Sprint(i), "1", text, at("20:00").Add(time.Duration(i)*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	for i, tk := range tickets {
		_, err := tk.Wait(ctx)
		if (i == 4) != (err != nil) {
			t.Fatalf("event %d: err = %v", i, err)
		}
		if i == 4 && !strings.Contains(err.Error(), "poison refused") {
			t.Fatalf("poison error does not say why: %v", err)
		}
	}
	if n := len(messages(t, s)); n != 9 {
		t.Fatalf("stored %d, want the 9 good neighbours", n)
	}
	rep := mustVerify(t, s)
	if rep.Records != 9 {
		t.Fatalf("chain has %d records", rep.Records)
	}
	if st := w.Stats(); st.Failed != 1 || st.Stored != 9 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestSlowStoreAppliesBackPressure holds the SQLite write lock so the
// writer cannot commit: producers must be held back once the queue is
// full (not dropped), and everything accepted is stored once the lock goes.
func TestSlowStoreAppliesBackPressure(t *testing.T) {
	ctx := context.Background()
	cfg := storagetest.SQLiteConfig(t)
	cfg.Writer.QueueSize = 4
	cfg.Writer.BatchSize = 2
	s := storagetest.Open(t, cfg)
	w := newWriter(t, s)
	sqlDB, err := s.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var accepted []*storage.Ticket
	var blocked error
	for i := 0; i < 50 && blocked == nil; i++ {
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		tk, err := w.Submit(sctx, msg(fmt.Sprint(i), "1", "x", at("20:00").Add(time.Duration(i)*time.Second)))
		cancel()
		if err != nil {
			blocked = err
			break
		}
		accepted = append(accepted, tk)
	}
	if !errors.Is(blocked, context.DeadlineExceeded) {
		t.Fatalf("producer was never held back (accepted %d): %v", len(accepted), blocked)
	}
	if len(accepted) > cfg.Writer.QueueSize+2*cfg.Writer.BatchSize {
		t.Fatalf("accepted %d events with a queue of %d", len(accepted), cfg.Writer.QueueSize)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for _, tk := range accepted {
		if _, err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(messages(t, s)); n != len(accepted) {
		t.Fatalf("stored %d of %d accepted", n, len(accepted))
	}
}

// TestLockedDatabaseIsRetriedNotFailed holds the SQLite write lock for
// longer than the driver's busy timeout: the writer must retry the batch
// instead of failing its events.
func TestLockedDatabaseIsRetriedNotFailed(t *testing.T) {
	ctx := context.Background()
	cfg := storagetest.SQLiteConfig(t)
	cfg.DSN += "?_pragma=busy_timeout(50)"
	s := storagetest.Open(t, cfg)
	w := newWriter(t, s)
	sqlDB, _ := s.DB().DB()
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	tk, err := w.Submit(ctx, msg("1", "1", "在锁住的时候到达", at("20:00")))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // several busy timeouts
	select {
	case <-tk.Done():
		_, err := tk.Wait(ctx)
		t.Fatalf("event finished while the database was locked: %v", err)
	default:
	}
	conn.ExecContext(ctx, "ROLLBACK")
	conn.Close()
	if res, err := tk.Wait(ctx); err != nil || res.Seq != 1 {
		t.Fatalf("after the lock: %+v %v", res, err)
	}
	if st := w.Stats(); st.Retries == 0 {
		t.Fatalf("no retry counted: %+v", st)
	}
}
