package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

// TestMigrationsUpgradeInPlace stops the schema at every earlier version,
// stores data the way that version could, upgrades to the latest and checks
// that nothing was lost and the chain still verifies.
func TestMigrationsUpgradeInPlace(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		for from := 1; from < storage.LatestVersion(); from++ {
			ctx := context.Background()
			cfg := b.Config(t)
			s, err := storage.Open(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			steps, err := s.MigrateTo(ctx, from)
			if err != nil || len(steps) != from {
				t.Fatalf("migrate to %d: %v (%v)", from, err, steps)
			}
			if v, _ := s.SchemaVersion(ctx); v != from {
				t.Fatalf("version %d, want %d", v, from)
			}
			if err := s.EnsureSchema(ctx, false); !errors.Is(err, storage.ErrSchemaBehind) || !strings.Contains(err.Error(), "qunshao db migrate") {
				t.Fatalf("EnsureSchema on old schema: %v", err)
			}
			// Version 1 has the ledger; store a chained message in it the
			// way a version-1 binary did.
			if err := storage.InsertForTest(ctx, s, msg("old", "1001", "升级前的证据", at("20:00"))); err != nil {
				t.Fatalf("insert at version %d: %v", from, err)
			}
			steps, err = s.Migrate(ctx)
			if err != nil || len(steps) != storage.LatestVersion()-from {
				t.Fatalf("upgrade from %d: %v (%v)", from, err, steps)
			}
			if err := s.EnsureSchema(ctx, false); err != nil {
				t.Fatal(err)
			}
			// Idempotent: a second run does nothing.
			if steps, err := s.Migrate(ctx); err != nil || len(steps) != 0 {
				t.Fatalf("second migrate: %v %v", steps, err)
			}
			w, err := s.NewWriter(storage.WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res := write(t, w, msg("new", "1001", "升级后", at("20:01")))
			w.Close(ctx)
			if res[0].Seq != 2 {
				t.Fatalf("new record continues the chain at %d, want 2", res[0].Seq)
			}
			recs := messages(t, s)
			if len(recs) != 2 || recs[0].Text != "升级前的证据" {
				t.Fatalf("after upgrade from %d: %+v", from, recs)
			}
			mustVerify(t, s)
		}
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	s := storagetest.Open(t, storagetest.SQLiteConfig(t))
	if err := storagetest.Exec(t, s, "INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, 'from the future', 0)", storage.LatestVersion()+1); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureSchema(ctx, false); !errors.Is(err, storage.ErrSchemaAhead) {
		t.Fatalf("EnsureSchema: %v", err)
	}
	if _, err := s.Migrate(ctx); !errors.Is(err, storage.ErrSchemaAhead) || !strings.Contains(err.Error(), "upgrade qunshao") {
		t.Fatalf("Migrate: %v", err)
	}
}

func TestConfigValidationNamesTheKey(t *testing.T) {
	cfg := storage.DefaultConfig()
	cfg.Driver = "oracle"
	cfg.Writer.BatchSize = -1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "driver: must be sqlite, postgres or mysql") || !strings.Contains(err.Error(), "writer.batch_size") {
		t.Fatalf("Validate: %v", err)
	}
	cfg = storage.DefaultConfig()
	cfg.Driver = storage.Postgres
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "dsn: required") {
		t.Fatalf("postgres without dsn: %v", err)
	}
	cfg = storage.DefaultConfig()
	cfg.DSN = ":memory:"
	if _, err := storage.Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "storage.dsn") {
		t.Fatalf("in-memory sqlite: %v", err)
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://qs:s3cret@db:5432/q?sslmode=disable": "postgres://qs:***@db:5432/q?sslmode=disable",
		"host=db user=qs password=s3cret dbname=q":       "host=db user=qs password=*** dbname=q",
		"qs:s3cret@tcp(db:3306)/q":                       "qs:***@tcp(db:3306)/q",
		"data/qunshao.db":                                "data/qunshao.db",
		"postgres://db/q":                                "postgres://db/q",
	} {
		if got := storage.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBotStatusIsKeptPerAccount(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		st := []bot.Status{
			{Platform: bot.QQ, Account: "10001", Runner: "onebot:reverse-ws", State: bot.StateOnline, Groups: 3, Events: 10, Counters: map[string]int64{"malformed_frame": 2}},
			{Platform: bot.WeChat, Account: "ops", Runner: "wechat:ops", State: bot.StateLoginRequired, LoginURL: "https://login.weixin.qq.com/l/x"},
		}
		if err := s.SaveBotStatuses(ctx, "node-a", st); err != nil {
			t.Fatal(err)
		}
		st[0].State, st[0].Events = bot.StateOffline, 11
		if err := s.SaveBotStatuses(ctx, "node-a", st[:1]); err != nil {
			t.Fatal(err)
		}
		got, err := s.BotStatuses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].State != bot.StateOffline || got[0].Events != 11 || got[0].Counters["malformed_frame"] != 2 ||
			got[1].LoginURL == "" || got[0].Node != "node-a" {
			t.Fatalf("statuses = %+v", got)
		}
	})
}
