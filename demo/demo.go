// Package demo runs qunshao end to end with no accounts: it replays the
// bundled group logs (one QQ group running an attack campaign with its owner
// and admins, one ordinary WeChat promotion group) through the real
// pipeline into a fresh SQLite file and prints what was stored.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/scenario"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/storage"
)

//go:embed logs.jsonl
var logs []byte

// Logs returns the bundled demo group logs (scenario format).
func Logs() []byte { return bytes.Clone(logs) }

// Options configure a demo run.
type Options struct {
	// DBPath is the SQLite file to create; an existing file there (and its
	// -wal and -shm companions) is replaced.
	DBPath string
	// Storage is the base storage configuration; driver and DSN are
	// overridden with the demo file.
	Storage storage.Config
	// Detector judges the messages; nil stores evidence only.
	Detector *detect.Detector
	// Alerts, if set (and a detector is given), runs the alert engine with
	// this configuration's templates and inhibition rules, its only
	// receiver a terminal printing on Out as alerts fire.
	Alerts *alert.Config
	Out    io.Writer
	Log    *slog.Logger
}

// Summary is what a run stored, for tests and callers.
type Summary struct {
	Events, Stored, Duplicates int
	Records                    int64
	Groups                     []storage.GroupSummary
	ChainsOK                   bool
	// Flagged counts malicious detections; Malicious lists the groups
	// found running a campaign.
	Flagged   int
	Malicious []string
	// Alerts raised and notifications printed by the alert engine.
	Alerts, Notifications int
}

// Run replays the bundled logs and prints a report to opts.Out.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(opts.DBPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove old demo database: %w", err)
		}
	}
	cfg := opts.Storage
	cfg.Driver, cfg.DSN, cfg.Writer.Shards = storage.SQLite, opts.DBPath, 0
	st, err := storage.Open(ctx, cfg, opts.Log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	scenarios, err := scenario.Read(bytes.NewReader(logs), "demo/logs.jsonl")
	if err != nil {
		return nil, err
	}
	var events []*bot.Event
	for _, s := range scenarios {
		evs, err := s.Events()
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	fmt.Fprintf(out, "qunshao demo: replaying %d bundled group logs (%d events) into %s\n\n", len(scenarios), len(events), opts.DBPath)

	sum := &Summary{Events: len(events)}
	var alerts *demoAlerts
	if opts.Alerts != nil && opts.Detector != nil {
		if alerts, err = startAlerts(ctx, st, *opts.Alerts, out, opts.Log); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "Alerts are printed below as they fire (terminal receiver, grouped per group and campaign):\n")
	}
	p, err := newSink(st, opts.Detector, opts.Log, alerts.onVerdict)
	if err != nil {
		return nil, err
	}
	if pl, ok := p.(*pipeline.Pipeline); ok && alerts != nil {
		alerts.tracker.Store(pl.Tracker())
	}
	results, err := submitAll(ctx, p, events)
	if err != nil {
		p.Close(ctx)
		return nil, err
	}
	for _, r := range results {
		if r.Seq > 0 {
			sum.Stored++
		}
	}
	// A bot that reconnects delivers the same events again: nothing may be
	// stored twice.
	again, err := submitAll(ctx, p, events)
	if err != nil {
		p.Close(ctx)
		return nil, err
	}
	for _, r := range again {
		if r.Duplicate || r.Unchanged {
			sum.Duplicates++
		}
	}
	if err := p.Close(ctx); err != nil {
		return nil, err
	}
	if alerts != nil {
		stats, err := alerts.finish(ctx)
		if err != nil {
			return nil, err
		}
		sum.Alerts, sum.Notifications = int(stats.AlertsCreated), int(stats.Notifications)
		fmt.Fprintf(out, "\n%d alerts raised, %d notifications (one per group and campaign, not one per message; low-severity alerts\nare kept in the history without a notification, coordination is muted while its task or extortion fires); see them with\n  QUNSHAO_STORAGE_DSN=%s qunshao alerts list\n\n",
			sum.Alerts, sum.Notifications, opts.DBPath)
	}
	var tracker *detect.Tracker
	if pl, ok := p.(*pipeline.Pipeline); ok {
		tracker = pl.Tracker()
	}

	if sum.Groups, err = st.Groups(ctx); err != nil {
		return nil, err
	}
	for _, g := range sum.Groups {
		if err := printGroup(ctx, out, st, g); err != nil {
			return nil, err
		}
		if tracker != nil {
			flagged, malicious, err := printDetections(ctx, out, st, g, tracker)
			if err != nil {
				return nil, err
			}
			sum.Flagged += flagged
			if malicious {
				sum.Malicious = append(sum.Malicious, g.GroupKey)
			}
		}
	}
	rep, err := st.Verify(ctx, nil)
	if err != nil {
		return nil, err
	}
	sum.Records, sum.ChainsOK = rep.Records, rep.OK()
	fmt.Fprintf(out, "Stored %d of %d events; replayed them all again and %d were recognised as already stored.\n",
		sum.Stored, sum.Events, sum.Duplicates)
	if rep.OK() {
		fmt.Fprintf(out, "Hash chains: %d groups, %d records, every link verifies (%s).\n", rep.Groups, rep.Records, rep.Duration.Round(time.Millisecond))
	} else {
		for _, b := range rep.Breaks {
			fmt.Fprintf(out, "BROKEN: %s\n", b)
		}
	}
	fmt.Fprintf(out, "Roles are those held when each message was sent, from the roster history; \"?\" means the platform did not say (web WeChat names only the owner).\n")
	fmt.Fprintf(out, "\nThe evidence is in %s. Check it any time with:\n  QUNSHAO_STORAGE_DSN=%s qunshao db verify\n", opts.DBPath, opts.DBPath)
	return sum, nil
}

// sink is where the demo sends events: the whole pipeline, or only the
// evidence writer when no detector is given.
type sink interface {
	Submit(context.Context, *bot.Event) (*storage.Ticket, error)
	Close(context.Context) error
}

func newSink(st *storage.Store, d *detect.Detector, log *slog.Logger, onVerdict func(*storage.Detection, *detect.Verdict)) (sink, error) {
	if d == nil {
		return st.NewWriter(storage.WriterOptions{})
	}
	return pipeline.New(st, d, pipeline.Options{Log: log, OnVerdict: onVerdict})
}

func submitAll(ctx context.Context, w sink, events []*bot.Event) ([]storage.Result, error) {
	tickets := make([]*storage.Ticket, 0, len(events))
	for _, ev := range events {
		t, err := w.Submit(ctx, ev)
		if err != nil {
			return nil, err
		}
		tickets = append(tickets, t)
	}
	out := make([]storage.Result, 0, len(tickets))
	for _, t := range tickets {
		r, err := t.Wait(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// roleLabel shows the role recorded with each message; "?" is a role nobody
// reported (web WeChat names the owner only).
var roleLabel = map[string]string{"owner": "owner", "admin": "admin", "member": "member", "unknown": "?"}

func printGroup(ctx context.Context, out io.Writer, st *storage.Store, g storage.GroupSummary) error {
	recs, err := st.Records(ctx, storage.RecordFilter{GroupKey: g.GroupKey, Limit: 10000})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== %s  (%s, %d records: %d messages, %d recalls)\n", safe(g.Name), g.GroupKey, g.Records, g.Messages, g.Recalls)
	recalled := map[string]bool{}
	names := map[string]string{}
	var first, last time.Time
	for _, r := range recs {
		if r.ActorNick != "" {
			names[r.ActorID] = r.ActorNick
		}
		if r.Kind == string(bot.KindRoster) {
			var snap bot.Roster
			if json.Unmarshal([]byte(r.Detail), &snap) == nil {
				for _, m := range snap.Members {
					names[m.ID] = m.Nick
				}
			}
		}
		if r.Kind == string(bot.KindRecall) {
			recalled[r.MsgID] = true
		}
		if r.Kind == string(bot.KindMessage) {
			if first.IsZero() {
				first = r.OccurredAt()
			}
			last = r.OccurredAt()
		}
	}
	for _, moment := range []struct {
		label string
		t     time.Time
	}{{"at the first message", first}, {"at the last message", last}} {
		staff, err := st.StaffAt(ctx, g.GroupKey, moment.t)
		if err != nil {
			return err
		}
		var names []string
		for _, s := range staff {
			names = append(names, fmt.Sprintf("%s %s (%s)", s.Role, safe(s.Nick), s.AccountID))
		}
		if len(names) == 0 {
			names = []string{"nobody known"}
		}
		fmt.Fprintf(out, "   owner/admins %s (%s): %s\n", moment.label, moment.t.Format("01-02 15:04"), strings.Join(names, ", "))
	}
	nick := func(id string) string {
		if n := names[id]; n != "" {
			return safe(n) + " (" + id + ")"
		}
		return id
	}
	for _, r := range recs {
		t := r.OccurredAt().Format("01-02 15:04")
		prefix := fmt.Sprintf("   %s #%-3d", t, r.ChainSeq)
		var d struct {
			NewRole     string `json:"new_role"`
			MuteSeconds int64  `json:"mute_seconds"`
		}
		_ = json.Unmarshal([]byte(r.Detail), &d)
		switch bot.Kind(r.Kind) {
		case bot.KindMessage:
			mark := ""
			if recalled[r.MsgID] {
				mark = "  [recalled by the sender; kept as evidence]"
			}
			fmt.Fprintf(out, "%s %-7s %s: %s%s\n", prefix, roleLabel[r.ActorRole], safe(r.ActorNick), excerpt(r.Text, 60), mark)
		case bot.KindRoster:
			fmt.Fprintf(out, "%s roster snapshot (owner, admins and members as the platform listed them)\n", prefix)
		case bot.KindRecall:
			fmt.Fprintf(out, "%s recall of message %s by %s\n", prefix, r.MsgID, nick(r.OperatorID))
		case bot.KindRename:
			fmt.Fprintf(out, "%s group renamed to %s by %s\n", prefix, safe(r.GroupName), nick(r.OperatorID))
		case bot.KindRoleChange:
			fmt.Fprintf(out, "%s %s made %s by %s (roster history updated)\n", prefix, nick(r.ActorID), d.NewRole, nick(r.OperatorID))
		case bot.KindJoin:
			fmt.Fprintf(out, "%s %s joined\n", prefix, nick(r.ActorID))
		case bot.KindLeave, bot.KindKick:
			fmt.Fprintf(out, "%s %s: %s (operator %s)\n", prefix, r.Kind, nick(r.ActorID), nick(r.OperatorID))
		case bot.KindMute:
			fmt.Fprintf(out, "%s %s muted for %s by %s\n", prefix, nick(r.ActorID), time.Duration(d.MuteSeconds)*time.Second, nick(r.OperatorID))
		default:
			fmt.Fprintf(out, "%s %s %s %s\n", prefix, r.Kind, nick(r.ActorID), safe(r.Detail))
		}
	}
	fmt.Fprintln(out)
	return nil
}

// safe makes attacker-written text harmless on a terminal: control
// characters (escape sequences, bidi overrides) are shown as \u escapes.
func safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(" ⏎ ")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func excerpt(s string, n int) string {
	s = safe(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// printDetections shows what the detector flagged in a group, with the
// matched words marked in the original text.
func printDetections(ctx context.Context, out io.Writer, st *storage.Store, g storage.GroupSummary, t *detect.Tracker) (int, bool, error) {
	ds, err := st.Detections(ctx, storage.DetectionFilter{GroupKey: g.GroupKey, Labels: []string{"attack_task", "extortion", "attack_coordination"}})
	if err != nil {
		return 0, false, err
	}
	recs, err := st.Records(ctx, storage.RecordFilter{GroupKey: g.GroupKey, Kinds: []string{"message"}, Limit: 10000})
	if err != nil {
		return 0, false, err
	}
	text := map[int64]storage.Record{}
	for _, r := range recs {
		text[r.ChainSeq] = r
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ChainSeq < ds[j].ChainSeq })
	fmt.Fprintf(out, "   detections (%d flagged):\n", len(ds))
	for _, d := range ds {
		var hits []detect.RuleHit
		_ = json.Unmarshal([]byte(d.Rules), &hits)
		var spans []nlp.Span
		var ids []string
		for _, h := range hits {
			if detect.Malicious(h.Category) {
				ids = append(ids, h.ID)
				spans = append(spans, h.Spans...)
			}
		}
		r := text[d.ChainSeq]
		fmt.Fprintf(out, "   #%-3d %-19s %.2f %-8s %s (%s): %s\n", d.ChainSeq, d.Label, d.Score, d.Severity,
			safe(r.ActorNick), roleLabel[d.SenderRole], excerpt(mark(r.Text, spans), 70))
		if len(ids) > 0 {
			fmt.Fprintf(out, "        rules: %s\n", strings.Join(ids, ", "))
		}
	}
	orgs := t.Organizers(g.GroupKey)
	malicious := len(orgs) > 0
	if malicious {
		var names []string
		for _, o := range orgs {
			names = append(names, fmt.Sprintf("%s (%s, as %s)", o.ID, strings.Join(o.Messages, ","), strings.Join(o.Roles, "/")))
		}
		fmt.Fprintf(out, "   => campaign: organisers %s\n", strings.Join(names, "; "))
	} else {
		fmt.Fprintf(out, "   => no campaign\n")
	}
	fmt.Fprintln(out)
	return len(ds), malicious, nil
}

// mark puts «» around the matched characters (rune spans) of s.
func mark(s string, spans []nlp.Span) string {
	r := []rune(s)
	in := make([]bool, len(r))
	for _, sp := range spans {
		for i := max(0, sp.Start); i < min(len(r), sp.End); i++ {
			in[i] = true
		}
	}
	var b strings.Builder
	for i, c := range r {
		if in[i] && (i == 0 || !in[i-1]) {
			b.WriteString("«")
		}
		b.WriteRune(c)
		if in[i] && (i == len(r)-1 || !in[i+1]) {
			b.WriteString("»")
		}
	}
	return b.String()
}
