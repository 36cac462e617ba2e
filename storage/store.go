// Package storage keeps qunshao's evidence: every chat event in an
// append-only ledger with a per-group SHA-256 hash chain, the roster history
// that says who held which role in a group at any moment, and the
// bookkeeping around them. It runs on SQLite (embedded default, pure Go),
// PostgreSQL and MySQL/MariaDB through gorm.
//
// Writes go through a Writer that commits in batches; reads go through the
// Store's repository methods. Nothing in this package updates or deletes an
// evidence row, and the database refuses it too (triggers installed by the
// migrations).
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// DefaultSQLitePath is where the embedded database lives when no DSN is set.
const DefaultSQLitePath = "data/qunshao.db"

// Config is the storage slice of qunshao's configuration.
type Config struct {
	// Driver is sqlite, postgres or mysql.
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite (default data/qunshao.db), a
	// PostgreSQL URL or keyword string, or a go-sql-driver/mysql DSN.
	DSN string `yaml:"dsn"`
	// AutoMigrate applies pending schema migrations at start.
	AutoMigrate bool `yaml:"auto_migrate"`
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int `yaml:"max_open_conns"`
	// QueryTimeout is the deadline of each read query and of each batch
	// commit.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	Writer       WriterConfig  `yaml:"writer"`
}

// WriterConfig tunes the batched evidence writer.
type WriterConfig struct {
	// BatchSize is the most events committed in one transaction; 0 picks
	// 500. Rows are inserted a few at a time per statement (the pure-Go
	// SQLite driver binds parameters in O(n^2)), so a large transaction
	// does not mean a large statement.
	BatchSize int `yaml:"batch_size"`
	// Shards is the number of writer goroutines, each owning the chains of
	// the groups that hash to it; 0 picks 1 for SQLite (one writer lock)
	// and 4 for PostgreSQL and MySQL.
	Shards int `yaml:"shards"`
	// FlushInterval is the longest an accepted event waits for its batch
	// to fill before it is committed anyway.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// QueueSize is how many accepted events may wait for the writer; when
	// it is full, Submit blocks (back-pressure) instead of dropping.
	QueueSize int `yaml:"queue_size"`
	// MaxBatchBytes closes a batch early when its payloads add up to this.
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// MaxEventBytes refuses a single event whose text, segments and raw
	// payload together exceed it.
	MaxEventBytes int `yaml:"max_event_bytes"`
}

// DefaultConfig is the embedded default: SQLite under ./data.
func DefaultConfig() Config {
	return Config{
		Driver:       SQLite,
		AutoMigrate:  true,
		MaxOpenConns: 8,
		QueryTimeout: 30 * time.Second,
		Writer: WriterConfig{
			BatchSize:     0,
			FlushInterval: 20 * time.Millisecond,
			QueueSize:     4096,
			MaxBatchBytes: 8 << 20,
			MaxEventBytes: 8 << 20,
		},
	}
}

// Validate checks the slice; errors name the key relative to "storage".
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case SQLite, Postgres, MySQL:
	default:
		errs = append(errs, fmt.Errorf("driver: must be sqlite, postgres or mysql, got %q", c.Driver))
	}
	switch {
	case (c.Driver == Postgres || c.Driver == MySQL) && strings.TrimSpace(c.DSN) == "":
		errs = append(errs, fmt.Errorf("dsn: required for driver %s", c.Driver))
	case c.Driver == Postgres && !strings.Contains(c.DSN, "://") && !strings.Contains(c.DSN, "="):
		errs = append(errs, fmt.Errorf("dsn: %q is not a PostgreSQL DSN (postgres://user@host:5432/db or \"host=... dbname=...\")", RedactDSN(c.DSN)))
	case c.Driver == MySQL:
		if _, err := gomysql.ParseDSN(c.DSN); err != nil {
			errs = append(errs, fmt.Errorf("dsn: not a MySQL DSN (user:pass@tcp(host:3306)/db): %v", err))
		}
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, fmt.Errorf("max_open_conns: must be at least 1, got %d", c.MaxOpenConns))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout: must be positive, got %s", c.QueryTimeout))
	}
	w := c.Writer
	if w.BatchSize < 0 || w.BatchSize > 5000 {
		errs = append(errs, fmt.Errorf("writer.batch_size: must be 1-5000 (or 0 for the default), got %d", w.BatchSize))
	}
	if w.Shards < 0 || w.Shards > 64 {
		errs = append(errs, fmt.Errorf("writer.shards: must be 1-64 (or 0 for the default), got %d", w.Shards))
	}
	if c.Driver == SQLite && w.Shards > 1 {
		errs = append(errs, fmt.Errorf("writer.shards: sqlite has a single writer lock, so more than one shard only adds contention; use 1 or 0, got %d", w.Shards))
	}
	if w.FlushInterval <= 0 || w.FlushInterval > time.Minute {
		errs = append(errs, fmt.Errorf("writer.flush_interval: must be between 0 and 1m, got %s", w.FlushInterval))
	}
	if w.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("writer.queue_size: must be at least 1, got %d", w.QueueSize))
	}
	if w.MaxEventBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("writer.max_event_bytes: must be at least 65536, got %d", w.MaxEventBytes))
	}
	if w.MaxBatchBytes < w.MaxEventBytes {
		errs = append(errs, fmt.Errorf("writer.max_batch_bytes: must be at least writer.max_event_bytes (%d), got %d", w.MaxEventBytes, w.MaxBatchBytes))
	}
	return errors.Join(errs...)
}

// resolved fills in the automatic defaults for a driver.
func (w WriterConfig) resolved(driver string) WriterConfig {
	if w.BatchSize == 0 {
		w.BatchSize = 500
	}
	if w.Shards == 0 {
		w.Shards = 1
		if driver != SQLite {
			w.Shards = 4
		}
	}
	return w
}

// Store is the evidence store.
type Store struct {
	db      *gorm.DB
	driver  string
	cfg     Config
	log     *slog.Logger
	writing chan struct{} // holds a token while a Writer is open
}

// Open connects to the database the config names. It does not migrate; call
// Migrate or EnsureSchema.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("storage config: %w", err)
	}
	var dial gorm.Dialector
	switch cfg.Driver {
	case SQLite:
		dsn, err := sqliteDSN(cfg.DSN)
		if err != nil {
			return nil, err
		}
		dial = sqlite.Open(dsn)
	case Postgres:
		dial = postgres.New(postgres.Config{DSN: postgresDSN(cfg.DSN)})
	case MySQL:
		dsn, err := mysqlDSN(cfg.DSN)
		if err != nil {
			return nil, err
		}
		dial = mysql.Open(dsn)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, redactErr(err, cfg.DSN))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(cfg.MaxOpenConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, cfg.QueryTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", cfg.Driver, redactErr(err, cfg.DSN))
	}
	s := &Store{db: db, driver: cfg.Driver, cfg: cfg, log: log, writing: make(chan struct{}, 1)}
	if cfg.Driver == MySQL {
		if err := s.checkMySQL(pctx); err != nil {
			sqlDB.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Driver returns sqlite, postgres or mysql.
func (s *Store) Driver() string { return s.driver }

// DB exposes the gorm handle for packages that keep their own tables in the
// same database (detections, alerts, cases).
func (s *Store) DB() *gorm.DB { return s.db }

func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.QueryTimeout)
}

// sqliteDSN turns a path (or file: URI) into a DSN with the pragmas evidence
// needs: WAL for concurrent readers, synchronous=FULL so a commit survives
// power loss, a busy timeout, and IMMEDIATE transactions so writers queue
// instead of failing on lock upgrades.
func sqliteDSN(dsn string) (string, error) {
	if dsn == "" {
		dsn = DefaultSQLitePath
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" {
		return "", fmt.Errorf("storage.dsn: sqlite needs a file path, not %q (evidence must survive a restart)", dsn)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", fmt.Errorf("storage.dsn: create directory for %s: %w", path, err)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("storage.dsn: bad query in %q: %w", dsn, err)
	}
	have := strings.Join(q["_pragma"], ",")
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)", "cache_size(-32768)"} {
		name, _, _ := strings.Cut(p, "(")
		if !strings.Contains(have, name) {
			q.Add("_pragma", p)
		}
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode(), nil
}

// postgresDSN asks for custom plans: pgx prepares every statement, and a
// generic plan chosen while a table was small (a sequential scan) would
// otherwise stick after it has grown, turning the writer's duplicate
// look-up into a full scan of the ledger.
func postgresDSN(dsn string) string {
	if strings.Contains(dsn, "plan_cache_mode") {
		return dsn
	}
	if strings.Contains(dsn, "://") {
		if strings.Contains(dsn, "?") {
			return dsn + "&plan_cache_mode=force_custom_plan"
		}
		return dsn + "?plan_cache_mode=force_custom_plan"
	}
	return dsn + " plan_cache_mode=force_custom_plan"
}

// mysqlDSN makes sure the connection speaks utf8mb4 with a binary collation,
// so ids compare exactly and emoji survive.
func mysqlDSN(dsn string) (string, error) {
	base, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("storage.dsn: bad query in mysql DSN: %w", err)
	}
	if q.Get("charset") == "" {
		q.Set("charset", "utf8mb4")
	}
	if q.Get("collation") == "" {
		q.Set("collation", "utf8mb4_bin")
	}
	return base + "?" + q.Encode(), nil
}

// checkMySQL refuses a server whose packet limit cannot carry the largest
// event the writer accepts.
func (s *Store) checkMySQL(ctx context.Context) error {
	var packet int64
	if err := s.db.WithContext(ctx).Raw("SELECT @@max_allowed_packet").Scan(&packet).Error; err != nil {
		return fmt.Errorf("read mysql max_allowed_packet: %w", err)
	}
	// An event is sent as text, original text, segments and raw payload,
	// escaped: twice its size is a safe bound.
	if need := int64(s.cfg.Writer.MaxEventBytes) * 2; packet < need {
		return fmt.Errorf("mysql max_allowed_packet is %d bytes but storage.writer.max_event_bytes=%d needs at least %d: raise max_allowed_packet on the server or lower max_event_bytes",
			packet, s.cfg.Writer.MaxEventBytes, need)
	}
	return nil
}

// redactErr removes a DSN's password from an error message, since drivers
// sometimes echo the DSN.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "***")
		}
	}
	if i := strings.Index(dsn, ":"); i >= 0 {
		if j := strings.Index(dsn, "@"); j > i {
			if pw := dsn[i+1 : j]; pw != "" && !strings.Contains(pw, "/") {
				msg = strings.ReplaceAll(msg, pw, "***")
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// RedactDSN masks the password in a DSN for display.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil && strings.Contains(dsn, "://") {
		if _, ok := u.User.Password(); ok {
			return strings.Replace(dsn, u.User.String()+"@", u.User.Username()+":***@", 1)
		}
		return dsn
	}
	// Keyword form: password=secret
	if i := strings.Index(dsn, "password="); i >= 0 {
		end := strings.IndexByte(dsn[i:], ' ')
		if end < 0 {
			end = len(dsn) - i
		}
		return dsn[:i] + "password=***" + dsn[i+end:]
	}
	// MySQL form: user:pass@tcp(...)
	if at := strings.LastIndex(dsn, "@"); at > 0 {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			return dsn[:colon] + ":***" + dsn[at:]
		}
	}
	return dsn
}
