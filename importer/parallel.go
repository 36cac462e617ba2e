package importer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// Parsing is split in three so that it can use more than one core while
// staying a stream:
//
//   - the format's scanner (the caller of Parse) cuts the file into
//     records, in order, copying each record's bytes;
//   - workers build events from records in parallel (decoding fields,
//     JSON, strings, the digest behind a derived id);
//   - one emitter hands the events to Output in file order, numbering
//     repeats for derived ids and running each record's in-order step.
//
// Records travel in batches; a bounded number of batches is in flight, so
// memory does not depend on the file's size.

// built is what a worker makes of a record.
type built struct {
	evs    []*bot.Event
	evs0   [2]*bot.Event // evs' first storage: no allocation for most records
	reason string        // set when the record is bad
	detail string
	// A message whose id is derived (see occurrences).
	dmsg  *bot.Message
	group string
	sec   int64
	sum   [32]byte
	// post runs in file order after the derived id is set, before the
	// events are emitted (state that spans records: replies, recalls).
	post func(b *built)
}

func (b *built) add(ev *bot.Event) {
	if b.evs == nil {
		b.evs = b.evs0[:0]
	}
	b.evs = append(b.evs, ev)
}

func (b *built) fail(reason, detail string) {
	b.evs, b.dmsg, b.post = nil, nil, nil
	b.reason, b.detail = reason, detail
}

// deriveID asks for msg's id to be derived from sender, second and text
// (and the number of earlier identical triples in the file).
func (b *built) deriveID(msg *bot.Message, group string, t time.Time, text string) {
	b.dmsg, b.group, b.sec = msg, group, t.Unix()
	var buf [512]byte
	d := buf[:0]
	d = binary.AppendUvarint(d, uint64(len(msg.Sender.ID)))
	if len(d)+len(msg.Sender.ID)+8+binary.MaxVarintLen64+len(text) <= len(buf) {
		d = append(d, msg.Sender.ID...)
		d = binary.BigEndian.AppendUint64(d, uint64(b.sec))
		d = binary.AppendUvarint(d, uint64(len(text)))
		d = append(d, text...)
		b.sum = sha256.Sum256(d)
		return
	}
	h := sha256.New()
	h.Write(d)
	h.Write([]byte(msg.Sender.ID))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(b.sec)))
	h.Write(binary.AppendUvarint(nil, uint64(len(text))))
	h.Write([]byte(text))
	h.Sum(b.sum[:0])
}

// rec is a record on its way through.
type rec struct {
	pos   Pos
	build func(b *built)
	out   built
}

type batch struct {
	recs []rec
	done chan struct{}
}

// flow runs the three stages for one Parse.
type flow struct {
	ctx    context.Context
	out    Output
	jobs   chan *batch
	order  chan *batch
	free   chan *batch // emitted batches, cleared, for reuse
	cur    *batch
	size   int
	arena  []byte // records' bytes are copied here (see own)
	wg     sync.WaitGroup
	emitWG sync.WaitGroup
	occ    occurrences
	// err is the first error Output returned; the scanner stops on it.
	mu     sync.Mutex
	err    error
	hasErr atomic.Bool
}

const (
	batchRecords = 256
	batchBytes   = 1 << 20
)

func newFlow(ctx context.Context, out Output) *flow {
	workers := max(1, runtime.GOMAXPROCS(0))
	f := &flow{ctx: ctx, out: out, jobs: make(chan *batch, workers), order: make(chan *batch, 2*workers),
		free: make(chan *batch, 2*workers+2)}
	for range workers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for b := range f.jobs {
				for i := range b.recs {
					r := &b.recs[i]
					if r.build != nil {
						r.build(&r.out)
						r.build = nil
					}
				}
				close(b.done)
			}
		}()
	}
	f.emitWG.Add(1)
	go func() {
		defer f.emitWG.Done()
		f.emit()
	}()
	return f
}

func (f *flow) failed() error {
	if !f.hasErr.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *flow) setErr(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
		f.hasErr.Store(true)
	}
	f.mu.Unlock()
}

// record queues a record; build runs on a worker and must only use what
// it was given (copies, not the scanner's buffers). size is the record's
// byte size, for batching.
func (f *flow) record(pos Pos, size int, build func(b *built)) error {
	if err := f.failed(); err != nil {
		return err
	}
	if f.cur == nil {
		if err := f.ctx.Err(); err != nil {
			return err
		}
		select {
		case b := <-f.free:
			b.done = make(chan struct{})
			f.cur = b
		default:
			f.cur = &batch{recs: make([]rec, 0, batchRecords), done: make(chan struct{})}
		}
	}
	f.cur.recs = append(f.cur.recs, rec{pos: pos, build: build})
	f.size += size
	if len(f.cur.recs) >= batchRecords || f.size >= batchBytes {
		return f.send()
	}
	return nil
}

// bad queues a record the scanner found bad.
func (f *flow) bad(pos Pos, reason, detail string) error {
	return f.record(pos, 0, func(b *built) { b.fail(reason, detail) })
}

func (f *flow) send() error {
	b := f.cur
	f.cur, f.size = nil, 0
	if b == nil {
		return nil
	}
	select {
	case f.order <- b:
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
	select {
	case f.jobs <- b:
	case <-f.ctx.Done():
		close(b.done) // unbuilt: the emitter skips it as the context ended
		return f.ctx.Err()
	}
	return nil
}

// close flushes, waits for everything to be emitted and returns the first
// error Output returned (or scanErr, if the scanner failed).
func (f *flow) close(scanErr error) error {
	// Records cut before a scanner error are good: they are emitted.
	if err := f.send(); scanErr == nil {
		scanErr = err
	}
	close(f.order)
	close(f.jobs)
	f.wg.Wait()
	f.emitWG.Wait()
	if err := f.failed(); err != nil {
		return err
	}
	return scanErr
}

func (f *flow) emit() {
	for b := range f.order {
		<-b.done
		for i := range b.recs {
			r := &b.recs[i]
			if f.failed() != nil || f.ctx.Err() != nil {
				if f.ctx.Err() != nil {
					f.setErr(f.ctx.Err())
				}
				break
			}
			o := &r.out
			if o.reason != "" {
				if err := f.out.Malformed(r.pos, o.reason, o.detail); err != nil {
					f.setErr(err)
				}
				continue
			}
			if o.dmsg != nil {
				o.dmsg.ID = f.occ.assign(o.group, o.sec, o.sum)
			}
			if o.post != nil {
				o.post(o)
				if o.reason != "" {
					if err := f.out.Malformed(r.pos, o.reason, o.detail); err != nil {
						f.setErr(err)
					}
					continue
				}
			}
			for _, ev := range o.evs {
				if err := f.out.Event(ev, r.pos); err != nil {
					f.setErr(err)
					break
				}
			}
		}
		// Drop the records' references and offer the batch for reuse.
		clear(b.recs)
		b.recs = b.recs[:0]
		select {
		case f.free <- b:
		default:
		}
	}
}

// own copies parts, concatenated, into memory of the record's own (the
// scanner's buffers are reused for the next record). Records share large
// blocks rather than each allocating: a block lives as long as any event
// pointing into it.
func (f *flow) own(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > cap(f.arena)-len(f.arena) {
		if n > arenaSize/4 {
			out := make([]byte, 0, n)
			for _, p := range parts {
				out = append(out, p...)
			}
			return out
		}
		f.arena = make([]byte, 0, arenaSize)
	}
	start := len(f.arena)
	for _, p := range parts {
		f.arena = append(f.arena, p...)
	}
	return f.arena[start:len(f.arena):len(f.arena)]
}

const arenaSize = 256 << 10

// occurrences numbers repeats of the same (sender, second, text) in a file
// for derived message ids, so that re-imports and overlapping exports of
// the same messages deduplicate while genuine repeats are kept. Counts are
// kept for the current second of each group only (exports are in time
// order), so memory stays bounded. A second with more distinct messages
// than maxOccKeys (only a forged file has that many) starts a new
// generation of counts: the generation is part of later ids, so they
// cannot collide with earlier ones, and the same file still gives the same
// ids every time.
type occurrences struct {
	groups map[string]*occ
}

type occ struct {
	sec    int64
	gen    uint64
	counts map[[16]byte]uint32
}

const maxOccKeys = 1 << 18

// assign returns the id of the next occurrence of the digest sum.
func (o *occurrences) assign(group string, sec int64, sum [32]byte) string {
	if o.groups == nil {
		o.groups = map[string]*occ{}
	}
	g := o.groups[group]
	if g == nil {
		if len(o.groups) > 1024 {
			clear(o.groups)
		}
		g = &occ{counts: make(map[[16]byte]uint32, 8)}
		o.groups[group] = g
	}
	if sec != g.sec {
		g.sec, g.gen = sec, 0
		if len(g.counts) > 64 {
			// clear costs as much as the map ever grew; a burst second
			// must not slow every later one.
			g.counts = make(map[[16]byte]uint32, 8)
		} else {
			clear(g.counts)
		}
	}
	if len(g.counts) >= maxOccKeys {
		g.counts = make(map[[16]byte]uint32, 8)
		g.gen++
	}
	var key [16]byte
	copy(key[:], sum[:16])
	k := g.counts[key]
	g.counts[key] = k + 1
	if k > 0 || g.gen > 0 {
		var more [16 + 2*binary.MaxVarintLen64]byte
		copy(more[:], sum[:16])
		n := 16 + binary.PutUvarint(more[16:], uint64(k))
		if g.gen > 0 {
			n += binary.PutUvarint(more[n:], g.gen)
		}
		sum = sha256.Sum256(more[:n])
	}
	var out [2 + 32]byte
	out[0], out[1] = 'd', ':'
	hex.Encode(out[2:], sum[:16])
	return string(out[:])
}
