package importer

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows how far an import is: a bar with rate and ETA on a
// terminal, or a plain line every Interval otherwise (logs, CI). A nil
// *Progress shows nothing.
type Progress struct {
	W   io.Writer
	TTY bool
	// Interval between plain lines; 5s if zero.
	Interval time.Duration
}

// counter is read by the progress display while a phase runs.
type counter interface {
	bytes() int64
	records() int64
}

// phase shows one phase (hashing, parsing) of one file until stop is
// called.
func (p *Progress) phase(name, what string, total int64, c counter) (stop func()) {
	if p == nil || p.W == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	if p.TTY {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.W),
			progressbar.OptionSetDescription(fmt.Sprintf("%s %s", what, name)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.W) }),
			progressbar.OptionSetRenderBlankState(true),
		)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					bar.Set64(c.bytes())
					if c.bytes() >= total {
						bar.Finish()
					} else {
						bar.Exit()
						fmt.Fprintln(p.W)
					}
					return
				case <-tick.C:
					if n := c.records(); n > 0 {
						bar.Describe(fmt.Sprintf("%s %s (%d records)", what, name, n))
					}
					bar.Set64(c.bytes())
				}
			}
		}()
	} else {
		interval := p.Interval
		if interval <= 0 {
			interval = 5 * time.Second
		}
		start := time.Now()
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					fmt.Fprintln(p.W, progressLine(name, what, c.bytes(), total, c.records(), time.Since(start)))
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// progressLine is the plain progress report.
func progressLine(name, what string, done, total, records int64, elapsed time.Duration) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	eta := "?"
	if rate > 0 && total >= done {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	s := fmt.Sprintf("import %s: %s %.1f%% (%s of %s), %s/s, ETA %s", name, what, pct, humanBytes(done), humanBytes(total), humanBytes(int64(rate)), eta)
	if records > 0 {
		s += fmt.Sprintf(", %d records (%.0f/s)", records, float64(records)/max(elapsed.Seconds(), 1e-9))
	}
	return s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
