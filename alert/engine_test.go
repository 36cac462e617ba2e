package alert_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert"
	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func dur(d time.Duration) *time.Duration { return &d }

// One campaign in one group: the detections of a category join one alert,
// which knows the organisers with their roles at the time, the staff now,
// the target shop, links and marked excerpts.
func TestAlertsAggregateACampaign(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		testAlertsAggregateACampaign(t, newHarnessOn(t, storagetest.Open(t, b.Config(t)), testConfig()))
	})
}

func testAlertsAggregateACampaign(t *testing.T, h *harness) {
	h.event(roster("100", t0.Add(-time.Hour),
		bot.Member{ID: "1", Nick: "老王", Role: bot.RoleOwner},
		bot.Member{ID: "2", Nick: "小李", Role: bot.RoleMember},
		bot.Member{ID: "3", Nick: "阿强", Role: bot.RoleMember}))
	h.detect(det{sender: "1", label: "attack_task", text: "明天十点悦宠家居旗舰店每人拍5件然后退款", marks: []string{"拍5件", "退款"}, shop: "悦宠家居旗舰店", link: "https://m.tb.cn/h.abc"})
	h.clock.Advance(time.Minute)
	// The member is promoted; the next task is posted as admin.
	h.event(roster("100", h.clock.Now(),
		bot.Member{ID: "1", Nick: "老王", Role: bot.RoleOwner},
		bot.Member{ID: "2", Nick: "小李", Role: bot.RoleAdmin},
		bot.Member{ID: "3", Nick: "阿强", Role: bot.RoleMember}))
	h.detect(det{sender: "2", label: "attack_task", text: "悦宠家居继续拍，锁库存", marks: []string{"锁库存"}, shop: "悦宠家居"})
	h.detect(det{sender: "3", label: "attack_coordination", text: "我拍了5单", marks: []string{"拍了5单"}})
	h.detect(det{sender: "2", label: "benign", text: "大家好"}) // benign: no alert
	h.step()

	as := mustAlerts(t, h.st, storage.AlertFilter{})
	if len(as) != 2 {
		t.Fatalf("%d alerts, want a task alert and a coordination alert", len(as))
	}
	var task storage.Alert
	for _, a := range as {
		if a.Category == "attack_task" {
			task = a
		}
	}
	if task.DetectionCount != 2 || task.Shop != "悦宠家居旗舰店" || task.Status != storage.AlertFiring || task.Severity != "high" {
		t.Fatalf("task alert = %+v", task)
	}
	if task.Fingerprint != alert.Fingerprint("attack_task", "qq", "qq:100", "悦宠家居旗舰店") {
		t.Errorf("fingerprint %s", task.Fingerprint)
	}
	v := alert.View(&task, "https://console.example/")
	if v.URL != "https://console.example/alerts/"+itoa(task.ID) {
		t.Errorf("console link %q", v.URL)
	}
	if len(v.Organizers) != 2 || v.Organizers[0].ID != "1" || v.Organizers[0].Role != "owner" ||
		v.Organizers[1].ID != "2" || v.Organizers[1].Role != "admin" {
		t.Errorf("organisers with roles at the time = %+v", v.Organizers)
	}
	if len(v.Staff) != 2 || v.Staff[0].ID != "1" || v.Staff[1].ID != "2" || v.Staff[1].Role != "admin" {
		t.Errorf("staff now = %+v", v.Staff)
	}
	if strings.Join(v.Shops, ",") != "悦宠家居旗舰店,悦宠家居" || len(v.Links) != 1 {
		t.Errorf("shops %v links %v", v.Shops, v.Links)
	}
	if len(v.Excerpts) != 2 || v.Excerpts[0].Marked() != "明天十点悦宠家居旗舰店每人«拍5件»然后«退款»" || v.Excerpts[0].SenderRole != "member" && v.Excerpts[0].SenderRole != "owner" {
		t.Errorf("excerpts %+v", v.Excerpts)
	}
	if v.GroupName != "群100" || v.Labels["group"] != "qq:100" || v.Labels["shop"] != "悦宠家居旗舰店" {
		t.Errorf("labels %v name %q", v.Labels, v.GroupName)
	}
	ids, err := h.st.AlertDetectionIDs(context.Background(), task.ID)
	if err != nil || len(ids) != 2 {
		t.Errorf("alert detections %v %v", ids, err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// group_wait, group_interval and repeat_interval as in Alertmanager,
// driven by a fake clock.
func TestGroupingTiming(t *testing.T) {
	cfg := testConfig()
	cfg.Route.GroupWait = 5 * time.Second
	cfg.Route.GroupInterval = time.Minute
	cfg.Route.RepeatInterval = 4 * time.Hour
	cfg.InhibitRules = nil
	h := newHarness(t, cfg)
	seen := 0

	h.detect(det{sender: "1", label: "attack_task", text: "每人拍5件退款", shop: "甲店"})
	h.step()
	h.advance(4 * time.Second)
	h.expectNew(&seen, 0, "before group_wait")
	h.advance(time.Second)
	n := h.expectNew(&seen, 1, "at group_wait")[0]
	if n.Status != "firing" || len(n.Alerts) != 1 || n.Receiver != "ops" {
		t.Fatalf("first notification %s", describe(n))
	}

	// More detections of the same alert change nothing for the receiver.
	h.advance(10 * time.Second)
	h.detect(det{sender: "1", label: "attack_task", text: "甲店继续拍", shop: "甲店"})
	h.advance(time.Minute)
	h.expectNew(&seen, 0, "same alert, more messages")

	// A second alert in the same group (another shop) waits for
	// group_interval, then both go out together.
	h.detect(det{sender: "1", label: "attack_task", text: "乙店也拍", shop: "乙店"})
	h.step()
	h.expectNew(&seen, 0, "new alert before group_interval")
	h.advance(time.Minute)
	n = h.expectNew(&seen, 1, "new alert at group_interval")[0]
	if len(n.Alerts) != 2 {
		t.Fatalf("grouped notification %s", describe(n))
	}
	// Another group is its own aggregation group.
	h.detect(det{group: "200", sender: "9", label: "attack_task", text: "丙店"})
	h.advance(5 * time.Second)
	if n := h.expectNew(&seen, 1, "other group")[0]; n.Alerts[0].GroupKey != "qq:200" {
		t.Fatalf("other group %s", describe(n))
	}

	// Nothing changes: repeat after repeat_interval, at the first flush
	// from then on, and not before. Keep the alerts alive meanwhile.
	for i := 0; i < 238; i++ {
		h.advance(time.Minute)
	}
	h.expectNew(&seen, 0, "before repeat_interval")
	for i := 0; i < 3; i++ {
		h.advance(time.Minute)
	}
	got := h.expectNew(&seen, 2, "repeat_interval")
	if len(got[0].Alerts)+len(got[1].Alerts) != 3 {
		t.Fatalf("repeats %s / %s", describe(got[0]), describe(got[1]))
	}
}

// An acknowledged alert is not repeated; resolving it tells the receiver.
func TestAckAndResolve(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		cfg := testConfig()
		cfg.Route.RepeatInterval = time.Hour
		testAckAndResolve(t, newHarnessOn(t, storagetest.Open(t, b.Config(t)), cfg))
	})
}

func testAckAndResolve(t *testing.T, h *harness) {
	seen := 0
	h.detect(det{sender: "1", label: "extortion", text: "不给钱就继续"})
	h.advance(5 * time.Second)
	id := h.expectNew(&seen, 1, "fires")[0].Alerts[0].ID
	if err := h.st.AckAlert(context.Background(), id, "张三", "在处理", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 70; i++ {
		h.advance(time.Minute)
	}
	h.expectNew(&seen, 0, "acknowledged: no repeat")
	if err := h.st.ResolveAlert(context.Background(), id, "张三", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.st.ResolveAlert(context.Background(), id, "张三", h.clock.Now()); err == nil {
		t.Error("resolving twice accepted")
	}
	h.advance(2 * time.Minute)
	n := h.expectNew(&seen, 1, "resolved")[0]
	if n.Status != "resolved" || n.Alerts[0].ResolvedBy != "张三" {
		t.Fatalf("resolution %s", describe(n))
	}
	// The same campaign again is a new episode.
	h.detect(det{sender: "1", label: "extortion", text: "再不给钱就继续"})
	h.advance(time.Minute)
	as := mustAlerts(t, h.st, storage.AlertFilter{})
	if len(as) != 2 || as[0].Episode != 2 || as[0].Fingerprint != as[1].Fingerprint || as[0].Status != storage.AlertFiring {
		t.Fatalf("new episode: %+v", as)
	}
}

// Alerts resolve after resolve_timeout without a new detection.
func TestResolveTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.ResolveTimeout = time.Hour
	h := newHarness(t, cfg)
	seen := 0
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	h.expectNew(&seen, 1, "fires")
	h.advance(50 * time.Minute)
	h.detect(det{sender: "1", label: "attack_task", text: "继续拍"})
	h.advance(50 * time.Minute)
	h.expectNew(&seen, 0, "kept alive by the second detection")
	h.advance(15 * time.Minute)
	n := h.expectNew(&seen, 1, "resolved by timeout")[0]
	if n.Status != "resolved" || n.Alerts[0].ResolvedBy != "timeout" {
		t.Fatalf("resolution %s", describe(n))
	}
}

// An extortion alert inhibits the coordination alerts of its group, not of
// other groups; when it resolves, they are notified.
func TestInhibition(t *testing.T) {
	cfg := testConfig()
	cfg.InhibitRules = alert.DefaultConfig().InhibitRules
	h := newHarness(t, cfg)
	seen := 0
	h.detect(det{sender: "1", label: "extortion", text: "给3万就停"})
	h.detect(det{sender: "2", label: "attack_coordination", text: "拍了5单"})
	h.detect(det{group: "200", sender: "3", label: "attack_coordination", text: "拍了5单"})
	h.advance(5 * time.Second)
	got := h.expectNew(&seen, 2, "extortion, and coordination of the other group")
	for _, n := range got {
		if n.Alerts[0].Category == "attack_coordination" && n.Alerts[0].GroupKey == "qq:100" {
			t.Fatalf("inhibited alert notified: %s", describe(n))
		}
	}
	for _, a := range mustAlerts(t, h.st, storage.AlertFilter{GroupKey: "qq:100", Category: "attack_coordination"}) {
		if why := h.eng.Muted(a.ID); why != "inhibited" {
			t.Errorf("muted: %q", why)
		}
	}
	var ext int64
	for _, n := range got {
		if n.Alerts[0].Category == "extortion" {
			ext = n.Alerts[0].ID
		}
	}
	if err := h.st.ResolveAlert(context.Background(), ext, "李四", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Minute)
	got = h.expectNew(&seen, 2, "extortion resolved; coordination no longer inhibited")
	cats := map[string]string{}
	for _, n := range got {
		cats[n.Alerts[0].Category] = n.Status
	}
	if cats["extortion"] != "resolved" || cats["attack_coordination"] != "firing" {
		t.Fatalf("after resolution: %v", cats)
	}
}

// A silence mutes matching alerts until it ends or is expired.
func TestSilence(t *testing.T) {
	h := newHarness(t, testConfig())
	seen := 0
	ms, _ := alert.ParseMatchers([]string{`group="qq:100"`, `category=~"attack_.*"`})
	sl := &storage.Silence{Matchers: ms.JSON(), StartsUS: h.clock.Now().UnixMicro(), EndsUS: h.clock.Now().Add(time.Hour).UnixMicro(),
		CreatedBy: "王五", Comment: "已知的测试群"}
	if err := h.st.AddSilence(context.Background(), sl); err != nil {
		t.Fatal(err)
	}
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.detect(det{group: "200", sender: "1", label: "attack_task", text: "拍"})
	h.detect(det{sender: "1", label: "extortion", text: "给钱"})
	h.advance(5 * time.Second)
	got := h.expectNew(&seen, 2, "silenced group's task alert muted")
	for _, n := range got {
		if n.Alerts[0].GroupKey == "qq:100" && n.Alerts[0].Category == "attack_task" {
			t.Fatalf("silenced alert notified")
		}
	}
	h.advance(10 * time.Minute)
	h.expectNew(&seen, 0, "still silenced")
	for _, a := range mustAlerts(t, h.st, storage.AlertFilter{GroupKey: "qq:100", Category: "attack_task"}) {
		if why := h.eng.Muted(a.ID); why != "silenced by silence "+itoa(sl.ID) {
			t.Errorf("muted: %q", why)
		}
	}
	if err := h.st.ExpireSilence(context.Background(), sl.ID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Minute)
	if n := h.expectNew(&seen, 1, "silence expired")[0]; n.Alerts[0].GroupKey != "qq:100" || n.Alerts[0].Category != "attack_task" {
		t.Fatalf("after expiry: %s", describe(n))
	}
}

// Routing: matchers, continue, inherited settings, group_by.
func TestRouting(t *testing.T) {
	cfg := testConfig()
	cfg.Route.Routes = []alert.Route{
		{Matchers: []string{`severity=~"high|critical"`}, Receiver: "pager", Continue: true, GroupWait: dur(0)},
		{Matchers: []string{`category="extortion"`}, Receiver: "legal", GroupBy: []string{"category"}},
	}
	h := newHarness(t, cfg)
	seen := 0
	h.detect(det{sender: "1", label: "attack_task", text: "拍", severity: "critical"})
	h.detect(det{sender: "1", label: "attack_task", text: "拍", severity: "low", group: "300"})
	h.detect(det{sender: "1", label: "extortion", text: "钱", severity: "medium", group: "200"})
	h.detect(det{sender: "1", label: "extortion", text: "钱", severity: "medium", group: "201"})
	h.step()
	got := h.expectNew(&seen, 1, "pager has group_wait 0")
	if got[0].Receiver != "pager" {
		t.Fatalf("%s", describe(got[0]))
	}
	h.advance(5 * time.Second)
	got = h.expectNew(&seen, 2, "after group_wait")
	by := map[string]int{}
	for _, n := range got {
		by[n.Receiver] = len(n.Alerts)
	}
	// The critical task went to pager only (continue, then no match
	// below); the low one fell through to the root (ops); both
	// extortions to legal, grouped by category alone.
	if by["legal"] != 2 || by["ops"] != 1 || by["pager"] != 0 {
		t.Fatalf("routing %v", by)
	}
}

// Mute time intervals hold notifications back until the window ends.
func TestMuteTimeInterval(t *testing.T) {
	cfg := testConfig()
	cfg.TimeIntervals = []alert.TimeInterval{{Name: "morning", TimeIntervals: []alert.TimeSpec{{
		Times: []alert.TimeRange{{StartTime: "09:00", EndTime: "10:30"}}, Weekdays: []string{"monday:friday"}}}}}
	cfg.Route.MuteTimeIntervals = []string{"morning"}
	h := newHarness(t, cfg) // t0 is 10:00 Beijing time, a Monday
	seen := 0
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	h.expectNew(&seen, 0, "muted window")
	for i := 0; i < 14; i++ {
		h.advance(2 * time.Minute)
	}
	h.expectNew(&seen, 0, "still muted at 10:28")
	h.advance(2 * time.Minute)
	h.expectNew(&seen, 1, "window over")
}

// A new engine on the same store rebuilds its groups without repeating
// what was sent, picks up detections stored while it was down, and still
// tells receivers about alerts that resolved meanwhile.
func TestRestartKeepsState(t *testing.T) {
	h := newHarness(t, testConfig())
	seen := 0
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.detect(det{sender: "1", label: "extortion", text: "钱"})
	h.advance(5 * time.Second)
	got := h.expectNew(&seen, 2, "before restart")
	// Down: one alert is resolved by an operator, a new detection arrives.
	ext := got[1].Alerts[0].ID
	if got[0].Alerts[0].Category == "extortion" {
		ext = got[0].Alerts[0].ID
	}
	h.clock.Advance(time.Minute)
	if err := h.st.ResolveAlert(context.Background(), ext, "op", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.detect(det{group: "500", sender: "7", label: "attack_task", text: "新群拍"})
	h.start()
	h.step()
	h.advance(5 * time.Second)
	got = h.expectNew(&seen, 2, "after restart: the resolution and the new group")
	st := map[string]string{}
	for _, n := range got {
		st[n.Alerts[0].GroupKey+"/"+n.Alerts[0].Category] = n.Status
	}
	if st["qq:100/extortion"] != "resolved" || st["qq:500/attack_task"] != "firing" {
		t.Fatalf("after restart %v", st)
	}
	h.advance(10 * time.Minute)
	h.expectNew(&seen, 0, "no repeats of what was sent before the restart")
}

// An engine that has run resumes at its cursor; one that has never run
// starts after the detections already stored, unless told to read from
// the start.
func TestCursor(t *testing.T) {
	st := storagetest.Open(t, storagetest.SQLiteConfig(t))
	h := newHarnessOn(t, st, testConfig(), func(o *alert.Options) { o.FromStart = false })
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.step()
	if n := len(mustAlerts(t, st, storage.AlertFilter{})); n != 1 {
		t.Fatalf("%d alerts", n)
	}
	h.detect(det{sender: "1", label: "extortion", text: "钱"})
	h.start() // restarted before it saw the extortion
	h.step()
	if n := len(mustAlerts(t, st, storage.AlertFilter{})); n != 2 {
		t.Fatalf("detection stored while down: %d alerts", n)
	}
	// A database upgraded with a history of detections: no cursor yet.
	if err := storagetest.Exec(t, st, "DELETE FROM alert_cursors"); err != nil {
		t.Fatal(err)
	}
	h.detect(det{group: "300", sender: "1", label: "extortion", text: "钱"})
	h.start()
	h.step()
	if n := len(mustAlerts(t, st, storage.AlertFilter{})); n != 2 {
		t.Fatalf("old detection alerted after upgrade: %d alerts", n)
	}
	h.detect(det{group: "301", sender: "1", label: "extortion", text: "钱"})
	h.step()
	if n := len(mustAlerts(t, st, storage.AlertFilter{})); n != 3 {
		t.Fatalf("new detection after upgrade: %d alerts", n)
	}
}

// Suppressed detections (imports with --no-alert) raise nothing.
func TestSuppress(t *testing.T) {
	h := newHarness(t, testConfig(), func(o *alert.Options) {
		o.Suppress = func(_ context.Context, d *storage.Detection, rec *storage.Record) bool {
			return rec != nil && rec.GroupKey == "qq:100" && rec.MsgID == d.MsgID
		}
	})
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.detect(det{group: "200", sender: "1", label: "attack_task", text: "拍"})
	h.step()
	as := mustAlerts(t, h.st, storage.AlertFilter{})
	if len(as) != 1 || as[0].GroupKey != "qq:200" {
		t.Fatalf("alerts %+v", as)
	}
	if s := h.eng.Stats(); s.Suppressed != 1 || s.AlertsCreated != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// An operator resolves an alert just before the engine adds a detection
// to it: the engine's update is refused, it reloads, and the detection
// starts the next episode; the resolution is still notified.
func TestOperatorResolveRacesEngine(t *testing.T) {
	h := newHarness(t, testConfig())
	seen := 0
	h.detect(det{sender: "1", label: "attack_task", text: "拍"})
	h.advance(5 * time.Second)
	first := h.expectNew(&seen, 1, "fires")[0].Alerts[0].ID
	if err := h.st.ResolveAlert(context.Background(), first, "op", h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.detect(det{sender: "1", label: "attack_task", text: "继续拍"})
	if _, err := h.eng.Process(context.Background()); err != nil { // before any Tick has seen the resolution
		t.Fatal(err)
	}
	as := mustAlerts(t, h.st, storage.AlertFilter{})
	if len(as) != 2 || as[0].Episode != 2 || as[0].DetectionCount != 1 || as[1].ID != first || as[1].Status != storage.AlertResolved || as[1].DetectionCount != 1 {
		t.Fatalf("alerts %+v", as)
	}
	h.advance(2 * time.Minute)
	got := h.expectNew(&seen, 1, "the resolution and the new episode, one group")
	st := map[int64]string{}
	for _, n := range got {
		for _, a := range n.Alerts {
			st[a.ID] = a.Status
		}
	}
	if st[first] != "resolved" || st[as[0].ID] != "firing" {
		t.Fatalf("notified %v", st)
	}
}

// On PostgreSQL and MySQL a detection with a lower id can commit after one
// with a higher id. The engine reads past the hole, takes the late one
// when it appears, keeps its durable cursor below the hole, and after a
// restart from that cursor takes nothing twice.
func TestLateDetections(t *testing.T) {
	h := newHarness(t, testConfig())
	d1 := h.detect(det{sender: "1", label: "attack_task", text: "拍", group: "1"})
	h.step()
	// Simulate the concurrent transactions: ids d1+2 commits before d1+1.
	mk := func(id int64, group string) *storage.Detection {
		d := d1
		d.ID, d.GroupKey = id, "qq:"+group
		return &d
	}
	if err := h.st.InsertDetections(context.Background(), []*storage.Detection{mk(d1.ID+2, "3")}); err != nil {
		t.Fatal(err)
	}
	h.step()
	if n := len(mustAlerts(t, h.st, storage.AlertFilter{})); n != 2 {
		t.Fatalf("read past the hole: %d alerts", n)
	}
	if cur, _ := h.st.AlertCursor(context.Background(), alert.CursorName); cur != d1.ID {
		t.Fatalf("durable cursor %d, want %d (below the hole)", cur, d1.ID)
	}
	if err := h.st.InsertDetections(context.Background(), []*storage.Detection{mk(d1.ID+1, "2")}); err != nil {
		t.Fatal(err)
	}
	h.step()
	if n := len(mustAlerts(t, h.st, storage.AlertFilter{})); n != 3 {
		t.Fatalf("late detection: %d alerts", n)
	}
	if cur, _ := h.st.AlertCursor(context.Background(), alert.CursorName); cur != d1.ID+2 {
		t.Fatalf("cursor %d after the hole filled", cur)
	}
	// A restart with the cursor held back re-reads detections already
	// taken: none is taken twice.
	if err := storagetest.Exec(t, h.st, "UPDATE alert_cursors SET value = ?", d1.ID-1); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.step()
	for _, a := range mustAlerts(t, h.st, storage.AlertFilter{}) {
		if a.DetectionCount != 1 {
			t.Fatalf("alert %d has %d detections after re-reading", a.ID, a.DetectionCount)
		}
	}
	// A hole that never fills stops holding the cursor back.
	if err := h.st.InsertDetections(context.Background(), []*storage.Detection{mk(d1.ID+5, "5")}); err != nil {
		t.Fatal(err)
	}
	h.step()
	h.advance(time.Minute)
	h.step()
	if cur, _ := h.st.AlertCursor(context.Background(), alert.CursorName); cur != d1.ID+5 {
		t.Fatalf("cursor %d with an abandoned hole", cur)
	}
}
