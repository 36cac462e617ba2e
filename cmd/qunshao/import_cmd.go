package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/importer"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) importCommand() *cobra.Command {
	var (
		format, encoding, group, rosterPath, progress string
		noAlert, strict, force, dryRun                bool
		maxRecord                                     int
		saveEvery                                     time.Duration
	)
	var formats strings.Builder
	for _, f := range importer.Formats() {
		fmt.Fprintf(&formats, "  %-13s %s\n", f.Name(), f.Description())
	}
	cmd := &cobra.Command{
		Use:   "import [flags] FILE...",
		Short: "Import chat exports (QQ, WeChat) as evidence and analyse them like live messages",
		Long: `Import chat exports a victim or an insider handed over. Each file is hashed
(SHA-256), its format and encoding detected, and every record stored as an
evidence record that names the file's hash, its line (or byte offset) in
the file, the format and the importer version; the file itself is listed
in the import_files table with its hash and size. Stored messages go
through the same analysis as live ones.

Formats (--format to force one; detection reads the first 64 KiB):
` + formats.String() + `
Text formats may be UTF-8 (with or without BOM), GB18030/GBK or UTF-16LE;
JSON must be UTF-8. Archives (zip, gzip, 7z, rar), databases and binary
files are refused: extract or export first.

Importing a file again stores nothing twice. An import that was
interrupted (Ctrl-C, a crash) is finished by running the same command
again; records before the saved resume position are not submitted again,
and anything after it that was already stored is recognised as such. A
file imported completely before is skipped unless --force.

A bad record is reported as file:line: reason and counted; the others are
imported (--strict stops at the first). Exports rarely say who was owner
or admin: --roster gives roles (CSV or JSON with id, nick, role, since,
optional group, card and platform); when the group is also monitored by a bot, its
live roster history applies too. Otherwise roles are unknown, never
guessed.

Exit status: 0 when every file was imported without a bad record, 1
otherwise (including an interrupted import), 2 for bad flags.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ctx := cmd.Context()
			opts := importer.Options{Format: format, GroupID: group, NoAlert: noAlert, Strict: strict, Force: force, DryRun: dryRun,
				SaveEvery: saveEvery}
			if format != "" {
				if _, err := importer.FormatByName(format); err != nil {
					a.usageErr = true
					return err
				}
			}
			enc, err := importer.ParseEncoding(encoding)
			if err != nil {
				a.usageErr = true
				return err
			}
			opts.Encoding = enc
			if group != "" {
				ev := bot.Event{Kind: bot.KindRename, Platform: bot.QQ, GroupID: group, Time: time.Now(), Rename: &bot.Rename{}}
				if err := ev.Validate(); err != nil {
					a.usageErr = true
					return fmt.Errorf("--group %q: not a group id (at most %d bytes, no control characters)", group, bot.MaxIDLen)
				}
			}
			opts.MaxRecord = maxRecord
			if maxRecord == 0 {
				opts.MaxRecord = min(a.cfg.Storage.Writer.MaxEventBytes/2, 16<<20)
			} else if maxRecord < 1024 {
				a.usageErr = true
				return fmt.Errorf("--max-record %d: must be at least 1024 bytes", maxRecord)
			}
			switch progress {
			case "auto":
				tty := false
				if f, ok := a.stderr.(*os.File); ok {
					tty = term.IsTerminal(int(f.Fd()))
				}
				opts.Progress = &importer.Progress{W: a.stderr, TTY: tty}
			case "bar":
				opts.Progress = &importer.Progress{W: a.stderr, TTY: true}
			case "lines":
				opts.Progress = &importer.Progress{W: a.stderr}
			case "off":
			default:
				a.usageErr = true
				return fmt.Errorf("--progress %q: want auto, bar, lines or off", progress)
			}
			if rosterPath != "" {
				ro, err := importer.ReadRoster(rosterPath)
				if err != nil {
					return err
				}
				opts.Roster = ro
			}
			if dryRun {
				im := importer.New(nil, nil, opts)
				var results []*importer.FileResult
				for _, f := range files {
					results = append(results, im.File(ctx, f))
				}
				importer.WriteSummary(a.stdout, results)
				return importExit(results)
			}
			return a.runImport(ctx, files, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "", "format of every file (default: detect per file); see above")
	fl.StringVar(&encoding, "encoding", "auto", "text encoding: auto, utf-8, gb18030 (also gbk) or utf-16le")
	fl.StringVar(&group, "group", "", "group id of every record (QQ group number, WeChat …@chatroom) for exports that do not carry it")
	fl.StringVar(&rosterPath, "roster", "", "roster file (CSV or JSON: id, nick, role, since[, group, card]) giving roles")
	fl.BoolVar(&noAlert, "no-alert", false, "historical import: store and analyse, but page nobody about these files")
	fl.BoolVar(&strict, "strict", false, "stop a file at its first bad record")
	fl.BoolVar(&force, "force", false, "read files again that were imported completely before")
	fl.BoolVar(&dryRun, "dry-run", false, "parse and check the files, store nothing")
	fl.IntVar(&maxRecord, "max-record", 0, "largest record (message, row, JSON object) in bytes (default: storage.writer.max_event_bytes/2)")
	fl.StringVar(&progress, "progress", "auto", "progress display on stderr: auto (a bar on a terminal, else a line every 5s), bar, lines or off")
	fl.DurationVar(&saveEvery, "save-every", 2*time.Second, "how often the resume position is saved")
	_ = fl.MarkHidden("save-every")
	return cmd
}

func (a *app) runImport(ctx context.Context, files []string, opts importer.Options) error {
	st, err := a.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := a.detector()
	if err != nil {
		return err
	}
	p, err := pipeline.New(st, d, pipeline.Options{Log: a.log})
	if err != nil {
		return err
	}
	im := importer.New(p, st, opts)
	var results []*importer.FileResult
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		res := im.File(ctx, f)
		results = append(results, res)
		a.log.Info("imported file", "file", res.Name, "status", res.Status, "format", res.Format, "sha256", res.SHA256,
			"records", res.Records, "stored", res.Stored, "errors", res.Errors)
	}
	// Store and analyse everything accepted, also after Ctrl-C.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	closeErr := p.Close(closeCtx)
	importer.WriteSummary(a.stdout, results)
	ps := p.Stats()
	fmt.Fprintf(a.stdout, "analysis: %d messages analysed, %d flagged, %d detections stored", ps.Analysed, ps.Malicious, ps.Stored)
	if opts.NoAlert {
		fmt.Fprint(a.stdout, " (--no-alert: these files page nobody)")
	}
	fmt.Fprintln(a.stdout)
	if skipped := len(files) - len(results); skipped > 0 {
		fmt.Fprintf(a.stdout, "interrupted: %d files not started\n", skipped)
	}
	if closeErr != nil {
		return fmt.Errorf("finish storing: %w", closeErr)
	}
	if len(results) < len(files) {
		return &exitError{code: 1, msg: "import interrupted; run the same command again to finish"}
	}
	return importExit(results)
}

// importExit turns the results into the exit status.
func importExit(results []*importer.FileResult) error {
	t := importer.Total(results)
	switch {
	case t.Interrupted > 0:
		return &exitError{code: 1, msg: "import interrupted; run the same command again to finish"}
	case t.Failed > 0:
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d files failed", t.Failed, t.Files)}
	case t.Errors > 0:
		return &exitError{code: 1, msg: fmt.Sprintf("%d bad records (see above)", t.Errors)}
	}
	return nil
}
