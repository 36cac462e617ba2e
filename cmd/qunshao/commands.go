package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/demo"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/rules"
	"github.com/qunshao/qunshao/storage"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func (a *app) openStore(ctx context.Context, migrate bool) (*storage.Store, error) {
	st, err := storage.Open(ctx, a.cfg.Storage, a.log)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.EnsureSchema(ctx, a.cfg.Storage.AutoMigrate); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run qunshao: receive chat events and store them as evidence",
		Long: `Run qunshao until interrupted (Ctrl-C or SIGTERM).

serve opens the evidence store named in the configuration (SQLite under
./data by default), applies schema migrations when storage.auto_migrate is
true, loads the detector (lexicon, gse dictionary, rule packs, model) and
starts the pipeline: every event is stored as evidence first, then each
message is analysed and its verdict stored with it. With
detect.rules_dir set, rule packs are reloaded when they change. Events that
were accepted are stored and analysed before serve exits.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := a.detector()
			if err != nil {
				return err
			}
			alerts, err := a.newAlertRun(ctx, st)
			if err != nil {
				return err
			}
			p, err := pipeline.New(st, d, pipeline.Options{Log: a.log, OnVerdict: alerts.onVerdict()})
			if err != nil {
				return err
			}
			alerts.start(ctx, p)
			if dir := a.cfg.Detect.RulesDir; dir != "" {
				w := &rules.Watcher{Dir: dir, Interval: a.cfg.Detect.RulesReload, Apply: d.SetEngine, Log: a.log}
				_, _ = w.Reload() // remember the fingerprint of what Build loaded
				go w.Run(ctx)
			}
			a.log.Info("qunshao serving", "version", version, "storage", st.Driver(),
				"dsn", storage.RedactDSN(a.cfg.Storage.DSN), "rules", d.Engine().Version, "model", modelVersion(d))
			stopBots, err := a.startBots(ctx, st, p)
			if err != nil {
				_ = p.Close(context.Background())
				return err
			}
			<-ctx.Done()
			a.log.Info("shutting down: stopping bots, storing and analysing accepted events")
			stopBots()
			closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Close(closeCtx); err != nil {
				return err
			}
			alerts.wait()
			ws, ps := p.Writer().Stats(), p.Stats()
			a.log.Info("stopped", "stored", ws.Stored, "duplicates", ws.Duplicates, "failed", ws.Failed,
				"analysed", ps.Analysed, "flagged", ps.Malicious)
			return nil
		},
	}
}

func modelVersion(d *detect.Detector) string {
	if m := d.Model(); m != nil {
		return m.Version
	}
	return "none (rules only)"
}

func (a *app) demoCommand() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Replay bundled group logs through the whole pipeline (no accounts needed)",
		Long: `Replay two bundled group logs through the real pipeline into a fresh SQLite
file and print what was stored: one QQ group whose owner and admins run an
attack campaign against a Tmall shop (with a recalled task, a promotion to
admin mid-campaign and an extortion negotiation), and one ordinary WeChat
promotion group.

The demo database is recreated on every run; the configured store is not
touched.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The demo's own output is the report; keep routine logs out of it.
			log := a.log
			if a.cfg.Log.Level == "info" {
				log = newLogger(a.stderr, configs.Log{Level: "warn", Format: a.cfg.Log.Format})
			}
			d, err := a.detector()
			if err != nil {
				return err
			}
			sum, err := demo.Run(cmd.Context(), demo.Options{DBPath: db, Storage: a.cfg.Storage, Detector: d, Alerts: &a.cfg.Alerts, Out: a.stdout, Log: log})
			if err != nil {
				return err
			}
			if !sum.ChainsOK {
				return &exitError{code: 1, msg: "demo evidence failed verification"}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", filepath.Join("data", "demo.db"), "SQLite file to (re)create for the demo")
	return cmd
}

func (a *app) dbCommand() *cobra.Command {
	db := &cobra.Command{
		Use:   "db",
		Short: "Manage the evidence database: migrate, verify",
	}
	var to int
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations",
		Long: `Upgrade the configured database's schema in place to the version this
binary writes. Existing evidence is kept. Safe to run more than once and from
several processes at once (a database lock serialises them).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			target := storage.LatestVersion()
			if cmd.Flags().Changed("to") {
				target = to
			}
			steps, err := st.MigrateTo(ctx, target)
			if err != nil {
				return err
			}
			for _, s := range steps {
				fmt.Fprintf(a.stdout, "applied %d: %s\n", s.Version, s.Name)
			}
			v, err := st.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "schema is at version %d (latest %d)\n", v, storage.LatestVersion())
			return nil
		},
	}
	migrate.Flags().IntVar(&to, "to", 0, "stop at this schema version (default: the latest)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk every group's hash chain and report the first broken link",
		Long: `Recompute every evidence record's hash and check that each links to the one
before it. Prints the first broken link of each broken group (group, record,
message id, expected and found hash) and exits with status 1 if any chain is
broken, 0 if all verify.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.EnsureSchema(ctx, false); err != nil {
				return err
			}
			rep, err := st.Verify(ctx, nil)
			if err != nil {
				return err
			}
			rate := float64(rep.Records) / max(rep.Duration.Seconds(), 1e-9)
			for _, b := range rep.Breaks {
				fmt.Fprintf(a.stdout, "BROKEN %s\n", b)
			}
			fmt.Fprintf(a.stdout, "verified %d groups, %d records in %s (%.0f records/s): ", rep.Groups, rep.Records,
				rep.Duration.Round(time.Millisecond), rate)
			if !rep.OK() {
				fmt.Fprintf(a.stdout, "%d broken\n", len(rep.Breaks))
				return &exitError{code: 1, msg: strconv.Itoa(len(rep.Breaks)) + " hash chain(s) broken"}
			}
			fmt.Fprintln(a.stdout, "all chains intact")
			return nil
		},
	}
	db.AddCommand(migrate, verify)
	return db
}

func (a *app) configCommand() *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Show the effective configuration and its environment variables"}
	cfg.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (file + environment) as YAML, passwords masked",
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := a.cfg.YAML()
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}, &cobra.Command{
		Use:         "env",
		Short:       "List the environment variables that override configuration keys",
		Annotations: map[string]string{"noconfig": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, kv := range configs.EnvKeys() {
				fmt.Fprintf(a.stdout, "%-44s %s\n", kv[0], kv[1])
			}
			return nil
		},
	})
	return cfg
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print the version, build and schema version",
		Annotations: map[string]string{"noconfig": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit, dirty := "unknown", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					switch s.Key {
					case "vcs.revision":
						commit = s.Value
					case "vcs.modified":
						if s.Value == "true" {
							dirty = " (modified)"
						}
					}
				}
			}
			fmt.Fprintf(a.stdout, "qunshao %s\ncommit %s%s\n%s %s/%s\nevidence schema version %d\n",
				version, commit, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH, storage.LatestVersion())
			return nil
		},
	}
}
