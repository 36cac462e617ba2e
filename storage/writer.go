package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/qunshao/qunshao/bot"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrClosed is returned by Submit after Close, and to tickets the writer
// could not store before it was stopped.
var ErrClosed = errors.New("evidence writer is closed")

// ErrTooLarge refuses an event bigger than storage.writer.max_event_bytes.
var ErrTooLarge = errors.New("event too large")

// ErrWriterBusy is returned when a second writer is opened on one store: a
// group's hash chain must have exactly one writer.
var ErrWriterBusy = errors.New("an evidence writer is already open on this store")

// rosterAttestEvery is how often an unchanged roster snapshot is still
// stored in full, so the ledger holds a recent attested roster of every
// group even when nothing changed.
const rosterAttestEvery = 24 * time.Hour

// Result is what happened to one submitted event.
type Result struct {
	GroupKey string
	// Seq is the stored record's position in its group's chain; 0 when
	// nothing was stored.
	Seq int64
	// Duplicate: the same event (same dedup key) was stored before.
	Duplicate bool
	// Unchanged: a roster snapshot that matched the known roster and was
	// not due for a full attestation; it was not stored again.
	Unchanged bool
	// Role and RoleSource are what was recorded for the event's actor.
	Role       bot.Role
	RoleSource string
}

// Ticket is the acknowledgement of a submitted event. It completes when the
// event's batch is committed (or refused).
type Ticket struct {
	done chan struct{}
	res  Result
	err  error
}

// Done is closed when the outcome is known.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Wait blocks until the event is committed or refused, or ctx ends.
func (t *Ticket) Wait(ctx context.Context) (Result, error) {
	select {
	case <-t.done:
		return t.res, t.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (t *Ticket) finish(res Result, err error) {
	t.res, t.err = res, err
	close(t.done)
}

// Committed is handed to the writer's OnCommit hook for every record that
// was stored.
type Committed struct {
	Event  *bot.Event
	Record *Record
}

// WriterOptions are the writer's collaborators.
type WriterOptions struct {
	// OnCommit, if set, is called after each commit with the records it
	// stored, from the shard goroutine that committed them (so possibly
	// from several goroutines at once, but in order within a group). It
	// must not block: hand the records to a queue.
	OnCommit func([]Committed)
	// Now is the clock for ReceivedUS; time.Now by default.
	Now func() time.Time
}

// WriterStats are running totals.
type WriterStats struct {
	Accepted, Stored, Duplicates, Unchanged, Refused, Failed, Batches, Retries int64
}

// Writer commits events to the evidence ledger in batches. Submit is safe
// for concurrent use. Groups are spread over shards by a hash of the group
// key; each shard is one goroutine that does all database writes for its
// groups, which is what keeps every group's hash chain linear. SQLite has
// one writer lock, so it gets one shard; the servers commit shards'
// transactions in parallel.
type Writer struct {
	s        *Store
	cfg      WriterConfig
	opts     WriterOptions
	shards   []*shard
	mu       sync.RWMutex // guards closed and sending to the shards
	closed   bool
	closing  chan struct{}
	done     chan struct{}
	stopCtx  context.Context
	stop     context.CancelFunc
	once     sync.Once
	accepted atomic.Int64
	refused  atomic.Int64

	stats  WriterStats
	statMu sync.Mutex
}

// shard is one writer goroutine and the state of the groups it owns.
type shard struct {
	w      *Writer
	in     chan *item
	groups map[string]*groupState // owned by the shard goroutine
}

// groupState is what the writer keeps about a group between batches.
type groupState struct {
	seq       int64
	hash      string
	name      string
	known     bool // a chat_groups row exists
	lastFull  int64
	disbanded bool
	roster    *roster
}

// NewWriter starts the store's evidence writer. Close it to flush.
func (s *Store) NewWriter(opts WriterOptions) (*Writer, error) {
	select {
	case s.writing <- struct{}{}:
	default:
		return nil, ErrWriterBusy
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	stopCtx, stop := context.WithCancel(context.Background())
	cfg := s.cfg.Writer.resolved(s.driver)
	w := &Writer{
		s: s, cfg: cfg, opts: opts,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		stopCtx: stopCtx, stop: stop,
	}
	var wg sync.WaitGroup
	for range cfg.Shards {
		sh := &shard{w: w, in: make(chan *item, max(1, cfg.QueueSize/cfg.Shards)), groups: map[string]*groupState{}}
		w.shards = append(w.shards, sh)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.loop()
		}()
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	return w, nil
}

// Submit validates an event and queues it for the next batch. It blocks
// while the queue is full (back-pressure) until ctx ends. The returned
// ticket completes when the event is committed; an event whose ticket
// completed without error survives a crash.
func (w *Writer) Submit(ctx context.Context, ev *bot.Event) (*Ticket, error) {
	if err := ev.Validate(); err != nil {
		w.refused.Add(1)
		return nil, err
	}
	it, err := prepare(ev, w.opts.Now().UnixMicro(), w.cfg.MaxEventBytes)
	if err != nil {
		w.refused.Add(1)
		return nil, err
	}
	it.ticket = &Ticket{done: make(chan struct{})}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	sh := w.shards[0]
	if len(w.shards) > 1 {
		sh = w.shards[fnv32(it.rec.GroupKey)%uint32(len(w.shards))]
	}
	select {
	case sh.in <- it:
		w.accepted.Add(1)
		return it.ticket, nil
	case <-w.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Write submits an event and waits for its commit.
func (w *Writer) Write(ctx context.Context, ev *bot.Event) (Result, error) {
	t, err := w.Submit(ctx, ev)
	if err != nil {
		return Result{}, err
	}
	return t.Wait(ctx)
}

// Close stops accepting events, commits everything already accepted and
// releases the store for another writer. If ctx ends first (the database
// is unreachable, say), the remaining tickets fail with ErrClosed.
func (w *Writer) Close(ctx context.Context) error {
	w.once.Do(func() {
		close(w.closing)
		w.mu.Lock()
		w.closed = true
		for _, sh := range w.shards {
			close(sh.in)
		}
		w.mu.Unlock()
	})
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		w.stop()
		<-w.done
		err = fmt.Errorf("close evidence writer: %w", ctx.Err())
	}
	w.stop()
	select {
	case <-w.s.writing:
	default:
	}
	return err
}

// Stats returns running totals.
func (w *Writer) Stats() WriterStats {
	w.statMu.Lock()
	st := w.stats
	w.statMu.Unlock()
	st.Accepted = w.accepted.Load()
	st.Refused = w.refused.Load()
	return st
}

func (sh *shard) loop() {
	w := sh.w
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*item, 0, w.cfg.BatchSize)
	size := 0
	flush := func() {
		if len(batch) > 0 {
			sh.commit(batch)
		}
		batch, size = batch[:0], 0
	}
	for {
		it, ok := <-sh.in
		if !ok {
			return
		}
		batch, size = append(batch, it), it.size
		timer.Reset(w.cfg.FlushInterval)
	fill:
		for len(batch) < w.cfg.BatchSize {
			select {
			case it, ok := <-sh.in:
				if !ok {
					flush()
					return
				}
				if size+it.size > w.cfg.MaxBatchBytes {
					flush()
				}
				batch, size = append(batch, it), size+it.size
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		flush()
	}
}

// commit stores a batch. A batch that fails while the database answers is
// split, so one bad event cannot take its neighbours down with it; while the
// database does not answer, the batch is retried with backoff (and, the
// queue being bounded, submitters are held back) until the writer is
// stopped.
func (sh *shard) commit(batch []*item) {
	w := sh.w
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := sh.tryCommit(batch)
		if err == nil {
			return
		}
		sh.forget(batch)
		if w.stopCtx.Err() != nil {
			sh.fail(batch, fmt.Errorf("%w: not stored: %v", ErrClosed, err))
			return
		}
		// A batch that keeps timing out may simply be too big for the
		// deadline: after a few tries it is split like a refused one.
		if (transient(err) && !(attempt > 3 && len(batch) > 1)) || !sh.databaseAnswers() {
			w.s.log.Warn("evidence store busy or unreachable; retrying batch", "events", len(batch), "err", err, "retry_in", backoff)
			w.count(func(s *WriterStats) { s.Retries++ })
			select {
			case <-time.After(backoff + rand.N(backoff/2+1)):
			case <-w.stopCtx.Done():
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if len(batch) == 1 {
			w.s.log.Error("evidence record refused by the database", "group", batch[0].rec.GroupKey, "kind", batch[0].rec.Kind, "err", err)
			sh.fail(batch, fmt.Errorf("store %s event in %s: %w", batch[0].rec.Kind, batch[0].rec.GroupKey, err))
			return
		}
		for _, it := range batch {
			sh.commit([]*item{it})
		}
		return
	}
}

// transient reports errors that say "not now" rather than "not this
// event": lock contention, deadlocks, serialisation failures, timeouts and
// broken connections. Batches failing with them are retried whole.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "40001", "40P01", "55P03", "57P01", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pg.Code, "08")
	}
	var my *gomysql.MySQLError
	if errors.As(err, &my) {
		switch my.Number {
		case 1205, 1213, 1040, 1053:
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY") ||
		strings.Contains(msg, "database table is locked")
}

func (sh *shard) databaseAnswers() bool {
	w := sh.w
	ctx, cancel := context.WithTimeout(w.stopCtx, 5*time.Second)
	defer cancel()
	sqlDB, err := w.s.db.DB()
	if err != nil {
		return false
	}
	return sqlDB.PingContext(ctx) == nil
}

func (sh *shard) fail(batch []*item, err error) {
	w := sh.w
	w.count(func(s *WriterStats) { s.Failed += int64(len(batch)) })
	for _, it := range batch {
		it.ticket.finish(Result{GroupKey: it.rec.GroupKey}, err)
	}
}

// forget drops cached state of the batch's groups after a failed commit;
// it is reloaded from the database on next use.
func (sh *shard) forget(batch []*item) {
	for _, it := range batch {
		delete(sh.groups, it.rec.GroupKey)
	}
}

func (w *Writer) count(f func(*WriterStats)) {
	w.statMu.Lock()
	f(&w.stats)
	w.statMu.Unlock()
}

// groupUpdate is a change to a chat_groups row made by a batch.
type groupUpdate struct {
	insert   *ChatGroup
	name     *string
	lastFull *int64
	disband  bool
}

func (sh *shard) tryCommit(batch []*item) error {
	w := sh.w
	if w.stopCtx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(w.stopCtx, w.s.cfg.QueryTimeout)
	defer cancel()

	results := make([]Result, len(batch))
	var stored []Committed
	err := w.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		existing, err := existingKeys(tx, batch)
		if err != nil {
			return err
		}
		var recs []*Record
		var states []MemberState
		updates := map[string]*groupUpdate{}
		for i, it := range batch {
			r := &it.rec
			results[i].GroupKey = r.GroupKey
			if existing[r.DedupKey] {
				results[i].Duplicate = true
				continue
			}
			existing[r.DedupKey] = true
			g, err := sh.group(tx, r.GroupKey)
			if err != nil {
				return err
			}
			up := updates[r.GroupKey]
			if up == nil {
				up = &groupUpdate{}
				updates[r.GroupKey] = up
			}
			if !g.known {
				g.known, g.name = true, r.GroupName
				up.insert = &ChatGroup{GroupKey: r.GroupKey, Platform: r.Platform, GroupID: r.GroupID, Name: r.GroupName, FirstSeenUS: r.OccurredUS}
			} else if r.GroupName != "" && r.GroupName != g.name {
				g.name = r.GroupName
				up.name = &g.name
			}
			// The actor's role before this event's own effect.
			role, src := g.roster.resolveRole(r.ActorID, r.OccurredUS, it.reported)
			r.ActorRole, r.RoleSource = string(role), src
			seq := g.seq + 1
			newStates, keep := applyToRoster(g, it, seq)
			if !keep {
				results[i].Unchanged = true
				existing[r.DedupKey] = false
				continue
			}
			states = append(states, newStates...)
			if it.ev.Kind == bot.KindRoster {
				g.lastFull = r.OccurredUS
				up.lastFull = &g.lastFull
			}
			if it.ev.Kind == bot.KindDisband {
				g.disbanded, up.disband = true, true
			}
			r.ChainSeq, r.PrevHash = seq, g.hash
			r.Hash = linkHash(r)
			g.seq, g.hash = seq, r.Hash
			recs = append(recs, r)
			results[i].Seq, results[i].Role, results[i].RoleSource = seq, role, src
			stored = append(stored, Committed{Event: it.ev, Record: r})
		}
		if err := insertRecords(tx, w.s.driver, recs); err != nil {
			return err
		}
		if len(states) > 0 {
			if err := tx.CreateInBatches(states, 200).Error; err != nil {
				return fmt.Errorf("insert roster history: %w", err)
			}
		}
		return applyGroupUpdates(tx, updates)
	})
	if err != nil {
		return err
	}
	w.count(func(s *WriterStats) {
		s.Batches++
		for _, r := range results {
			switch {
			case r.Duplicate:
				s.Duplicates++
			case r.Unchanged:
				s.Unchanged++
			default:
				s.Stored++
			}
		}
	})
	for i, it := range batch {
		it.ticket.finish(results[i], nil)
	}
	if w.opts.OnCommit != nil && len(stored) > 0 {
		w.opts.OnCommit(stored)
	}
	sh.trimCache(batch)
	return nil
}

// maxCachedRosters bounds the writer's memory: beyond it, rosters of groups
// not in the current batch are dropped and reloaded when next needed.
const maxCachedRosters = 4096

func (sh *shard) trimCache(batch []*item) {
	if len(sh.groups) <= maxCachedRosters {
		return
	}
	inBatch := map[string]bool{}
	for _, it := range batch {
		inBatch[it.rec.GroupKey] = true
	}
	for k, g := range sh.groups {
		if len(sh.groups) <= maxCachedRosters*3/4 {
			break
		}
		if !inBatch[k] {
			g.roster = nil
			delete(sh.groups, k)
		}
	}
}

func existingKeys(tx *gorm.DB, batch []*item) (map[string]bool, error) {
	keys := make([]string, 0, len(batch))
	for _, it := range batch {
		keys = append(keys, it.rec.DedupKey)
	}
	found := make(map[string]bool, len(batch))
	for start := 0; start < len(keys); start += 500 {
		end := min(start+500, len(keys))
		var have []string
		if err := tx.Model(&evidenceRow{}).Where("dedup_key IN ?", keys[start:end]).Pluck("dedup_key", &have).Error; err != nil {
			return nil, fmt.Errorf("look up duplicates: %w", err)
		}
		for _, k := range have {
			found[k] = true
		}
	}
	return found, nil
}

// group returns the writer's state of a group, loading the chain head, the
// group row and the roster history on first use.
func (sh *shard) group(tx *gorm.DB, key string) (*groupState, error) {
	if g, ok := sh.groups[key]; ok && g.roster != nil {
		return g, nil
	}
	g := &groupState{seq: 0, hash: GenesisHash}
	var head evidenceRow
	if err := tx.Select("chain_seq", "hash").Where("group_key = ?", key).Order("chain_seq DESC").Limit(1).Find(&head).Error; err != nil {
		return nil, fmt.Errorf("load chain head of %s: %w", key, err)
	}
	if head.ChainSeq > 0 {
		g.seq, g.hash = head.ChainSeq, head.Hash
	}
	var cg ChatGroup
	if err := tx.Where("group_key = ?", key).Limit(1).Find(&cg).Error; err != nil {
		return nil, fmt.Errorf("load group %s: %w", key, err)
	}
	if cg.GroupKey != "" {
		g.known, g.name, g.lastFull, g.disbanded = true, cg.Name, cg.LastRosterUS, cg.Disbanded
	}
	r, err := loadRoster(tx.Statement.Context, tx, key)
	if err != nil {
		return nil, err
	}
	g.roster = r
	sh.groups[key] = g
	return g, nil
}

// applyToRoster updates the roster history for an event and returns the new
// observations. keep is false for a roster snapshot that adds nothing.
func applyToRoster(g *groupState, it *item, seq int64) (states []MemberState, keep bool) {
	r := &it.rec
	t := r.OccurredUS
	add := func(acc string, o obs, cause string) {
		g.roster.add(acc, o)
		states = append(states, MemberState{GroupKey: r.GroupKey, AccountID: acc, AtUS: o.at, Present: o.present,
			Role: string(o.role), Nick: o.nick, Card: o.card, JoinedUS: o.joined, Cause: cause, RecordSeq: seq})
	}
	prev := func(acc string) obs {
		o, _ := g.roster.at(acc, t)
		return o
	}
	ev := it.ev
	switch ev.Kind {
	case bot.KindRoster:
		before := g.roster.presentAt(t)
		seen := make(map[string]bool, len(ev.Roster.Members))
		for _, m := range ev.Roster.Members {
			m = cleanMember(m)
			seen[m.ID] = true
			role := m.Role
			if !role.Valid() {
				role = bot.RoleUnknown
			}
			o := obs{at: t, present: true, role: role, nick: m.Nick, card: m.Card}
			if !m.JoinedAt.IsZero() {
				o.joined = m.JoinedAt.UnixMicro()
			}
			if p, ok := before[m.ID]; ok && p.role == o.role && p.nick == o.nick && p.card == o.card && (o.joined == 0 || p.joined == o.joined) {
				continue
			}
			add(m.ID, o, string(ev.Kind))
		}
		if ev.Roster.Complete {
			for acc, p := range before {
				if !seen[acc] {
					add(acc, obs{at: t, present: false, role: p.role, nick: p.nick, card: p.card, joined: p.joined}, "left")
				}
			}
		}
		if len(states) == 0 && g.lastFull > 0 && t-g.lastFull < rosterAttestEvery.Microseconds() {
			return nil, false
		}
	case bot.KindJoin:
		m := cleanMember(ev.Member.Member)
		role := m.Role
		if !role.Valid() || role == bot.RoleUnknown {
			role = bot.RoleMember
		}
		add(m.ID, obs{at: t, present: true, role: role, nick: m.Nick, card: m.Card, joined: t}, string(ev.Kind))
	case bot.KindLeave, bot.KindKick:
		p := prev(ev.Member.Member.ID)
		add(ev.Member.Member.ID, obs{at: t, present: false, role: p.role, nick: p.nick, card: p.card, joined: p.joined}, string(ev.Kind))
	case bot.KindRoleChange:
		m := cleanMember(ev.Member.Member)
		p := prev(m.ID)
		add(m.ID, obs{at: t, present: true, role: ev.Member.NewRole, nick: or(m.Nick, p.nick), card: or(m.Card, p.card), joined: p.joined}, string(ev.Kind))
	case bot.KindCardChange:
		m := cleanMember(ev.Member.Member)
		p := prev(m.ID)
		role := p.role
		if role == "" {
			role = bot.RoleUnknown
		}
		add(m.ID, obs{at: t, present: true, role: role, nick: or(m.Nick, p.nick), card: clean(ev.Member.NewCard), joined: p.joined}, string(ev.Kind))
	case bot.KindDisband:
		for acc, p := range g.roster.presentAt(t) {
			add(acc, obs{at: t, present: false, role: p.role, nick: p.nick, card: p.card, joined: p.joined}, string(ev.Kind))
		}
	}
	return states, true
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// insertChunk is how many rows go into one INSERT statement. The pure-Go
// SQLite driver matches every bound parameter against every argument
// (quadratic in the statement's parameters), so with 31 columns small
// statements win there; the servers prefer large ones. Measured with
// BenchmarkIngest; see README.
func insertChunk(driver string) int {
	switch driver {
	case SQLite:
		return 8
	default:
		return 200
	}
}

// insertRecords writes records with plain multi-row INSERTs on the
// transaction's connection: the ids are not needed back, and skipping
// gorm's reflection and RETURNING halves the cost of a batch. The
// full-chunk statement is prepared once per batch, since parsing a wide
// INSERT costs the pure-Go SQLite more than executing it.
func insertRecords(tx *gorm.DB, driver string, recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx := tx.Statement.Context
	pool := tx.Statement.ConnPool
	if driver == Postgres {
		return insertRecordsPG(ctx, pool, recs)
	}
	chunk := insertChunk(driver)
	args := make([]any, 0, min(chunk, len(recs))*len(evidenceColumns))
	var full *sql.Stmt
	if len(recs) >= 2*chunk {
		st, err := pool.PrepareContext(ctx, insertSQL(driver, "evidence", evidenceColumns, chunk))
		if err != nil {
			return fmt.Errorf("prepare evidence insert: %w", err)
		}
		defer st.Close()
		full = st
	}
	for start := 0; start < len(recs); start += chunk {
		end := min(start+chunk, len(recs))
		args = args[:0]
		for _, r := range recs[start:end] {
			args = rowArgs(args, r)
		}
		var err error
		if full != nil && end-start == chunk {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = pool.ExecContext(ctx, insertSQL(driver, "evidence", evidenceColumns, end-start), args...)
		}
		if err != nil {
			return fmt.Errorf("insert evidence: %w", err)
		}
	}
	return nil
}

// insertRecordsPG sends a whole batch as one array per column and lets
// PostgreSQL unnest them: eleven parameters instead of eleven per row.
func insertRecordsPG(ctx context.Context, pool gorm.ConnPool, recs []*Record) error {
	n := len(recs)
	var (
		groups, kinds, actors, msgs, dedups, texts, metas, hashes = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs, times = make([]int64, n), make([]int64, n)
		raws        = make([][]byte, n)
	)
	for i, r := range recs {
		groups[i], seqs[i], kinds[i], times[i], actors[i], msgs[i] = r.GroupKey, r.ChainSeq, r.Kind, r.OccurredUS, r.ActorID, r.MsgID
		dedups[i], texts[i], metas[i], hashes[i] = r.DedupKey, r.Text, metaJSON(r), r.Hash
		raws[i] = r.Raw
		if raws[i] == nil {
			raws[i] = []byte{}
		}
	}
	const q = `INSERT INTO evidence (group_key, chain_seq, kind, occurred_us, actor_id, msg_id, dedup_key, text, meta, raw, hash)
SELECT * FROM unnest($1::varchar[], $2::bigint[], $3::varchar[], $4::bigint[], $5::varchar[], $6::varchar[], $7::varchar[], $8::text[], $9::text[], $10::bytea[], $11::varchar[])`
	if _, err := pool.ExecContext(ctx, q, groups, seqs, kinds, times, actors, msgs, dedups, texts, metas, raws, hashes); err != nil {
		return fmt.Errorf("insert evidence: %w", err)
	}
	return nil
}

// insertSQL builds "INSERT INTO t (cols) VALUES (...),(...)" with the
// dialect's placeholders.
func insertSQL(driver, table string, cols []string, rows int) string {
	var b strings.Builder
	b.Grow(64 + rows*len(cols)*5)
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES ")
	n := 0
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			n++
			if driver == Postgres {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

func applyGroupUpdates(tx *gorm.DB, updates map[string]*groupUpdate) error {
	for key, up := range updates {
		if up.insert != nil {
			g := *up.insert
			if up.name != nil {
				g.Name = *up.name
			}
			if up.lastFull != nil {
				g.LastRosterUS = *up.lastFull
			}
			g.Disbanded = up.disband
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&g).Error; err != nil {
				return fmt.Errorf("record group %s: %w", key, err)
			}
			continue
		}
		cols := map[string]any{}
		if up.name != nil {
			cols["name"] = *up.name
		}
		if up.lastFull != nil {
			cols["last_roster_us"] = *up.lastFull
		}
		if up.disband {
			cols["disbanded"] = true
		}
		if len(cols) == 0 {
			continue
		}
		if err := tx.Model(&ChatGroup{}).Where("group_key = ?", key).Updates(cols).Error; err != nil {
			return fmt.Errorf("update group %s: %w", key, err)
		}
	}
	return nil
}
