package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/qunshao/qunshao/bot"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Alerting keeps its state in the same database as the evidence, so that a
// detection, the alert it raised and the notifications about it commit and
// survive together:
//
//   - alerts: the alert history, one row per episode of a fingerprint
//     (category, platform, group and target shop), updated while it fires;
//   - alert_detections: which detections an alert is made of;
//   - alert_silences: operators' silences;
//   - alert_nflog: the notification log (what each receiver was last told
//     about each aggregation group, and when);
//   - alert_outbox: every notification, written before it is sent, with its
//     delivery state, attempts and last error (dead letters stay here);
//   - alert_cursors: how far the alert engine has read the detections.
//
// None of this is evidence: rows are updated as alerts evolve.

// Alert statuses.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert is one alert episode. Labels and Details are JSON owned by the
// alert package.
type Alert struct {
	ID          int64  `gorm:"primaryKey;autoIncrement"`
	Fingerprint string `gorm:"size:64;not null;uniqueIndex:ux_alerts_episode,priority:1"`
	// Episode counts the times this fingerprint fired: an alert that
	// resolved and fires again is a new row.
	Episode  int    `gorm:"not null;uniqueIndex:ux_alerts_episode,priority:2"`
	Category string `gorm:"size:32;not null"`
	Platform string `gorm:"size:16;not null"`
	GroupKey string `gorm:"size:160;not null;index:ix_alerts_group"`
	Shop     string `gorm:"not null"`
	Severity string `gorm:"size:16;not null"`
	Status   string `gorm:"size:16;not null;index:ix_alerts_status"`
	// StartsUS and LastSeenUS are the times of the first and latest
	// messages (platform time); ActiveUS is when the engine last attached
	// a detection (the resolve timeout runs from there); EndsUS is when it
	// resolved.
	StartsUS         int64  `gorm:"not null;index:ix_alerts_starts"`
	LastSeenUS       int64  `gorm:"not null"`
	ActiveUS         int64  `gorm:"not null"`
	EndsUS           int64  `gorm:"not null"`
	ResolvedBy       string `gorm:"size:128;not null"`
	DetectionCount   int64  `gorm:"not null"`
	FirstDetectionID int64  `gorm:"not null"`
	LastDetectionID  int64  `gorm:"not null"`
	AckedBy          string `gorm:"size:128;not null"`
	AckedUS          int64  `gorm:"not null"`
	AckComment       string `gorm:"not null"`
	// OperatorUS is the time of the last operator action (ack, resolve);
	// running engines pick those up by it.
	OperatorUS int64  `gorm:"not null;index:ix_alerts_operator"`
	Labels     string `gorm:"not null"`
	Details    string `gorm:"not null"`
	CreatedUS  int64  `gorm:"not null"`
	UpdatedUS  int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (Alert) TableName() string { return "alerts" }

// AlertDetection links a detection to the alert it is part of. A detection
// belongs to at most one alert.
type AlertDetection struct {
	DetectionID int64 `gorm:"primaryKey;autoIncrement:false"`
	AlertID     int64 `gorm:"not null;index:ix_alert_detections_alert"`
}

// TableName fixes the table name.
func (AlertDetection) TableName() string { return "alert_detections" }

// Silence mutes matching alerts between StartsUS and EndsUS. Matchers is a
// JSON list of matcher strings (category="extortion").
type Silence struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	Matchers  string `gorm:"not null"`
	StartsUS  int64  `gorm:"not null"`
	EndsUS    int64  `gorm:"not null;index:ix_alert_silences_ends"`
	CreatedBy string `gorm:"size:128;not null"`
	Comment   string `gorm:"not null"`
	CreatedUS int64  `gorm:"not null"`
	UpdatedUS int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (Silence) TableName() string { return "alert_silences" }

// NotificationLog is what a receiver was last told about an aggregation
// group: the alert ids that were firing and resolved, and when. Firing and
// Resolved are JSON lists of alert ids.
type NotificationLog struct {
	Receiver  string `gorm:"primaryKey;size:128"`
	GroupHash string `gorm:"primaryKey;size:64"`
	GroupKey  string `gorm:"not null"`
	Firing    string `gorm:"not null"`
	Resolved  string `gorm:"not null"`
	SentUS    int64  `gorm:"not null;index:ix_alert_nflog_sent"`
}

// TableName fixes the table name.
func (NotificationLog) TableName() string { return "alert_nflog" }

// Outbox states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxDead    = "dead"
)

// OutboxEntry is one notification to one receiver integration. It is
// written before anything is sent; the sender claims due rows, delivers
// them and records the outcome. Payload is the notification as JSON.
type OutboxEntry struct {
	ID int64 `gorm:"primaryKey;autoIncrement"`
	// DedupKey is the notification's idempotency key: writing the same
	// notification twice stores it once.
	DedupKey      string `gorm:"size:64;not null;uniqueIndex:ux_alert_outbox_key"`
	Receiver      string `gorm:"size:128;not null"`
	Integration   string `gorm:"size:64;not null"`
	GroupKey      string `gorm:"not null"`
	Payload       string `gorm:"not null"`
	State         string `gorm:"size:16;not null;index:ix_alert_outbox_due,priority:1"`
	NextAttemptUS int64  `gorm:"not null;index:ix_alert_outbox_due,priority:2"`
	LeaseUS       int64  `gorm:"not null"`
	Attempts      int    `gorm:"not null"`
	LastError     string `gorm:"not null"`
	CreatedUS     int64  `gorm:"not null"`
	SentUS        int64  `gorm:"not null"`
	Test          bool   `gorm:"not null"`
}

// TableName fixes the table name.
func (OutboxEntry) TableName() string { return "alert_outbox" }

// AlertCursor is a durable read position.
type AlertCursor struct {
	Name      string `gorm:"primaryKey;size:64"`
	Value     int64  `gorm:"not null"`
	UpdatedUS int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (AlertCursor) TableName() string { return "alert_cursors" }

// Frozen definitions for migration 7 (see migration).

type v7Alert struct {
	ID               int64  `gorm:"primaryKey;autoIncrement"`
	Fingerprint      string `gorm:"size:64;not null;uniqueIndex:ux_alerts_episode,priority:1"`
	Episode          int    `gorm:"not null;uniqueIndex:ux_alerts_episode,priority:2"`
	Category         string `gorm:"size:32;not null"`
	Platform         string `gorm:"size:16;not null"`
	GroupKey         string `gorm:"size:160;not null;index:ix_alerts_group"`
	Shop             string `gorm:"not null"`
	Severity         string `gorm:"size:16;not null"`
	Status           string `gorm:"size:16;not null;index:ix_alerts_status"`
	StartsUS         int64  `gorm:"not null;index:ix_alerts_starts"`
	LastSeenUS       int64  `gorm:"not null"`
	ActiveUS         int64  `gorm:"not null"`
	EndsUS           int64  `gorm:"not null"`
	ResolvedBy       string `gorm:"size:128;not null"`
	DetectionCount   int64  `gorm:"not null"`
	FirstDetectionID int64  `gorm:"not null"`
	LastDetectionID  int64  `gorm:"not null"`
	AckedBy          string `gorm:"size:128;not null"`
	AckedUS          int64  `gorm:"not null"`
	AckComment       string `gorm:"not null"`
	OperatorUS       int64  `gorm:"not null;index:ix_alerts_operator"`
	Labels           string `gorm:"not null"`
	Details          string `gorm:"not null"`
	CreatedUS        int64  `gorm:"not null"`
	UpdatedUS        int64  `gorm:"not null"`
}

func (v7Alert) TableName() string { return "alerts" }

type v7AlertDetection struct {
	DetectionID int64 `gorm:"primaryKey;autoIncrement:false"`
	AlertID     int64 `gorm:"not null;index:ix_alert_detections_alert"`
}

func (v7AlertDetection) TableName() string { return "alert_detections" }

type v7Silence struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	Matchers  string `gorm:"not null"`
	StartsUS  int64  `gorm:"not null"`
	EndsUS    int64  `gorm:"not null;index:ix_alert_silences_ends"`
	CreatedBy string `gorm:"size:128;not null"`
	Comment   string `gorm:"not null"`
	CreatedUS int64  `gorm:"not null"`
	UpdatedUS int64  `gorm:"not null"`
}

func (v7Silence) TableName() string { return "alert_silences" }

type v7NotificationLog struct {
	Receiver  string `gorm:"primaryKey;size:128"`
	GroupHash string `gorm:"primaryKey;size:64"`
	GroupKey  string `gorm:"not null"`
	Firing    string `gorm:"not null"`
	Resolved  string `gorm:"not null"`
	SentUS    int64  `gorm:"not null;index:ix_alert_nflog_sent"`
}

func (v7NotificationLog) TableName() string { return "alert_nflog" }

type v7OutboxEntry struct {
	ID            int64  `gorm:"primaryKey;autoIncrement"`
	DedupKey      string `gorm:"size:64;not null;uniqueIndex:ux_alert_outbox_key"`
	Receiver      string `gorm:"size:128;not null"`
	Integration   string `gorm:"size:64;not null"`
	GroupKey      string `gorm:"not null"`
	Payload       string `gorm:"not null"`
	State         string `gorm:"size:16;not null;index:ix_alert_outbox_due,priority:1"`
	NextAttemptUS int64  `gorm:"not null;index:ix_alert_outbox_due,priority:2"`
	LeaseUS       int64  `gorm:"not null"`
	Attempts      int    `gorm:"not null"`
	LastError     string `gorm:"not null"`
	CreatedUS     int64  `gorm:"not null"`
	SentUS        int64  `gorm:"not null"`
	Test          bool   `gorm:"not null"`
}

func (v7OutboxEntry) TableName() string { return "alert_outbox" }

type v7AlertCursor struct {
	Name      string `gorm:"primaryKey;size:64"`
	Value     int64  `gorm:"not null"`
	UpdatedUS int64  `gorm:"not null"`
}

func (v7AlertCursor) TableName() string { return "alert_cursors" }

// migrateAlerts is schema step 7: alerts, silences, the notification log,
// the outbox and the engine's cursor.
func migrateAlerts(tx *gorm.DB, driver string) error {
	return createTables(tx, driver, &v7Alert{}, &v7AlertDetection{}, &v7Silence{}, &v7NotificationLog{},
		&v7OutboxEntry{}, &v7AlertCursor{})
}

// Errors callers branch on.
var (
	// ErrNoAlert: no alert with that id.
	ErrNoAlert = errors.New("no such alert")
	// ErrAlertNotFiring: the alert is already resolved.
	ErrAlertNotFiring = errors.New("alert is not firing")
	// ErrAlertConflict: an alert changed under the engine (an operator
	// resolved it); reload and try again.
	ErrAlertConflict = errors.New("alert changed concurrently")
	// ErrNoSilence: no silence with that id.
	ErrNoSilence = errors.New("no such silence")
)

// DetectionsAfter returns detections with an id above after, in id order,
// without the classifier's explanation and the versions.
func (s *Store) DetectionsAfter(ctx context.Context, after int64, limit int) ([]Detection, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if limit <= 0 {
		limit = 500
	}
	var out []Detection
	// Not the classifier's explanation: alerts do not show it.
	if err := s.db.WithContext(ctx).Select("id, group_key, chain_seq, msg_id, sender_id, sender_role, occurred_us, label, score, severity, rules, entities, risk, detected_us").
		Where("id > ?", after).Order("id").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read detections after %d: %w", after, err)
	}
	return out, nil
}

// DetectionsByID returns the detections with these ids that exist, in id
// order (columns as DetectionsAfter).
func (s *Store) DetectionsByID(ctx context.Context, ids []int64) ([]Detection, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out []Detection
	for len(ids) > 0 {
		n := min(len(ids), s.rowsPerStatement(1))
		var rows []Detection
		if err := s.db.WithContext(ctx).Select("id, group_key, chain_seq, msg_id, sender_id, sender_role, occurred_us, label, score, severity, rules, entities, risk, detected_us").
			Where("id IN ?", ids[:n]).Order("id").Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("read detections: %w", err)
		}
		out = append(out, rows...)
		ids = ids[n:]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// LinkedDetections returns which of these detections already belong to an
// alert.
func (s *Store) LinkedDetections(ctx context.Context, ids []int64) (map[int64]bool, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := map[int64]bool{}
	for len(ids) > 0 {
		n := min(len(ids), s.rowsPerStatement(1))
		var got []int64
		if err := s.db.WithContext(ctx).Model(&AlertDetection{}).Where("detection_id IN ?", ids[:n]).Pluck("detection_id", &got).Error; err != nil {
			return nil, fmt.Errorf("read alert links: %w", err)
		}
		for _, id := range got {
			out[id] = true
		}
		ids = ids[n:]
	}
	return out, nil
}

// AlertCursor returns a durable read position (0 when never set).
func (s *Store) AlertCursor(ctx context.Context, name string) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var c AlertCursor
	if err := s.db.WithContext(ctx).Where("name = ?", name).Limit(1).Find(&c).Error; err != nil {
		return 0, fmt.Errorf("read cursor %s: %w", name, err)
	}
	return c.Value, nil
}

// RecordKey names an evidence record.
type RecordKey struct {
	GroupKey string
	ChainSeq int64
}

// RecordsAt returns the evidence records with the given keys (those that
// exist), without their raw payloads.
func (s *Store) RecordsAt(ctx context.Context, keys []RecordKey) (map[RecordKey]Record, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := make(map[RecordKey]Record, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), s.rowsPerStatement(2))
		pairs := make([][]any, n)
		for i, k := range keys[:n] {
			pairs[i] = []any{k.GroupKey, k.ChainSeq}
		}
		var rows []evidenceRow
		// Not the raw payload: alerts show the text, sender and group.
		if err := s.db.WithContext(ctx).Select("id, group_key, chain_seq, kind, occurred_us, actor_id, msg_id, dedup_key, text, meta, hash").
			Where("(group_key, chain_seq) IN ?", pairs).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		for i := range rows {
			r, err := rows[i].record()
			if err != nil {
				return nil, err
			}
			out[RecordKey{r.GroupKey, r.ChainSeq}] = *r
		}
		keys = keys[n:]
	}
	return out, nil
}

// StaffOfGroups returns the owner and admins of each group at t, as
// StaffAt does for one, in one query.
func (s *Store) StaffOfGroups(ctx context.Context, groups []string, t time.Time) (map[string][]Staff, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := make(map[string][]Staff, len(groups))
	for len(groups) > 0 {
		n := min(len(groups), s.rowsPerStatement(1))
		var rows []MemberState
		err := s.db.WithContext(ctx).Where("group_key IN ? AND at_us <= ?", groups[:n], t.UnixMicro()).
			Order("group_key, account_id, at_us, id").Find(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("staff of groups: %w", err)
		}
		for i := 0; i < len(rows); {
			j := i
			for j+1 < len(rows) && rows[j+1].GroupKey == rows[i].GroupKey && rows[j+1].AccountID == rows[i].AccountID {
				j++
			}
			last := rows[j]
			if last.Present && last.role().Staff() {
				since := last.AtUS
				for k := j - 1; k >= i && rows[k].Present && rows[k].Role == last.Role; k-- {
					since = rows[k].AtUS
				}
				out[last.GroupKey] = append(out[last.GroupKey], Staff{AccountID: last.AccountID, Role: last.role(),
					Nick: last.Nick, Card: last.Card, Since: time.UnixMicro(since).UTC()})
			}
			i = j + 1
		}
		groups = groups[n:]
	}
	for g, st := range out {
		sort.SliceStable(st, func(a, b int) bool {
			if st[a].Role != st[b].Role {
				return st[a].Role == bot.RoleOwner
			}
			return st[a].AccountID < st[b].AccountID
		})
		out[g] = st
	}
	return out, nil
}

// ChatGroupsByKey returns the known groups among keys.
func (s *Store) ChatGroupsByKey(ctx context.Context, keys []string) (map[string]ChatGroup, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := map[string]ChatGroup{}
	if len(keys) == 0 {
		return out, nil
	}
	var rows []ChatGroup
	if err := s.db.WithContext(ctx).Where("group_key IN ?", keys).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	for _, g := range rows {
		out[g.GroupKey] = g
	}
	return out, nil
}

// AlertLink ties a detection to an alert of the same batch (whose ID may
// only be known once it is inserted).
type AlertLink struct {
	Alert       *Alert
	DetectionID int64
}

// AlertBatch is what the alert engine commits in one transaction: new and
// changed alerts, the detections they took in, and the cursor position
// after them.
type AlertBatch struct {
	// Alerts with ID 0 are inserted (and get their ID); the others are
	// updated, but only while they are still firing in the database.
	Alerts []*Alert
	Links  []AlertLink
	// Cursor, if set, is advanced to CursorValue.
	Cursor      string
	CursorValue int64
}

// engineColumns are the alert columns the engine writes; operators' columns
// (acknowledgement, OperatorUS) are never overwritten by it.
var engineColumns = []string{"severity", "status", "last_seen_us", "active_us", "ends_us", "resolved_by",
	"detection_count", "last_detection_id", "labels", "details", "updated_us", "starts_us", "shop"}

// SaveAlerts commits an engine batch atomically. It returns
// ErrAlertConflict (and commits nothing) when an alert to update is no
// longer firing in the database.
func (s *Store) SaveAlerts(ctx context.Context, b AlertBatch) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var inserted []*Alert
	isNew := map[*Alert]bool{}
	for _, a := range b.Alerts {
		if a.ID == 0 {
			inserted = append(inserted, a)
			isNew[a] = true
		}
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if len(inserted) > 0 {
			if err := tx.CreateInBatches(inserted, s.rowsPerStatement(alertColumns)).Error; err != nil {
				return fmt.Errorf("%w: insert alerts: %v", ErrAlertConflict, err)
			}
		}
		var update []*Alert
		var ids []int64
		for _, a := range b.Alerts {
			if !isNew[a] {
				update = append(update, a)
				ids = append(ids, a.ID)
			}
		}
		if len(update) > 0 {
			// Lock the rows, check that they still fire (an operator may
			// have resolved one), then write them in one upsert. SQLite
			// transactions take the write lock at BEGIN, so nobody can
			// change them in between there either.
			q := tx.Model(&Alert{})
			if s.driver != SQLite {
				q = q.Clauses(clause.Locking{Strength: "UPDATE"})
			}
			var rows []struct {
				ID     int64
				Status string
			}
			if err := q.Select("id, status").Where("id IN ?", ids).Find(&rows).Error; err != nil {
				return fmt.Errorf("lock alerts: %w", err)
			}
			firing := make(map[int64]bool, len(rows))
			for _, r := range rows {
				firing[r.ID] = r.Status == AlertFiring
			}
			for _, a := range update {
				if !firing[a.ID] {
					return fmt.Errorf("%w: alert %d is no longer firing", ErrAlertConflict, a.ID)
				}
			}
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}},
				DoUpdates: clause.AssignmentColumns(engineColumns)}).CreateInBatches(update, s.rowsPerStatement(alertColumns)).Error
			if err != nil {
				return fmt.Errorf("update alerts: %w", err)
			}
		}
		if len(b.Links) > 0 {
			links := make([]AlertDetection, 0, len(b.Links))
			for _, l := range b.Links {
				links = append(links, AlertDetection{DetectionID: l.DetectionID, AlertID: l.Alert.ID})
			}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(links, s.rowsPerStatement(2)).Error; err != nil {
				return fmt.Errorf("link detections: %w", err)
			}
		}
		if b.Cursor != "" {
			c := AlertCursor{Name: b.Cursor, Value: b.CursorValue, UpdatedUS: time.Now().UnixMicro()}
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}},
				DoUpdates: clause.AssignmentColumns([]string{"value", "updated_us"})}).Create(&c).Error
			if err != nil {
				return fmt.Errorf("advance cursor %s: %w", b.Cursor, err)
			}
		}
		return nil
	})
	if err != nil {
		// Rolled back: the ids handed out do not exist.
		for _, a := range inserted {
			a.ID = 0
		}
	}
	return err
}

// MaxAlertEpisodes returns the highest episode stored for each of the
// fingerprints that has one.
func (s *Store) MaxAlertEpisodes(ctx context.Context, fingerprints []string) (map[string]int, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := map[string]int{}
	for len(fingerprints) > 0 {
		n := min(len(fingerprints), s.rowsPerStatement(1))
		var rows []struct {
			Fingerprint string
			Episode     int
		}
		if err := s.db.WithContext(ctx).Model(&Alert{}).Select("fingerprint, MAX(episode) AS episode").
			Where("fingerprint IN ?", fingerprints[:n]).Group("fingerprint").Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("read episodes: %w", err)
		}
		for _, r := range rows {
			out[r.Fingerprint] = r.Episode
		}
		fingerprints = fingerprints[n:]
	}
	return out, nil
}

// AlertFilter selects alerts. Zero fields do not filter.
type AlertFilter struct {
	Status   string
	GroupKey string
	Category string
	IDs      []int64
	Since    time.Time // started at or after
	Limit    int       // default 100
}

// Alerts lists alerts, newest first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Model(&Alert{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.GroupKey != "" {
		q = q.Where("group_key = ?", f.GroupKey)
	}
	if f.Category != "" {
		q = q.Where("category = ?", f.Category)
	}
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if !f.Since.IsZero() {
		q = q.Where("starts_us >= ?", f.Since.UnixMicro())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []Alert
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// AlertByID returns one alert.
func (s *Store) AlertByID(ctx context.Context, id int64) (*Alert, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var a Alert
	if err := s.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&a).Error; err != nil {
		return nil, fmt.Errorf("read alert %d: %w", id, err)
	}
	if a.ID == 0 {
		return nil, fmt.Errorf("%w: %d", ErrNoAlert, id)
	}
	return &a, nil
}

// AlertDetectionIDs lists the detections of an alert, oldest first.
func (s *Store) AlertDetectionIDs(ctx context.Context, alertID int64) ([]int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var ids []int64
	if err := s.db.WithContext(ctx).Model(&AlertDetection{}).Where("alert_id = ?", alertID).Order("detection_id").Pluck("detection_id", &ids).Error; err != nil {
		return nil, fmt.Errorf("read detections of alert %d: %w", alertID, err)
	}
	return ids, nil
}

// AlertsChangedByOperator returns alerts an operator acted on after
// sinceUS, oldest action first.
func (s *Store) AlertsChangedByOperator(ctx context.Context, sinceUS int64) ([]Alert, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out []Alert
	if err := s.db.WithContext(ctx).Where("operator_us > ?", sinceUS).Order("operator_us, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read operator changes: %w", err)
	}
	return out, nil
}

// AckAlert records that an operator has seen an alert and is on it.
func (s *Store) AckAlert(ctx context.Context, id int64, by, comment string, now time.Time) error {
	if by == "" {
		return errors.New("acknowledging needs the operator's name")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	us := now.UnixMicro()
	res := s.db.WithContext(ctx).Model(&Alert{}).Where("id = ?", id).
		Updates(map[string]any{"acked_by": by, "acked_us": us, "ack_comment": comment, "operator_us": us})
	if res.Error != nil {
		return fmt.Errorf("acknowledge alert %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.AlertByID(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// ResolveAlert marks a firing alert resolved by an operator.
func (s *Store) ResolveAlert(ctx context.Context, id int64, by string, now time.Time) error {
	if by == "" {
		return errors.New("resolving needs the operator's name")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	us := now.UnixMicro()
	res := s.db.WithContext(ctx).Model(&Alert{}).Where("id = ? AND status = ?", id, AlertFiring).
		Updates(map[string]any{"status": AlertResolved, "ends_us": us, "resolved_by": by, "operator_us": us, "updated_us": us})
	if res.Error != nil {
		return fmt.Errorf("resolve alert %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		a, err := s.AlertByID(ctx, id)
		if err != nil {
			return err
		}
		if a.Status != AlertFiring {
			return fmt.Errorf("%w: alert %d is %s", ErrAlertNotFiring, id, a.Status)
		}
	}
	return nil
}

// AddSilence stores a silence.
func (s *Store) AddSilence(ctx context.Context, sl *Silence) error {
	if sl.CreatedBy == "" {
		return errors.New("a silence needs its author")
	}
	if sl.EndsUS <= sl.StartsUS {
		return errors.New("a silence must end after it starts")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	now := time.Now().UnixMicro()
	if sl.CreatedUS == 0 {
		sl.CreatedUS = now
	}
	sl.UpdatedUS = now
	if err := s.db.WithContext(ctx).Create(sl).Error; err != nil {
		return fmt.Errorf("store silence: %w", err)
	}
	return nil
}

// Silences lists silences, newest first; with activeAfter set, only those
// that have not ended by then.
func (s *Store) Silences(ctx context.Context, activeAfter time.Time) ([]Silence, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx)
	if !activeAfter.IsZero() {
		q = q.Where("ends_us > ?", activeAfter.UnixMicro())
	}
	var out []Silence
	if err := q.Order("id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	return out, nil
}

// ExpireSilence ends a silence now (if it has not ended already).
func (s *Store) ExpireSilence(ctx context.Context, id int64, now time.Time) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	us := now.UnixMicro()
	var sl Silence
	if err := s.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&sl).Error; err != nil {
		return fmt.Errorf("read silence %d: %w", id, err)
	}
	if sl.ID == 0 {
		return fmt.Errorf("%w: %d", ErrNoSilence, id)
	}
	if sl.EndsUS <= us {
		return nil
	}
	upd := map[string]any{"ends_us": us, "updated_us": us}
	if sl.StartsUS > us {
		upd["starts_us"] = us
	}
	if err := s.db.WithContext(ctx).Model(&Silence{}).Where("id = ?", id).Updates(upd).Error; err != nil {
		return fmt.Errorf("expire silence %d: %w", id, err)
	}
	return nil
}

// alertColumns is the number of columns of an alerts row.
const alertColumns = 25

// rowsPerStatement sizes multi-row statements: the pure-Go SQLite driver
// binds parameters in quadratic time (see the writer), so SQLite gets
// about 100 parameters per statement, the servers 2000.
func (s *Store) rowsPerStatement(columns int) int {
	limit := 2000
	if s.driver == SQLite {
		limit = 100
	}
	return max(1, limit/columns)
}

// MaxDetectionID is the id of the latest detection (0: none).
func (s *Store) MaxDetectionID(ctx context.Context) (int64, error) {
	return s.maxOf(ctx, &Detection{}, "id")
}

// MaxAlertOperatorUS is the time of the latest operator action on any
// alert (0: none).
func (s *Store) MaxAlertOperatorUS(ctx context.Context) (int64, error) {
	return s.maxOf(ctx, &Alert{}, "operator_us")
}

func (s *Store) maxOf(ctx context.Context, model any, column string) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var v *int64
	if err := s.db.WithContext(ctx).Model(model).Select("MAX(" + column + ")").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read max %s: %w", column, err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}
