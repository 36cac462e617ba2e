package nlp

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func checkNormalized(t *testing.T, in string, out *Normalized) {
	t.Helper()
	if out.OrigLen != utf8.RuneCountInString(in) {
		t.Fatalf("OrigLen %d, input has %d runes", out.OrigLen, utf8.RuneCountInString(in))
	}
	if len(out.Map) != len(out.Runes) || string(out.Runes) != out.Text {
		t.Fatalf("Map/Runes/Text disagree: %d %d", len(out.Map), len(out.Runes))
	}
	prev := 0
	for i, s := range out.Map {
		if s.Start < 0 || s.End > out.OrigLen || s.Start > s.End {
			t.Fatalf("rune %d maps to %+v, outside [0,%d]", i, s, out.OrigLen)
		}
		if s.Start < prev {
			t.Fatalf("map goes backwards at %d: %+v after %d", i, s, prev)
		}
		prev = s.Start
	}
	for _, c := range out.Changes {
		if c.Orig.Start < 0 || c.Orig.End > out.OrigLen || c.Orig.Start > c.Orig.End {
			t.Fatalf("change %+v outside the original", c)
		}
	}
}

// FuzzNormalize checks that the offset map is always valid and that
// normalising is idempotent, whatever the input.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"今晚任务：每人去他家拍３件，拍下不要付-款，把库纯锁死",
		"老闆想停就zz ５０００，不然繼續鎖kc",
		"退\xff\xfe款\x00", "😀😀😀", "，。！？", strings.Repeat("哈", 100),
		"ｈｔｔｐｓ：／／ｍ．ｔｂ．ｃｎ／ｈ．ｘ", "5.0.0.0 t.k 三千五 1万5 ②⓪⓪",
		"退\u200b款\u202e", "千万别一一万一", "五百一条300一条", "\r\n\r\n \t ",
	} {
		f.Add(s)
	}
	n := normalizer(f)
	f.Fuzz(func(t *testing.T, s string) {
		out := n.Normalize(s)
		checkNormalized(t, s, out)
		if !utf8.ValidString(out.Text) {
			t.Fatalf("normalised text is not valid UTF-8: %q", out.Text)
		}
		again := n.Normalize(out.Text)
		if again.Text != out.Text {
			t.Fatalf("not idempotent:\n in   %q\n once %q\n twice %q", s, out.Text, again.Text)
		}
	})
}

// TestHostileInputFinishesInBoundedTime feeds the normaliser what attackers
// send and checks the map and a generous time bound (this is a guard
// against quadratic behaviour, not a benchmark).
func TestHostileInputFinishesInBoundedTime(t *testing.T) {
	n := normalizer(t)
	inputs := map[string]string{
		"1 MB text":          strings.Repeat("拍下秒退锁库存，", 1<<20/24),
		"1 MB invalid UTF-8": strings.Repeat("\xff\xfe退", 1<<18),
		"only emoji":         strings.Repeat("😀🔒💰👎", 20000),
		"only punctuation":   strings.Repeat("，。！？、…—.-*/", 20000),
		"repeated":           strings.Repeat("退", 200000),
		"separators":         strings.Repeat("退.", 100000),
		"numerals":           strings.Repeat("一二三四五六七八九十百千万", 10000),
		"letters":            strings.Repeat("tk ", 100000),
	}
	for name, s := range inputs {
		start := time.Now()
		out := n.Normalize(s)
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("%s took %s", name, el)
		}
		checkNormalized(t, s, out)
	}
}
