package importer

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/qunshao/qunshao/storage"
)

// Totals add up the results of several files.
type Totals struct {
	Files, Complete, Skipped, Interrupted, Failed int
	Records, Stored, Duplicates, Resumed, Errors  int64
	ByReason                                      map[string]int64
}

// Total adds up results.
func Total(results []*FileResult) Totals {
	t := Totals{ByReason: map[string]int64{}}
	for _, r := range results {
		t.Files++
		switch r.Status {
		case storage.ImportComplete, StatusChecked:
			t.Complete++
		case StatusSkipped:
			t.Skipped++
		case storage.ImportInterrupted:
			t.Interrupted++
		default:
			t.Failed++
		}
		t.Records += r.Records
		t.Stored += r.Stored
		t.Duplicates += r.Duplicates
		t.Resumed += r.Resumed
		t.Errors += r.Errors
		for k, v := range r.ByReason {
			t.ByReason[k] += v
		}
	}
	return t
}

// WriteSummary prints one paragraph per file and the totals: counts, the
// errors by reason and the first bad records as "file:line: reason".
// Text from the files is escaped so that it cannot act on a terminal.
func WriteSummary(w io.Writer, results []*FileResult) {
	for _, r := range results {
		fmt.Fprintf(w, "%s: %s", safeText(r.Name), r.Status)
		if r.Format != "" {
			fmt.Fprintf(w, " (%s, %s", r.Format, r.Encoding)
			if r.SHA256 != "" {
				fmt.Fprintf(w, ", %s, sha256 %s", humanBytes(r.Size), r.SHA256)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
		switch r.Status {
		case StatusSkipped:
			fmt.Fprintf(w, "  imported completely before (%d records); nothing to do (--force reads it again)\n", r.Records)
		case StatusChecked:
			fmt.Fprintf(w, "  %d records, %d errors (dry run: nothing stored) in %s%s\n", r.Records, r.Errors, r.Elapsed.Round(time.Millisecond), rates(r))
		default:
			if r.SHA256 != "" {
				fmt.Fprintf(w, "  %d records: %d stored, %d already stored", r.Records, r.Stored, r.Duplicates)
				if r.Resumed > 0 {
					fmt.Fprintf(w, ", %d committed by an earlier run", r.Resumed)
				}
				fmt.Fprintf(w, ", %d errors", r.Errors)
				if r.RosterStored > 0 {
					fmt.Fprintf(w, "; %d roster observations", r.RosterStored)
				}
				fmt.Fprintf(w, " in %s%s\n", r.Elapsed.Round(time.Millisecond), rates(r))
			}
		}
		if len(r.Groups) > 0 {
			gs := r.Groups
			more := ""
			if len(gs) > 10 {
				gs, more = gs[:10], fmt.Sprintf(" and %d more", len(r.Groups)-10)
			}
			safe := make([]string, len(gs))
			for i, g := range gs {
				safe[i] = safeText(g)
			}
			fmt.Fprintf(w, "  groups: %s%s\n", strings.Join(safe, ", "), more)
		}
		for _, e := range r.Samples {
			fmt.Fprintf(w, "  %s\n", safeText(e.Error()))
		}
		if extra := r.Errors - int64(len(r.Samples)); extra > 0 {
			fmt.Fprintf(w, "  … and %d more bad records\n", extra)
		}
		if r.Err != nil {
			fmt.Fprintf(w, "  stopped: %s\n", safeText(r.Err.Error()))
		}
		if r.Status == storage.ImportInterrupted {
			fmt.Fprintln(w, "  run the same command again to finish: what is stored is kept and not stored twice")
		}
	}
	t := Total(results)
	fmt.Fprintf(w, "total: %d files (%d complete, %d skipped, %d interrupted, %d failed): %d records, %d stored, %d already stored, %d errors\n",
		t.Files, t.Complete, t.Skipped, t.Interrupted, t.Failed, t.Records, t.Stored, t.Duplicates+t.Resumed, t.Errors)
	if len(t.ByReason) > 0 {
		reasons := make([]string, 0, len(t.ByReason))
		for k := range t.ByReason {
			reasons = append(reasons, k)
		}
		sort.Slice(reasons, func(i, j int) bool {
			if t.ByReason[reasons[i]] != t.ByReason[reasons[j]] {
				return t.ByReason[reasons[i]] > t.ByReason[reasons[j]]
			}
			return reasons[i] < reasons[j]
		})
		fmt.Fprintln(w, "errors by reason:")
		for _, k := range reasons {
			fmt.Fprintf(w, "  %8d  %s\n", t.ByReason[k], k)
		}
	}
}

// rates shows how fast the file was read (after hashing): the parse rate
// in a dry run, the import rate otherwise.
func rates(r *FileResult) string {
	sec := r.ParseElapsed.Seconds()
	if sec < 0.001 || r.Records == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s/s, %.0f records/s)", humanBytes(int64(float64(r.Size)/sec)), float64(r.Records)/sec)
}

// safeText escapes control and format characters (terminal escapes, bidi
// overrides) in text that came from a file.
func safeText(s string) string {
	ok := true
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			fmt.Fprintf(&b, "\\u%04x", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
