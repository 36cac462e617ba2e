package detect

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/nlp"
)

// StageResult is the speed of one analysis stage on one core.
type StageResult struct {
	Stage       string  `json:"stage"`
	NsPerMsg    float64 `json:"ns_per_message"`
	MsgsPerSec  float64 `json:"messages_per_second_per_core"`
	RelativeSeg float64 `json:"relative_to_segmentation"`
}

// BenchReport is what `qunshao bench` measures.
type BenchReport struct {
	Messages      int           `json:"messages"`
	AvgRunes      float64       `json:"average_runes"`
	Cores         int           `json:"cores"`
	LoadTime      time.Duration `json:"load_time_ns"`
	SegLoadTime   time.Duration `json:"segmenter_load_time_ns"`
	RSSBytes      uint64        `json:"rss_bytes_after_load"`
	HeapBytes     uint64        `json:"heap_bytes_after_load"`
	Stages        []StageResult `json:"stages"`
	ParallelPerS  float64       `json:"analyse_messages_per_second_all_cores"`
	AnalyseVsSeg  float64       `json:"analyse_speed_relative_to_segmentation"`
	StageDuration time.Duration `json:"stage_duration_ns"`
}

// RSS returns the process's resident memory (Linux), or 0.
func RSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb * 1024
		}
	}
	return 0
}

// Bench measures every stage on texts, each for about dur on one core,
// then the whole analysis on every core.
func (d *Detector) Bench(texts []string, dur time.Duration) *BenchReport {
	rep := &BenchReport{Messages: len(texts), Cores: runtime.GOMAXPROCS(0), LoadTime: d.analyzer.LoadTime,
		SegLoadTime: d.analyzer.Seg.LoadTime, StageDuration: dur}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapBytes, rep.RSSBytes = ms.HeapAlloc, RSS()
	total := 0
	for _, t := range texts {
		total += len([]rune(t))
	}
	rep.AvgRunes = float64(total) / float64(max(1, len(texts)))
	// Inputs of the later stages, computed once.
	norms := make([]*nlp.Normalized, len(texts))
	analyses := make([]*nlp.Analysis, len(texts))
	feats := make([][]string, len(texts))
	e, m := d.Engine(), d.Model()
	for i, t := range texts {
		analyses[i] = d.analyzer.Analyze(t)
		norms[i] = analyses[i].Normalized
		feats[i] = Features(analyses[i], e.Evaluate(analyses[i], ""), "")
	}
	run := func(name string, f func(i int)) StageResult {
		// Warm up, then time whole passes over the texts.
		for i := range texts {
			f(i)
		}
		n := 0
		start := time.Now()
		for time.Since(start) < dur {
			for i := range texts {
				f(i)
			}
			n += len(texts)
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(n)
		return StageResult{Stage: name, NsPerMsg: ns, MsgsPerSec: 1e9 / ns}
	}
	seg := run("segment (gse alone, raw text)", func(i int) { d.analyzer.Seg.Segment(texts[i]) })
	rep.Stages = append(rep.Stages,
		seg,
		run("normalise", func(i int) { d.analyzer.Norm.Normalize(texts[i]) }),
		run("segment (normalised text)", func(i int) { d.analyzer.Seg.Tokens(norms[i]) }),
		run("entities", func(i int) { nlp.ExtractEntities(norms[i]) }),
		run("rules", func(i int) { e.Evaluate(analyses[i], "") }),
	)
	if m != nil {
		rep.Stages = append(rep.Stages, run("model", func(i int) { m.Predict(feats[i]) }))
	}
	all := run("analyse (all of the above)", func(i int) { d.Detect(texts[i], "") })
	rep.Stages = append(rep.Stages, all)
	for i := range rep.Stages {
		rep.Stages[i].RelativeSeg = seg.NsPerMsg / rep.Stages[i].NsPerMsg
	}
	rep.AnalyseVsSeg = seg.NsPerMsg / all.NsPerMsg
	// All cores.
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < rep.Cores; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Since(start) < dur; i++ {
				d.Detect(texts[i%len(texts)], "")
				done.Add(1)
			}
		}(w)
	}
	wg.Wait()
	rep.ParallelPerS = float64(done.Load()) / time.Since(start).Seconds()
	return rep
}

// WriteText prints a bench report.
func (r *BenchReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%d messages, %.1f characters on average, %d cores\n", r.Messages, r.AvgRunes, r.Cores)
	fmt.Fprintf(w, "load: %s (gse dictionary %s), RSS after load %.0f MB, heap %.0f MB\n\n",
		r.LoadTime.Round(time.Millisecond), r.SegLoadTime.Round(time.Millisecond), float64(r.RSSBytes)/(1<<20), float64(r.HeapBytes)/(1<<20))
	fmt.Fprintf(w, "%-30s %12s %16s %10s\n", "stage (one core)", "ns/message", "messages/s/core", "vs gse")
	for _, s := range r.Stages {
		fmt.Fprintf(w, "%-30s %12.0f %16.0f %9.2fx\n", s.Stage, s.NsPerMsg, s.MsgsPerSec, s.RelativeSeg)
	}
	fmt.Fprintf(w, "\nwhole analysis on %d cores: %.0f messages/s\n", r.Cores, r.ParallelPerS)
	fmt.Fprintf(w, "whole analysis speed relative to gse segmentation alone: %.2fx\n", r.AnalyseVsSeg)
}
