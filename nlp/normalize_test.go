package nlp

import (
	"os"
	"strings"
	"sync"
	"testing"
)

var (
	testNormOnce sync.Once
	testNorm     *Normalizer
)

func normalizer(t testing.TB) *Normalizer {
	t.Helper()
	testNormOnce.Do(func() {
		b, err := os.ReadFile("../configs/nlp/lexicon.yaml")
		if err != nil {
			panic(err)
		}
		lex, err := ParseLexicon(b, "lexicon.yaml")
		if err != nil {
			panic(err)
		}
		common := map[string]bool{"下蛋": true, "投宿": true, "退还": true}
		testNorm, err = NewNormalizer(lex, func(s string) bool { return common[s] })
		if err != nil {
			panic(err)
		}
	})
	return testNorm
}

func TestNormalizeUndoesDisguises(t *testing.T) {
	n := normalizer(t)
	cases := []struct{ in, want string }{
		{"拍完ＴＫ，锁ＫＣ", "拍完退款，锁库存"},
		{"已拍５单，都没付款", "已拍5单，都没付款"},
		{"差評寫完了", "差评写完了"},
		{"鎖庫存", "锁库存"},
		{"退*款", "退款"},
		{"退 款", "退款"},
		{"锁.库.存", "锁库存"},
		{"差🙂评", "差评"},
		{"投/诉", "投诉"},
		{"退\u200b款", "退款"},
		{"退退退退款", "退款"},
		{"退宽", "退款"},
		{"差坪", "差评"},
		{"库纯", "库存"},
		{"拍夏", "拍下"},
		{"和姐费", "和解费"},
		{"tk 退货", "退款退货"},
		{"明天去 ts 他", "明天去投诉他"},
		{"已xd 5单，没fk", "已下单 5单，没付款"},
		{"停手费 5.0.0.0", "停手费 5000"},
		{"给 3.5k", "给 3500"},
		{"1w 不少了", "10000 不少了"},
		{"三千五，少一分都不行", "3500，少一分都不行"},
		{"②⓪⓪", "200"},
		{"🔒库存", "锁库存"},
		{"打👎评", "打差评"},
		{"t.k ok", "tk ok"}, // joined, but no Chinese context: not expanded
		{"今晚t.k", "今晚退款"},
		{"一起去逛街", "一起去逛街"},
		{"千万别参与", "千万别参与"},
		{"统一申请", "统一申请"},
		{"要了八千", "要了8000"},
		{"三百多单", "300多单"},
		{"一单八百", "1单800"},
		{"https://item.taobao.com/item.htm?id=683920415527", "https://item.taobao.com/item.htm?id=683920415527"},
		{"ｈｔｔｐｓ：／／ｍ．ｔｂ．ｃｎ／ｈ．ｘ", "https://m.tb.cn/h.x"},
		{"鸡下蛋了", "鸡下蛋了"},
	}
	for _, c := range cases {
		got := n.Normalize(c.in)
		if got.Text != c.want {
			t.Errorf("Normalize(%q) = %q, want %q (changes %+v)", c.in, got.Text, c.want, got.Changes)
		}
	}
}

func TestOffsetsPointAtTheOriginal(t *testing.T) {
	n := normalizer(t)
	in := "今晚去锁.库.存，然后ＴＫ，给三千五"
	got := n.Normalize(in)
	find := func(w string) string {
		i := strings.Index(got.Text, w)
		if i < 0 {
			t.Fatalf("%q not in %q", w, got.Text)
		}
		start := len([]rune(got.Text[:i]))
		return got.OrigText(start, start+len([]rune(w)))
	}
	for w, orig := range map[string]string{"锁库存": "锁.库.存", "退款": "ＴＫ", "3500": "三千五", "今晚": "今晚"} {
		if g := find(w); g != orig {
			t.Errorf("%s maps back to %q, want %q", w, g, orig)
		}
	}
}

func TestNormalizeKeepsNumbersApart(t *testing.T) {
	n := normalizer(t)
	for in, want := range map[string]string{
		"五百一条":           "500 1条",
		"删差坪300一条":       "删差评300 1条",
		"两万五":            "25000",
		"一百二":            "120",
		"三千零五":           "3005",
		"十五件":            "15件",
		"要的@我":           "要的@我",
		"❌付款":            "不付款",
		"65W快充头":         "65w快充头",
		"5w不少":           "50000不少",
		"www.taobao.com": "www.taobao.com",
	} {
		if got := n.Normalize(in).Text; got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

var (
	testSegOnce sync.Once
	testSeg     *Segmenter
)

func testSegmenter(t testing.TB) *Segmenter {
	testSegOnce.Do(func() {
		b, err := os.ReadFile("../configs/nlp/lexicon.yaml")
		if err != nil {
			panic(err)
		}
		lex, err := ParseLexicon(b, "lexicon.yaml")
		if err != nil {
			panic(err)
		}
		testSeg, err = NewSegmenter(lex, DefaultSegmenterConfig())
		if err != nil {
			panic(err)
		}
	})
	return testSeg
}
