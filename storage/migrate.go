package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned step of the schema. Steps never change once
// released; a new need is a new step. Tables are created from the frozen
// structs below, not from the live models, so a later change to a model
// cannot silently alter what an old step does.
type migration struct {
	Version int
	Name    string
	Up      func(tx *gorm.DB, driver string) error
}

// schemaMigration records an applied step.
type schemaMigration struct {
	Version   int    `gorm:"primaryKey;autoIncrement:false"`
	Name      string `gorm:"size:128;not null"`
	AppliedUS int64  `gorm:"not null"`
}

func (schemaMigration) TableName() string { return "schema_migrations" }

var migrations = []migration{
	{1, "evidence ledger and groups", func(tx *gorm.DB, driver string) error {
		return createTables(tx, driver, &v1Record{}, &v1ChatGroup{})
	}},
	{2, "roster history", func(tx *gorm.DB, driver string) error {
		return createTables(tx, driver, &v2MemberState{})
	}},
	{3, "append-only guards on evidence and roster history", func(tx *gorm.DB, driver string) error {
		for _, table := range []string{"evidence", "member_states"} {
			for _, stmt := range appendOnlySQL(driver, table) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("guard %s: %w", table, err)
				}
			}
		}
		return nil
	}},
	{4, "detections and moderator feedback", func(tx *gorm.DB, driver string) error {
		if err := createTables(tx, driver, &v4Detection{}, &v4Feedback{}); err != nil {
			return err
		}
		for _, table := range []string{"detections", "feedback"} {
			for _, stmt := range appendOnlySQL(driver, table) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("guard %s: %w", table, err)
				}
			}
		}
		return nil
	}},
	{5, "bot account status", func(tx *gorm.DB, driver string) error {
		return createTables(tx, driver, &v5BotStatus{})
	}},
	{6, "imported files", migrateImports},
	{7, "alerts, silences, notification log and outbox", migrateAlerts},
}

// LatestVersion is the schema version this binary writes.
func LatestVersion() int { return migrations[len(migrations)-1].Version }

// ErrSchemaBehind is returned when the database needs migrating and
// automatic migration is off.
var ErrSchemaBehind = errors.New("database schema is behind this binary")

// ErrSchemaAhead is returned when the database was migrated by a newer
// qunshao than this one.
var ErrSchemaAhead = errors.New("database schema is newer than this binary")

func createTables(tx *gorm.DB, driver string, models ...any) error {
	if driver == MySQL {
		// Binary collation: ids and dedup keys compare byte for byte, and
		// utf8mb4 keeps emoji and rare characters.
		tx = tx.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE="+mysqlCollation(tx))
	}
	m := tx.Migrator()
	for _, model := range models {
		if m.HasTable(model) {
			// MySQL cannot roll back DDL: a step interrupted after its
			// CREATE TABLE is resumed, not failed.
			continue
		}
		if err := m.CreateTable(model); err != nil {
			return err
		}
	}
	return nil
}

// mysqlCollation picks a binary collation without trailing-space padding
// where the server has one (MariaDB utf8mb4_nopad_bin, MySQL 8
// utf8mb4_0900_bin), so "a" and "a " are different keys.
func mysqlCollation(tx *gorm.DB) string {
	for _, c := range []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin"} {
		var names []string
		if err := tx.Raw("SELECT collation_name FROM information_schema.collations WHERE collation_name = ?", c).Scan(&names).Error; err == nil && len(names) > 0 {
			return c
		}
	}
	return "utf8mb4_bin"
}

// appendOnlySQL returns the statements that make the database itself refuse
// UPDATE and DELETE on an evidence table.
func appendOnlySQL(driver, table string) []string {
	switch driver {
	case SQLite:
		return []string{
			fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %[1]s_no_update BEFORE UPDATE ON %[1]s BEGIN SELECT RAISE(ABORT, 'qunshao: %[1]s is append-only evidence; UPDATE refused'); END`, table),
			fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %[1]s_no_delete BEFORE DELETE ON %[1]s BEGIN SELECT RAISE(ABORT, 'qunshao: %[1]s is append-only evidence; DELETE refused'); END`, table),
		}
	case Postgres:
		return []string{
			`CREATE OR REPLACE FUNCTION qunshao_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'qunshao: % is append-only evidence; % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$`,
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s_append_only ON %[1]s`, table),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_append_only BEFORE UPDATE OR DELETE ON %[1]s FOR EACH ROW EXECUTE FUNCTION qunshao_append_only()`, table),
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s_no_truncate ON %[1]s`, table),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_truncate BEFORE TRUNCATE ON %[1]s FOR EACH STATEMENT EXECUTE FUNCTION qunshao_append_only()`, table),
		}
	case MySQL:
		return []string{
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s_no_update`, table),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_update BEFORE UPDATE ON %[1]s FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'qunshao: %[1]s is append-only evidence; UPDATE refused'`, table),
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %[1]s_no_delete`, table),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_delete BEFORE DELETE ON %[1]s FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'qunshao: %[1]s is append-only evidence; DELETE refused'`, table),
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration, 0 for an empty
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	db := s.db.WithContext(ctx)
	if !db.Migrator().HasTable(&schemaMigration{}) {
		return 0, nil
	}
	var v *int
	if err := db.Model(&schemaMigration{}).Select("MAX(version)").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// MigrationStep describes one applied step for reporting.
type MigrationStep struct {
	Version int
	Name    string
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) ([]MigrationStep, error) {
	return s.MigrateTo(ctx, LatestVersion())
}

// MigrateTo applies pending migrations up to and including target. Each
// step runs in its own transaction (PostgreSQL and SQLite roll back a failed
// step whole; MySQL commits DDL as it goes, so steps are written to be
// re-runnable). Concurrent migrators are serialised with a database lock.
func (s *Store) MigrateTo(ctx context.Context, target int) ([]MigrationStep, error) {
	if target < 0 || target > LatestVersion() {
		return nil, fmt.Errorf("migrate: no schema version %d (latest is %d)", target, LatestVersion())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var applied []MigrationStep
	err := s.db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		// The pinned handle is not a new session: without this, the
		// conditions of one call would leak into the next.
		conn = conn.Session(&gorm.Session{})
		unlock, err := s.lockMigrations(conn)
		if err != nil {
			return err
		}
		defer unlock()
		if err := conn.Migrator().AutoMigrate(&schemaMigration{}); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var done []int
		if err := conn.Model(&schemaMigration{}).Pluck("version", &done).Error; err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		have := map[int]bool{}
		current := 0
		for _, v := range done {
			have[v] = true
			current = max(current, v)
		}
		if current > LatestVersion() {
			return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade qunshao", ErrSchemaAhead, current, LatestVersion())
		}
		for _, m := range migrations {
			if m.Version > target || have[m.Version] {
				continue
			}
			err := conn.Transaction(func(tx *gorm.DB) error {
				if err := m.Up(tx, s.driver); err != nil {
					return err
				}
				return tx.Create(&schemaMigration{Version: m.Version, Name: m.Name, AppliedUS: time.Now().UnixMicro()}).Error
			})
			if err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			s.log.Info("applied schema migration", "version", m.Version, "name", m.Name)
			applied = append(applied, MigrationStep{m.Version, m.Name})
		}
		return nil
	})
	return applied, err
}

// EnsureSchema migrates when auto is true, and otherwise checks that the
// database is exactly at the version this binary writes.
func (s *Store) EnsureSchema(ctx context.Context, auto bool) error {
	if auto {
		_, err := s.Migrate(ctx)
		return err
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case v < LatestVersion():
		return fmt.Errorf("%w: database is at version %d, this binary needs %d; run `qunshao db migrate` or set storage.auto_migrate: true", ErrSchemaBehind, v, LatestVersion())
	case v > LatestVersion():
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d; upgrade qunshao", ErrSchemaAhead, v, LatestVersion())
	}
	return nil
}

// lockMigrations takes a database-wide lock on the pinned connection so two
// processes starting at once do not migrate concurrently. SQLite serialises
// writers itself (each step is an IMMEDIATE transaction).
func (s *Store) lockMigrations(conn *gorm.DB) (func(), error) {
	switch s.driver {
	case Postgres:
		if err := conn.Exec("SELECT pg_advisory_lock(7315662811)").Error; err != nil {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		return func() { conn.Exec("SELECT pg_advisory_unlock(7315662811)") }, nil
	case MySQL:
		var got *int
		if err := conn.Raw("SELECT GET_LOCK('qunshao_migrate', 600)").Scan(&got).Error; err != nil {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		if got == nil || *got != 1 {
			return nil, errors.New("take migration lock: timed out waiting for another qunshao to finish migrating")
		}
		return func() { conn.Exec("SELECT RELEASE_LOCK('qunshao_migrate')") }, nil
	}
	return func() {}, nil
}

// Frozen table definitions of each step. They repeat the live models on
// purpose; see migration.

type v1Record struct {
	ID         int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey   string `gorm:"size:160;not null;uniqueIndex:ux_evidence_chain,priority:1"`
	ChainSeq   int64  `gorm:"not null;uniqueIndex:ux_evidence_chain,priority:2"`
	Kind       string `gorm:"size:16;not null"`
	OccurredUS int64  `gorm:"not null;index:ix_evidence_time"`
	ActorID    string `gorm:"size:128;not null;index:ix_evidence_actor"`
	MsgID      string `gorm:"size:128;not null"`
	DedupKey   string `gorm:"size:320;not null;uniqueIndex:ux_evidence_dedup"`
	Text       string `gorm:"not null"`
	Meta       string `gorm:"not null"`
	Raw        []byte
	Hash       string `gorm:"size:64;not null"`
}

func (v1Record) TableName() string { return "evidence" }

type v1ChatGroup struct {
	GroupKey     string `gorm:"primaryKey;size:160"`
	Platform     string `gorm:"size:16;not null"`
	GroupID      string `gorm:"size:128;not null"`
	Name         string `gorm:"not null"`
	FirstSeenUS  int64  `gorm:"not null"`
	Disbanded    bool   `gorm:"not null"`
	LastRosterUS int64  `gorm:"not null"`
}

func (v1ChatGroup) TableName() string { return "chat_groups" }

type v2MemberState struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	GroupKey  string `gorm:"size:160;not null;index:ix_member_states,priority:1"`
	AccountID string `gorm:"size:128;not null;index:ix_member_states,priority:2"`
	AtUS      int64  `gorm:"not null;index:ix_member_states,priority:3"`
	Present   bool   `gorm:"not null"`
	Role      string `gorm:"size:16;not null"`
	Nick      string `gorm:"not null"`
	Card      string `gorm:"not null"`
	JoinedUS  int64  `gorm:"not null"`
	Cause     string `gorm:"size:16;not null"`
	RecordSeq int64  `gorm:"not null"`
}

func (v2MemberState) TableName() string { return "member_states" }
