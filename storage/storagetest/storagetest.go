// Package storagetest opens fresh, isolated evidence stores for tests: a
// SQLite file always, and PostgreSQL and MySQL/MariaDB when
// QUNSHAO_TEST_POSTGRES_DSN and QUNSHAO_TEST_MYSQL_DSN name a server
// (.ci/run sets both). Each store gets its own schema or database, dropped
// when the test ends.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for set-up
	"github.com/qunshao/qunshao/storage"
)

// Environment variables that enable the server backends.
const (
	PostgresEnv = "QUNSHAO_TEST_POSTGRES_DSN"
	MySQLEnv    = "QUNSHAO_TEST_MYSQL_DSN"
)

// Backend names a database kind the suite runs against.
type Backend struct {
	Name string // sqlite, postgres, mysql
	// Config returns a storage config for a fresh, empty database, or
	// skips the test when the backend is not configured.
	Config func(t testing.TB) storage.Config
}

// Backends lists every backend; the server ones skip when not configured.
func Backends() []Backend {
	return []Backend{
		{storage.SQLite, SQLiteConfig},
		{storage.Postgres, PostgresConfig},
		{storage.MySQL, MySQLConfig},
	}
}

// SQLiteConfig returns a config for a new SQLite file in the test's temp
// directory.
func SQLiteConfig(t testing.TB) storage.Config {
	cfg := storage.DefaultConfig()
	cfg.Driver = storage.SQLite
	cfg.DSN = filepath.Join(t.TempDir(), "evidence.db")
	return cfg
}

func suffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PostgresConfig creates a schema of its own on the configured server and
// returns a config whose connections use it.
func PostgresConfig(t testing.TB) storage.Config {
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable); .ci/run sets it", PostgresEnv)
	}
	schema := "qs_test_" + suffix()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema on %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	cfg := storage.DefaultConfig()
	cfg.Driver = storage.Postgres
	cfg.DSN = withSearchPath(dsn, schema)
	return cfg
}

func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// MySQLConfig creates a database of its own on the configured server.
func MySQLConfig(t testing.TB) storage.Config {
	dsn := os.Getenv(MySQLEnv)
	if dsn == "" {
		t.Skipf("MySQL/MariaDB tests skipped: set %s (e.g. root@tcp(127.0.0.1:3306)/test); .ci/run sets it", MySQLEnv)
	}
	mc, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", MySQLEnv, err)
	}
	name := "qs_test_" + suffix()
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", MySQLEnv, err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database on %s: %v", MySQLEnv, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP DATABASE "+name)
	})
	mc.DBName = name
	cfg := storage.DefaultConfig()
	cfg.Driver = storage.MySQL
	cfg.DSN = mc.FormatDSN()
	return cfg
}

// Open opens and migrates a store for cfg, closed when the test ends.
func Open(t testing.TB, cfg storage.Config) *storage.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := storage.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("open %s store: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s store: %v", cfg.Driver, err)
	}
	return s
}

// ForEach runs f as a subtest against every backend.
func ForEach(t *testing.T, f func(t *testing.T, b Backend)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

// Exec runs a statement directly on the store's database, bypassing the
// repository: tests use it to play the attacker who edits rows.
func Exec(t testing.TB, s *storage.Store, query string, args ...any) error {
	t.Helper()
	return s.DB().Exec(query, args...).Error
}
