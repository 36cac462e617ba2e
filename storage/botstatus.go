package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/qunshao/qunshao/bot"
	"gorm.io/gorm/clause"
)

// BotStatus is the last reported status of a bot account. It is
// bookkeeping for operators (`qunshao bots`, the console), not evidence:
// rows are overwritten.
type BotStatus struct {
	Platform   string `gorm:"primaryKey;size:16"`
	Account    string `gorm:"primaryKey;size:128"`
	Runner     string `gorm:"primaryKey;size:128"`
	Node       string `gorm:"size:128;not null"`
	State      string `gorm:"size:32;not null"`
	Status     string `gorm:"not null"` // the whole bot.Status as JSON
	ReportedUS int64  `gorm:"not null"`
}

// TableName fixes the table name.
func (BotStatus) TableName() string { return "bot_status" }

type v5BotStatus struct {
	Platform   string `gorm:"primaryKey;size:16"`
	Account    string `gorm:"primaryKey;size:128"`
	Runner     string `gorm:"primaryKey;size:128"`
	Node       string `gorm:"size:128;not null"`
	State      string `gorm:"size:32;not null"`
	Status     string `gorm:"not null"`
	ReportedUS int64  `gorm:"not null"`
}

func (v5BotStatus) TableName() string { return "bot_status" }

// SaveBotStatuses records the statuses a node reports.
func (s *Store) SaveBotStatuses(ctx context.Context, node string, st []bot.Status) error {
	if len(st) == 0 {
		return nil
	}
	now := time.Now().UnixMicro()
	rows := make([]BotStatus, 0, len(st))
	for _, x := range st {
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		account := x.Account
		if account == "" {
			account = "-"
		}
		rows = append(rows, BotStatus{Platform: string(x.Platform), Account: account, Runner: x.Runner, Node: node,
			State: string(x.State), Status: string(b), ReportedUS: now})
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "platform"}, {Name: "account"}, {Name: "runner"}},
		DoUpdates: clause.AssignmentColumns([]string{"node", "state", "status", "reported_us"}),
	}).Create(&rows).Error
	if err != nil {
		return fmt.Errorf("save bot status: %w", err)
	}
	return nil
}

// ReportedStatus is a bot status with when and where it was reported.
type ReportedStatus struct {
	bot.Status
	Node     string    `json:"node"`
	Reported time.Time `json:"reported"`
}

// BotStatuses returns the last reported status of every bot account.
func (s *Store) BotStatuses(ctx context.Context) ([]ReportedStatus, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []BotStatus
	if err := s.db.WithContext(ctx).Order("platform, account, runner").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read bot status: %w", err)
	}
	out := make([]ReportedStatus, 0, len(rows))
	for _, r := range rows {
		var st bot.Status
		if err := json.Unmarshal([]byte(r.Status), &st); err != nil {
			return nil, fmt.Errorf("bot status %s/%s: %w", r.Platform, r.Account, err)
		}
		out = append(out, ReportedStatus{Status: st, Node: r.Node, Reported: time.UnixMicro(r.ReportedUS).UTC()})
	}
	return out, nil
}
