package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/scenario"
	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/demo"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

var (
	detOnce sync.Once
	det     *detect.Detector
)

func detector(t *testing.T) *detect.Detector {
	detOnce.Do(func() {
		var err error
		det, err = detect.Build(detect.DefaultConfig(), configs.Files)
		if err != nil {
			panic(err)
		}
	})
	return det
}

// TestStoredMessagesAreJudged runs the demo logs through a pipeline on
// every database and checks that verdicts are stored with the evidence:
// rule spans inside the message, the sender's role at the time, the group's
// risk, and moderator feedback that comes back out as training data.
func TestStoredMessagesAreJudged(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		st := storagetest.Open(t, b.Config(t))
		var mu sync.Mutex
		var seen int
		p, err := pipeline.New(st, detector(t), pipeline.Options{OnVerdict: func(*storage.Detection, *detect.Verdict) {
			mu.Lock()
			seen++
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		ss, err := scenario.Read(bytes.NewReader(demo.Logs()), "logs.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			evs, err := s.Events()
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if _, err := p.Submit(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		ds, err := st.Detections(ctx, storage.DetectionFilter{GroupKey: bot.GroupKey(bot.QQ, "815530927")})
		if err != nil {
			t.Fatal(err)
		}
		stats := p.Stats()
		if len(ds) == 0 || stats.Stored != int64(seen) || stats.Analysed == 0 {
			t.Fatalf("detections %d, stats %+v, callbacks %d", len(ds), stats, seen)
		}
		recs, _ := st.Records(ctx, storage.RecordFilter{GroupKey: bot.GroupKey(bot.QQ, "815530927"), Kinds: []string{"message"}})
		bySeq := map[int64]storage.Record{}
		for _, r := range recs {
			bySeq[r.ChainSeq] = r
		}
		var task *storage.Detection
		for i, d := range ds {
			r, ok := bySeq[d.ChainSeq]
			if !ok || r.ActorID != d.SenderID || r.ActorRole != d.SenderRole {
				t.Fatalf("detection %+v does not match its record %+v", d, r)
			}
			var hits []detect.RuleHit
			if err := json.Unmarshal([]byte(d.Rules), &hits); err != nil {
				t.Fatal(err)
			}
			n := len([]rune(r.Text))
			for _, h := range hits {
				for _, s := range h.Spans {
					if s.Start < 0 || s.End > n || s.Start >= s.End {
						t.Fatalf("span %+v outside message of %d runes", s, n)
					}
				}
			}
			if d.Label == "attack_task" && d.SenderRole == "owner" && task == nil {
				task = &ds[i]
			}
		}
		if task == nil || task.Risk <= 0 || task.ModelVersion == "" || task.RulesVersion == "" {
			t.Fatalf("no owner's attack task with risk and versions among %d detections", len(ds))
		}
		if orgs := p.Tracker().Organizers(bot.GroupKey(bot.QQ, "815530927")); len(orgs) == 0 {
			t.Fatal("no organisers tracked for the campaign group")
		}
		// Detections are evidence too: append-only.
		if err := storagetest.Exec(t, st, "UPDATE detections SET label = 'benign'"); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("detections could be updated: %v", err)
		}
		// Moderator feedback comes back as training data.
		if err := st.AddFeedback(ctx, &storage.Feedback{DetectionID: task.ID, Decision: storage.Confirmed, Moderator: "审核员A"}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddFeedback(ctx, &storage.Feedback{DetectionID: task.ID, Decision: "maybe", Moderator: "x"}); err == nil {
			t.Fatal("bad decision accepted")
		}
		if err := st.AddFeedback(ctx, &storage.Feedback{DetectionID: 999999, Decision: storage.Confirmed, Moderator: "x"}); err == nil {
			t.Fatal("feedback on a missing detection accepted")
		}
		exs, err := st.FeedbackExamples(ctx)
		if err != nil || len(exs) != 1 || exs[0].Text != bySeq[task.ChainSeq].Text || exs[0].DetectedLabel != "attack_task" {
			t.Fatalf("feedback examples = %+v, %v", exs, err)
		}
	})
}

func TestCloseWaitsForAnalysis(t *testing.T) {
	ctx := context.Background()
	st := storagetest.Open(t, storagetest.SQLiteConfig(t))
	p, err := pipeline.New(st, detector(t), pipeline.Options{Workers: 1, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 20, 0, 0, 0, time.UTC)
	for i := 0; i < 200; i++ {
		ev := &bot.Event{Kind: bot.KindMessage, Platform: bot.QQ, GroupID: "1", Time: t0.Add(time.Duration(i) * time.Second),
			Message: &bot.Message{ID: string(rune('a'+i%26)) + strings.Repeat("x", i/26), Sender: bot.Member{ID: "u"}, Text: "每人拍3件不付款，锁他库存"}}
		if _, err := p.Submit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Analysed != 200 {
		t.Fatalf("analysed %d of 200 after Close", s.Analysed)
	}
}
