package storage

import (
	"context"
	"fmt"
	"time"
)

// GroupSummary is a monitored group with its record counts.
type GroupSummary struct {
	ChatGroup
	Records  int64
	Messages int64
	Recalls  int64
	LastUS   int64
}

// Groups lists known groups with their record counts, by group key.
func (s *Store) Groups(ctx context.Context) ([]GroupSummary, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var groups []ChatGroup
	if err := s.db.WithContext(ctx).Order("group_key").Find(&groups).Error; err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	type row struct {
		GroupKey string
		Kind     string
		N        int64
		Last     int64
	}
	var rows []row
	err := s.db.WithContext(ctx).Model(&evidenceRow{}).
		Select("group_key, kind, COUNT(*) AS n, MAX(occurred_us) AS last").
		Group("group_key, kind").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	idx := map[string]*GroupSummary{}
	out := make([]GroupSummary, len(groups))
	for i, g := range groups {
		out[i].ChatGroup = g
		idx[g.GroupKey] = &out[i]
	}
	for _, r := range rows {
		g := idx[r.GroupKey]
		if g == nil {
			continue
		}
		g.Records += r.N
		g.LastUS = max(g.LastUS, r.Last)
		switch r.Kind {
		case "message":
			g.Messages = r.N
		case "recall":
			g.Recalls = r.N
		}
	}
	return out, nil
}

// RecordFilter selects evidence records. Zero fields do not filter.
type RecordFilter struct {
	GroupKey string
	Kinds    []string
	ActorID  string
	MsgID    string
	From     time.Time
	Until    time.Time
	AfterSeq int64 // with GroupKey: records after this chain position
	Limit    int   // default 1000
}

// Records returns evidence records in chain order within a group, or in
// time order across groups.
func (s *Store) Records(ctx context.Context, f RecordFilter) ([]Record, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Model(&evidenceRow{})
	if f.GroupKey != "" {
		q = q.Where("group_key = ?", f.GroupKey)
	}
	if len(f.Kinds) > 0 {
		q = q.Where("kind IN ?", f.Kinds)
	}
	if f.ActorID != "" {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.MsgID != "" {
		q = q.Where("msg_id = ?", f.MsgID)
	}
	if !f.From.IsZero() {
		q = q.Where("occurred_us >= ?", f.From.UnixMicro())
	}
	if !f.Until.IsZero() {
		q = q.Where("occurred_us < ?", f.Until.UnixMicro())
	}
	if f.AfterSeq > 0 {
		q = q.Where("chain_seq > ?", f.AfterSeq)
	}
	if f.GroupKey != "" {
		q = q.Order("chain_seq")
	} else {
		q = q.Order("occurred_us, id")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	var rows []evidenceRow
	if err := q.Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	out := make([]Record, 0, len(rows))
	for i := range rows {
		r, err := rows[i].record()
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// CountRecords returns how many evidence records there are in all.
func (s *Store) CountRecords(ctx context.Context) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var n int64
	if err := s.db.WithContext(ctx).Model(&evidenceRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n, nil
}
