package scenario

import (
	"os"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/bot"
)

const good = `{"id":"s1","platform":"qq","group":{"id":"1","name":"群"},"roster":[{"id":"a","nick":"A","role":"owner"},{"id":"b","nick":"B","role":"member"}],"messages":[{"t":"2024-06-10T20:00:00+08:00","from":"a","text":"任务"},{"t":"2024-06-10T20:01:00+08:00","event":"recall","target":"s1-1","operator":"a"},{"t":"2024-06-10T20:02:00+08:00","event":"role_change","member":"b","role":"admin","operator":"a"},{"t":"2024-06-10T20:03:00+08:00","from":"b","text":"收到","id":"x9"}],"truth":{"malicious":true,"organizers":["a"],"target_shops":["某店"]}}`

func TestReadAndEvents(t *testing.T) {
	ss, err := Read(strings.NewReader("# comment\n\n"+good+"\n"), "f.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Line != 3 || !ss[0].Truth.Malicious {
		t.Fatalf("scenarios = %+v", ss)
	}
	evs, err := ss[0].Events()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind))
	}
	if strings.Join(kinds, ",") != "roster,message,recall,role_change,message" {
		t.Fatalf("kinds = %v", kinds)
	}
	if evs[0].Roster.Members[0].Role != bot.RoleOwner || !evs[0].Roster.Complete {
		t.Fatalf("roster = %+v", evs[0].Roster)
	}
	if m := evs[1].Message; m.ID != "s1-1" || m.Sender.Nick != "A" || m.Sender.Role != "" {
		t.Fatalf("message = %+v (the sender's role must come from the roster history)", m)
	}
	if evs[4].Message.ID != "x9" || evs[3].Member.NewRole != bot.RoleAdmin || evs[3].Member.OldRole != bot.RoleMember {
		t.Fatalf("events = %+v %+v", evs[4].Message, evs[3].Member)
	}
	if !strings.Contains(string(evs[1].Raw), `"text":"任务"`) {
		t.Fatalf("raw payload is not the timeline entry: %s", evs[1].Raw)
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]string{
		"{not json":                   "f.jsonl:2: not a scenario object",
		`{"id":"x","platform":"icq"}`: "f.jsonl:2: scenario x: platform",
		strings.Replace(good, `"a","nick":"A"`, `"b","nick":"A"`, 1): "appears twice",
		good + "\n" + good: "f.jsonl:3: scenario id \"s1\" already used on line 2",
	}
	for in, want := range cases {
		_, err := Read(strings.NewReader("\n"+in), "f.jsonl")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: got %v, want %q", in, err, want)
		}
	}
	bad := strings.Replace(good, `"event":"recall"`, `"event":"poke"`, 1)
	ss, err := Read(strings.NewReader(bad), "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss[0].Events(); err == nil || !strings.Contains(err.Error(), `messages[1]: unknown event "poke"`) {
		t.Fatalf("unknown event: %v", err)
	}
}

// The development corpus must read without errors (when present).
func TestReadsTheCorpusFormat(t *testing.T) {
	f, err := os.Open("../../../shared/corpus/dev_scenarios.jsonl")
	if err != nil {
		t.Skip("development corpus not present")
	}
	defer f.Close()
	ss, err := Read(f, "dev_scenarios.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		evs, err := s.Events()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(s.Timeline)+1 {
			t.Fatalf("%s: %d events for %d entries", s.ID, len(evs), len(s.Timeline))
		}
	}
}
