package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/storage"
	"github.com/spf13/cobra"
)

func (a *app) alertsCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "alerts",
		Short: "Alert history, acknowledgements, silences, receiver tests and dead letters",
		Long: `Alerts are raised by 'qunshao serve' from stored detections (attack tasks,
extortion, coordination), grouped per group and campaign, and delivered to
the receivers in the alerts section of the configuration. The commands here
work on the same database, with or without serve running: a running serve
picks up acknowledgements, resolutions and silences within
alerts.poll_interval.`,
	}
	root.AddCommand(a.alertsListCommand(), a.alertsShowCommand(), a.alertsAckCommand(), a.alertsResolveCommand(),
		a.alertsSilenceCommand(), a.alertsTestCommand(), a.alertsDeadCommand())
	return root
}

// nArgs checks the argument count and marks a mismatch as a usage error.
func (a *app) nArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			a.usageErr = true
			if min == max {
				return fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), min, len(args))
			}
			return fmt.Errorf("%s: wrong number of arguments (%d)", cmd.CommandPath(), len(args))
		}
		return nil
	}
}

func (a *app) usage(format string, args ...any) error {
	a.usageErr = true
	return fmt.Errorf(format, args...)
}

func (a *app) parseID(s, what string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, a.usage("%s id %q: want a positive number", what, s)
	}
	return id, nil
}

// operator is who acts: --by, or the login name.
func (a *app) operator(by string) (string, error) {
	if by == "" {
		by = os.Getenv("USER")
	}
	if by == "" {
		by = os.Getenv("LOGNAME")
	}
	if strings.TrimSpace(by) == "" {
		return "", a.usage("say who you are with --by")
	}
	return by, nil
}

var cst = time.FixedZone("CST", 8*3600)

func fmtUS(us int64) string {
	if us == 0 {
		return "-"
	}
	return time.UnixMicro(us).In(cst).Format("2006-01-02 15:04")
}

func (a *app) alertsListCommand() *cobra.Command {
	var f storage.AlertFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List alerts, newest first (the history is kept)",
		Args:  a.nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Status != "" && f.Status != storage.AlertFiring && f.Status != storage.AlertResolved {
				return a.usage("--status %q: want firing or resolved", f.Status)
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.Alerts(ctx, f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]notify.Alert, 0, len(rows))
				for i := range rows {
					out = append(out, alert.View(&rows[i], a.cfg.Alerts.ConsoleURL))
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no alerts")
				return nil
			}
			fmt.Fprintf(a.stdout, "%-6s %-8s %-8s %-19s %-22s %5s %-16s %-16s %-12s %s\n", "ID", "STATUS", "SEVERITY", "CATEGORY", "GROUP", "MSGS", "FIRST", "LAST", "ACKED", "GROUP NAME / SHOP")
			for i := range rows {
				r := &rows[i]
				v := alert.View(r, "")
				name := v.GroupName
				if r.Shop != "" {
					name += " → " + r.Shop
				}
				acked := "-"
				if r.AckedBy != "" {
					acked = r.AckedBy
				}
				fmt.Fprintf(a.stdout, "%-6d %-8s %-8s %-19s %-22s %5d %-16s %-16s %-12s %s\n", r.ID, r.Status, r.Severity, r.Category,
					notify.Sanitize(r.GroupKey), r.DetectionCount, fmtUS(r.StartsUS), fmtUS(r.LastSeenUS), notify.Sanitize(acked), notify.Sanitize(name))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Status, "status", "", "firing or resolved")
	cmd.Flags().StringVar(&f.GroupKey, "group", "", "only this group (platform:id)")
	cmd.Flags().StringVar(&f.Category, "category", "", "attack_task, extortion or attack_coordination")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the shape receivers get)")
	return cmd
}

func (a *app) alertsShowCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one alert: why it fired (marked excerpts), organisers, staff, shops, links",
		Args:  a.nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.parseID(args[0], "alert")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := st.AlertByID(ctx, id)
			if err != nil {
				return err
			}
			dets, err := st.AlertDetectionIDs(ctx, id)
			if err != nil {
				return err
			}
			v := alert.View(r, a.cfg.Alerts.ConsoleURL)
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					notify.Alert
					Episode    int     `json:"episode"`
					Detections []int64 `json:"detections"`
					AckComment string  `json:"ack_comment,omitempty"`
				}{v, r.Episode, dets, r.AckComment})
			}
			t, err := notify.LoadTemplates(a.cfg.Alerts.TemplatesDir)
			if err != nil {
				return err
			}
			n := &notify.Notification{Receiver: "cli", Status: r.Status, Alerts: []notify.Alert{v}, CreatedAt: time.Now()}
			text, err := t.Text(n)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "alert %d  fingerprint %s  episode %d\n", r.ID, r.Fingerprint, r.Episode)
			fmt.Fprintf(a.stdout, "labels %s\n", notify.Sanitize(alert.Labels(v.Labels).String()))
			if r.AckedBy != "" {
				fmt.Fprintf(a.stdout, "acknowledged by %s at %s: %s\n", notify.Sanitize(r.AckedBy), fmtUS(r.AckedUS), notify.Sanitize(r.AckComment))
			}
			fmt.Fprintf(a.stdout, "detections %s\n\n", joinIDs(dets))
			_, err = fmt.Fprint(a.stdout, text)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func (a *app) alertsAckCommand() *cobra.Command {
	var by, comment string
	cmd := &cobra.Command{
		Use:   "ack ID",
		Short: "Acknowledge an alert: someone is on it, so it is not repeated",
		Args:  a.nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.parseID(args[0], "alert")
			if err != nil {
				return err
			}
			who, err := a.operator(by)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AckAlert(ctx, id, who, comment, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "alert %d acknowledged by %s\n", id, who)
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who (default: $USER)")
	cmd.Flags().StringVar(&comment, "comment", "", "what is being done")
	return cmd
}

func (a *app) alertsResolveCommand() *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "resolve ID",
		Short: "Resolve a firing alert (receivers are told; new detections start a new alert)",
		Args:  a.nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.parseID(args[0], "alert")
			if err != nil {
				return err
			}
			who, err := a.operator(by)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.ResolveAlert(ctx, id, who, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "alert %d resolved by %s\n", id, who)
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who (default: $USER)")
	return cmd
}

// parseWhen reads an absolute time: RFC 3339, or "2006-01-02 15:04" in
// China Standard Time.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, cst); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 or \"2006-01-02 15:04\" (China Standard Time)", s)
}

func (a *app) alertsSilenceCommand() *cobra.Command {
	root := &cobra.Command{Use: "silence", Short: "Mute alerts matching label matchers for a while"}
	var matchers []string
	var by, comment, starts, ends string
	var duration time.Duration
	add := &cobra.Command{
		Use:   "add --matcher 'label=\"value\"' ... --comment TEXT [--duration 2h | --ends TIME]",
		Short: "Add a silence",
		Long: `Add a silence: alerts whose labels match every matcher are not notified
between the start (default now) and the end. Labels: category, severity,
platform, group, group_id, group_name, shop and alerts.group_labels.
Operators: = != =~ !~ (regular expressions match the whole value).

  qunshao alerts silence add --matcher 'group="qq:123456"' \
      --matcher 'category=~"attack_.*"' --duration 8h --comment "已上报平台，等待处理"`,
		Args: a.nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(matchers) == 0 {
				return a.usage("at least one --matcher")
			}
			ms, err := alert.ParseMatchers(matchers)
			if err != nil {
				return a.usage("--matcher: %v", err)
			}
			if strings.TrimSpace(comment) == "" {
				return a.usage("say why with --comment")
			}
			who, err := a.operator(by)
			if err != nil {
				return err
			}
			from := time.Now()
			if starts != "" {
				if from, err = parseWhen(starts); err != nil {
					return a.usage("--starts %v", err)
				}
			}
			until := from.Add(duration)
			if ends != "" {
				if until, err = parseWhen(ends); err != nil {
					return a.usage("--ends %v", err)
				}
			}
			if !until.After(from) || !until.After(time.Now()) {
				return a.usage("the silence must end after it starts and in the future")
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			sl := &storage.Silence{Matchers: ms.JSON(), StartsUS: from.UnixMicro(), EndsUS: until.UnixMicro(), CreatedBy: who, Comment: comment}
			if err := st.AddSilence(ctx, sl); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "silence %d: %s from %s until %s\n", sl.ID, strings.Join(ms.Strings(), ", "), fmtUS(sl.StartsUS), fmtUS(sl.EndsUS))
			return nil
		},
	}
	add.Flags().StringArrayVar(&matchers, "matcher", nil, `label matcher, e.g. group="qq:123" (repeat for more; all must match)`)
	add.Flags().StringVar(&comment, "comment", "", "why (required)")
	add.Flags().StringVar(&by, "by", "", "who (default: $USER)")
	add.Flags().DurationVar(&duration, "duration", 2*time.Hour, "how long, from the start")
	add.Flags().StringVar(&starts, "starts", "", "start (default now)")
	add.Flags().StringVar(&ends, "ends", "", "end, instead of --duration")

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List active and pending silences (--all: expired ones too)",
		Args:  a.nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			since := now
			if all {
				since = time.Time{}
			}
			rows, err := st.Silences(ctx, since)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no silences")
				return nil
			}
			fmt.Fprintf(a.stdout, "%-5s %-8s %-16s %-16s %-12s %s\n", "ID", "STATE", "STARTS", "ENDS", "BY", "MATCHERS — COMMENT")
			for _, s := range rows {
				state := "active"
				switch {
				case s.EndsUS <= now.UnixMicro():
					state = "expired"
				case s.StartsUS > now.UnixMicro():
					state = "pending"
				}
				var ms []string
				_ = json.Unmarshal([]byte(s.Matchers), &ms)
				fmt.Fprintf(a.stdout, "%-5d %-8s %-16s %-16s %-12s %s — %s\n", s.ID, state, fmtUS(s.StartsUS), fmtUS(s.EndsUS),
					notify.Sanitize(s.CreatedBy), notify.Sanitize(strings.Join(ms, ", ")), notify.Sanitize(s.Comment))
			}
			return nil
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include expired silences")

	expire := &cobra.Command{
		Use:   "expire ID",
		Short: "End a silence now",
		Args:  a.nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.parseID(args[0], "silence")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.ExpireSilence(ctx, id, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "silence %d expired\n", id)
			return nil
		},
	}
	root.AddCommand(add, list, expire)
	return root
}

func (a *app) alertsTestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "test RECEIVER",
		Short: "Send a test notification to every integration of a receiver",
		Long: `Send a made-up alert (clearly marked 【群哨·测试】) straight to every
integration of the named receiver and report each result. Nothing is
written to the database. Exit status 1 if any integration failed.`,
		Args: a.nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := a.cfg.Alerts
			r, ok := cfg.Receiver(args[0])
			if !ok {
				names := make([]string, 0, len(cfg.Receivers))
				for _, r := range cfg.Receivers {
					names = append(names, r.Name)
				}
				return a.usage("no receiver %q in alerts.receivers (have: %s)", args[0], strings.Join(names, ", "))
			}
			deps, err := cfg.Deps()
			if err != nil {
				return err
			}
			ints, err := alert.BuildReceiver(r, deps, a.stdout)
			if err != nil {
				return err
			}
			if len(ints) == 0 {
				fmt.Fprintf(a.stdout, "receiver %s has no integrations: alerts routed to it are only kept in the history\n", r.Name)
				return nil
			}
			failed := 0
			for _, in := range ints {
				n := notify.Sample(r.Name, cfg.ConsoleURL, time.Now())
				n.Integration = in.Name
				ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Delivery.Timeout)
				err := in.Receiver.Notify(ctx, n)
				cancel()
				if err != nil {
					failed++
					retry, _ := notify.Classify(err)
					kind := "permanent"
					if retry {
						kind = "temporary, would be retried"
					}
					fmt.Fprintf(a.stdout, "%s %s: FAILED (%s): %s\n", r.Name, in.Name, kind, notify.Sanitize(err.Error()))
					continue
				}
				fmt.Fprintf(a.stdout, "%s %s: ok\n", r.Name, in.Name)
			}
			if failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d of %d integrations failed", failed, len(ints))}
			}
			return nil
		},
	}
}

func (a *app) alertsDeadCommand() *cobra.Command {
	var limit int
	dead := &cobra.Command{
		Use:   "dead",
		Short: "List notifications that could not be delivered (dead letters)",
		Long: `List notifications the sender gave up on: a permanent error (a 4xx
answer, a refused destination, a rejected signature) or still failing after
alerts.delivery.max_attempts / max_age. 'qunshao alerts dead retry' puts
them back in the queue once the receiver is fixed.`,
		Args: a.nArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.OutboxEntries(ctx, storage.OutboxFilter{State: storage.OutboxDead, Limit: limit})
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no dead letters")
				return nil
			}
			fmt.Fprintf(a.stdout, "%-6s %-12s %-13s %8s %-16s %-10s %s\n", "ID", "RECEIVER", "INTEGRATION", "ATTEMPTS", "QUEUED", "ALERTS", "LAST ERROR")
			for _, e := range rows {
				var n notify.Notification
				_ = json.Unmarshal([]byte(e.Payload), &n)
				ids := make([]int64, 0, len(n.Alerts))
				for _, al := range n.Alerts {
					ids = append(ids, al.ID)
				}
				fmt.Fprintf(a.stdout, "%-6d %-12s %-13s %8d %-16s %-10s %s\n", e.ID, notify.Sanitize(e.Receiver), e.Integration, e.Attempts,
					fmtUS(e.CreatedUS), joinIDs(ids), notify.Sanitize(e.LastError))
			}
			return nil
		},
	}
	dead.Flags().IntVar(&limit, "limit", 100, "at most this many")
	var all bool
	retry := &cobra.Command{
		Use:   "retry [ID...] [--all]",
		Short: "Put dead letters back in the delivery queue",
		Args:  a.nArgs(0, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return a.usage("name dead letters by id, or --all")
			}
			var ids []int64
			for _, s := range args {
				id, err := a.parseID(s, "notification")
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.RequeueDead(ctx, ids, time.Now().UnixMicro())
			if err != nil {
				return err
			}
			if n == 0 {
				return errors.New("no such dead letter")
			}
			fmt.Fprintf(a.stdout, "%d notification(s) queued again; a running qunshao serve delivers them\n", n)
			return nil
		},
	}
	retry.Flags().BoolVar(&all, "all", false, "every dead letter")
	dead.AddCommand(retry)
	return dead
}

// alertRun is the alert engine serve runs next to the pipeline; nil when
// alerts.enabled is false (its methods then do nothing).
type alertRun struct {
	eng     *alert.Engine
	tracker atomic.Pointer[detect.Tracker]
	done    chan error
}

func (a *app) newAlertRun(ctx context.Context, st *storage.Store) (*alertRun, error) {
	if !a.cfg.Alerts.Enabled {
		return nil, nil
	}
	r := &alertRun{done: make(chan error, 1)}
	eng, err := alert.New(ctx, alert.Options{Config: a.cfg.Alerts, Store: st, Terminal: a.stdout, Log: a.log,
		Suppress: importSuppressor(st),
		Organizers: func(group string) []detect.Organizer {
			if t := r.tracker.Load(); t != nil {
				return t.Organizers(group)
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	r.eng = eng
	return r, nil
}

// onVerdict wakes the engine for each stored detection.
func (r *alertRun) onVerdict() func(*storage.Detection, *detect.Verdict) {
	if r == nil {
		return nil
	}
	return r.eng.OnVerdict
}

// start runs the engine until ctx ends. Detections stored while shutting
// down are alerted on at the next start (the engine's cursor is durable).
func (r *alertRun) start(ctx context.Context, p *pipeline.Pipeline) {
	if r == nil {
		return
	}
	r.tracker.Store(p.Tracker())
	go func() { r.done <- r.eng.Run(ctx) }()
}

// wait returns once the engine has stopped.
func (r *alertRun) wait() {
	if r != nil {
		<-r.done
	}
}
