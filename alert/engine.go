// Package alert turns stored detections into alerts that trust-and-safety
// staff can live with, and delivers them durably.
//
// The engine reads new detections from the store by id (a cursor kept in
// the store, woken promptly by the pipeline and by a poll), so a crash
// between storing a detection and alerting on it loses nothing. Each
// malicious detection joins the firing alert with its fingerprint
// (category, platform, group and, where known, the target shop) or starts
// a new one; alerts carry the organisers with the roles they held when
// acting, the group's owner and admins now, target shops and links, and
// excerpts with the matched words marked. The whole history stays in the
// store.
//
// Notifications follow Prometheus Alertmanager: a routing tree (matchers,
// continue, group_by, group_wait, group_interval, repeat_interval, mute and
// active time intervals), inhibition rules, silences and a notification log
// that keeps a receiver from being told the same thing before
// repeat_interval. Acknowledged alerts are not repeated. Each notification
// is written to an outbox in the same transaction that records it in the
// notification log, and a Sender delivers the outbox with retries,
// backoff, jitter and dead letters.
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qunshao/qunshao/alert/notify"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/nlp"
	"github.com/qunshao/qunshao/storage"
)

// CursorName is the engine's cursor over the detections table.
const CursorName = "alert_engine.detections"

const (
	batchSize = 500
	// gapWait is how long a hole in the detection ids is looked after: on
	// PostgreSQL and MySQL a transaction that took a lower id can commit
	// after a higher one (the pipeline's workers insert concurrently). A
	// hole still empty after this is taken as a rolled-back insert.
	gapWait = 30 * time.Second
	// maxGaps bounds the holes remembered (a sequence that jumped).
	maxGaps = 5000
)

// Options configure an Engine.
type Options struct {
	Config Config
	Store  *storage.Store
	// Receivers are the integrations of each receiver; nil builds them
	// from Config, with terminal receivers writing to Terminal.
	Receivers Integrations
	Terminal  io.Writer
	Clock     Clock
	Log       *slog.Logger
	// Suppress keeps a detection from alerting when it returns true (an
	// import run with --no-alert: rec.SourceFile names the imported file).
	// rec is the detection's evidence record, nil if it was not found.
	Suppress func(ctx context.Context, d *storage.Detection, rec *storage.Record) bool
	// Organizers, if set, adds the correlation's organisers of a flagged
	// group (pipeline.Tracker().Organizers).
	Organizers func(group string) []detect.Organizer
	// FromStart makes an engine that has never run read every stored
	// detection; by default it starts after the latest one, so upgrading a
	// database with months of detections does not alert on all of them.
	FromStart bool
	// OnCommitted and OnQueued observe progress (benchmarks): detections
	// taken into alerts, and alerts put into notifications.
	OnCommitted func(ds []storage.Detection)
	OnQueued    func(alertIDs []int64)
}

// liveAlert is an alert as the engine holds it. Once published to the
// engine's maps it is never modified: changes are made on a clone.
type liveAlert struct {
	row    storage.Alert
	det    Details
	labels Labels
}

func (la *liveAlert) clone() *liveAlert {
	return &liveAlert{row: la.row, det: la.det.clone(), labels: la.labels}
}

type inhibitRule struct {
	source, target Matchers
	equal          []string
}

type silence struct {
	id            int64
	matchers      Matchers
	starts, ends  time.Time
	createdBy     string
	comment       string
	matcherString []string
}

// aggGroup is an aggregation group: the alerts of one route with the same
// values of its group_by labels.
type aggGroup struct {
	route   *route
	key     string
	hash    string
	labels  Labels
	alerts  map[int64]*liveAlert
	next    time.Time
	flushed bool
}

// staffEntry caches a group's owner and admins "now"; staffTTL is how
// long that stays now.
type staffEntry struct {
	people []notify.Person
	at     time.Time
}

const staffTTL = time.Minute

type nflogEntry struct {
	firing, resolved map[int64]bool
	sent             time.Time
}

// Stats are running totals.
type Stats struct {
	Detections, Suppressed, AlertsCreated, AlertsResolved, Notifications int64
}

// Engine is the alert engine.
type Engine struct {
	cfg          Config
	opts         Options
	st           *storage.Store
	clock        Clock
	log          *slog.Logger
	root         *route
	inhibit      []inhibitRule
	ivals        intervals
	integrations Integrations
	sender       *Sender
	wake         chan struct{}

	mu sync.Mutex
	// Detections up to low are done (the durable cursor); those above it
	// up to high are done except the ids in gaps, which had not committed
	// when the engine read past them.
	low, high     int64
	gaps          map[int64]time.Time
	seenBefore    int64 // the latest detection id when the engine started
	live          map[int64]*liveAlert
	byGroup       map[string][]int64 // category|group → firing alert ids
	operatorSince int64
	operatorSeen  map[int64]int64
	silences      []silence
	groups        map[string]*aggGroup
	member        map[int64]map[string]bool
	staff         map[string]staffEntry
	nflog         map[string]*nflogEntry
	lastPrune     time.Time
	lastSync      time.Time

	detections, suppressed, created, resolved, queued atomic.Int64
}

// New loads the engine's state from the store: cursor, firing alerts,
// notification log, silences. Aggregation groups are rebuilt from the
// firing alerts (and those that resolved since receivers were last told),
// and the notification log keeps the rebuilt groups from repeating what
// was already sent.
func New(ctx context.Context, opts Options) (*Engine, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alerts config: %w", err)
	}
	if opts.Store == nil {
		return nil, errors.New("alert engine needs a store")
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	root, err := compileRoutes(cfg.Route)
	if err != nil {
		return nil, err
	}
	ivals, err := compileIntervals(cfg.TimeIntervals)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, opts: opts, st: opts.Store, clock: opts.Clock, log: opts.Log, root: root, ivals: ivals,
		wake: make(chan struct{}, 1), gaps: map[int64]time.Time{}, live: map[int64]*liveAlert{},
		byGroup: map[string][]int64{}, operatorSeen: map[int64]int64{}, groups: map[string]*aggGroup{},
		member: map[int64]map[string]bool{}, nflog: map[string]*nflogEntry{}, staff: map[string]staffEntry{}}
	for _, r := range cfg.InhibitRules {
		src, err := ParseMatchers(r.SourceMatchers)
		if err != nil {
			return nil, err
		}
		tgt, err := ParseMatchers(r.TargetMatchers)
		if err != nil {
			return nil, err
		}
		e.inhibit = append(e.inhibit, inhibitRule{source: src, target: tgt, equal: r.Equal})
	}
	e.integrations = opts.Receivers
	if e.integrations == nil {
		deps, err := cfg.Deps()
		if err != nil {
			return nil, err
		}
		term := opts.Terminal
		if term == nil {
			term = os.Stdout
		}
		if e.integrations, err = BuildReceivers(cfg, deps, term); err != nil {
			return nil, err
		}
	}
	for _, name := range root.receivers() {
		if _, ok := e.integrations[name]; !ok {
			return nil, fmt.Errorf("alerts: route uses receiver %q which has no integrations built", name)
		}
	}
	e.sender = newSender(e.st, cfg.Delivery, e.integrations, e.clock, e.log, cfg.PollInterval)
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) load(ctx context.Context) error {
	cur, err := e.st.AlertCursor(ctx, CursorName)
	if err != nil {
		return err
	}
	if cur == 0 && !e.opts.FromStart {
		if cur, err = e.st.MaxDetectionID(ctx); err != nil {
			return err
		}
		if cur > 0 {
			e.log.Info("alert engine starts after the detections already stored", "detection_id", cur)
		}
		if err := e.st.SaveAlerts(ctx, storage.AlertBatch{Cursor: CursorName, CursorValue: cur}); err != nil {
			return err
		}
	}
	e.low, e.high = cur, cur
	if e.seenBefore, err = e.st.MaxDetectionID(ctx); err != nil {
		return err
	}
	if e.operatorSince, err = e.st.MaxAlertOperatorUS(ctx); err != nil {
		return err
	}
	logs, err := e.st.NotificationLogs(ctx)
	if err != nil {
		return err
	}
	notified := map[int64]bool{}
	for _, l := range logs {
		en := &nflogEntry{firing: idSet(l.Firing), resolved: idSet(l.Resolved), sent: time.UnixMicro(l.SentUS)}
		e.nflog[l.Receiver+"\x00"+l.GroupHash] = en
		for id := range en.firing {
			notified[id] = true
		}
	}
	open, err := e.st.Alerts(ctx, storage.AlertFilter{Status: storage.AlertFiring, Limit: 1 << 30})
	if err != nil {
		return err
	}
	now := e.clock.Now()
	for i := range open {
		la := newLive(open[i])
		e.publish(la)
		e.insert(la, now)
		delete(notified, la.row.ID)
	}
	// Alerts receivers were told fire but that resolved since: they must
	// hear about the resolution.
	if len(notified) > 0 {
		ids := sortedIDs(notified)
		for len(ids) > 0 {
			n := min(len(ids), 500)
			rows, err := e.st.Alerts(ctx, storage.AlertFilter{IDs: ids[:n], Limit: n})
			if err != nil {
				return err
			}
			for i := range rows {
				if rows[i].Status == storage.AlertResolved {
					e.insert(newLive(rows[i]), now)
				}
			}
			ids = ids[n:]
		}
	}
	return e.loadSilences(ctx, now)
}

func newLive(a storage.Alert) *liveAlert {
	return &liveAlert{row: a, det: decodeDetails(a.Details), labels: decodeLabels(a.Labels)}
}

func idSet(s string) map[int64]bool {
	var ids []int64
	_ = json.Unmarshal([]byte(s), &ids)
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func idJSON(m map[int64]bool) string {
	b, _ := json.Marshal(sortedIDs(m))
	return string(b)
}

// Sender returns the outbox sender.
func (e *Engine) Sender() *Sender { return e.sender }

// Stats returns running totals.
func (e *Engine) Stats() Stats {
	return Stats{Detections: e.detections.Load(), Suppressed: e.suppressed.Load(), AlertsCreated: e.created.Load(),
		AlertsResolved: e.resolved.Load(), Notifications: e.queued.Load()}
}

// Notify wakes the engine to read new detections. It never blocks, so the
// pipeline can call it for every verdict.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// OnVerdict is a pipeline.Options.OnVerdict that wakes the engine.
func (e *Engine) OnVerdict(*storage.Detection, *detect.Verdict) { e.Notify() }

// Run processes detections, times out, flushes groups and delivers the
// outbox until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.sender.Run(ctx)
	}()
	defer func() { <-done }()
	for {
		// A few batches, then the flush: when the engine is behind, alerts
		// raised early go out without waiting for it to catch up, and the
		// flush is not paid for every batch.
		more := true
		var err error
		for i := 0; i < 4 && more && err == nil; i++ {
			more, err = e.processBatch(ctx)
		}
		if err != nil && ctx.Err() == nil {
			e.log.Error("alert engine: reading detections", "err", err)
		}
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("alert engine", "err", err)
		}
		if more && err == nil && ctx.Err() == nil {
			continue
		}
		wait := e.nextWake()
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
			// Let the pipeline's next detections arrive too: one engine
			// transaction per window instead of one per detection batch
			// keeps the database (SQLite has one writer) free for the
			// evidence.
			select {
			case <-ctx.Done():
				return nil
			case <-e.clock.After(coalesce):
			}
		case <-e.clock.After(wait):
		}
	}
}

// coalesce is how long the engine waits after being woken before it
// reads the new detections.
const coalesce = 20 * time.Millisecond

// nextWake is how long the engine may sleep: until the next group flush
// or resolve timeout, at most the poll interval.
func (e *Engine) nextWake() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	wait := e.cfg.PollInterval
	for _, g := range e.groups {
		if d := g.next.Sub(now); d < wait {
			wait = d
		}
	}
	return max(wait, 0)
}

// Process takes every new detection into alerts. It returns how many
// detections it read.
func (e *Engine) Process(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := e.batch(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// processBatch takes in one batch of new detections and says whether
// more may be waiting.
func (e *Engine) processBatch(ctx context.Context) (bool, error) {
	_, more, err := e.batch(ctx)
	return more, err
}

// batch takes in the detections that filled holes since the last call and
// the next batch of new ones.
func (e *Engine) batch(ctx context.Context) (int, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	var late []storage.Detection
	if len(e.gaps) > 0 {
		ids := make([]int64, 0, len(e.gaps))
		for id, since := range e.gaps {
			if now.Sub(since) >= gapWait {
				delete(e.gaps, id) // never committed
				continue
			}
			ids = append(ids, id)
		}
		var err error
		if late, err = e.st.DetectionsByID(ctx, ids); err != nil {
			return 0, false, err
		}
	}
	ds, err := e.st.DetectionsAfter(ctx, e.high, batchSize)
	if err != nil {
		return 0, false, err
	}
	full := len(ds) == batchSize
	high, gaps := e.high, map[int64]time.Time{}
	for _, d := range ds {
		for id := high + 1; id < d.ID && len(e.gaps)+len(gaps) < maxGaps; id++ {
			gaps[id] = now
		}
		high = d.ID
	}
	for _, d := range late {
		delete(gaps, d.ID)
	}
	all := append(late, ds...)
	// After a restart the engine reads again from its durable cursor:
	// detections an alert already took are not taken twice. Only those
	// stored before this engine started can have been.
	ids := make([]int64, 0, len(all))
	for _, d := range all {
		if detect.Malicious(d.Label) && d.ID <= e.seenBefore {
			ids = append(ids, d.ID)
		}
	}
	linked, err := e.st.LinkedDetections(ctx, ids)
	if err != nil {
		return 0, false, err
	}
	fresh := all[:0:0]
	for _, d := range all {
		if !linked[d.ID] {
			fresh = append(fresh, d)
		}
	}
	// The holes still open after this batch, and the durable cursor:
	// everything below the oldest open hole is done.
	open := make(map[int64]time.Time, len(e.gaps)+len(gaps))
	for id, t := range e.gaps {
		open[id] = t
	}
	for id, t := range gaps {
		open[id] = t
	}
	for _, d := range late {
		delete(open, d.ID)
	}
	low := high
	for id := range open {
		low = min(low, id-1)
	}
	low = max(low, e.low)
	if len(all) == 0 && low == e.low {
		e.gaps = open
		return 0, false, nil
	}
	if err := e.apply(ctx, fresh, low); err != nil {
		return 0, false, err
	}
	e.high, e.low, e.gaps = high, low, open
	return len(all), full, nil
}

func (e *Engine) apply(ctx context.Context, ds []storage.Detection, cursor int64) error {
	for attempt := 0; ; attempt++ {
		err := e.applyOnce(ctx, ds, cursor)
		if err == nil || !errors.Is(err, storage.ErrAlertConflict) || attempt >= 3 {
			return err
		}
		// An operator resolved an alert this batch wanted to extend.
		if err := e.reloadLive(ctx); err != nil {
			return err
		}
	}
}

// applyOnce builds the batch's alert changes on clones and commits them
// with the cursor; only then are they published.
func (e *Engine) applyOnce(ctx context.Context, ds []storage.Detection, cursor int64) error {
	now := e.clock.Now()
	var malicious []int
	var keys []storage.RecordKey
	for i := range ds {
		if d := &ds[i]; detect.Malicious(d.Label) {
			malicious = append(malicious, i)
			keys = append(keys, storage.RecordKey{GroupKey: d.GroupKey, ChainSeq: d.ChainSeq})
		}
	}
	var recs map[storage.RecordKey]storage.Record
	if len(keys) > 0 {
		var err error
		if recs, err = e.st.RecordsAt(ctx, keys); err != nil {
			return err
		}
	}
	var relevant []int
	groupSet := map[string]bool{}
	suppressed := 0
	for _, i := range malicious {
		d := &ds[i]
		if e.opts.Suppress != nil {
			var rec *storage.Record
			if r, ok := recs[storage.RecordKey{GroupKey: d.GroupKey, ChainSeq: d.ChainSeq}]; ok {
				rec = &r
			}
			if e.opts.Suppress(ctx, d, rec) {
				suppressed++
				continue
			}
		}
		relevant = append(relevant, i)
		groupSet[d.GroupKey] = true
	}
	var groups map[string]storage.ChatGroup
	staff := map[string][]notify.Person{}
	if len(relevant) > 0 {
		var err error
		gl := make([]string, 0, len(groupSet))
		for g := range groupSet {
			gl = append(gl, g)
		}
		if groups, err = e.st.ChatGroupsByKey(ctx, gl); err != nil {
			return err
		}
		var stale []string
		for _, g := range gl {
			if c, ok := e.staff[g]; ok && now.Sub(c.at) < staffTTL {
				staff[g] = c.people
			} else {
				stale = append(stale, g)
			}
		}
		if len(stale) > 0 {
			fresh, err := e.st.StaffOfGroups(ctx, stale, now)
			if err != nil {
				return err
			}
			for _, g := range stale {
				staff[g] = staffPeople(fresh[g])
				e.staff[g] = staffEntry{people: staff[g], at: now}
			}
		}
		if len(e.staff) > 100000 {
			e.staff = map[string]staffEntry{}
		}
	}

	work := map[*liveAlert]bool{}
	cloned := map[int64]*liveAlert{}
	batchNew := map[string][]*liveAlert{} // category|group → alerts created in this batch
	var fresh []string
	var links []storage.AlertLink
	for _, i := range relevant {
		d := &ds[i]
		p := parseDetection(d)
		shop := p.shop()
		la := e.find(d, shop, cloned, batchNew)
		if la == nil {
			fp := Fingerprint(d.Label, platformOf(d.GroupKey), d.GroupKey, shop)
			fresh = append(fresh, fp)
			la = &liveAlert{row: storage.Alert{Fingerprint: fp, Category: d.Label,
				Platform: platformOf(d.GroupKey), GroupKey: d.GroupKey, Shop: shop, Severity: d.Severity,
				Status: storage.AlertFiring, StartsUS: d.OccurredUS, LastSeenUS: d.OccurredUS,
				FirstDetectionID: d.ID, CreatedUS: now.UnixMicro()},
				det: Details{GroupID: groupIDOf(d.GroupKey)}}
			k := d.Label + "|" + d.GroupKey
			batchNew[k] = append(batchNew[k], la)
		}
		work[la] = true
		var rec *storage.Record
		if r, ok := recs[storage.RecordKey{GroupKey: d.GroupKey, ChainSeq: d.ChainSeq}]; ok {
			rec = &r
		}
		e.update(la, d, p, rec, groups[d.GroupKey], staff[d.GroupKey], now)
		links = append(links, storage.AlertLink{Alert: &la.row, DetectionID: d.ID})
	}
	// Episodes of the new alerts: one after the last of each fingerprint.
	if len(fresh) > 0 {
		eps, err := e.st.MaxAlertEpisodes(ctx, fresh)
		if err != nil {
			return err
		}
		for _, list := range batchNew {
			for _, la := range list {
				eps[la.row.Fingerprint]++
				la.row.Episode = eps[la.row.Fingerprint]
			}
		}
	}
	batch := storage.AlertBatch{Links: links, Cursor: CursorName, CursorValue: cursor}
	changed := make([]*liveAlert, 0, len(work))
	for la := range work {
		changed = append(changed, la)
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].row.FirstDetectionID < changed[j].row.FirstDetectionID })
	for _, la := range changed {
		if e.opts.Organizers != nil {
			for _, o := range e.opts.Organizers(la.row.GroupKey) {
				la.det.mergeOrganizer(o)
			}
		}
		la.labels = labelsFor(&la.row, &la.det, e.cfg.GroupLabels)
		la.row.Labels = encodeLabels(la.labels)
		la.row.Details = la.det.encode()
		la.row.UpdatedUS = now.UnixMicro()
		batch.Alerts = append(batch.Alerts, &la.row)
	}
	created := 0
	for _, la := range changed {
		if la.row.ID == 0 {
			created++
		}
	}
	if err := e.st.SaveAlerts(ctx, batch); err != nil {
		return err
	}
	e.detections.Add(int64(len(ds)))
	e.suppressed.Add(int64(suppressed))
	e.created.Add(int64(created))
	for _, la := range changed {
		e.publish(la)
		e.insert(la, now)
	}
	if e.opts.OnCommitted != nil {
		e.opts.OnCommitted(ds)
	}
	return nil
}

// find returns the alert a detection joins (cloned for this batch), or nil
// for a new one. With a shop, the firing alert of that category and group
// for the same shop; without, the most recently active one of that
// category and group.
func (e *Engine) find(d *storage.Detection, shop string, cloned map[int64]*liveAlert, batchNew map[string][]*liveAlert) *liveAlert {
	k := d.Label + "|" + d.GroupKey
	var cands []*liveAlert
	for _, id := range e.byGroup[k] {
		if c, ok := cloned[id]; ok {
			cands = append(cands, c)
		} else {
			cands = append(cands, e.live[id])
		}
	}
	cands = append(cands, batchNew[k]...)
	var best, shopless *liveAlert
	for _, c := range cands {
		if shop != "" {
			if c.row.Shop == shop || sameShop(c.row.Shop, shop) {
				best = c
				break
			}
			if c.row.Shop == "" && (shopless == nil || c.row.ActiveUS > shopless.row.ActiveUS) {
				shopless = c
			}
			continue
		}
		if best == nil || c.row.ActiveUS > best.row.ActiveUS || (c.row.ActiveUS == best.row.ActiveUS && c.row.ID == 0) {
			best = c
		}
	}
	if best == nil && shopless != nil {
		// A campaign that names its target only later stays one alert:
		// the alert takes the shop, its fingerprint stays what it was.
		best = shopless
	}
	if best == nil {
		return nil
	}
	if best.row.ID != 0 {
		if c, ok := cloned[best.row.ID]; ok {
			best = c
		} else {
			c := best.clone()
			cloned[best.row.ID] = c
			best = c
		}
	}
	if best.row.Shop == "" && shop != "" {
		best.row.Shop = shop
	}
	return best
}

// update adds a detection to an alert.
func (e *Engine) update(la *liveAlert, d *storage.Detection, p parsed, rec *storage.Record, g storage.ChatGroup, staff []notify.Person, now time.Time) {
	r := &la.row
	r.DetectionCount++
	r.LastSeenUS = max(r.LastSeenUS, d.OccurredUS)
	r.StartsUS = min(r.StartsUS, d.OccurredUS)
	r.ActiveUS = now.UnixMicro()
	r.LastDetectionID = d.ID
	if notify.SeverityRank(d.Severity) > notify.SeverityRank(r.Severity) {
		r.Severity = d.Severity
	}
	det := &la.det
	if g.Name != "" {
		det.GroupName = g.Name
	} else if rec != nil && rec.GroupName != "" {
		det.GroupName = rec.GroupName
	}
	if det.GroupID == "" {
		det.GroupID = groupIDOf(d.GroupKey)
	}
	det.Staff, det.StaffAt = staff, now.UTC()
	for _, en := range p.entities {
		switch {
		case en.Type == nlp.EntShop:
			det.Shops = addUnique(det.Shops, en.Value)
		case linkTypes[en.Type]:
			det.Links = addUnique(det.Links, en.Value)
		}
	}
	ex := excerpt(d, p, rec)
	det.addExcerpt(ex)
	for _, id := range ex.Rules {
		if len(det.Rules) < maxRules {
			det.Rules = addUniqueN(det.Rules, id, maxRules)
		}
	}
	det.Risk = d.Risk
	det.MaxScore = max(det.MaxScore, d.Score)
	if organizerLabels[d.Label] {
		det.addOrganizer(d.SenderID, ex.SenderNick, d.SenderRole, 1)
	}
}

func addUniqueN(list []string, v string, n int) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= n {
		return list
	}
	return append(list, v)
}

// mergeOrganizer adds an organiser found by the correlation.
func (d *Details) mergeOrganizer(o detect.Organizer) {
	for i := range d.Organizers {
		p := &d.Organizers[i]
		if p.ID != o.ID {
			continue
		}
		for _, r := range o.Roles {
			if r != p.Role && !contains(p.Roles, r) {
				if len(p.Roles) == 0 {
					p.Roles = []string{p.Role}
				}
				p.Roles = append(p.Roles, r)
			}
		}
		p.Messages = max(p.Messages, len(o.Messages))
		return
	}
	if len(d.Organizers) >= maxListed || len(o.Roles) == 0 {
		return
	}
	p := notify.Person{ID: o.ID, Role: o.Roles[len(o.Roles)-1], Messages: len(o.Messages)}
	if len(o.Roles) > 1 {
		p.Roles = append([]string(nil), o.Roles...)
	}
	d.Organizers = append(d.Organizers, p)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// publish makes la the current version of a firing alert.
func (e *Engine) publish(la *liveAlert) {
	id := la.row.ID
	_, known := e.live[id]
	e.live[id] = la
	if !known {
		k := la.row.Category + "|" + la.row.GroupKey
		e.byGroup[k] = append(e.byGroup[k], id)
	}
}

// unpublish forgets a firing alert that resolved.
func (e *Engine) unpublish(id int64) {
	la, ok := e.live[id]
	if !ok {
		return
	}
	delete(e.live, id)
	k := la.row.Category + "|" + la.row.GroupKey
	ids := e.byGroup[k]
	for i, x := range ids {
		if x == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(e.byGroup, k)
	} else {
		e.byGroup[k] = ids
	}
}

// reloadLive replaces the firing alerts with what the store says,
// telling receivers about those that resolved meanwhile.
func (e *Engine) reloadLive(ctx context.Context) error {
	open, err := e.st.Alerts(ctx, storage.AlertFilter{Status: storage.AlertFiring, Limit: 1 << 30})
	if err != nil {
		return err
	}
	now := e.clock.Now()
	still := map[int64]bool{}
	for i := range open {
		still[open[i].ID] = true
	}
	var gone []int64
	for id := range e.live {
		if !still[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		rows, err := e.st.Alerts(ctx, storage.AlertFilter{IDs: gone, Limit: len(gone)})
		if err != nil {
			return err
		}
		for i := range rows {
			e.unpublish(rows[i].ID)
			e.insert(newLive(rows[i]), now)
		}
	}
	for i := range open {
		if cur, ok := e.live[open[i].ID]; !ok || cur.row.UpdatedUS != open[i].UpdatedUS || cur.row.OperatorUS != open[i].OperatorUS {
			la := newLive(open[i])
			e.publish(la)
			e.insert(la, now)
		}
	}
	return nil
}

// Tick picks up operators' actions and silences, resolves alerts that
// timed out, and flushes the aggregation groups that are due.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	var errs []error
	// Operators' actions, silences and timeouts are looked at once a
	// second: the engine is woken for every batch of detections, and
	// these need not be fresher than that.
	if now.Sub(e.lastSync) >= time.Second || now.Before(e.lastSync) {
		e.lastSync = now
		if err := e.syncOperators(ctx, now); err != nil {
			errs = append(errs, err)
		}
		if err := e.loadSilences(ctx, now); err != nil {
			errs = append(errs, err)
		}
		if err := e.resolveTimedOut(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.flush(ctx, now, false); err != nil {
		errs = append(errs, err)
	}
	if now.Sub(e.lastPrune) > time.Hour {
		e.lastPrune = now
		if err := e.pruneNflog(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Drain reads every detection, flushes every group now (ignoring
// group_wait and group_interval, not the notification log) and delivers
// what is due. The demo calls it before it prints its report.
func (e *Engine) Drain(ctx context.Context) error {
	if _, err := e.Process(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	now := e.clock.Now()
	err := errors.Join(e.syncOperators(ctx, now), e.loadSilences(ctx, now), e.flush(ctx, now, true))
	e.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		n, err := e.sender.DeliverDue(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

// syncOperators applies acknowledgements and resolutions made through the
// CLI or the API (possibly by another process).
func (e *Engine) syncOperators(ctx context.Context, now time.Time) error {
	// Look a little further back than the last action seen: another
	// process's clock, or a commit that took long, may order them
	// differently.
	since := max(0, e.operatorSince-int64(10*time.Second/time.Microsecond))
	rows, err := e.st.AlertsChangedByOperator(ctx, since)
	if err != nil {
		return err
	}
	for i := range rows {
		a := rows[i]
		e.operatorSince = max(e.operatorSince, a.OperatorUS)
		if e.operatorSeen[a.ID] == a.OperatorUS {
			continue
		}
		e.operatorSeen[a.ID] = a.OperatorUS
		cur, firing := e.live[a.ID]
		if !firing {
			continue
		}
		la := cur.clone()
		la.row.AckedBy, la.row.AckedUS, la.row.AckComment, la.row.OperatorUS = a.AckedBy, a.AckedUS, a.AckComment, a.OperatorUS
		if a.Status == storage.AlertResolved {
			la.row.Status, la.row.EndsUS, la.row.ResolvedBy, la.row.UpdatedUS = a.Status, a.EndsUS, a.ResolvedBy, a.UpdatedUS
			e.unpublish(a.ID)
			e.resolved.Add(1)
			e.log.Info("alert resolved by operator", "alert", a.ID, "by", a.ResolvedBy)
		} else {
			e.publish(la)
		}
		e.insert(la, now)
	}
	// Old entries can go: an action is only looked for 10s back.
	if len(e.operatorSeen) > 10000 {
		e.operatorSeen = map[int64]int64{}
	}
	return nil
}

func (e *Engine) loadSilences(ctx context.Context, now time.Time) error {
	rows, err := e.st.Silences(ctx, now)
	if err != nil {
		return err
	}
	out := make([]silence, 0, len(rows))
	for _, r := range rows {
		var ss []string
		if err := json.Unmarshal([]byte(r.Matchers), &ss); err != nil {
			e.log.Warn("silence with unreadable matchers ignored", "silence", r.ID)
			continue
		}
		ms, err := ParseMatchers(ss)
		if err != nil || len(ms) == 0 {
			e.log.Warn("silence with bad matchers ignored", "silence", r.ID)
			continue
		}
		out = append(out, silence{id: r.ID, matchers: ms, starts: time.UnixMicro(r.StartsUS), ends: time.UnixMicro(r.EndsUS),
			createdBy: r.CreatedBy, comment: r.Comment, matcherString: ss})
	}
	e.silences = out
	return nil
}

// resolveTimedOut resolves firing alerts that no detection joined for
// resolve_timeout.
func (e *Engine) resolveTimedOut(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-e.cfg.ResolveTimeout).UnixMicro()
	var done []*liveAlert
	for _, la := range e.live {
		if la.row.ActiveUS <= cutoff {
			c := la.clone()
			c.row.Status, c.row.EndsUS, c.row.ResolvedBy, c.row.UpdatedUS = storage.AlertResolved, now.UnixMicro(), "timeout", now.UnixMicro()
			done = append(done, c)
		}
	}
	if len(done) == 0 {
		return nil
	}
	batch := storage.AlertBatch{}
	for _, la := range done {
		batch.Alerts = append(batch.Alerts, &la.row)
	}
	if err := e.st.SaveAlerts(ctx, batch); err != nil {
		if errors.Is(err, storage.ErrAlertConflict) {
			return e.reloadLive(ctx)
		}
		return err
	}
	for _, la := range done {
		e.unpublish(la.row.ID)
		e.insert(la, now)
		e.resolved.Add(1)
	}
	return nil
}

// insert puts the current version of an alert into the aggregation
// groups of the routes it matches (and takes it out of groups it no
// longer matches, when its severity changed).
func (e *Engine) insert(la *liveAlert, now time.Time) {
	id := la.row.ID
	keys := map[string]bool{}
	for _, r := range e.root.match(la.labels) {
		gl := r.groupLabels(la.labels)
		key := r.id + ":" + gl.String()
		keys[key] = true
		g := e.groups[key]
		if g == nil {
			h := sha256.Sum256([]byte(key))
			g = &aggGroup{route: r, key: key, hash: hex.EncodeToString(h[:16]), labels: gl,
				alerts: map[int64]*liveAlert{}, next: now.Add(r.groupWait)}
			e.groups[key] = g
		}
		// As in Alertmanager: an alert older than group_wait (an engine
		// restart) need not wait again.
		if !g.flushed && time.UnixMicro(la.row.CreatedUS).Add(r.groupWait).Before(now) && g.next.After(now) {
			g.next = now
		}
		g.alerts[id] = la
	}
	for old := range e.member[id] {
		if keys[old] {
			continue
		}
		if g := e.groups[old]; g != nil {
			delete(g.alerts, id)
			if len(g.alerts) == 0 {
				delete(e.groups, old)
			}
		}
	}
	e.member[id] = keys
}

// silencedBy returns the silence muting an alert at now, if any.
func (e *Engine) silencedBy(la *liveAlert, now time.Time) *silence {
	for i := range e.silences {
		s := &e.silences[i]
		if !now.Before(s.starts) && now.Before(s.ends) && s.matchers.Matches(la.labels) {
			return s
		}
	}
	return nil
}

// inhibitIndex holds, per inhibit rule, the firing source alerts by the
// values of the rule's equal labels. It is built once per flush.
type inhibitIndex []map[string][]int64

func equalKey(l Labels, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(l[n])
		b.WriteByte(0)
	}
	return b.String()
}

func (e *Engine) inhibitIndex() inhibitIndex {
	idx := make(inhibitIndex, len(e.inhibit))
	for i, r := range e.inhibit {
		idx[i] = map[string][]int64{}
		for id, src := range e.live {
			if r.source.Matches(src.labels) {
				k := equalKey(src.labels, r.equal)
				idx[i][k] = append(idx[i][k], id)
			}
		}
	}
	return idx
}

// inhibited reports whether a firing alert is muted by another firing
// alert through an inhibit rule (an alert never inhibits itself).
func (e *Engine) inhibited(la *liveAlert, idx inhibitIndex) bool {
	if idx == nil {
		idx = e.inhibitIndex()
	}
	for i, r := range e.inhibit {
		if !r.target.Matches(la.labels) {
			continue
		}
		for _, id := range idx[i][equalKey(la.labels, r.equal)] {
			if id != la.row.ID {
				return true
			}
		}
	}
	return false
}

// Muted explains why an alert is not notified now ("" if it is not).
func (e *Engine) Muted(id int64) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	la, ok := e.live[id]
	if !ok {
		return ""
	}
	now := e.clock.Now()
	switch {
	case la.row.AckedBy != "":
		return "acknowledged by " + la.row.AckedBy
	case e.silencedBy(la, now) != nil:
		return "silenced by silence " + strconv.FormatInt(e.silencedBy(la, now).id, 10)
	case e.inhibited(la, nil):
		return "inhibited"
	}
	return ""
}

// needsUpdate is Alertmanager's rule for whether a receiver must be told
// about a group again.
func needsUpdate(entry *nflogEntry, firing, resolved map[int64]bool, repeat time.Duration, sendResolved bool, now time.Time) bool {
	if entry == nil {
		return len(firing) > 0
	}
	if !subset(firing, entry.firing) {
		return true
	}
	if len(firing) == 0 {
		// Everything the receiver was told about has resolved (or it was
		// never told): notify only if it was told something fires.
		return len(entry.firing) > 0
	}
	if sendResolved && !subset(resolved, entry.resolved) {
		return true
	}
	return !now.Before(entry.sent.Add(repeat))
}

func subset(a, b map[int64]bool) bool {
	for id := range a {
		if !b[id] {
			return false
		}
	}
	return true
}

// pendingFlush is a group whose notifications are being committed.
type pendingFlush struct {
	g        *aggGroup
	resolved []int64
	log      *storage.NotificationLog
	entry    *nflogEntry
}

// flush notifies the receivers of the due groups (all groups when force).
// The outbox rows and notification log entries of every group commit in
// one transaction; on failure nothing changes and the groups stay due.
func (e *Engine) flush(ctx context.Context, now time.Time, force bool) error {
	var due []*aggGroup
	for _, g := range e.groups {
		if force || !g.next.After(now) {
			due = append(due, g)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.Slice(due, func(i, j int) bool { return due[i].key < due[j].key })
	idx := e.inhibitIndex()
	var entries []storage.OutboxEntry
	var logs []storage.NotificationLog
	var flushed []pendingFlush
	var queuedAlerts []int64
	for _, g := range due {
		r := g.route
		if e.ivals.active(r.mute, now) || (len(r.active) > 0 && !e.ivals.active(r.active, now)) {
			g.next = now.Add(r.groupInterval)
			continue
		}
		firing, resolved := map[int64]bool{}, map[int64]bool{}
		var included []*liveAlert
		for id, la := range g.alerts {
			if la.row.Status == storage.AlertFiring {
				if la.row.AckedBy != "" || e.silencedBy(la, now) != nil || e.inhibited(la, idx) {
					continue
				}
				firing[id] = true
			} else {
				resolved[id] = true
			}
			included = append(included, la)
		}
		pf := pendingFlush{g: g}
		for id, la := range g.alerts {
			if la.row.Status != storage.AlertFiring {
				pf.resolved = append(pf.resolved, id)
			}
		}
		ints := e.integrations[r.receiver]
		sendResolved := false
		for _, in := range ints {
			sendResolved = sendResolved || in.SendResolved
		}
		nkey := r.receiver + "\x00" + g.hash
		if len(included) > 0 && needsUpdate(e.nflog[nkey], firing, resolved, r.repeatInterval, sendResolved, now) {
			views := make([]notify.Alert, 0, len(included))
			for _, la := range included {
				views = append(views, view(&la.row, &la.det, la.labels, e.cfg.ConsoleURL))
			}
			sortViews(views)
			status := notify.Resolved
			if len(firing) > 0 {
				status = notify.Firing
			}
			fj, rj := idJSON(firing), idJSON(resolved)
			for _, in := range ints {
				if len(firing) == 0 && !in.SendResolved {
					continue
				}
				h := sha256.Sum256([]byte(r.receiver + "\x00" + in.Name + "\x00" + g.hash + "\x00" + fj + "\x00" + rj + "\x00" + strconv.FormatInt(now.UnixNano(), 10)))
				id := hex.EncodeToString(h[:])
				n := notify.Notification{ID: id, Receiver: r.receiver, Integration: in.Name, GroupKey: g.key,
					GroupLabels: g.labels, Status: status, Alerts: views, ConsoleURL: e.cfg.ConsoleURL, CreatedAt: now.UTC()}
				payload, err := json.Marshal(&n)
				if err != nil {
					return err
				}
				entries = append(entries, storage.OutboxEntry{DedupKey: id, Receiver: r.receiver, Integration: in.Name,
					GroupKey: g.key, Payload: string(payload), State: storage.OutboxPending,
					NextAttemptUS: now.UnixMicro(), CreatedUS: now.UnixMicro()})
			}
			pf.log = &storage.NotificationLog{Receiver: r.receiver, GroupHash: g.hash, GroupKey: g.key,
				Firing: fj, Resolved: rj, SentUS: now.UnixMicro()}
			pf.entry = &nflogEntry{firing: firing, resolved: resolved, sent: now}
			logs = append(logs, *pf.log)
			queuedAlerts = append(queuedAlerts, sortedIDs(firing)...)
			queuedAlerts = append(queuedAlerts, sortedIDs(resolved)...)
		}
		flushed = append(flushed, pf)
	}
	if err := e.st.EnqueueNotifications(ctx, entries, logs); err != nil {
		return fmt.Errorf("queue notifications: %w", err)
	}
	e.queued.Add(int64(len(entries)))
	for _, pf := range flushed {
		g := pf.g
		if pf.entry != nil {
			e.nflog[g.route.receiver+"\x00"+g.hash] = pf.entry
		}
		for _, id := range pf.resolved {
			delete(g.alerts, id)
			if m := e.member[id]; m != nil {
				delete(m, g.key)
				if len(m) == 0 {
					delete(e.member, id)
				}
			}
		}
		g.flushed = true
		g.next = now.Add(g.route.groupInterval)
		if len(g.alerts) == 0 {
			delete(e.groups, g.key)
		}
	}
	if len(entries) > 0 {
		e.sender.Wake()
	}
	if e.opts.OnQueued != nil && len(queuedAlerts) > 0 {
		e.opts.OnQueued(queuedAlerts)
	}
	return nil
}

// sortViews puts firing alerts first, then by severity and start.
func sortViews(v []notify.Alert) {
	sort.SliceStable(v, func(i, j int) bool {
		a, b := v[i], v[j]
		if (a.Status == notify.Firing) != (b.Status == notify.Firing) {
			return a.Status == notify.Firing
		}
		if ra, rb := notify.SeverityRank(a.Severity), notify.SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.Before(b.StartsAt)
		}
		return a.ID < b.ID
	})
}

// pruneNflog forgets log entries nobody will consult again: older than
// twice the longest repeat interval and the resolve timeout.
func (e *Engine) pruneNflog(ctx context.Context, now time.Time) error {
	longest := time.Duration(0)
	e.root.walk(func(r *route) { longest = max(longest, r.repeatInterval) })
	keep := 2*longest + e.cfg.ResolveTimeout
	before := now.Add(-keep)
	if _, err := e.st.PruneNotificationLogs(ctx, before.UnixMicro()); err != nil {
		return err
	}
	for k, en := range e.nflog {
		if en.sent.Before(before) {
			delete(e.nflog, k)
		}
	}
	return nil
}
