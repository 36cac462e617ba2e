package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func newAlert(fp string, ep int) *storage.Alert {
	return &storage.Alert{Fingerprint: fp, Episode: ep, Category: "attack_task", Platform: "qq", GroupKey: "qq:1",
		Severity: "high", Status: storage.AlertFiring, StartsUS: 1, LastSeenUS: 1, ActiveUS: 1, DetectionCount: 1,
		Labels: "{}", Details: "{}", CreatedUS: 1, UpdatedUS: 1}
}

func TestAlertRepository(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		ctx := context.Background()
		a := newAlert("fp1", 1)
		err := s.SaveAlerts(ctx, storage.AlertBatch{Alerts: []*storage.Alert{a},
			Links: []storage.AlertLink{{Alert: a, DetectionID: 7}, {Alert: a, DetectionID: 8}}, Cursor: "c", CursorValue: 8})
		if err != nil || a.ID == 0 {
			t.Fatalf("save: %v id %d", err, a.ID)
		}
		if c, _ := s.AlertCursor(ctx, "c"); c != 8 {
			t.Fatalf("cursor %d", c)
		}
		ids, _ := s.AlertDetectionIDs(ctx, a.ID)
		if len(ids) != 2 {
			t.Fatalf("links %v", ids)
		}
		// Linking a detection twice is harmless (a retried batch).
		if err := s.SaveAlerts(ctx, storage.AlertBatch{Links: []storage.AlertLink{{Alert: a, DetectionID: 8}}}); err != nil {
			t.Fatal(err)
		}
		// The same episode twice is a conflict, and nothing of the batch
		// commits.
		dup := newAlert("fp1", 1)
		err = s.SaveAlerts(ctx, storage.AlertBatch{Alerts: []*storage.Alert{dup}, Cursor: "c", CursorValue: 99})
		if !errors.Is(err, storage.ErrAlertConflict) || dup.ID != 0 {
			t.Fatalf("duplicate episode: %v id %d", err, dup.ID)
		}
		if c, _ := s.AlertCursor(ctx, "c"); c != 8 {
			t.Fatalf("cursor moved by a failed batch: %d", c)
		}
		if eps, _ := s.MaxAlertEpisodes(ctx, []string{"fp1", "fp9"}); len(eps) != 1 || eps["fp1"] != 1 {
			t.Fatalf("episodes %v", eps)
		}
		// Operators: acknowledge, then resolve; the engine's update does
		// not overwrite the acknowledgement and is refused once resolved.
		now := time.Now()
		if err := s.AckAlert(ctx, a.ID, "张三", "看到了", now); err != nil {
			t.Fatal(err)
		}
		a.DetectionCount, a.UpdatedUS = 2, 2
		if err := s.SaveAlerts(ctx, storage.AlertBatch{Alerts: []*storage.Alert{a}}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.AlertByID(ctx, a.ID)
		if got.AckedBy != "张三" || got.DetectionCount != 2 {
			t.Fatalf("after engine update: %+v", got)
		}
		if err := s.ResolveAlert(ctx, a.ID, "张三", now); err != nil {
			t.Fatal(err)
		}
		if err := s.ResolveAlert(ctx, a.ID, "张三", now); !errors.Is(err, storage.ErrAlertNotFiring) {
			t.Fatalf("resolve twice: %v", err)
		}
		a.DetectionCount, a.UpdatedUS = 3, 3
		if err := s.SaveAlerts(ctx, storage.AlertBatch{Alerts: []*storage.Alert{a}}); !errors.Is(err, storage.ErrAlertConflict) {
			t.Fatalf("update of a resolved alert: %v", err)
		}
		if _, err := s.AlertByID(ctx, 12345); !errors.Is(err, storage.ErrNoAlert) {
			t.Fatalf("missing alert: %v", err)
		}
		ch, _ := s.AlertsChangedByOperator(ctx, 0)
		if len(ch) != 1 || ch[0].Status != storage.AlertResolved {
			t.Fatalf("operator changes %+v", ch)
		}
		list, _ := s.Alerts(ctx, storage.AlertFilter{Status: storage.AlertResolved})
		if len(list) != 1 {
			t.Fatalf("filter: %d", len(list))
		}

		// Silences.
		sl := &storage.Silence{Matchers: `["group=\"qq:1\""]`, StartsUS: now.UnixMicro(), EndsUS: now.Add(time.Hour).UnixMicro(), CreatedBy: "李四", Comment: "测试"}
		if err := s.AddSilence(ctx, sl); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSilence(ctx, &storage.Silence{Matchers: "[]", StartsUS: 5, EndsUS: 4, CreatedBy: "x"}); err == nil {
			t.Fatal("silence ending before it starts accepted")
		}
		active, _ := s.Silences(ctx, now)
		if len(active) != 1 {
			t.Fatalf("active silences %d", len(active))
		}
		if err := s.ExpireSilence(ctx, sl.ID, now); err != nil {
			t.Fatal(err)
		}
		if active, _ := s.Silences(ctx, now); len(active) != 0 {
			t.Fatalf("expired silence still active")
		}
		if err := s.ExpireSilence(ctx, 999, now); !errors.Is(err, storage.ErrNoSilence) {
			t.Fatalf("expire missing: %v", err)
		}
	})
}

func TestOutboxRepository(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		s := storagetest.Open(t, b.Config(t))
		ctx := context.Background()
		e := storage.OutboxEntry{DedupKey: "k1", Receiver: "ops", Integration: "webhook[0]", GroupKey: "g", Payload: "{}", NextAttemptUS: 100, CreatedUS: 100}
		log := storage.NotificationLog{Receiver: "ops", GroupHash: "h", GroupKey: "g", Firing: "[1]", Resolved: "[]", SentUS: 100}
		if err := s.EnqueueNotifications(ctx, []storage.OutboxEntry{e}, []storage.NotificationLog{log}); err != nil {
			t.Fatal(err)
		}
		// The same notification again is stored once; the log is updated.
		log.Firing, log.SentUS = "[1,2]", 200
		if err := s.EnqueueNotifications(ctx, []storage.OutboxEntry{e}, []storage.NotificationLog{log}); err != nil {
			t.Fatal(err)
		}
		logs, _ := s.NotificationLogs(ctx)
		if len(logs) != 1 || logs[0].Firing != "[1,2]" || logs[0].SentUS != 200 {
			t.Fatalf("log %+v", logs)
		}
		if c, _ := s.OutboxCounts(ctx); c[storage.OutboxPending] != 1 {
			t.Fatalf("counts %v", c)
		}
		// Not due yet.
		if got, _ := s.ClaimOutbox(ctx, 99, 1000, 10); len(got) != 0 {
			t.Fatal("claimed before due")
		}
		got, err := s.ClaimOutbox(ctx, 100, 1000, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %d", err, len(got))
		}
		// Leased: a second sender gets nothing until the lease runs out.
		if again, _ := s.ClaimOutbox(ctx, 500, 1500, 10); len(again) != 0 {
			t.Fatal("claimed twice while leased")
		}
		if due, ok, _ := s.NextOutboxDue(ctx); !ok || due < 1000 || due >= 6000 {
			t.Fatalf("next due %d %v", due, ok)
		}
		if again, _ := s.ClaimOutbox(ctx, 6000, 7000, 10); len(again) != 1 {
			t.Fatal("expired lease not reclaimed")
		}
		id := got[0].ID
		if err := s.RecordOutboxOutcomes(ctx, []storage.OutboxOutcome{{ID: id, State: storage.OutboxPending, Attempts: 1, NextUS: 15000, LastError: "POST https://x/…: HTTP 503"}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimOutbox(ctx, 14999, 16000, 10); len(got) != 0 {
			t.Fatal("claimed before the retry time")
		}
		if err := s.RecordOutboxOutcomes(ctx, []storage.OutboxOutcome{{ID: id, State: storage.OutboxDead, Attempts: 2, LastError: "HTTP 400"}}); err != nil {
			t.Fatal(err)
		}
		dead, _ := s.OutboxEntries(ctx, storage.OutboxFilter{State: storage.OutboxDead})
		if len(dead) != 1 || dead[0].Attempts != 2 || dead[0].LastError != "HTTP 400" {
			t.Fatalf("dead %+v", dead)
		}
		if n, _ := s.RequeueDead(ctx, []int64{id}, 20000); n != 1 {
			t.Fatalf("requeued %d", n)
		}
		got, _ = s.ClaimOutbox(ctx, 20000, 21000, 10)
		if len(got) != 1 || got[0].Attempts != 0 {
			t.Fatalf("requeued entry %+v", got)
		}
		if err := s.RecordOutboxOutcomes(ctx, []storage.OutboxOutcome{{ID: id, State: storage.OutboxSent, Attempts: 1, SentUS: 20001}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.OutboxCounts(ctx); c[storage.OutboxSent] != 1 || c[storage.OutboxPending] != 0 {
			t.Fatalf("counts %v", c)
		}
		if _, ok, _ := s.NextOutboxDue(ctx); ok {
			t.Fatal("nothing should be due")
		}
		if n, _ := s.PruneNotificationLogs(ctx, 300); n != 1 {
			t.Fatalf("pruned %d", n)
		}
	})
}
