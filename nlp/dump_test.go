package nlp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

func TestDump(t *testing.T) {
	if os.Getenv("DUMP") == "" {
		t.Skip()
	}
	n := normalizer(t)
	f, _ := os.Open("../../shared/corpus/dev_messages.jsonl")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ Text, Evasion, Label string }
		json.Unmarshal(sc.Bytes(), &m)
		if os.Getenv("DUMP") != "all" && m.Evasion == "none" {
			continue
		}
		out := n.Normalize(m.Text)
		fmt.Printf("%-9s %-20s %s\n%30s %s\n", m.Evasion, m.Label, m.Text, "->", out.Text)
	}
}
