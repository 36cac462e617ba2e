package storage

import (
	"context"
	"time"

	"github.com/qunshao/qunshao/bot"
)

// InsertForTest stores ev as the first link of its group's chain with a
// plain INSERT, the way a binary at schema version 1 did, for upgrade tests.
func InsertForTest(ctx context.Context, s *Store, ev *bot.Event) error {
	it, err := prepare(ev, time.Now().UnixMicro(), 1<<20)
	if err != nil {
		return err
	}
	r := it.rec
	r.ChainSeq, r.PrevHash = 1, GenesisHash
	r.ActorRole, r.RoleSource = string(bot.RoleUnknown), RoleSourceNone
	r.Hash = linkHash(&r)
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	_, err = sqlDB.ExecContext(ctx, insertSQL(s.driver, "evidence", evidenceColumns, 1), rowArgs(nil, &r)...)
	return err
}
