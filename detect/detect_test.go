package detect_test

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot/scenario"
	"github.com/qunshao/qunshao/detect"
)

func ruleIDs(v *detect.Verdict) string {
	var ids []string
	for _, r := range v.Rules {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ",")
}

// TestVerdictsExplainThemselves checks labels on clear cases written for
// this test (not corpus lines), and that the explanation points at the
// original characters, disguised or not.
func TestVerdictsExplainThemselves(t *testing.T) {
	d := detector(t)
	cases := []struct {
		text, role, label string
		marked            []string // original substrings a fired rule must cover
	}{
		{"今晚任务：每人去他家拍３件，拍下不要付-款，把库纯锁死", "owner", "attack_task", []string{"不要付-款", "库纯锁死"}},
		{"老闆，想停手就拿八千出來，今天之內轉帳，不然繼續投訴", "owner", "extortion", []string{"停手"}},
		{"报告：已拍５单，都没fk，截图发了", "member", "attack_coordination", []string{"已拍"}},
		{"拍下确认收货后五星好评带图，截图给客服返现8元", "admin", "benign", nil},
		{"我昨天申请了退款，尺码不合适，商家很快同意了", "member", "benign", nil},
		{"看到新闻说有团伙组织恶意退款敲诈商家被抓了", "member", "benign", nil},
	}
	for _, c := range cases {
		v := d.Detect(c.text, c.role)
		if v.Label != c.label {
			t.Errorf("%q: label %s (%.2f, rules %s), want %s", c.text, v.Label, v.Score, ruleIDs(v), c.label)
			continue
		}
		if (c.label == "benign") != (v.Score < d.Threshold) {
			t.Errorf("%q: score %.2f disagrees with label %s", c.text, v.Score, v.Label)
		}
		r := []rune(c.text)
		for _, want := range c.marked {
			found := false
			for _, h := range v.Rules {
				for _, s := range h.Spans {
					if s.End <= len(r) && strings.Contains(string(r[s.Start:s.End]), want) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%q: no rule span covers %q (rules %+v)", c.text, want, v.Rules)
			}
		}
		if c.label != "benign" && (v.Severity == "info" || v.Model.Version == "") {
			t.Errorf("%q: severity %q model %q", c.text, v.Severity, v.Model.Version)
		}
	}
}

func TestEntitiesInVerdict(t *testing.T) {
	v := detector(t).Detect("目标：青禾茶具旗舰店 https://detail.tmall.com/item.htm?id=702913358841 每人拍5单，一单给8块", "owner")
	types := map[string]string{}
	for _, e := range v.Entities {
		types[string(e.Type)] = e.Value
	}
	if types["shop"] != "青禾茶具旗舰店" || !strings.Contains(types["item_id"], "702913358841") || types["item_link"] == "" {
		t.Fatalf("entities = %+v", v.Entities)
	}
}

func TestTrainingIsDeterministic(t *testing.T) {
	d := detector(t)
	lines := []detect.Labelled{
		{ID: "a", Text: "每人拍3件不付款锁库存", Label: "attack_task", Role: "owner"},
		{ID: "b", Text: "老板想停手就转5000", Label: "extortion", Role: "owner"},
		{ID: "c", Text: "已拍5单没付款", Label: "attack_coordination", Role: "member"},
		{ID: "d", Text: "好评返现5元", Label: "benign_promo", Role: "admin"},
		{ID: "e", Text: "今天天气不错", Label: "benign_chat", Role: "member"},
		{ID: "f", Text: "新闻说差评师被抓了", Label: "benign_discussion", Role: "member"},
	}
	p := detect.DefaultTrainParams()
	p.Epochs = 50
	m1, err := d.Train(lines, nil, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := d.Train(lines, nil, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Version != m2.Version || !reflect.DeepEqual(m1.Weights, m2.Weights) {
		t.Fatal("two trainings on the same data differ")
	}
	// Feedback changes the model and its version.
	m3, err := d.Train(lines, []detect.Labelled{{ID: "g", Text: "每人拍3件记得付款", Label: "benign_promo"}}, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m3.Version == m1.Version {
		t.Fatal("feedback did not change the model version")
	}
	b, err := detect.MarshalModel(m1)
	if err != nil {
		t.Fatal(err)
	}
	back, err := detect.UnmarshalModel(b)
	if err != nil {
		t.Fatal(err)
	}
	f := []string{"w:锁库存", "L:no_pay"}
	if a, b := m1.Predict(f).Probs, back.Predict(f).Probs; !reflect.DeepEqual(a, b) {
		t.Fatalf("round-tripped model predicts differently: %v vs %v", a, b)
	}
	if _, err := detect.UnmarshalModel([]byte(`{"classes":["a"],"bias":[1,2]}`)); err == nil {
		t.Fatal("inconsistent model accepted")
	}
}

func TestFeedbackMovesTheModel(t *testing.T) {
	d := detector(t)
	// A phrase the shipped model has no opinion on; moderators keep
	// confirming it as an attack task.
	probe := "兄弟们今晚去把那家的羊毛薅秃"
	var lines, fb []detect.Labelled
	b, err := os.ReadFile("../configs/model/extra.jsonl")
	if err != nil {
		t.Skip("no embedded training lines")
	}
	lines, err = detect.ReadLabelled(bytes.NewReader(b), "extra.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	p := detect.DefaultTrainParams()
	before, err := d.Train(lines, nil, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		fb = append(fb, detect.Labelled{ID: "fb" + string(rune('a'+i)), Text: probe, Label: "attack_task", Role: "owner"})
	}
	after, err := d.Train(lines, fb, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	feats := d.Features(probe, "owner")
	if pb, pa := before.Predict(feats).Probs["attack_task"], after.Predict(feats).Probs["attack_task"]; pa <= pb+0.2 {
		t.Fatalf("feedback moved P(attack_task) only from %.2f to %.2f", pb, pa)
	}
}

// TestReplayDemoLogs runs the bundled demo logs through correlation: the
// campaign group is malicious with its owner as an organiser, the promotion
// group is not.
func TestReplayDemoLogs(t *testing.T) {
	d := detector(t)
	f, err := os.Open("../demo/logs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ss, err := scenario.Read(f, "logs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		r := d.Correlate(detect.ScenarioMessages(s))
		if r.Malicious != s.Truth.Malicious {
			t.Errorf("%s: malicious=%v, want %v (risk %.2f)", s.ID, r.Malicious, s.Truth.Malicious, r.Risk)
		}
		if !s.Truth.Malicious {
			if len(r.Organizers) != 0 {
				t.Errorf("%s: organisers %v in a benign group", s.ID, r.Organizers)
			}
			continue
		}
		if len(r.Organizers) == 0 || r.Organizers[0] == "" {
			t.Errorf("%s: no organisers", s.ID)
		}
		for _, o := range r.Organizers {
			if !contains(s.Truth.Organizers, o) {
				t.Errorf("%s: %s is not an organiser", s.ID, o)
			}
		}
		if len(r.Campaigns) == 0 || len(r.Timeline) == 0 {
			t.Errorf("%s: no campaign or risk timeline", s.ID)
		}
		if len(r.TargetShops) == 0 {
			t.Errorf("%s: no target shop", s.ID)
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestTrackerRiskDecaysAndCorroborates(t *testing.T) {
	tr := detect.NewTracker()
	t0 := time.Date(2025, 1, 1, 20, 0, 0, 0, time.UTC)
	task := &detect.Verdict{Label: "attack_task", Score: 0.95, Rules: []detect.RuleHit{{ID: "task.stock_lock", Category: "attack_task"}}}
	prog := &detect.Verdict{Label: "attack_coordination", Score: 0.9, Rules: []detect.RuleHit{{ID: "coord.progress", Category: "attack_coordination", Tags: []string{"progress"}}}}
	st := tr.Observe("g", detect.GroupMessage{ID: "1", Time: t0, Sender: "boss", Role: "owner"}, task)
	if st.Malicious {
		t.Fatal("one message made the group malicious")
	}
	st = tr.Observe("g", detect.GroupMessage{ID: "2", Time: t0.Add(time.Minute), Sender: "m", Role: "member"}, prog)
	if !st.Malicious || st.Risk < 0.8 {
		t.Fatalf("task + progress: %+v", st)
	}
	later := tr.Observe("g", detect.GroupMessage{ID: "3", Time: t0.Add(30 * 24 * time.Hour), Sender: "x"}, &detect.Verdict{Label: "attack_coordination", Score: 0.1})
	if later.Risk >= st.Risk/4 {
		t.Fatalf("risk did not decay over a month: %.2f -> %.2f", st.Risk, later.Risk)
	}
	orgs := tr.Organizers("g")
	if len(orgs) != 1 || orgs[0].ID != "boss" || orgs[0].Roles[0] != "owner" {
		t.Fatalf("organisers = %+v (the member only reported progress)", orgs)
	}
	// The same messages said by the classifier alone, or in a benign
	// context, count for less.
	tr2 := detect.NewTracker()
	quoted := &detect.Verdict{Label: "extortion", Score: 0.95, Rules: []detect.RuleHit{{ID: "benign.discussion", Category: "benign"}}}
	tr2.Observe("v", detect.GroupMessage{ID: "1", Time: t0, Sender: "victim"}, quoted)
	st2 := tr2.Observe("v", detect.GroupMessage{ID: "2", Time: t0.Add(time.Minute), Sender: "victim2"}, quoted)
	if st2.Malicious || st2.Risk > 0.5 {
		t.Fatalf("victims quoting demands made the group malicious: %+v", st2)
	}
}

// TestEmbeddedModelMatchesTheRules fails when rule packs changed after the
// shipped model was trained: its rule features would no longer mean what
// they meant. Retrain with the command in README.
func TestEmbeddedModelMatchesTheRules(t *testing.T) {
	d := detector(t)
	m := d.Model()
	if m == nil {
		t.Fatal("no embedded model")
	}
	if m.Rules != d.Engine().Version {
		t.Fatalf("embedded model was trained with rules %s, the packs are now %s: retrain (see README)", m.Rules, d.Engine().Version)
	}
	if len(m.Sources) == 0 || m.TrainedAt.IsZero() {
		t.Fatalf("embedded model does not record its training data: %+v %v", m.Sources, m.TrainedAt)
	}
}

func TestLinkGroups(t *testing.T) {
	reports := []*detect.GroupReport{
		{ID: "g1", Malicious: true, Organizers: []string{"boss"}, TargetShops: []string{"青禾茶具旗舰店"}, Items: []string{"tmall:1"}},
		{ID: "g2", Malicious: true, Organizers: []string{"boss", "other"}, TargetShops: []string{"青禾茶具旗舰店"}},
		{ID: "g3", Malicious: false, Organizers: []string{}, TargetShops: []string{"青禾茶具旗舰店"}},
		{ID: "g4", Malicious: true, Organizers: []string{"x"}, Items: []string{"tmall:1"}},
	}
	links := detect.LinkGroups(reports)
	want := map[string]string{"organizer:boss": "g1,g2", "shop:青禾茶具旗舰店": "g1,g2", "item:tmall:1": "g1,g4"}
	if len(links) != len(want) {
		t.Fatalf("links = %+v", links)
	}
	for _, l := range links {
		if want[l.Kind+":"+l.Value] != strings.Join(l.Groups, ",") {
			t.Errorf("link %+v", l)
		}
	}
	if got := links.For("g4"); len(got) != 1 || got[0].Kind != "item" {
		t.Errorf("links for g4 = %+v", got)
	}
}

// TestHostileMessagesAreJudgedInBoundedTime runs whole analysis on what
// attackers send (a guard against pathological cost, not a benchmark) and
// checks every span stays inside the original text.
func TestHostileMessagesAreJudgedInBoundedTime(t *testing.T) {
	d := detector(t)
	for name, text := range map[string]string{
		"1 MB":             strings.Repeat("今晚任务：每人拍3件不付款锁库存，", 1<<20/48),
		"invalid UTF-8":    strings.Repeat("退\xff款\xfe", 50000),
		"emoji":            strings.Repeat("🔒💰👎😀", 50000),
		"punctuation":      strings.Repeat("，。！？*/-", 50000),
		"regex-hostile":    strings.Repeat("((((a+)+)+)+$", 20000) + strings.Repeat("http://", 20000),
		"deeply repeated":  strings.Repeat("锁", 300000),
		"numerals":         strings.Repeat("一万二千三百四十五", 30000),
		"formula and html": strings.Repeat("=HYPERLINK(\"http://x\")<script>alert(1)</script>", 5000),
	} {
		start := time.Now()
		v := d.Detect(text, "member")
		if el := time.Since(start); el > 60*time.Second {
			t.Errorf("%s took %s", name, el)
		}
		n := len([]rune(text))
		for _, r := range v.Rules {
			for _, s := range r.Spans {
				if s.Start < 0 || s.End > n || s.Start >= s.End {
					t.Errorf("%s: span %+v outside %d runes", name, s, n)
				}
			}
		}
		for _, e := range v.Entities {
			if e.Span.Start < 0 || e.Span.End > n || e.Span.Start >= e.Span.End {
				t.Errorf("%s: entity span %+v outside %d runes", name, e.Span, n)
			}
		}
	}
}
