package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
)

// Submitter stores events as evidence and has them analysed
// (*pipeline.Pipeline).
type Submitter interface {
	Submit(ctx context.Context, ev *bot.Event) (*storage.Ticket, error)
}

// Ledger keeps the imported-files table (*storage.Store).
type Ledger interface {
	ImportFile(ctx context.Context, sha string) (*storage.ImportFile, error)
	BeginImport(ctx context.Context, run storage.ImportRun) (*storage.ImportFile, error)
	UpdateImportProgress(ctx context.Context, sha string, p storage.ImportProgress) error
	FinishImport(ctx context.Context, sha, status string, p storage.ImportProgress, lastErr string) error
}

// Options tune an import.
type Options struct {
	// Format forces a format by name; empty detects it per file.
	Format string
	// Encoding forces a text encoding; empty detects it per file.
	Encoding Encoding
	// GroupID is the group of every record, for exports that do not name
	// the group's number or chatroom id.
	GroupID string
	// Roster, if set, gives roles (see Roster).
	Roster *Roster
	// NoAlert marks the files so that their detections page nobody.
	NoAlert bool
	// Strict stops a file at its first bad record.
	Strict bool
	// Force reads files again that were imported completely before.
	Force bool
	// DryRun parses and checks without storing anything (Submitter and
	// Ledger may be nil).
	DryRun bool
	// MaxRecord bounds a record; DefaultMaxRecord if 0.
	MaxRecord int
	// Progress, if set, shows progress.
	Progress *Progress
	// SaveEvery is how often a running import saves its resume position;
	// 2s if 0.
	SaveEvery time.Duration
	// Samples is how many bad records are kept per file for the
	// summary; 5 if 0.
	Samples int
}

// Importer imports files into the evidence store.
type Importer struct {
	sub  Submitter
	led  Ledger
	opts Options

	rosterDone bool
}

// New returns an importer that submits to sub and keeps books in led.
func New(sub Submitter, led Ledger, opts Options) *Importer {
	if opts.SaveEvery <= 0 {
		opts.SaveEvery = 2 * time.Second
	}
	if opts.Samples <= 0 {
		opts.Samples = 5
	}
	if opts.MaxRecord <= 0 {
		opts.MaxRecord = DefaultMaxRecord
	}
	return &Importer{sub: sub, led: led, opts: opts}
}

// File statuses beyond storage's (running, interrupted, failed, complete).
const (
	// StatusSkipped: the file was imported completely before (see
	// Options.Force).
	StatusSkipped = "skipped"
	// StatusChecked: a dry run read the whole file.
	StatusChecked = "checked"
)

// RecordError is a bad record: "file:line: reason: detail".
type RecordError struct {
	File   string
	Line   int64
	Offset int64
	Reason string
	Detail string
}

func (e *RecordError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Reason, e.Detail)
}

// ErrStrict wraps the record error that stopped a --strict import.
var ErrStrict = errors.New("stopped at the first bad record (--strict)")

// ErrFileChanged means the file was modified while it was imported: the
// hash its records carry may not be the file's.
var ErrFileChanged = errors.New("the file changed while it was being imported")

// FileResult is what became of one file.
type FileResult struct {
	Path     string
	Name     string
	SHA256   string
	Size     int64
	Format   string
	Encoding Encoding
	// Status is storage.ImportComplete, ImportInterrupted, ImportFailed,
	// StatusSkipped or StatusChecked.
	Status string
	// Records is how many events the file yielded; Stored how many of
	// them are new in the ledger, Duplicates how many were there already,
	// Resumed how many were skipped as committed by an earlier,
	// interrupted run.
	Records, Stored, Duplicates, Resumed int64
	// Errors counts bad records, ByReason by their reason; Samples are
	// the first few.
	Errors   int64
	ByReason map[string]int64
	Samples  []*RecordError
	// RosterStored counts roster observations stored for the file's
	// groups.
	RosterStored int64
	// Groups are the group keys the file's records went to.
	Groups []string
	// Err is why the file was refused or stopped early.
	Err     error
	Elapsed time.Duration
	// ParseElapsed is the time of the parse pass alone.
	ParseElapsed time.Duration
}

func (r *FileResult) fail(err error) *FileResult {
	r.Status, r.Err = storage.ImportFailed, err
	return r
}

// ImporterID is the provenance name of a format's reader.
func ImporterID(f Format) string {
	return "qunshao-import/" + Version + " " + f.Name() + "/" + f.Version()
}

const headSize = 64 << 10

// File imports one file. Errors are in the result; the import of other
// files can go on.
func (im *Importer) File(ctx context.Context, path string) *FileResult {
	start := time.Now()
	res := &FileResult{Path: path, Name: filepath.Base(path), ByReason: map[string]int64{}}
	defer func() { res.Elapsed = time.Since(start) }()

	fi, err := os.Stat(path)
	if err != nil {
		return res.fail(err)
	}
	if !fi.Mode().IsRegular() {
		return res.fail(fmt.Errorf("%s: not a regular file", path))
	}
	f, err := os.Open(path)
	if err != nil {
		return res.fail(err)
	}
	defer f.Close()
	head := make([]byte, headSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return res.fail(err)
	}
	head = head[:n]
	format, enc, err := im.identify(head)
	if err != nil {
		return res.fail(fmt.Errorf("%s: %w", path, err))
	}
	res.Format, res.Encoding = format.Name(), enc

	// Pass 1: the file's hash, which every record carries.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res.fail(err)
	}
	cr := &countReader{r: f, ctx: ctx}
	stop := im.opts.Progress.phase(res.Name, "hashing", fi.Size(), cr)
	h := sha256.New()
	_, err = io.Copy(h, cr)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			res.Status, res.Err = storage.ImportInterrupted, ctx.Err()
			return res
		}
		return res.fail(err)
	}
	res.SHA256, res.Size = hex.EncodeToString(h.Sum(nil)), cr.n.Load()

	r := &run{im: im, ctx: ctx, res: res, format: format, unit: format.Unit(), importer: ImporterID(format),
		groups: map[string]bool{}, lastSave: time.Now()}
	if !im.opts.DryRun {
		if err := im.registerRoster(ctx); err != nil {
			return res.fail(err)
		}
		prev, err := im.led.ImportFile(ctx, res.SHA256)
		if err != nil {
			return res.fail(err)
		}
		if prev != nil && prev.Status == storage.ImportComplete && !im.opts.Force &&
			prev.Format == format.Name() && prev.Importer == r.importer {
			res.Status = StatusSkipped
			res.Records, res.Errors = prev.Records, prev.Errors
			return res
		}
		prev, err = im.led.BeginImport(ctx, storage.ImportRun{SHA256: res.SHA256, Size: res.Size, Name: res.Name,
			Kind: storage.ImportChat, Format: format.Name(), Importer: r.importer, Unit: r.unit, NoAlert: im.opts.NoAlert})
		if err != nil {
			return res.fail(err)
		}
		if prev != nil && prev.Status != storage.ImportComplete && prev.Format == format.Name() &&
			prev.Importer == r.importer && prev.ResumeUnit == r.unit {
			r.resume = prev.ResumePos
		}
	}
	r.low = r.resume

	// Pass 2: parse, hashing again to be sure the file did not change.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return r.finish(err)
	}
	h2 := sha256.New()
	r.cr = &countReader{r: f, ctx: ctx, h: h2}
	stop = im.opts.Progress.phase(res.Name, "importing", res.Size, r)
	pstart := time.Now()
	in := &Input{R: r.cr, Encoding: enc, Name: res.Name, MaxRecord: im.opts.MaxRecord, GroupID: im.opts.GroupID}
	err = format.Parse(ctx, in, r)
	res.ParseElapsed = time.Since(pstart)
	if err == nil {
		// Formats may stop at a footer; the rest is hashed all the same.
		_, err = io.Copy(io.Discard, r.cr)
		if err == nil && (hex.EncodeToString(h2.Sum(nil)) != res.SHA256 || r.cr.n.Load() != res.Size) {
			err = fmt.Errorf("%w: run the import again on a copy that is not being written to", ErrFileChanged)
		}
	}
	stop()
	return r.finish(err)
}

// identify refuses what is not a text export and picks encoding and
// format.
func (im *Importer) identify(head []byte) (Format, Encoding, error) {
	enc, err := SniffEncoding(head)
	if im.opts.Encoding != "" {
		// A forced encoding overrides the guess, not the refusal of
		// archives, databases and empty files (NUL bytes are normal in
		// UTF-16).
		if errors.Is(err, ErrArchive) || errors.Is(err, ErrEmpty) || bytes.HasPrefix(head, []byte("SQLite format 3\x00")) ||
			(errors.Is(err, ErrBinary) && im.opts.Encoding != UTF16LE) {
			return nil, "", err
		}
		enc, err = im.opts.Encoding, nil
	}
	if err != nil {
		return nil, "", err
	}
	var f Format
	if im.opts.Format != "" {
		if f, err = FormatByName(im.opts.Format); err != nil {
			return nil, "", err
		}
	} else if f, err = Detect(DecodeHead(head, enc)); err != nil {
		return nil, "", err
	}
	if f.Unit() == UnitByte && enc != UTF8 {
		return nil, "", fmt.Errorf("%w: %s is JSON, which must be UTF-8, but the file reads as %s", ErrBadEncoding, f.Name(), enc)
	}
	return f, enc, nil
}

// registerRoster records the roster file in the imported-files table once.
func (im *Importer) registerRoster(ctx context.Context) error {
	ro := im.opts.Roster
	if ro == nil || im.rosterDone {
		return nil
	}
	if _, err := im.led.BeginImport(ctx, storage.ImportRun{SHA256: ro.SHA256, Size: ro.Size, Name: filepath.Base(ro.Path),
		Kind: storage.ImportRoster, Format: ro.Format, Importer: "qunshao-import/" + Version + " " + ro.Format + "/1",
		Unit: UnitLine, NoAlert: im.opts.NoAlert}); err != nil {
		return err
	}
	if err := im.led.FinishImport(ctx, ro.SHA256, storage.ImportComplete,
		storage.ImportProgress{Records: int64(len(ro.Entries))}, ""); err != nil {
		return err
	}
	im.rosterDone = true
	return nil
}

// countReader counts (and optionally hashes) what is read, and stops when
// the import is cancelled.
type countReader struct {
	r   io.Reader
	ctx context.Context
	h   hash.Hash
	n   atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	c.n.Add(int64(n))
	return n, err
}

func (c *countReader) bytes() int64   { return c.n.Load() }
func (c *countReader) records() int64 { return 0 }

// run is one file's import in progress; it is the parser's Output.
type run struct {
	im       *Importer
	ctx      context.Context
	res      *FileResult
	format   Format
	unit     string
	importer string
	cr       *countReader

	resume   int64 // records before this position were committed earlier
	low      int64 // records before this position are committed now
	lastPos  int64
	inflight []pending
	head     int
	groups   map[string]bool
	roster   []*storage.Ticket
	nrec     atomic.Int64
	stopErr  error

	lastSave    time.Time
	savedStored int64
}

type pending struct {
	pos    Pos
	unit   int64
	ticket *storage.Ticket
}

func (r *run) bytes() int64   { return r.cr.bytes() }
func (r *run) records() int64 { return r.nrec.Load() }

func (r *run) position(p Pos) int64 {
	if r.unit == UnitByte {
		return p.Offset
	}
	return p.Line
}

// Event implements Output.
func (r *run) Event(ev *bot.Event, pos Pos) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	r.res.Records++
	r.nrec.Add(1)
	p := r.position(pos)
	ev.Source = &bot.Provenance{FileSHA256: r.res.SHA256, Position: p, Unit: r.unit, Format: r.format.Name(), Importer: r.importer}
	if key := ev.GroupKey(); !r.groups[key] {
		if len(r.groups) < 10000 {
			r.groups[key] = true
			r.res.Groups = append(r.res.Groups, key)
		}
		if err := r.rosterFor(ev); err != nil {
			return err
		}
	}
	if r.im.opts.DryRun {
		if err := ev.Validate(); err != nil {
			return r.Malformed(pos, "refused by the store", err.Error())
		}
		return nil
	}
	if p < r.resume {
		r.res.Resumed++
		return nil
	}
	t, err := r.im.sub.Submit(r.ctx, ev)
	if err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		if errors.Is(err, bot.ErrInvalid) || errors.Is(err, storage.ErrTooLarge) {
			return r.Malformed(pos, "refused by the store", err.Error())
		}
		return err
	}
	r.inflight = append(r.inflight, pending{pos: pos, unit: p, ticket: t})
	r.lastPos = p
	if err := r.drain(false); err != nil {
		return err
	}
	if time.Since(r.lastSave) >= r.im.opts.SaveEvery {
		r.save()
	}
	return nil
}

// rosterFor submits the roster file's observations for a group the first
// time the import meets it, before its first message, so that message
// already carries the role.
func (r *run) rosterFor(ev *bot.Event) error {
	ro := r.im.opts.Roster
	if ro == nil {
		return nil
	}
	src := func(line int64) *bot.Provenance {
		return &bot.Provenance{FileSHA256: ro.SHA256, Position: line, Unit: UnitLine, Format: ro.Format,
			Importer: "qunshao-import/" + Version + " " + ro.Format + "/1"}
	}
	for _, rev := range ro.events(ev.Platform, ev.GroupID, ev.GroupName, ev.Time, src) {
		if r.im.opts.DryRun {
			if err := rev.Validate(); err != nil {
				return r.Malformed(Pos{Line: rev.Source.Position}, "roster refused by the store", err.Error())
			}
			continue
		}
		t, err := r.im.sub.Submit(r.ctx, rev)
		if err != nil {
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			return fmt.Errorf("roster %s:%d: %w", filepath.Base(ro.Path), rev.Source.Position, err)
		}
		r.roster = append(r.roster, t)
	}
	return nil
}

// Malformed implements Output.
func (r *run) Malformed(pos Pos, reason, detail string) error {
	r.res.Errors++
	r.res.ByReason[reason]++
	e := &RecordError{File: r.res.Name, Line: pos.Line, Offset: pos.Offset, Reason: reason, Detail: detail}
	if len(r.res.Samples) < r.im.opts.Samples {
		r.res.Samples = append(r.res.Samples, e)
	}
	if r.im.opts.Strict {
		return fmt.Errorf("%w: %v", ErrStrict, e)
	}
	return nil
}

// drain collects the outcome of committed events, oldest first; with wait
// it waits for all of them.
func (r *run) drain(wait bool) error {
	var first error
	for r.head < len(r.inflight) {
		pd := r.inflight[r.head]
		if !wait {
			select {
			case <-pd.ticket.Done():
			default:
				r.compact()
				return first
			}
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*time.Minute)
		res, err := pd.ticket.Wait(wctx)
		cancel()
		if err != nil && wctx.Err() != nil {
			// The store did not answer: nothing after this is known to be
			// committed.
			r.low = pd.unit
			return fmt.Errorf("waiting for the store: %w", err)
		}
		r.inflight[r.head] = pending{}
		r.head++
		switch {
		case err != nil:
			if e := r.Malformed(pd.pos, "not stored", err.Error()); e != nil && first == nil {
				first = e
			}
		case res.Duplicate:
			r.res.Duplicates++
		default:
			r.res.Stored++
		}
	}
	r.compact()
	return first
}

func (r *run) compact() {
	if r.head == len(r.inflight) {
		r.inflight, r.head = r.inflight[:0], 0
		r.low = max(r.low, r.lastPos+1)
		return
	}
	r.low = max(r.low, r.inflight[r.head].unit)
	if r.head > 1024 && r.head > len(r.inflight)/2 {
		n := copy(r.inflight, r.inflight[r.head:])
		clear(r.inflight[n:])
		r.inflight, r.head = r.inflight[:n], 0
	}
}

func (r *run) progress() storage.ImportProgress {
	p := storage.ImportProgress{ResumePos: r.low, Records: r.res.Records, Stored: r.res.Stored - r.savedStored,
		Duplicates: r.res.Duplicates + r.res.Resumed, Errors: r.res.Errors}
	return p
}

// save records the resume position (best effort: a failure only means a
// resumed run re-reads a little more).
func (r *run) save() {
	r.lastSave = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
	defer cancel()
	if err := r.im.led.UpdateImportProgress(ctx, r.res.SHA256, r.progress()); err == nil {
		r.savedStored = r.res.Stored
	}
}

// finish waits for what was submitted and records how the run ended.
func (r *run) finish(parseErr error) *FileResult {
	res := r.res
	if !r.im.opts.DryRun {
		if err := r.drain(true); err != nil && parseErr == nil {
			parseErr = err
		}
		for _, t := range r.roster {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*time.Minute)
			out, err := t.Wait(wctx)
			cancel()
			if err == nil && !out.Duplicate && !out.Unchanged {
				res.RosterStored++
			}
		}
	}
	sort.Strings(res.Groups)
	switch {
	case parseErr == nil:
		res.Status = storage.ImportComplete
		if r.im.opts.DryRun {
			res.Status = StatusChecked
		}
	case r.ctx.Err() != nil && errors.Is(parseErr, r.ctx.Err()):
		res.Status, res.Err = storage.ImportInterrupted, parseErr
	default:
		res.Status, res.Err = storage.ImportFailed, parseErr
	}
	if r.im.opts.DryRun {
		return res
	}
	p := r.progress()
	if res.Status == storage.ImportComplete {
		p.ResumePos = max(p.ResumePos, r.lastPos+1)
	}
	lastErr := ""
	if res.Err != nil {
		lastErr = res.Err.Error()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
	defer cancel()
	if err := r.im.led.FinishImport(ctx, res.SHA256, res.Status, p, lastErr); err != nil && res.Err == nil {
		res.Status, res.Err = storage.ImportFailed, err
	}
	return res
}
