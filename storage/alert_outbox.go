package storage

import (
	"context"
	"fmt"
	"math/rand/v2"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// EnqueueNotifications writes notifications to the outbox and the
// notification log entries that record them, in one transaction: either
// the notifications are queued and logged, or neither. A notification
// whose DedupKey is already in the outbox is not stored again.
func (s *Store) EnqueueNotifications(ctx context.Context, entries []OutboxEntry, logs []NotificationLog) error {
	if len(entries) == 0 && len(logs) == 0 {
		return nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i := range entries {
			if entries[i].State == "" {
				entries[i].State = OutboxPending
			}
		}
		if len(entries) > 0 {
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(entries, s.rowsPerStatement(14)).Error; err != nil {
				return fmt.Errorf("queue notifications: %w", err)
			}
		}
		if len(logs) > 0 {
			err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "receiver"}, {Name: "group_hash"}},
				DoUpdates: clause.AssignmentColumns([]string{"group_key", "firing", "resolved", "sent_us"}),
			}).CreateInBatches(logs, s.rowsPerStatement(6)).Error
			if err != nil {
				return fmt.Errorf("record notification log: %w", err)
			}
		}
		return nil
	})
}

// NotificationLogs returns the whole notification log.
func (s *Store) NotificationLogs(ctx context.Context) ([]NotificationLog, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out []NotificationLog
	if err := s.db.WithContext(ctx).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read notification log: %w", err)
	}
	return out, nil
}

// PruneNotificationLogs forgets log entries last written before beforeUS.
func (s *Store) PruneNotificationLogs(ctx context.Context, beforeUS int64) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Where("sent_us < ?", beforeUS).Delete(&NotificationLog{})
	if res.Error != nil {
		return 0, fmt.Errorf("prune notification log: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// ClaimOutbox takes up to limit pending notifications that are due at
// nowUS and not leased by another sender, and leases them until
// leaseUntilUS. A sender that dies holding a lease only delays the entry
// until the lease runs out.
func (s *Store) ClaimOutbox(ctx context.Context, nowUS, leaseUntilUS int64, limit int) ([]OutboxEntry, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var cand []OutboxEntry
	err := s.db.WithContext(ctx).Where("state = ? AND next_attempt_us <= ? AND lease_us <= ?", OutboxPending, nowUS, nowUS).
		Order("next_attempt_us, id").Limit(limit).Find(&cand).Error
	if err != nil {
		return nil, fmt.Errorf("read due notifications: %w", err)
	}
	if len(cand) == 0 {
		return nil, nil
	}
	// One statement leases every candidate nobody else took meanwhile; the
	// lease value is made unique to this claim (a random offset of a few
	// milliseconds) so that reading it back tells which rows are ours.
	lease := leaseUntilUS + rand.Int64N(5000)
	ids := make([]int64, len(cand))
	for i, e := range cand {
		ids[i] = e.ID
	}
	res := s.db.WithContext(ctx).Model(&OutboxEntry{}).
		Where("id IN ? AND state = ? AND lease_us <= ?", ids, OutboxPending, nowUS).
		Update("lease_us", lease)
	if res.Error != nil {
		return nil, fmt.Errorf("lease notifications: %w", res.Error)
	}
	if res.RowsAffected == int64(len(cand)) {
		for i := range cand {
			cand[i].LeaseUS = lease
		}
		return cand, nil
	}
	var out []OutboxEntry
	if err := s.db.WithContext(ctx).Where("id IN ? AND lease_us = ?", ids, lease).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read leased notifications: %w", err)
	}
	return out, nil
}

// OutboxOutcome is the result of one delivery attempt.
type OutboxOutcome struct {
	ID        int64
	State     string // OutboxSent, OutboxPending (retry) or OutboxDead
	Attempts  int
	NextUS    int64 // when to retry (pending)
	SentUS    int64 // when delivered (sent)
	LastError string
}

// RecordOutboxOutcomes records a round of delivery attempts in one
// transaction and releases their leases.
func (s *Store) RecordOutboxOutcomes(ctx context.Context, outs []OutboxOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, o := range outs {
			upd := map[string]any{"state": o.State, "lease_us": 0, "attempts": o.Attempts, "last_error": truncate(o.LastError, 1000)}
			switch o.State {
			case OutboxSent:
				upd["sent_us"] = o.SentUS
			case OutboxPending:
				upd["next_attempt_us"] = o.NextUS
			case OutboxDead:
			default:
				return fmt.Errorf("notification %d: unknown state %q", o.ID, o.State)
			}
			if err := tx.Model(&OutboxEntry{}).Where("id = ?", o.ID).Updates(upd).Error; err != nil {
				return fmt.Errorf("update notification %d: %w", o.ID, err)
			}
		}
		return nil
	})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// OutboxFilter selects outbox entries.
type OutboxFilter struct {
	State string
	IDs   []int64
	Limit int // default 100
}

// OutboxEntries lists notifications, newest first.
func (s *Store) OutboxEntries(ctx context.Context, f OutboxFilter) ([]OutboxEntry, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx)
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []OutboxEntry
	if err := q.Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// RequeueDead puts dead letters back in the queue (all of them when ids is
// empty), due at nowUS with a fresh attempt count.
func (s *Store) RequeueDead(ctx context.Context, ids []int64, nowUS int64) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Model(&OutboxEntry{}).Where("state = ?", OutboxDead)
	if len(ids) > 0 {
		q = q.Where("id IN ?", ids)
	}
	res := q.Updates(map[string]any{"state": OutboxPending, "attempts": 0, "next_attempt_us": nowUS, "lease_us": 0})
	if res.Error != nil {
		return 0, fmt.Errorf("requeue dead letters: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// NextOutboxDue returns when the earliest pending notification is due
// (including leases), and false when none is pending.
func (s *Store) NextOutboxDue(ctx context.Context) (int64, bool, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []OutboxEntry
	if err := s.db.WithContext(ctx).Select("next_attempt_us", "lease_us").Where("state = ?", OutboxPending).
		Order("next_attempt_us").Limit(64).Find(&rows).Error; err != nil {
		return 0, false, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	due := int64(-1)
	for _, r := range rows {
		t := max(r.NextAttemptUS, r.LeaseUS)
		if due < 0 || t < due {
			due = t
		}
	}
	return due, true, nil
}

// OutboxCounts returns the number of notifications in each state.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []struct {
		State string
		N     int64
	}
	if err := s.db.WithContext(ctx).Model(&OutboxEntry{}).Select("state, COUNT(*) AS n").Group("state").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	out := map[string]int64{OutboxPending: 0, OutboxSent: 0, OutboxDead: 0}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}
