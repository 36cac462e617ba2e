// Package pipeline is qunshao's data flow inside one process: every event
// is stored as evidence first, then each stored message is analysed and its
// verdict stored with it, and each group's risk and organisers are tracked
// over time. Bots, importers and the demo hand events to a Pipeline; what
// comes after (alerts, the console) reads the store or subscribes to
// verdicts.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/storage"
)

// Options tune the analysis stage.
type Options struct {
	// Workers analyse messages; each owns the groups that hash to it, so a
	// group's messages are judged in order. 0 uses every core.
	Workers int
	// QueueSize is how many stored messages may wait for analysis before
	// the evidence writer (and so the bots) are held back.
	QueueSize int
	// OnVerdict, if set, receives every stored detection (from the worker
	// that owns the group; it must not block).
	OnVerdict func(*storage.Detection, *detect.Verdict)
	Log       *slog.Logger
}

// Stats are running totals.
type Stats struct {
	Analysed, Stored, Malicious, Failed int64
}

// Pipeline stores and analyses events.
type Pipeline struct {
	st      *storage.Store
	w       *storage.Writer
	det     *detect.Detector
	tracker *detect.Tracker
	opts    Options
	log     *slog.Logger
	queues  []chan storage.Committed
	wg      sync.WaitGroup
	closed  atomic.Bool

	analysed, stored, malicious, failed atomic.Int64
}

// New starts a pipeline on an evidence store (whose writer it opens) and a
// detector.
func New(st *storage.Store, det *detect.Detector, opts Options) (*Pipeline, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{st: st, det: det, tracker: detect.NewTracker(), opts: opts, log: log}
	for i := 0; i < opts.Workers; i++ {
		q := make(chan storage.Committed, max(1, opts.QueueSize/opts.Workers))
		p.queues = append(p.queues, q)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.analyse(q)
		}()
	}
	w, err := st.NewWriter(storage.WriterOptions{OnCommit: p.enqueue})
	if err != nil {
		for _, q := range p.queues {
			close(q)
		}
		p.wg.Wait()
		return nil, err
	}
	p.w = w
	return p, nil
}

// Submit stores an event (see storage.Writer.Submit); messages are then
// analysed.
func (p *Pipeline) Submit(ctx context.Context, ev *bot.Event) (*storage.Ticket, error) {
	return p.w.Submit(ctx, ev)
}

// Writer exposes the evidence writer's statistics.
func (p *Pipeline) Writer() *storage.Writer { return p.w }

// Tracker exposes the per-group risk tracker.
func (p *Pipeline) Tracker() *detect.Tracker { return p.tracker }

// Stats returns running totals of the analysis stage.
func (p *Pipeline) Stats() Stats {
	return Stats{Analysed: p.analysed.Load(), Stored: p.stored.Load(), Malicious: p.malicious.Load(), Failed: p.failed.Load()}
}

// enqueue runs in the writer's goroutine after each commit. Blocking here
// when analysis falls behind holds the writer back, and through its queue
// the producers: nothing is dropped.
func (p *Pipeline) enqueue(batch []storage.Committed) {
	for _, c := range batch {
		if c.Record.Kind != string(bot.KindMessage) {
			continue
		}
		p.queues[shard(c.Record.GroupKey, len(p.queues))] <- c
	}
}

func shard(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % uint32(n))
}

// Close stores everything accepted, analyses it, and stops.
func (p *Pipeline) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := p.w.Close(ctx)
	for _, q := range p.queues {
		close(q)
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
	return err
}

// analyse judges the messages of the groups one worker owns and stores
// their detections in small batches.
func (p *Pipeline) analyse(q chan storage.Committed) {
	var batch []*storage.Detection
	var verdicts []*detect.Verdict
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := p.st.InsertDetections(ctx, batch)
		cancel()
		if err != nil {
			p.failed.Add(int64(len(batch)))
			p.log.Error("detections not stored", "count", len(batch), "err", err)
		} else {
			p.stored.Add(int64(len(batch)))
			if p.opts.OnVerdict != nil {
				for i, d := range batch {
					p.opts.OnVerdict(d, verdicts[i])
				}
			}
		}
		batch, verdicts = batch[:0], verdicts[:0]
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c, ok := <-q:
			if !ok {
				flush()
				return
			}
			if d, v := p.judge(c); d != nil {
				batch = append(batch, d)
				verdicts = append(verdicts, v)
				if len(batch) >= 100 {
					flush()
				}
			}
		case <-tick.C:
			flush()
		}
	}
}

// judge analyses one stored message. Benign verdicts without any
// malicious rule are not stored (they are most messages and say nothing);
// everything else is, with its explanation.
func (p *Pipeline) judge(c storage.Committed) (*storage.Detection, *detect.Verdict) {
	r := c.Record
	role := r.ActorRole
	if role == string(bot.RoleUnknown) {
		role = ""
	}
	v := p.det.Detect(string(r.OriginalText()), role)
	p.analysed.Add(1)
	st := p.tracker.Observe(r.GroupKey, detect.GroupMessage{ID: r.MsgID, Time: r.OccurredAt(), Sender: r.ActorID, Role: role}, v)
	interesting := v.Label != "benign"
	for _, h := range v.Rules {
		if detect.Malicious(h.Category) {
			interesting = true
		}
	}
	if !interesting {
		return nil, nil
	}
	if v.Label != "benign" {
		p.malicious.Add(1)
	}
	rules, _ := json.Marshal(v.Rules)
	ents, _ := json.Marshal(v.Entities)
	expl, _ := json.Marshal(v.Model)
	d := &storage.Detection{
		GroupKey: r.GroupKey, ChainSeq: r.ChainSeq, MsgID: r.MsgID, SenderID: r.ActorID, SenderRole: r.ActorRole,
		OccurredUS: r.OccurredUS, Label: v.Label, Score: v.Score, Severity: v.Severity,
		Rules: string(rules), Entities: string(ents), Explanation: string(expl),
		ModelVersion: v.Model.Version, RulesVersion: p.det.Engine().Version, Risk: st.Risk,
		DetectedUS: time.Now().UnixMicro(),
	}
	return d, v
}
