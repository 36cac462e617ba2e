package nlp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// normPieces builds a Normalized the way the normaliser does, from pairs
// of (original piece, normalised piece): a piece of the same length maps
// rune by rune, otherwise every normalised rune maps to the whole original
// piece (a numeral "四千二" -> "4200", a separator "5.0.0.0" -> "5000").
func normPieces(t testing.TB, pairs ...string) *Normalized {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("normPieces: odd number of pieces")
	}
	var orig, text strings.Builder
	var m []Span
	pos := 0
	for i := 0; i < len(pairs); i += 2 {
		o, nr := []rune(pairs[i]), []rune(pairs[i+1])
		orig.WriteString(pairs[i])
		text.WriteString(pairs[i+1])
		for k := range nr {
			if len(o) == len(nr) {
				m = append(m, Span{pos + k, pos + k + 1})
			} else {
				m = append(m, Span{pos, pos + len(o)})
			}
		}
		pos += len(o)
	}
	return &Normalized{Original: orig.String(), Text: text.String(), Runes: []rune(text.String()), Map: m, OrigLen: pos}
}

// widthFold simulates the width and case steps of the normaliser: full-width
// ASCII becomes ASCII, ASCII letters become lower case, rune by rune.
func widthFold(s string) *Normalized {
	r := []rune(s)
	out := make([]rune, len(r))
	m := make([]Span, len(r))
	for i, c := range r {
		switch {
		case c >= 0xFF01 && c <= 0xFF5E:
			c -= 0xFEE0
		case c == '￥':
			c = '¥'
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
		m[i] = Span{i, i + 1}
	}
	return &Normalized{Original: s, Text: string(out), Runes: out, Map: m, OrigLen: len(r)}
}

// squeeze simulates the separator step of the normaliser: spaces, '-' and
// '.' are dropped and their original range joins the next rune's, so the
// map has gaps and ranges longer than one rune.
func squeeze(s string) *Normalized {
	var out []rune
	var m []Span
	pending := -1
	i := 0
	for _, c := range s {
		if c == ' ' || c == '-' || c == '.' {
			if pending < 0 {
				pending = i
			}
			i++
			continue
		}
		start := i
		if pending >= 0 {
			start, pending = pending, -1
		}
		out = append(out, c)
		m = append(m, Span{start, i + 1})
		i++
	}
	return &Normalized{Original: s, Text: string(out), Runes: out, Map: m, OrigLen: i}
}

// ent describes an expected entity: its type, value and the original text
// its span must cover.
type ent struct {
	typ  EntityType
	val  string
	text string
}

func (e ent) String() string { return fmt.Sprintf("%s:%q@%q", e.typ, e.val, e.text) }

func describe(n *Normalized, es []Entity) []ent {
	out := make([]ent, len(es))
	for i, e := range es {
		out[i] = ent{e.Type, e.Value, runeSlice(n.Original, e.Span.Start, e.Span.End)}
	}
	return out
}

func has(got []ent, want ent) bool {
	for _, g := range got {
		if g == want {
			return true
		}
	}
	return false
}

// hasType reports an entity of type t, with value v if v is not empty.
func hasType(got []ent, t EntityType, v string) bool {
	for _, g := range got {
		if g.typ == t && (v == "" || g.val == v) {
			return true
		}
	}
	return false
}

type entCase struct {
	name string
	in   *Normalized
	want []ent
	// not lists entities that must be absent; an empty val or text means any.
	not []ent
}

func runEntCases(t *testing.T, cases []entCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := ExtractEntities(c.in)
			checkInvariants(t, c.in, es)
			got := describe(c.in, es)
			for _, w := range c.want {
				if !has(got, w) {
					t.Errorf("missing %v\n  in  %q\n  got %v", w, c.in.Original, got)
				}
			}
			for _, w := range c.not {
				for _, g := range got {
					if g.typ == w.typ && (w.val == "" || g.val == w.val) && (w.text == "" || g.text == w.text) {
						t.Errorf("unexpected %v\n  in  %q\n  got %v", g, c.in.Original, got)
					}
				}
			}
		})
	}
}

func id(s string) *Normalized { return Identity(s) }

func TestEntitiesLinks(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "taobao item", in: id("目标 https://item.taobao.com/item.htm?id=618273645501&spm=a1z10 每人3单"),
			want: []ent{
				{EntItemLink, "https://item.taobao.com/item.htm?id=618273645501&spm=a1z10", "https://item.taobao.com/item.htm?id=618273645501&spm=a1z10"},
				{EntItemID, "taobao:618273645501", "618273645501"},
				{EntCount, "3单", "3单"},
			},
			not: []ent{{typ: EntPhone}, {typ: EntQQ}, {typ: EntMoney}, {typ: EntURL}}},
		{name: "tmall item glued to chinese", in: id("链接https://detail.tmall.com/item.htm?id=640098712345那款跑鞋"),
			want: []ent{
				{EntItemLink, "https://detail.tmall.com/item.htm?id=640098712345", "https://detail.tmall.com/item.htm?id=640098712345"},
				{EntItemID, "tmall:640098712345", "640098712345"},
			}},
		{name: "mobile taobao", in: id("h5 https://h5.m.taobao.com/awp/core/detail.htm?id=700011122233 看下"),
			want: []ent{{EntItemID, "taobao:700011122233", "700011122233"}}},
		{name: "jd item and shop", in: id("https://item.jd.com/100012345678.html 对比 https://mall.jd.com/index-1000001.html"),
			want: []ent{
				{EntItemID, "jd:100012345678", "100012345678"},
				{EntShopLink, "https://mall.jd.com/index-1000001.html", "https://mall.jd.com/index-1000001.html"},
			}},
		{name: "pdd", in: id("拼这个 https://mobile.yangkeduo.com/goods.html?goods_id=359123456789"),
			want: []ent{{EntItemID, "pdd:359123456789", "359123456789"}}},
		{name: "1688", in: id("货源 https://detail.1688.com/offer/623456789012.html"),
			want: []ent{{EntItemID, "1688:623456789012", "623456789012"}}},
		{name: "douyin", in: id("抖店 https://haohuo.jinritemai.com/views/product/detail?id=3456789012345 冲"),
			want: []ent{{EntItemID, "douyin:3456789012345", "3456789012345"}}},
		{name: "xianyu", in: id("闲鱼 https://www.goofish.com/item?id=712345678901"),
			want: []ent{{EntItemID, "xianyu:712345678901", "712345678901"}}},
		{name: "shop links", in: id("https://shop123456.taobao.com 和 https://yuechongjiaju.tmall.com/"),
			want: []ent{
				{EntShopLink, "https://shop123456.taobao.com", "https://shop123456.taobao.com"},
				{EntShopLink, "https://yuechongjiaju.tmall.com/", "https://yuechongjiaju.tmall.com/"},
			},
			not: []ent{{typ: EntItemID}}},
		{name: "short links keep case", in: id("复制 https://m.tb.cn/h.5AbCdEf?tk=XyZ1 打开手淘，或 t.cn/A6xYz 或 https://v.douyin.com/iRnQw/"),
			want: []ent{
				{EntShortLink, "https://m.tb.cn/h.5AbCdEf?tk=XyZ1", "https://m.tb.cn/h.5AbCdEf?tk=XyZ1"},
				{EntShortLink, "t.cn/A6xYz", "t.cn/A6xYz"},
				{EntShortLink, "https://v.douyin.com/iRnQw/", "https://v.douyin.com/iRnQw/"},
			}},
		{name: "other urls, trailing punctuation", in: id("看这里 https://example.com/a?b=1。还有 www.example.org，(见 https://x.cn/p)"),
			want: []ent{
				{EntURL, "https://example.com/a?b=1", "https://example.com/a?b=1"},
				{EntURL, "www.example.org", "www.example.org"},
				{EntURL, "https://x.cn/p", "https://x.cn/p"},
			}},
		{name: "www home page is not a shop", in: id("https://www.taobao.com/"),
			want: []ent{{EntURL, "https://www.taobao.com/", "https://www.taobao.com/"}},
			not:  []ent{{typ: EntShopLink}}},
		{name: "alipay qr link is a payment code", in: id("扫 https://qr.alipay.com/fkx12345abcdef 付"),
			want: []ent{{EntPaymentCode, "https://qr.alipay.com/fkx12345abcdef", "https://qr.alipay.com/fkx12345abcdef"}}},
		{name: "not links", in: id("券后19.9元，item.htm 和 a.b 都不是，邮箱 abc@163.com 也不是"),
			not: []ent{{typ: EntURL}, {typ: EntItemLink}, {typ: EntShortLink}}},
		{name: "full-width link", in: widthFold("目标 ｈｔｔｐｓ：／／ｉｔｅｍ．ｔａｏｂａｏ．ｃｏｍ／ｉｔｅｍ．ｈｔｍ？ｉｄ＝６７１２３４５０９８７６ 拍"),
			want: []ent{
				{EntItemLink, "ｈｔｔｐｓ：／／ｉｔｅｍ．ｔａｏｂａｏ．ｃｏｍ／ｉｔｅｍ．ｈｔｍ？ｉｄ＝６７１２３４５０９８７６", "ｈｔｔｐｓ：／／ｉｔｅｍ．ｔａｏｂａｏ．ｃｏｍ／ｉｔｅｍ．ｈｔｍ？ｉｄ＝６７１２３４５０９８７６"},
				{EntItemID, "taobao:671234509876", "６７１２３４５０９８７６"},
			}},
		{name: "upper case link keeps case", in: widthFold("HTTPS://Item.Taobao.com/item.htm?ID=618273645501"),
			want: []ent{
				{EntItemLink, "HTTPS://Item.Taobao.com/item.htm?ID=618273645501", "HTTPS://Item.Taobao.com/item.htm?ID=618273645501"},
				{EntItemID, "taobao:618273645501", "618273645501"},
			}},
		{name: "www collapsed by the normaliser", in: normPieces(t, "打开 ", "打开 ", "www", "w", ".Example.com", ".example.com"),
			want: []ent{{EntURL, "www.Example.com", "www.Example.com"}}},
	})
}

func TestEntitiesItemIDs(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "id=", in: id("宝贝 id=618273645501 拍"),
			want: []ent{{EntItemID, "unknown:618273645501", "618273645501"}},
			not:  []ent{{typ: EntQQ}, {typ: EntMoney}, {typ: EntPhone}}},
		{name: "宝贝id", in: id("宝贝ID：733420012468，每人2单"),
			want: []ent{{EntItemID, "unknown:733420012468", "733420012468"}, {EntCount, "2单", "2单"}}},
		{name: "id that looks like a phone is an id", in: id("商品id 13912345678"),
			want: []ent{{EntItemID, "unknown:13912345678", "13912345678"}},
			not:  []ent{{typ: EntPhone}}},
		{name: "group, order and user ids are not items", in: id("群id 815263704，订单id 4000123456789，用户id: 55512345678"),
			not: []ent{{typ: EntItemID}}},
		{name: "wxid and uid are not item ids", in: id("uid=12345678 wxid_abcd1234"),
			not: []ent{{typ: EntItemID}}},
		{name: "short numbers are not ids", in: id("id=12345"),
			not: []ent{{typ: EntItemID}}},
	})
}

func TestEntitiesTaoToken(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "yuan delimiters keep case", in: id("复制￥Qe5tY8uI3oP￥打开手淘"),
			want: []ent{{EntTaoToken, "Qe5tY8uI3oP", "￥Qe5tY8uI3oP￥"}},
			not:  []ent{{typ: EntMoney}}},
		{name: "normalised delimiters", in: widthFold("口令 ￥Ｒｔ７３ｎＷｓＫ２ｂ￥ 券后９．９元"),
			want: []ent{{EntTaoToken, "Ｒｔ７３ｎＷｓＫ２ｂ", "￥Ｒｔ７３ｎＷｓＫ２ｂ￥"}, {EntMoney, "9.9", "９．９元"}}},
		{name: "other currency signs", in: id("$AbCdEfGh12$ €Zz9Yy8Xx7€ ₳Qw12Er34Ty₳ ¢Mn45Bv67Cx¢ ₴Lk98Jh76Gf₴ ₤Pp11Oo22Ii₤"),
			want: []ent{
				{EntTaoToken, "AbCdEfGh12", "$AbCdEfGh12$"},
				{EntTaoToken, "Zz9Yy8Xx7", "€Zz9Yy8Xx7€"},
				{EntTaoToken, "Qw12Er34Ty", "₳Qw12Er34Ty₳"},
				{EntTaoToken, "Mn45Bv67Cx", "¢Mn45Bv67Cx¢"},
				{EntTaoToken, "Lk98Jh76Gf", "₴Lk98Jh76Gf₴"},
				{EntTaoToken, "Pp11Oo22Ii", "₤Pp11Oo22Ii₤"},
			}},
		{name: "parentheses need 复制/打开", in: id("长按复制(Ab3dEf7hJ9)打开淘宝"),
			want: []ent{{EntTaoToken, "Ab3dEf7hJ9", "(Ab3dEf7hJ9)"}}},
		{name: "parentheses without context", in: id("型号(Ab3dEf7hJ9)和(Copyright)"),
			not: []ent{{typ: EntTaoToken}}},
		{name: "wrong lengths and mismatched delimiters", in: id("￥abc123￥ ￥Abcdefgh12345678901￥ ￥Abcd1234$ ￥99 ￥12345678￥"),
			not: []ent{{typ: EntTaoToken}}},
		{name: "money after yuan sign", in: id("只要￥99，原价 ¥ 199.5"),
			want: []ent{{EntMoney, "99", "￥99"}, {EntMoney, "199.5", "¥ 199.5"}},
			not:  []ent{{typ: EntTaoToken}}},
	})
}

func TestEntitiesShops(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "flagship after verb", in: id("每人去暖橙家居旗舰店拍5件"),
			want: []ent{{EntShop, "暖橙家居旗舰店", "暖橙家居旗舰店"}}},
		{name: "marker with colon", in: id("目标：云裳汉服工作室，问客服20条"),
			want: []ent{{EntShop, "云裳汉服工作室", "云裳汉服工作室"}}},
		{name: "marker without colon", in: id("这次是山禾农家土特产店，写差评"),
			want: []ent{{EntShop, "山禾农家土特产店", "山禾农家土特产店"}}},
		{name: "铺子 with a numeral name", in: normPieces(t, "新单子：", "新单子：", "七", "7", "号零食铺子，每人两条", "号零食铺子,每人2条"),
			want: []ent{{EntShop, "七号零食铺子", "七号零食铺子"}}},
		{name: "traditional as written", in: normPieces(t, "投訴", "投诉", "晨光文具專營店", "晨光文具专营店", "虛假宣傳", "虚假宣传"),
			want: []ent{{EntShop, "晨光文具專營店", "晨光文具專營店"}}},
		{name: "letters and 商行", in: id("在ABC数码商行买的"),
			want: []ent{{EntShop, "ABC数码商行", "ABC数码商行"}}},
		{name: "number and counter end the text before", in: id("拍3件青柠母婴旗舰店的奶粉"),
			want: []ent{{EntShop, "青柠母婴旗舰店", "青柠母婴旗舰店"}}},
		{name: "soft marker kept in a short brand", in: id("帮宝适旗舰店有活动"),
			want: []ent{{EntShop, "帮宝适旗舰店", "帮宝适旗舰店"}}},
		{name: "店 before 里", in: id("给小熊零食店里所有宝贝写差评"),
			want: []ent{{EntShop, "小熊零食店", "小熊零食店"}}},
		{name: "generic and pronoun phrases", in: id("他家店不行，这家店也是，那家店、你家店、我们店、本店、网店、淘宝店、实体店、商店都一样"),
			not: []ent{{typ: EntShop}}},
		{name: "more generic phrases", in: id("开店难，进店看看，到店自提，该店此店同一家店，小店，人家小店，骗子店铺，关注店铺，宠物店"),
			not: []ent{{typ: EntShop}}},
		{name: "店长 店员 are people", in: id("我把他家店长拉进来了，店员也在"),
			not: []ent{{typ: EntShop}}},
		{name: "sentence-long run has no known start", in: id("今天我们一起好好努力认真研究一下怎么做网店"),
			not: []ent{{typ: EntShop}}},
		{name: "platform prefix and 官方", in: id("天猫青柠母婴旗舰店，小米官方旗舰店"),
			want: []ent{{EntShop, "青柠母婴旗舰店", "青柠母婴旗舰店"}, {EntShop, "小米官方旗舰店", "小米官方旗舰店"}},
			not:  []ent{{EntShop, "天猫青柠母婴旗舰店", ""}}},
		{name: "馆 and 商城", in: id("去橙子生活馆和拾光数码商城下单"),
			want: []ent{{EntShop, "橙子生活馆", "橙子生活馆"}, {EntShop, "拾光数码商城", "拾光数码商城"}}},
		{name: "opening a shop", in: id("想在淘宝上开个小店卖手工"),
			not: []ent{{typ: EntShop}}},
		{name: "generic kinds of shop", in: id("官方旗舰店，楼下水果店，隔壁那家奶茶店，摄影工作室，市图书馆"),
			not: []ent{{typ: EntShop}}},
		{name: "name after 目标店铺", in: normPieces(t, "目標店鋪：", "目标店铺：", "七", "7", "號零食，每人", "号零食，每人", "③", "3", "單", "单"),
			want: []ent{{EntShop, "七號零食", "七號零食"}}},
		{name: "name after 店名叫", in: id("店名叫橘子小铺子那个"),
			want: []ent{{EntShop, "橘子小铺子", "橘子小铺子"}}},
		{name: "目标店 with a count is no name", in: normPieces(t, "每人给目标店", "每人给目标店", "一", "1", "条中差评", "条中差评"),
			not: []ent{{typ: EntShop}}},
	})
}

func TestEntitiesMoney(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "unit after", in: id("返5元，运费12块钱，两毛不要，一单8块"),
			want: []ent{{EntMoney, "5", "5元"}, {EntMoney, "12", "12块钱"}, {EntMoney, "8", "8块"}}},
		{name: "fee before", in: id("停手费3000，和解费 8800"),
			want: []ent{{EntMoney, "3000", "3000"}, {EntMoney, "8800", "8800"}}},
		{name: "numeral normalised", in: normPieces(t, "和解费", "和解费", "四千二", "4200", "，转完就撤", ",转完就撤"),
			want: []ent{{EntMoney, "4200", "四千二"}}},
		{name: "separators normalised", in: normPieces(t, "老板，停手费 ", "老板,停手费 ", "5.0.0.0", "5000", "，今晚前到账", ",今晚前到账"),
			want: []ent{{EntMoney, "5000", "5.0.0.0"}, {EntDeadline, "今晚前", "今晚前"}}},
		{name: "full-width digits", in: normPieces(t, "老板，停手费", "老板，停手费", "５０００", "5000"),
			want: []ent{{EntMoney, "5000", "５０００"}}},
		{name: "k and w multipliers", in: id("给个准话，5k还是继续；赔1.2w就撤；拿9万出来"),
			want: []ent{{EntMoney, "5000", "5k"}, {EntMoney, "12000", "1.2w"}, {EntMoney, "90000", "9万"}}},
		{name: "multiplier normalised", in: normPieces(t, "给个准话，", "给个准话，", "⑤k", "5000", "还是继续", "还是继续"),
			want: []ent{{EntMoney, "5000", "⑤k"}}},
		{name: "verb context", in: id("转我2888图个吉利，打3000到我卡上，拿600出来"),
			want: []ent{{EntMoney, "2888", "2888"}, {EntMoney, "3000", "3000"}, {EntMoney, "600", "600"}}},
		{name: "rate", in: normPieces(t, "删评", "删评", "一条", "1条", "三百", "300", "，一单", ",1单", "十五", "15"),
			want: []ent{{EntMoney, "300", "三百"}, {EntMoney, "15", "十五"}},
			not:  []ent{{typ: EntCount}}},
		{name: "price before rate", in: normPieces(t, "想删就", "想删就", "五百一条", "500 1条"),
			want: []ent{{EntMoney, "500", "五百一条"}},
			not:  []ent{{typ: EntCount}}},
		{name: "more extortion wording", in: normPieces(t, "少说也得", "少说也得", "两万", "20000", "，诚意金2000，私了5000", ",诚意金2000,私了5000"),
			want: []ent{{EntMoney, "20000", "两万"}, {EntMoney, "2000", "2000"}, {EntMoney, "5000", "5000"}}},
		{name: "块 with tenths", in: id("才9块9包邮，3块5毛一个"),
			want: []ent{{EntMoney, "9.9", "9块9"}, {EntMoney, "3.5", "3块5毛"}},
			not:  []ent{{typ: EntCount}}},
		{name: "settlement", in: normPieces(t, "每人结算", "每人结算", "一百五", "150"),
			want: []ent{{EntMoney, "150", "一百五"}}},
		{name: "after context", in: id("报个价，8000，今天转账；4200成交"),
			want: []ent{{EntMoney, "8000", "8000"}, {EntMoney, "4200", "4200"}}},
		{name: "decimals and tenths", in: id("券后0.9元，五毛钱也是钱，5毛"),
			want: []ent{{EntMoney, "0.9", "0.9元"}, {EntMoney, "0.5", "5毛"}}},
		{name: "approximate", in: normPieces(t, "涉案", "涉案", "二百余万元", "200余万元"),
			want: []ent{{EntMoney, "2000000", "二百余万元"}}},
		{name: "not dates, times, counts, percentages", in: id("6月18日晚上8点，拍5单，返利50%，打9折，20:30开始，2024-06-18"),
			not: []ent{{typ: EntMoney}}},
		{name: "not ids, phones, hotlines", in: id("给12315打电话，转给13812345678，宝贝id=618273645501"),
			not: []ent{{typ: EntMoney}}},
		{name: "not single digits after verbs", in: id("给3个，收2"),
			not: []ent{{typ: EntMoney}}},
		{name: "no context", in: id("库存就剩300，一共87"),
			not: []ent{{typ: EntMoney}}},
		{name: "not weights or models", in: id("只要10kg，拿iPhone 15"),
			not: []ent{{typ: EntMoney}}},
		{name: "comma breaks the window", in: id("返现活动，要求五星+15字"),
			not: []ent{{typ: EntMoney}}},
		{name: "几十", in: normPieces(t, "几", "几", "十", "10", "块钱", "块钱"),
			not: []ent{{typ: EntMoney}}},
	})
}

func TestEntitiesCount(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "counters", in: id("每人2单，3件，20条，刷2轮，问30遍，5张图，2份，1套，3箱，24包，6瓶，2盒"),
			want: []ent{{EntCount, "2单", "2单"}, {EntCount, "3件", "3件"}, {EntCount, "20条", "20条"}, {EntCount, "2轮", "2轮"},
				{EntCount, "30遍", "30遍"}, {EntCount, "5张", "5张"}, {EntCount, "2份", "2份"}, {EntCount, "1套", "1套"},
				{EntCount, "3箱", "3箱"}, {EntCount, "24包", "24包"}, {EntCount, "6瓶", "6瓶"}, {EntCount, "2盒", "2盒"}}},
		{name: "多 between", in: normPieces(t, "一共拍了", "一共拍了", "三百多單", "300多单"),
			want: []ent{{EntCount, "300单", "三百多單"}}},
		{name: "circled", in: normPieces(t, "已拍", "已拍", "⑤", "5", "单", "单"),
			want: []ent{{EntCount, "5单", "⑤单"}}},
		{name: "accounts", in: id("准备了50号，每个号3单"),
			want: []ent{{EntCount, "50号", "50号"}, {EntCount, "3单", "3单"}}},
		{name: "not counts", in: id("第3单，3个月，满99包邮，家纺4件套，6月5号发货，5号链接"),
			not: []ent{{typ: EntCount}}},
		{name: "一个 is an article", in: normPieces(t, "看到", "看到", "一", "1", "个帖子，拍了", "个帖子，拍了", "两", "2", "个", "个"),
			want: []ent{{EntCount, "2个", "两个"}},
			not:  []ent{{EntCount, "1个", ""}}},
	})
}

func TestEntitiesTime(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "deadline prefix", in: id("截止今晚12点，没做完的不结算"),
			want: []ent{{EntDeadline, "截止今晚12点", "截止今晚12点"}},
			not:  []ent{{typ: EntTime}, {typ: EntMoney}}},
		{name: "deadline suffix normalised", in: normPieces(t, "明早", "明早", "十", "10", "点前交", "点前交"),
			want: []ent{{EntDeadline, "明早十点前", "明早十点前"}}},
		{name: "durations", in: normPieces(t, "30分钟内取消，", "30分钟内取消,", "三", "3", "天内处理，半小时内回复，今天之内转账", "天内处理,半小时内回复,今天之内转账"),
			want: []ent{{EntDeadline, "30分钟内", "30分钟内"}, {EntDeadline, "三天内", "三天内"},
				{EntDeadline, "半小时内", "半小时内"}, {EntDeadline, "今天之内", "今天之内"}}},
		{name: "other deadlines", in: id("最迟明天中午，周五晚上截止，12点之前"),
			want: []ent{{EntDeadline, "最迟明天中午", "最迟明天中午"}, {EntDeadline, "周五晚上截止", "周五晚上截止"},
				{EntDeadline, "12点之前", "12点之前"}}},
		{name: "times", in: id("今晚9点开始，8点半集合，20:30截图，凌晨再来，明天继续，6月18日开抢"),
			want: []ent{{EntTime, "今晚9点", "今晚9点"}, {EntTime, "8点半", "8点半"}, {EntTime, "20:30", "20:30"},
				{EntTime, "凌晨", "凌晨"}, {EntTime, "明天", "明天"}, {EntTime, "6月18日", "6月18日"}},
			not: []ent{{typ: EntDeadline}, {typ: EntMoney}}},
		{name: "a little is not one o'clock", in: normPieces(t, "有", "有", "一", "1", "点贵", "点贵"),
			not: []ent{{typ: EntTime}}},
		{name: "not times", in: id("3点建议，3天前买的，前3名，内容不错，每周3单"),
			not: []ent{{typ: EntTime}, {typ: EntDeadline}}},
		{name: "week with weekday", in: id("截至本周五下午5点交，下周一之前搞定"),
			want: []ent{{EntDeadline, "截至本周五下午5点", "截至本周五下午5点"}, {EntDeadline, "下周一之前", "下周一之前"}}},
		{name: "time limits given", in: normPieces(t, "给你", "给你", "三", "3", "天时间考虑，限时24小时", "天时间考虑，限时24小时"),
			want: []ent{{EntDeadline, "给你三天时间", "给你三天时间"}, {EntDeadline, "限时24小时", "限时24小时"}}},
		{name: "festival, month end, dawn, short clock", in: id("双十一前锁死，月底之前结清，天亮之前答复，晚8点开始"),
			want: []ent{{EntDeadline, "双十一前", "双十一前"}, {EntDeadline, "月底之前", "月底之前"},
				{EntDeadline, "天亮之前", "天亮之前"}, {EntTime, "晚8点", "晚8点"}}},
	})
}

func TestEntitiesContacts(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "qq with context", in: id("加我qq 2750183946，扣扣：123456，企鹅号是 98765432，Q号:55555"),
			want: []ent{{EntQQ, "2750183946", "2750183946"}, {EntQQ, "123456", "123456"}, {EntQQ, "98765432", "98765432"}, {EntQQ, "55555", "55555"}}},
		{name: "qq group and mail", in: id("群号：815263704，邮箱 1638250947@qq.com"),
			want: []ent{{EntQQ, "815263704", "815263704"}, {EntQQ, "1638250947", "1638250947"}}},
		{name: "no qq without context", in: id("报单 2750183946，已拍 123456，加油 0123456"),
			not: []ent{{typ: EntQQ}}},
		{name: "加我 with a phone is a phone", in: id("加我 13812345678"),
			want: []ent{{EntPhone, "13812345678", "13812345678"}},
			not:  []ent{{typ: EntQQ}}},
		{name: "explicit qq wins over phone shape", in: id("QQ 13812345678"),
			want: []ent{{EntQQ, "13812345678", "13812345678"}},
			not:  []ent{{typ: EntPhone}}},
		{name: "phones", in: id("电话138-1234-5678，手机 139 1234 5678，或+8615912345678，13698765432"),
			want: []ent{{EntPhone, "13812345678", "138-1234-5678"}, {EntPhone, "13912345678", "139 1234 5678"},
				{EntPhone, "15912345678", "15912345678"}, {EntPhone, "13698765432", "13698765432"}}},
		{name: "not phones", in: id("SF14820663915，快递单号 13812345678，订单 1381234567890，12812345678，138123456789"),
			not: []ent{{typ: EntPhone}}},
		{name: "wechat", in: id("wxid_p7q2r5t9 拉的群，加微信：Tom_2024，vx abc-123x，威信 zhangsan88"),
			want: []ent{{EntWeChat, "wxid_p7q2r5t9", "wxid_p7q2r5t9"}, {EntWeChat, "Tom_2024", "Tom_2024"},
				{EntWeChat, "abc-123x", "abc-123x"}, {EntWeChat, "zhangsan88", "zhangsan88"}}},
		{name: "not wechat", in: id("看下微信零钱，vx转账，微信 12345678，wx ab"),
			not: []ent{{typ: EntWeChat}}},
		{name: "alipay", in: id("打到我支付宝：13812345678，或者zfb账号 pay.me@163.com"),
			want: []ent{{EntAlipay, "13812345678", "13812345678"}, {EntPhone, "13812345678", "13812345678"},
				{EntAlipay, "pay.me@163.com", "pay.me@163.com"}}},
		{name: "alipay without an account", in: id("转到这个支付宝，看下支付宝"),
			not: []ent{{typ: EntAlipay}}},
		{name: "bank with context", in: id("工行卡号 6222 0212 3456 7890 123，建行 6217-0000-1111-2222"),
			want: []ent{{EntBank, "6222021234567890123", "6222 0212 3456 7890 123"}, {EntBank, "6217000011112222", "6217-0000-1111-2222"}}},
		{name: "bank by luhn", in: id("转 4111111111111111 谢谢"),
			want: []ent{{EntBank, "4111111111111111", "4111111111111111"}}},
		{name: "not bank", in: id("订单号 4000123456789012345，身份证 110101199003071234，流水 6222021234567890128，随便 1234567812345678"),
			not: []ent{{typ: EntBank}}},
	})
}

func TestEntitiesMentionsAndPayment(t *testing.T) {
	runEntCases(t, []entCase{
		{name: "mentions", in: id("@小熊优选-店长 看一下，@阿飞(管理) 结算，@Tom_2 好"),
			want: []ent{{EntMention, "小熊优选-店长", "@小熊优选-店长"}, {EntMention, "阿飞", "@阿飞"}, {EntMention, "Tom_2", "@Tom_2"}}},
		{name: "mention ends where the original has a space", in: normPieces(t, "@小雨 你好", "@小雨你好"),
			want: []ent{{EntMention, "小雨", "@小雨"}}},
		{name: "everyone", in: id("@全体成员 新任务 @所有人 @all 看"),
			want: []ent{{EntMention, "all", "@全体成员"}, {EntMention, "all", "@所有人"}, {EntMention, "all", "@all"}}},
		{name: "e-mail is no mention", in: id("发到 abc@163.com 或 https://example.com/@user"),
			not: []ent{{typ: EntMention}}},
		{name: "payment codes", in: id("把收款码发我，扫二维码付款，赞赏码也行，扫码转账"),
			want: []ent{{EntPaymentCode, "收款码", "收款码"}, {EntPaymentCode, "二维码", "二维码"},
				{EntPaymentCode, "赞赏码", "赞赏码"}, {EntPaymentCode, "扫码转账", "扫码转账"}}},
		{name: "qr code without payment", in: id("狗牌上有二维码，防走丢"),
			not: []ent{{typ: EntPaymentCode}}},
	})
}

// TestEntitiesSpansFollowTheMap checks that spans point at the original
// characters when normalisation changed lengths before the entity.
func TestEntitiesSpansFollowTheMap(t *testing.T) {
	n := normPieces(t, "差-评", "差评", "写完", "写完", "叁", "3", "條，", "条,", "停手费", "停手费", "⑤⓪⓪⓪", "5000", "，qq：", ",qq:", "１２３４５６７８", "12345678")
	es := ExtractEntities(n)
	checkInvariants(t, n, es)
	got := describe(n, es)
	for _, w := range []ent{{EntCount, "3条", "叁條"}, {EntMoney, "5000", "⑤⓪⓪⓪"}, {EntQQ, "12345678", "１２３４５６７８"}} {
		if !has(got, w) {
			t.Errorf("missing %v in %v", w, got)
		}
	}
}

// TestEntitiesSqueezedSeparators checks entities across a map with gaps.
func TestEntitiesSqueezedSeparators(t *testing.T) {
	n := squeeze("停手费 5.0.0.0 截止 今晚 12点 @小雨 你好")
	es := ExtractEntities(n)
	checkInvariants(t, n, es)
	got := describe(n, es)
	for _, w := range []ent{{EntMoney, "5000", " 5.0.0.0"}, {EntMention, "小雨", "@小雨"}} {
		if !has(got, w) {
			t.Errorf("missing %v in %v", w, got)
		}
	}
	if !hasType(got, EntDeadline, "") {
		t.Errorf("missing deadline in %v", got)
	}
}

// TestEntitiesOrderAndDedup checks sorting and that one span carries one
// entity per type.
func TestEntitiesOrderAndDedup(t *testing.T) {
	n := id("今晚8点 @全体成员 目标暖橙家居旗舰店 https://item.taobao.com/item.htm?id=618273645501 每人5件，一单8块，截止12点")
	es := ExtractEntities(n)
	checkInvariants(t, n, es)
	if len(es) < 8 {
		t.Fatalf("want at least 8 entities, got %v", describe(n, es))
	}
}

func TestEntitiesDegenerateInput(t *testing.T) {
	if ExtractEntities(nil) != nil {
		t.Error("nil input")
	}
	if es := ExtractEntities(id("")); es != nil {
		t.Errorf("empty input: %v", es)
	}
	// Runes longer than the map: the tail has no origin and is ignored.
	n := id("今晚8点")
	n.Runes = append(n.Runes, []rune("截止12点")...)
	checkInvariants(t, n, ExtractEntities(n))
	// Runes unset: Text is used.
	n = id("每人5单")
	n.Runes = nil
	if got := describe(n, ExtractEntities(n)); !has(got, ent{EntCount, "5单", "5单"}) {
		t.Errorf("Runes unset: %v", got)
	}
	// A map with empty ranges (a separator the normaliser inserted).
	n = &Normalized{Original: "5", Text: " 5", Runes: []rune(" 5"), Map: []Span{{0, 0}, {0, 1}}, OrigLen: 1}
	checkInvariants(t, n, ExtractEntities(n))
}

// TestEntitiesLargeInput runs hostile inputs of about 1 MB; they must
// finish (a quadratic scan would time the test out) without panicking.
func TestEntitiesLargeInput(t *testing.T) {
	if testing.Short() {
		t.Skip("large inputs")
	}
	inputs := map[string]string{
		"digits":      strings.Repeat("1", 1<<20),
		"han":         strings.Repeat("店", 1<<18),
		"at":          strings.Repeat("@", 1<<20),
		"mentions":    strings.Repeat("@a", 1<<19),
		"url":         "https://a.com/" + strings.Repeat("a", 1<<20),
		"urls":        strings.Repeat("http://t.cn/a ", 1<<16),
		"dots":        strings.Repeat("a.", 1<<19),
		"tokens":      strings.Repeat("￥Ab3dEf7hJ9￥", 1<<16),
		"delims":      strings.Repeat("￥", 1<<20),
		"ids":         strings.Repeat("id=618273645501 ", 1<<16),
		"phones":      strings.Repeat("13812345678 ", 1<<16),
		"money":       strings.Repeat("给3000，", 1<<17),
		"shops":       strings.Repeat("去暖橙家居旗舰店", 1<<16),
		"times":       strings.Repeat("今晚12点前", 1<<17),
		"emoji":       strings.Repeat("😀", 1<<18),
		"punct":       strings.Repeat("，。！？", 1<<18),
		"invalid":     strings.Repeat("\xff\xfe@\xc0", 1<<18),
		"qq":          strings.Repeat("qq", 1<<19),
		"wxid":        strings.Repeat("wxid_", 1<<18),
		"email-ish":   strings.Repeat("支付宝a", 1<<18),
		"grouped":     strings.Repeat("6222 ", 1<<18),
		"host":        strings.Repeat("a-", 1<<19) + ".com/",
		"alnum-delim": "￥" + strings.Repeat("a", 1<<20) + "￥",
	}
	for name, s := range inputs {
		t.Run(name, func(t *testing.T) {
			n := id(s)
			checkInvariants(t, n, ExtractEntities(n))
		})
	}
}

// checkInvariants are the properties every result must have.
func checkInvariants(t testing.TB, n *Normalized, es []Entity) {
	t.Helper()
	type key struct {
		t EntityType
		s Span
	}
	seen := map[key]bool{}
	var fold string // the original with full-width ASCII folded, for id digits
	for i, e := range es {
		if e.Span.Start < 0 || e.Span.Start >= e.Span.End || e.Span.End > n.OrigLen {
			t.Fatalf("entity %d %+v: span out of range (OrigLen %d)", i, e, n.OrigLen)
		}
		if i > 0 && es[i-1].Span.Start > e.Span.Start {
			t.Fatalf("entities not sorted by start: %+v before %+v", es[i-1], e)
		}
		if e.Value == "" {
			t.Fatalf("entity %d %+v: empty value", i, e)
		}
		k := key{e.Type, e.Span}
		if seen[k] {
			t.Fatalf("entity %d %+v: duplicate (type, span)", i, e)
		}
		seen[k] = true
		switch e.Type {
		case EntItemLink, EntShopLink, EntShortLink, EntURL, EntTaoToken, EntShop, EntWeChat, EntDeadline, EntTime:
			if !strings.Contains(n.Original, e.Value) {
				t.Fatalf("entity %+v: value not in the original %q", e, n.Original)
			}
		case EntItemID:
			_, digits, ok := strings.Cut(e.Value, ":")
			if !ok || digits == "" {
				t.Fatalf("entity %+v: item id without platform or digits", e)
			}
			if fold == "" {
				fold = foldWidth(n.Original)
			}
			if !strings.Contains(n.Original, digits) && !strings.Contains(fold, digits) && !strings.Contains(n.Text, digits) {
				t.Fatalf("entity %+v: id digits not in the text", e)
			}
		case EntPhone:
			if len(e.Value) != 11 || e.Value[0] != '1' {
				t.Fatalf("entity %+v: not a mobile number", e)
			}
		}
	}
}

func foldWidth(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 0xFF01 && c <= 0xFF5E {
			return c - 0xFEE0
		}
		return c
	}, s)
}

// corpusTexts reads the development corpus, or returns nil if it is absent.
func corpusTexts(tb testing.TB) []string {
	f, err := os.Open("../../shared/corpus/dev_messages.jsonl")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("corpus: %v", err)
		}
		out = append(out, m.Text)
	}
	return out
}

func BenchmarkExtractEntities(b *testing.B) {
	texts := corpusTexts(b)
	if len(texts) == 0 {
		b.Skip("corpus ../../shared/corpus/dev_messages.jsonl not found")
	}
	ns := make([]*Normalized, len(texts))
	runes := 0
	for i, s := range texts {
		ns[i] = Identity(s)
		runes += utf8.RuneCountInString(s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ExtractEntities(ns[i%len(ns)])
	}
	b.ReportMetric(float64(runes)/float64(len(ns)), "runes/msg")
}

func FuzzExtractEntities(f *testing.F) {
	for _, s := range []string{
		"",
		"今晚任务：每人去青柠母婴旗舰店下单5件，截止今晚12点",
		"复制￥Qe5tY8uI3oP￥打开手淘 https://m.tb.cn/h.5AbCdEf",
		"目标 https://item.taobao.com/item.htm?id=618273645501 每人3单",
		"ｈｔｔｐｓ：／／ｄｅｔａｉｌ．ｔｍａｌｌ．ｃｏｍ／ｉｔｅｍ．ｈｔｍ？ｉｄ＝６５２１１３８７００４２",
		"加我qq 2750183946 微信 Tom_2024 电话138-1234-5678 支付宝 a@b.com",
		"工行卡号 6222 0212 3456 7890 123 @全体成员 @小鹿-店长 收款码",
		"停手费5.0.0.0，一单八百，3.5k，1w，9万，¥99，￥",
		"@", "@@@@", "￥￥￥", "((((", "http://", "https://", "www.", "id=", "wxid_", "qq", "支付宝",
		"\xff\xfe\xfd", "😀😀😀", "，。！？", "1.2.3.4.5", "12:34:56", "2024-06-18", "店店店店店店店店店店店店店店店店",
		"a.b.c.d.e.f.com/", "https://a.b/" + strings.Repeat("(", 40) + ")", "6222-0212-3456-7890",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range []*Normalized{Identity(s), widthFold(s), squeeze(s)} {
			checkInvariants(t, n, ExtractEntities(n))
		}
	})
}

func TestShopAfterAClockTime(t *testing.T) {
	es := ExtractEntities(Identity("今晚八点北极狐户外专营店直播间见"))
	found := false
	for _, e := range es {
		if e.Type == EntShop {
			found = true
			if e.Value != "北极狐户外专营店" {
				t.Errorf("shop = %q", e.Value)
			}
		}
	}
	if !found {
		t.Errorf("no shop in %+v", es)
	}
}
