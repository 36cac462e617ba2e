package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Detection is a verdict on an evidence record, stored with it. Like
// evidence it is append-only: analysing a message again (new rules, a new
// model) adds a row; the latest row per record is the current view.
type Detection struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey   string `gorm:"size:160;not null;index:ix_detections_record,priority:1;index:ix_detections_time,priority:1"`
	ChainSeq   int64  `gorm:"not null;index:ix_detections_record,priority:2"`
	MsgID      string `gorm:"size:128;not null"`
	SenderID   string `gorm:"size:128;not null;index:ix_detections_sender"`
	SenderRole string `gorm:"size:16;not null"`
	OccurredUS int64  `gorm:"not null;index:ix_detections_time,priority:2"`
	// Label is attack_task, extortion, attack_coordination or benign.
	Label    string  `gorm:"size:32;not null;index:ix_detections_label"`
	Score    float64 `gorm:"not null"`
	Severity string  `gorm:"size:16;not null"`
	// Rules and Entities are JSON: the fired rules with their spans
	// (rune offsets into the original text) and the entities found.
	Rules        string `gorm:"not null"`
	Entities     string `gorm:"not null"`
	Explanation  string `gorm:"not null"` // classifier view, JSON
	ModelVersion string `gorm:"size:64;not null"`
	RulesVersion string `gorm:"size:64;not null"`
	// Risk is the group's risk right after this detection.
	Risk       float64 `gorm:"not null"`
	DetectedUS int64   `gorm:"not null"`
}

// TableName fixes the table name.
func (Detection) TableName() string { return "detections" }

// Feedback is a moderator's decision on a detection: confirmed, or a false
// positive (optionally with the right label). It feeds model training.
type Feedback struct {
	ID          int64  `gorm:"primaryKey;autoIncrement"`
	DetectionID int64  `gorm:"not null;index"`
	Decision    string `gorm:"size:16;not null"` // confirmed, false_positive
	Label       string `gorm:"size:32;not null"` // corrected label, if given
	Moderator   string `gorm:"size:128;not null"`
	Comment     string `gorm:"not null"`
	CreatedUS   int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (Feedback) TableName() string { return "feedback" }

// Frozen definitions for migration 4 (see migration).
type v4Detection struct {
	ID           int64   `gorm:"primaryKey;autoIncrement"`
	GroupKey     string  `gorm:"size:160;not null;index:ix_detections_record,priority:1;index:ix_detections_time,priority:1"`
	ChainSeq     int64   `gorm:"not null;index:ix_detections_record,priority:2"`
	MsgID        string  `gorm:"size:128;not null"`
	SenderID     string  `gorm:"size:128;not null;index:ix_detections_sender"`
	SenderRole   string  `gorm:"size:16;not null"`
	OccurredUS   int64   `gorm:"not null;index:ix_detections_time,priority:2"`
	Label        string  `gorm:"size:32;not null;index:ix_detections_label"`
	Score        float64 `gorm:"not null"`
	Severity     string  `gorm:"size:16;not null"`
	Rules        string  `gorm:"not null"`
	Entities     string  `gorm:"not null"`
	Explanation  string  `gorm:"not null"`
	ModelVersion string  `gorm:"size:64;not null"`
	RulesVersion string  `gorm:"size:64;not null"`
	Risk         float64 `gorm:"not null"`
	DetectedUS   int64   `gorm:"not null"`
}

func (v4Detection) TableName() string { return "detections" }

type v4Feedback struct {
	ID          int64  `gorm:"primaryKey;autoIncrement"`
	DetectionID int64  `gorm:"not null;index"`
	Decision    string `gorm:"size:16;not null"`
	Label       string `gorm:"size:32;not null"`
	Moderator   string `gorm:"size:128;not null"`
	Comment     string `gorm:"not null"`
	CreatedUS   int64  `gorm:"not null"`
}

func (v4Feedback) TableName() string { return "feedback" }

// InsertDetections stores detections in one transaction.
func (s *Store) InsertDetections(ctx context.Context, ds []*Detection) error {
	if len(ds) == 0 {
		return nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if err := s.db.WithContext(ctx).CreateInBatches(ds, 100).Error; err != nil {
		return fmt.Errorf("store detections: %w", err)
	}
	return nil
}

// DetectionFilter selects detections. Zero fields do not filter.
type DetectionFilter struct {
	GroupKey string
	SenderID string
	Labels   []string
	MinScore float64
	From     time.Time
	Limit    int
}

// Detections lists detections, newest first.
func (s *Store) Detections(ctx context.Context, f DetectionFilter) ([]Detection, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Model(&Detection{})
	if f.GroupKey != "" {
		q = q.Where("group_key = ?", f.GroupKey)
	}
	if f.SenderID != "" {
		q = q.Where("sender_id = ?", f.SenderID)
	}
	if len(f.Labels) > 0 {
		q = q.Where("label IN ?", f.Labels)
	}
	if f.MinScore > 0 {
		q = q.Where("score >= ?", f.MinScore)
	}
	if !f.From.IsZero() {
		q = q.Where("occurred_us >= ?", f.From.UnixMicro())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []Detection
	if err := q.Order("occurred_us DESC, id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read detections: %w", err)
	}
	return out, nil
}

// Decisions moderators can record.
const (
	Confirmed     = "confirmed"
	FalsePositive = "false_positive"
)

// AddFeedback records a moderator's decision on a detection.
func (s *Store) AddFeedback(ctx context.Context, fb *Feedback) error {
	if fb.Decision != Confirmed && fb.Decision != FalsePositive {
		return fmt.Errorf("feedback decision %q: want %s or %s", fb.Decision, Confirmed, FalsePositive)
	}
	if fb.Moderator == "" {
		return errors.New("feedback needs the moderator's name")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var n int64
	if err := s.db.WithContext(ctx).Model(&Detection{}).Where("id = ?", fb.DetectionID).Count(&n).Error; err != nil {
		return fmt.Errorf("find detection %d: %w", fb.DetectionID, err)
	}
	if n == 0 {
		return fmt.Errorf("no detection %d", fb.DetectionID)
	}
	if fb.CreatedUS == 0 {
		fb.CreatedUS = time.Now().UnixMicro()
	}
	if err := s.db.WithContext(ctx).Create(fb).Error; err != nil {
		return fmt.Errorf("store feedback: %w", err)
	}
	return nil
}

// FeedbackExample is a moderated message for training.
type FeedbackExample struct {
	Feedback
	Text          string
	SenderRole    string
	DetectedLabel string
}

// FeedbackExamples returns every moderated detection with its message
// text, latest decision per detection.
func (s *Store) FeedbackExamples(ctx context.Context) ([]FeedbackExample, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var fbs []Feedback
	if err := s.db.WithContext(ctx).Order("id").Find(&fbs).Error; err != nil {
		return nil, fmt.Errorf("read feedback: %w", err)
	}
	latest := map[int64]Feedback{}
	var order []int64
	for _, f := range fbs {
		if _, ok := latest[f.DetectionID]; !ok {
			order = append(order, f.DetectionID)
		}
		latest[f.DetectionID] = f
	}
	var out []FeedbackExample
	for _, id := range order {
		var d Detection
		if err := s.db.WithContext(ctx).First(&d, id).Error; err != nil {
			return nil, fmt.Errorf("detection %d: %w", id, err)
		}
		recs, err := s.Records(ctx, RecordFilter{GroupKey: d.GroupKey, AfterSeq: d.ChainSeq - 1, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 || recs[0].ChainSeq != d.ChainSeq {
			continue
		}
		out = append(out, FeedbackExample{Feedback: latest[id], Text: string(recs[0].OriginalText()), SenderRole: d.SenderRole, DetectedLabel: d.Label})
	}
	return out, nil
}
