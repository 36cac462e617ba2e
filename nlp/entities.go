package nlp

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EntityType names what an entity is.
type EntityType string

// Entity types. Values that must be exact (links, 淘口令 codes, ids, WeChat
// ids, shop names, mentions, deadlines and times) are taken from the
// original text; amounts, counts and phone/QQ/bank numbers are digits read
// from the normalised text.
const (
	EntItemLink    EntityType = "item_link"    // link to an item page (taobao, tmall, jd, pdd/yangkeduo, 1688, douyin/jinritemai, xianyu/goofish)
	EntShopLink    EntityType = "shop_link"    // link to a shop's front page (shopNNN.taobao.com, xxx.tmall.com, mall.jd.com/index-NNN.html, ...)
	EntShortLink   EntityType = "short_link"   // m.tb.cn, e.tb.cn, s.click.taobao.com, t.cn, u.jd.com, v.douyin.com, dwz.cn, url.cn, ...
	EntURL         EntityType = "url"          // any other http(s) or www. link
	EntItemID      EntityType = "item_id"      // "<platform>:<digits>", or "unknown:<digits>" from "id=..."/"宝贝id ..." without a link
	EntTaoToken    EntityType = "tao_token"    // 淘口令: the code between matching delimiters, as written
	EntShop        EntityType = "shop"         // shop name as written, e.g. "悦宠家居旗舰店"
	EntMoney       EntityType = "money"        // amount in yuan as a plain decimal string ("3500", "0.9")
	EntCount       EntityType = "count"        // number + counter: "5单", "300单", "3件"
	EntDeadline    EntityType = "deadline"     // a time limit as written: 截止今晚12点, 明早十点前, 30分钟内
	EntTime        EntityType = "time"         // other times as written: 今晚9点, 8点半, 20:30, 凌晨, 明天
	EntQQ          EntityType = "qq"           // QQ or QQ group number, only with context
	EntWeChat      EntityType = "wechat"       // wxid_xxx or an id after 微信/vx/wx
	EntPhone       EntityType = "phone"        // mainland mobile number, 11 digits
	EntAlipay      EntityType = "alipay"       // account after 支付宝/zfb (phone digits or e-mail)
	EntBank        EntityType = "bank_account" // 16-19 digit card number with context or a valid Luhn check
	EntMention     EntityType = "mention"      // @name; @全体成员/@所有人/@all -> "all"
	EntPaymentCode EntityType = "payment_code" // 收款码, 付款码, 二维码 (with 付/转/扫/收 nearby), ...
)

// Entity is something named in a message.
type Entity struct {
	Type  EntityType `json:"type"`
	Value string     `json:"value"`
	// Span is the entity's range in the ORIGINAL text, in runes.
	Span Span `json:"span"`
}

// ExtractEntities finds entities in a normalised message. Spans are rune
// offsets into n.Original, sorted by start; one entity per (type, span).
//
// Detection runs on the normalised runes, so disguised forms (full-width
// URLs, 三千五, 退-款) are read as what they mean; every family of rules is
// gated by a cheap feature scan so that a typical message touches only
// one or two of them. Every scanner looks at a bounded window around each
// position, so the work is linear in the length of the message.
func ExtractEntities(n *Normalized) []Entity {
	if n == nil {
		return nil
	}
	r := n.Runes
	if r == nil && n.Text != "" {
		r = []rune(n.Text)
	}
	if len(r) > len(n.Map) {
		// A rune without an origin cannot be reported.
		r = r[:len(n.Map)]
	}
	if len(r) == 0 {
		return nil
	}
	x := extractor{n: n, r: r}
	f := entFeatures(r)
	// Order matters: links, ids and 淘口令 claim their runes first so that
	// the digits inside them are never read as phones, QQ numbers or
	// money; shop names claim theirs before numbers ("九号零食铺子").
	if f&fLetter != 0 && f&fDot != 0 {
		x.links()
	}
	if f&fLetter != 0 && f&fLongNumber != 0 {
		x.contextItemIDs()
	}
	if f&fDelim != 0 && f&fLetter != 0 {
		x.taoTokens()
	}
	if f&fAt != 0 {
		x.mentions()
	}
	x.contacts(f)
	if f&fShop != 0 {
		x.shops()
	}
	if f&fDigit != 0 {
		x.numbers()
	}
	if f&(fDigit|fTime) != 0 {
		x.times()
	}
	if f&fPay != 0 {
		x.payCodes()
	}
	if len(x.out) == 0 {
		return nil
	}
	slices.SortFunc(x.out, func(a, b Entity) int {
		if a.Span.Start != b.Span.Start {
			return a.Span.Start - b.Span.Start
		}
		if a.Span.End != b.Span.End {
			return a.Span.End - b.Span.End
		}
		return strings.Compare(string(a.Type), string(b.Type))
	})
	return slices.CompactFunc(x.out, func(a, b Entity) bool {
		return a.Type == b.Type && a.Span == b.Span
	})
}

// Feature bits: which families of rules can possibly match. cTimeStart
// and cAccount are per-rune classes used inside scanners.
const (
	fDigit uint16 = 1 << iota
	fLetter
	fAt
	fDot
	fDelim
	fShop
	fTime
	fContact
	fPay
	cTimeStart // a time expression or duration can start here
	cAccount   // a WeChat or Alipay keyword can start here
	// fLongNumber: a run of 5 or more digits, or 11 digits in all (a
	// grouped phone or card number); no id, QQ, phone or card without.
	fLongNumber
)

// entClass holds the feature bits of every rune of the Basic Multilingual
// Plane, so the feature scan and the per-position gates are one table
// lookup. It is built at package init and read-only afterwards.
var entClass = func() *[0x10000]uint16 {
	var t [0x10000]uint16
	set := func(bits uint16, runes string) {
		for _, c := range runes {
			t[c] |= bits
		}
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= fDigit | cTimeStart
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= fLetter
		t[c-'a'+'A'] |= fLetter
	}
	set(fAt, "@＠")
	set(fDot, ".")
	set(fDelim, "$(¥￥＄€¢￠₴₤₳（")
	set(fShop, "店铺鋪室行馆城商")
	// fTime: any rune that can start or end a time expression.
	set(fTime, "今明后昨前当次周本这下上星礼大凌早清中傍晚夜半深午白几双月年天截内限给宽")
	set(fContact, "微威薇信扣企群支卡银加")
	set(fPay, "码")
	set(cTimeStart, "今明后昨前当次周本这下上星礼大凌早清中傍晚夜半深午白几双月年天")
	set(cAccount, "微威薇vVwW加支zZaA")
	return &t
}()

func exClass(c rune) uint16 {
	if c < 0 || c > 0xFFFF {
		return 0
	}
	return entClass[c]
}

func entFeatures(r []rune) uint16 {
	var f uint16
	run, total := 0, 0
	for _, c := range r {
		k := exClass(c)
		f |= k
		if k&fDigit != 0 {
			run++
			total++
			if run >= 5 || total >= 11 {
				f |= fLongNumber
			}
		} else {
			run = 0
		}
	}
	return f &^ (cTimeStart | cAccount)
}

// extractor holds the state of one ExtractEntities call.
type extractor struct {
	n   *Normalized
	r   []rune // normalised runes, at most len(n.Map)
	out []Entity
	// claims marks normalised runes already explained by a more specific
	// entity (a link, an id, a phone number, a shop name).
	claims []uint64
	// off maps original rune offsets to byte offsets; built only for long
	// originals, where slicing by counting runes would be quadratic.
	off []int
	// linkSpans are the original spans of links, in order.
	linkSpans []Span
}

func (x *extractor) claim(s, e int) {
	if x.claims == nil {
		x.claims = make([]uint64, (len(x.r)+63)/64)
	}
	for i := max(s, 0); i < e && i < len(x.r); i++ {
		x.claims[i>>6] |= 1 << (i & 63)
	}
}

func (x *extractor) claimed(s, e int) bool {
	if x.claims == nil {
		return false
	}
	for i := max(s, 0); i < e && i < len(x.r); i++ {
		if x.claims[i>>6]&(1<<(i&63)) != 0 {
			return true
		}
	}
	return false
}

// span maps a normalised range to the original; ok is false when the map
// gives no usable range.
func (x *extractor) span(s, e int) (Span, bool) {
	if s < 0 || e > len(x.r) || s >= e {
		return Span{}, false
	}
	sp := x.n.OrigSpan(s, e)
	return sp, sp.Start >= 0 && sp.Start < sp.End && sp.End <= x.n.OrigLen
}

// orig returns the original text of an original span.
func (x *extractor) orig(sp Span) string {
	o := x.n.Original
	if len(o) <= 256 {
		return runeSlice(o, sp.Start, sp.End)
	}
	if x.off == nil {
		x.off = make([]int, 0, len(o)/2)
		for b := range o {
			x.off = append(x.off, b)
		}
		x.off = append(x.off, len(o))
	}
	last := len(x.off) - 1
	if sp.Start >= last {
		return ""
	}
	return o[x.off[sp.Start]:x.off[min(sp.End, last)]]
}

// addOrig records an entity whose value is the original text of [s, e).
func (x *extractor) addOrig(t EntityType, s, e int) bool {
	sp, ok := x.span(s, e)
	if !ok {
		return false
	}
	return x.addSpan(t, x.orig(sp), sp)
}

// add records an entity with a computed value over normalised [s, e).
func (x *extractor) add(t EntityType, value string, s, e int) bool {
	sp, ok := x.span(s, e)
	if !ok {
		return false
	}
	return x.addSpan(t, value, sp)
}

func (x *extractor) addSpan(t EntityType, value string, sp Span) bool {
	if value == "" {
		return false
	}
	if x.out == nil {
		x.out = make([]Entity, 0, 4)
	}
	x.out = append(x.out, Entity{Type: t, Value: value, Span: sp})
	return true
}

// digitsOf returns the digits of normalised [s, e) as ASCII, read from the
// original when the original is plain (ASCII or full-width) digits, so an
// id is what was written; otherwise the normalised digits.
func (x *extractor) digitsOf(s, e int) string {
	norm := string(x.r[s:e])
	sp, ok := x.span(s, e)
	if !ok {
		return norm
	}
	o := x.orig(sp)
	if o == norm {
		return o
	}
	b := make([]byte, 0, e-s)
	for _, c := range o {
		switch {
		case c >= '0' && c <= '9':
			b = append(b, byte(c))
		case c >= '０' && c <= '９':
			b = append(b, byte(c-'０'+'0'))
		default:
			return norm
		}
	}
	if string(b) != norm {
		return norm
	}
	return string(b)
}

// --- character classes -------------------------------------------------

func exDigit(c rune) bool  { return c >= '0' && c <= '9' }
func exLetter(c rune) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func exAlnum(c rune) bool  { return exDigit(c) || exLetter(c) }

func exLower(c rune) rune {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func exHan(c rune) bool {
	return c >= 0x4E00 && c <= 0x9FFF || c >= 0x3400 && c <= 0x4DBF || c >= 0xF900 && c <= 0xFAFF ||
		c >= 0x20000 && c <= 0x3134F || c == '〇'
}

// exIDRune: characters of WeChat ids and similar account names.
func exIDRune(c rune) bool { return exAlnum(c) || c == '_' || c == '-' }

// exStop: sentence-ending punctuation that bounds context windows.
func exStop(c rune) bool {
	switch c {
	case '。', '！', '？', '!', '?', ';', '；', '\n':
		return true
	}
	return false
}

// --- word lists ----------------------------------------------------------

// entList is a word list indexed by first and last rune, so that looking
// for any of a hundred words at a position costs one map lookup. Lists are
// built at package init and read-only afterwards. Words are lower case;
// ASCII in the text is compared case-insensitively because Identity input
// is not lowered. Within a bucket, words keep the order given (longest
// first where one word is a prefix of another).
type entList struct {
	words       [][]rune
	first, last map[rune][][]rune
	// One-hash Bloom filters of first and last runes: most positions
	// are rejected without a map lookup.
	firstBits, lastBits [16]uint64
}

func entWords(ws ...string) *entList {
	l := &entList{first: map[rune][][]rune{}, last: map[rune][][]rune{}}
	for _, w := range ws {
		r := []rune(w)
		f, z := r[0], r[len(r)-1]
		l.words = append(l.words, r)
		l.first[f] = append(l.first[f], r)
		l.last[z] = append(l.last[z], r)
		l.firstBits[f>>6&15] |= 1 << (f & 63)
		l.lastBits[z>>6&15] |= 1 << (z & 63)
	}
	return l
}

// exAt reports whether w is spelled at r[i:].
func exAt(r []rune, i int, w []rune) bool {
	if i < 0 || i+len(w) > len(r) {
		return false
	}
	for j, c := range w {
		if exLower(r[i+j]) != c {
			return false
		}
	}
	return true
}

// exAtStr is exAt for a short literal.
func exAtStr(r []rune, i int, w string) bool {
	if i < 0 {
		return false
	}
	for _, c := range w {
		if i >= len(r) || exLower(r[i]) != c {
			return false
		}
		i++
	}
	return true
}

// exAtAny returns the length of the first word of l spelled at r[i:].
func exAtAny(r []rune, i int, l *entList) int {
	if i < 0 || i >= len(r) {
		return 0
	}
	c := exLower(r[i])
	if l.firstBits[c>>6&15]&(1<<(c&63)) == 0 {
		return 0
	}
	for _, w := range l.first[c] {
		if exAt(r, i, w) {
			return len(w)
		}
	}
	return 0
}

// exEndAny returns the length of the first word of l that ends at end. An
// ASCII word must not be the tail of a longer word ("faq" is not "q").
func exEndAny(r []rune, end int, l *entList) int {
	if end <= 0 || end > len(r) {
		return 0
	}
	c := exLower(r[end-1])
	if l.lastBits[c>>6&15]&(1<<(c&63)) == 0 {
		return 0
	}
	for _, w := range l.last[c] {
		if s := end - len(w); exAt(r, s, w) && (!exLetter(w[0]) || s == 0 || !exLetter(r[s-1])) {
			return len(w)
		}
	}
	return 0
}

// exKeywordBefore reports whether a word of l ends at s, or before s with
// only up to maxFill filler runes in between.
func exKeywordBefore(r []rune, s, maxFill int, l *entList, filler func(rune) bool) bool {
	k := s
	for n := 0; ; n++ {
		if exEndAny(r, k, l) > 0 {
			return true
		}
		if n == maxFill || k == 0 || !filler(r[k-1]) {
			return false
		}
		k--
	}
}

// exNum reads 1..maxLen digits at i that start a number (no digit or
// decimal point before); it returns the value and the end, or -1.
func exNum(r []rune, i, maxLen int) (int, int) {
	if i >= len(r) || !exDigit(r[i]) || (i > 0 && (exDigit(r[i-1]) || r[i-1] == '.')) {
		return 0, -1
	}
	v, j := 0, i
	for j < len(r) && exDigit(r[j]) {
		if j-i == maxLen {
			return 0, -1
		}
		v = v*10 + int(r[j]-'0')
		j++
	}
	return v, j
}

// --- links -----------------------------------------------------------------

var (
	entTLDs = map[string]bool{
		"com": true, "cn": true, "net": true, "org": true, "hk": true, "tw": true, "mo": true, "tv": true,
		"cc": true, "me": true, "io": true, "co": true, "top": true, "xyz": true, "vip": true, "shop": true,
		"info": true, "biz": true, "im": true, "so": true, "la": true, "ly": true, "gg": true, "link": true,
		"club": true, "site": true, "online": true, "fun": true, "icu": true, "wang": true, "ren": true,
		"ink": true, "store": true, "tech": true, "app": true, "pro": true, "live": true, "mobi": true, "asia": true,
	}
	// Hosts that only redirect. A short link hides its target, which is
	// exactly why attack tasks use them.
	entShortHosts = []string{
		"tb.cn", "t.cn", "u.jd.com", "3.cn", "v.douyin.com", "dwz.cn", "url.cn", "suo.im", "sourl.cn",
		"p.pinduoduo.com", "xhslink.com", "b23.tv", "s.click.taobao.com", "t.co", "bit.ly", "tinyurl.com", "is.gd",
	}
	// Subdomains of platform domains that are not shop front pages.
	entTaobaoReserved = map[string]bool{
		"www": true, "item": true, "s": true, "search": true, "login": true, "h5": true, "m": true, "a": true,
		"detail": true, "world": true, "market": true, "uland": true, "pages": true, "buyertrade": true,
		"trade": true, "cart": true, "i": true, "rate": true, "2": true, "ai": true, "main": true, "huodong": true,
		"ju": true, "tejia": true, "re": true, "fuwu": true, "favorite": true, "guang": true, "shop": true,
		"store": true, "member": true, "passport": true, "taobao": true, "err": true, "jianghu": true, "wuliu": true,
	}
	entTmallReserved = map[string]bool{
		"www": true, "detail": true, "list": true, "chaoshi": true, "pages": true, "m": true, "login": true,
		"cart": true, "buy": true, "mdetail": true, "vip": true, "brand": true, "jx": true, "miao": true,
		"fun": true, "ju": true, "h5": true, "err": true, "shop": true, "store": true, "search": true, "s": true,
	}
	ent1688Reserved = map[string]bool{
		"www": true, "detail": true, "m": true, "s": true, "search": true, "login": true, "page": true,
		"show": true, "work": true, "air": true, "dj": true, "p4p": true, "sale": true, "club": true, "offer": true,
		"trade": true, "cart": true, "h5": true, "winport": true,
	}
	entIDKeys     = entWords("id", "itemid", "item_id", "num_iid", "itemids")
	entShopKeys   = entWords("shop_id", "shopid", "user_number_id", "mall_id", "seller_id", "sellerid")
	entPddKeys    = entWords("goods_id", "goodsid")
	ent1688Keys   = entWords("offerid", "offer_id")
	entDouyinKeys = entWords("id", "product_id", "productid", "item_id", "itemid")
)

// links finds http(s), www. and bare platform links and classifies them.
func (x *extractor) links() {
	r := x.r
	for i := 0; i < len(r); {
		c := exLower(r[i])
		if !exAlnum(c) {
			i++
			continue
		}
		hs := -1 // where the host starts
		switch {
		case c == 'h' && exAtStr(r, i, "https://"):
			hs = i + 8
		case c == 'h' && exAtStr(r, i, "http://"):
			hs = i + 7
		case c == 'w' && exAtStr(r, i, "www.") && !exHostRuneBefore(r, i):
			hs = i
		case c == 'w' && exAtStr(r, i, "w.") && !exHostRuneBefore(r, i) && x.collapsedWWW(i):
			hs = i
		}
		if hs < 0 {
			// A bare domain can only start a token; positions inside
			// a token fail here in O(1), so the scan stays linear.
			if exHostRuneBefore(r, i) || !exBareHost(r, i) {
				i++
				continue
			}
			hs = i
		}
		end := exURLEnd(r, hs)
		if end <= hs || !exAlnum(r[hs]) {
			i = max(hs, i+1)
			continue
		}
		x.link(i, hs, end)
		x.claim(i, end)
		i = end
	}
}

// collapsedWWW reports a "w" that the normaliser made of "www" (it
// collapses runs of a repeated letter).
func (x *extractor) collapsedWWW(i int) bool {
	sp, ok := x.span(i, i+1)
	return ok && sp.End-sp.Start == 3 && strings.EqualFold(x.orig(sp), "www")
}

func exHostRuneBefore(r []rune, i int) bool {
	if i == 0 {
		return false
	}
	c := r[i-1]
	return exAlnum(c) || c == '.' || c == '-' || c == '_' || c == '@'
}

// exBareHost reports a scheme-less link at i: a dotted host with a known
// top-level domain, followed by a path or naming a platform.
func exBareHost(r []rune, i int) bool {
	e := i
	for e < len(r) && (exAlnum(r[e]) || r[e] == '-' || r[e] == '.') && e-i < 256 {
		e++
	}
	for e > i && r[e-1] == '.' {
		e--
	}
	dot := -1
	for k := e - 1; k > i; k-- {
		if r[k] == '.' {
			dot = k
			break
		}
	}
	if dot < 0 || e < len(r) && r[e] == '@' {
		return false
	}
	if !entTLDs[exLowerString(r[dot+1:e])] {
		return false
	}
	if e < len(r) && r[e] == '/' {
		return true
	}
	h := exLowerString(r[i:e])
	return exShortHost(h) || exPlatformHost(h)
}

func exLowerString(r []rune) string {
	var b strings.Builder
	b.Grow(len(r))
	for _, c := range r {
		b.WriteRune(exLower(c))
	}
	return b.String()
}

func exURLRune(c rune) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '"', '<', '>', '\\', '^', '`', '{', '|', '}', '$':
		return false
	}
	return true
}

// exURLEnd returns the end of the link whose host starts at hs, without
// trailing punctuation that belongs to the sentence.
func exURLEnd(r []rune, hs int) int {
	j := hs
	open, closeN := 0, 0
	for j < len(r) && exURLRune(r[j]) {
		switch r[j] {
		case '(':
			open++
		case ')':
			closeN++
		}
		j++
	}
	for j > hs {
		c := r[j-1]
		if strings.ContainsRune(".,;:!?'*~]", c) || c == ')' && closeN > open {
			if c == ')' {
				closeN--
			}
			j--
			continue
		}
		break
	}
	return j
}

func exHostIs(h, d string) bool {
	return h == d || len(h) > len(d) && h[len(h)-len(d)-1] == '.' && h[len(h)-len(d):] == d
}

func exSub(h, d string) string {
	if h == d {
		return ""
	}
	return h[:len(h)-len(d)-1]
}

func exShortHost(h string) bool {
	for _, d := range entShortHosts {
		if exHostIs(h, d) {
			return true
		}
	}
	return false
}

func exPlatformHost(h string) bool {
	for _, d := range []string{"taobao.com", "tmall.com", "tmall.hk", "jd.com", "jd.hk", "yangkeduo.com",
		"pinduoduo.com", "1688.com", "jinritemai.com", "snssdk.com", "douyin.com", "goofish.com", "alipay.com"} {
		if exHostIs(h, d) {
			return true
		}
	}
	return false
}

// entLink is what a link turned out to be.
type entLink struct {
	typ        EntityType
	platform   string
	idS, idE   int // item id digits in the normalised text, if any
	paymentURL bool
}

// link classifies the link r[start:end) whose host starts at hs.
func (x *extractor) link(start, hs, end int) {
	r := x.r
	he := hs
	for he < end && r[he] != '/' && r[he] != '?' && r[he] != '#' {
		he++
	}
	h0 := hs
	for k := hs; k < he; k++ {
		if r[k] == '@' { // user info
			h0 = k + 1
		}
	}
	hEnd := h0
	for hEnd < he && r[hEnd] != ':' {
		hEnd++
	}
	host := strings.TrimSuffix(exLowerString(r[h0:hEnd]), ".")
	// www.taobao.com is the platform's home, not a shop; the normaliser
	// may have collapsed "www" to "w".
	if h, ok := strings.CutPrefix(host, "www."); ok {
		host = h
	} else if h, ok := strings.CutPrefix(host, "w."); ok && x.collapsedWWW(h0) {
		host = h
	}
	pe := he
	for pe < end && r[pe] != '?' && r[pe] != '#' {
		pe++
	}
	qs, qe := pe, pe
	if qs < end && r[qs] == '?' {
		qs++
		qe = qs
		for qe < end && r[qe] != '#' {
			qe++
		}
	}
	li := exClassify(r, host, he, pe, qs, qe)
	sp, ok := x.span(start, end)
	if !ok {
		return
	}
	v := x.orig(sp)
	x.addSpan(li.typ, v, sp)
	if len(x.linkSpans) == 0 || x.linkSpans[len(x.linkSpans)-1].End <= sp.Start {
		x.linkSpans = append(x.linkSpans, sp)
	}
	if li.paymentURL {
		x.addSpan(EntPaymentCode, v, sp)
	}
	if li.idE > li.idS {
		x.add(EntItemID, li.platform+":"+x.digitsOf(li.idS, li.idE), li.idS, li.idE)
	}
}

func exClassify(r []rune, host string, ps, pe, qs, qe int) entLink {
	path := exLowerString(r[ps:pe])
	li := entLink{typ: EntURL}
	item := func(platform string, s, e int) entLink {
		return entLink{typ: EntItemLink, platform: platform, idS: s, idE: e}
	}
	switch {
	case exShortHost(host):
		li.typ = EntShortLink
	case host == "qr.alipay.com":
		li.paymentURL = true
	case exHostIs(host, "taobao.com"):
		sub := exSub(host, "taobao.com")
		s, e, ok := exQueryParam(r, qs, qe, entIDKeys)
		if !ok {
			s, e, ok = exPathID(r, ps, pe)
		}
		if sub == "2" || strings.Contains(path, "idlefish") {
			if ok {
				return item("xianyu", s, e)
			}
			return li
		}
		itemSub := sub == "item" || sub == "detail" || sub == "world" || strings.HasSuffix(sub, ".m") || sub == "m" || sub == "h5"
		if itemSub || strings.Contains(path, "item") || strings.Contains(path, "detail") {
			if ok {
				return item("taobao", s, e)
			}
			if sub == "item" {
				li.typ = EntItemLink
				return li
			}
		}
		if exShopSub(sub, entTaobaoReserved) || strings.Contains(path, "shop") && exHasParam(r, qs, qe, entShopKeys) {
			li.typ = EntShopLink
		}
	case exHostIs(host, "tmall.com") || exHostIs(host, "tmall.hk"):
		d := "tmall.com"
		if exHostIs(host, "tmall.hk") {
			d = "tmall.hk"
		}
		sub := exSub(host, d)
		s, e, ok := exQueryParam(r, qs, qe, entIDKeys)
		if strings.Contains(sub, "detail") || strings.Contains(path, "item") {
			if ok {
				return item("tmall", s, e)
			}
			li.typ = EntItemLink
			return li
		}
		sub = strings.TrimSuffix(sub, ".m")
		if exShopSub(sub, entTmallReserved) || strings.Contains(path, "shop") && exHasParam(r, qs, qe, entShopKeys) {
			li.typ = EntShopLink
		}
	case exHostIs(host, "jd.com") || exHostIs(host, "jd.hk"):
		switch {
		case strings.HasPrefix(host, "item.") || strings.HasPrefix(host, "npcitem.") || strings.Contains(path, "/product/"):
			if s, e, ok := exPathID(r, ps, pe); ok {
				return item("jd", s, e)
			}
			li.typ = EntItemLink
		case host == "mall.jd.com" && strings.Contains(path, "index-") || strings.HasPrefix(host, "shop.m.") || host == "shop.jd.com":
			li.typ = EntShopLink
		}
	case exHostIs(host, "yangkeduo.com") || exHostIs(host, "pinduoduo.com"):
		if s, e, ok := exQueryParam(r, qs, qe, entPddKeys); ok {
			return item("pdd", s, e)
		}
		if exHasParam(r, qs, qe, entShopKeys) {
			li.typ = EntShopLink
		}
	case exHostIs(host, "1688.com"):
		s, e, ok := exQueryParam(r, qs, qe, ent1688Keys)
		if !ok && strings.Contains(path, "offer") {
			s, e, ok = exPathID(r, ps, pe)
		}
		if ok {
			return item("1688", s, e)
		}
		if exShopSub(exSub(host, "1688.com"), ent1688Reserved) {
			li.typ = EntShopLink
		}
	case exHostIs(host, "jinritemai.com") || exHostIs(host, "snssdk.com") || exHostIs(host, "douyin.com"):
		if strings.Contains(path, "shop") {
			li.typ = EntShopLink
			return li
		}
		if s, e, ok := exQueryParam(r, qs, qe, entDouyinKeys); ok && !exHostIs(host, "douyin.com") || ok && strings.Contains(path, "product") {
			return item("douyin", s, e)
		}
	case exHostIs(host, "goofish.com"):
		if s, e, ok := exQueryParam(r, qs, qe, entIDKeys); ok {
			return item("xianyu", s, e)
		}
	}
	return li
}

// exShopSub: a single-label subdomain that is not a service of the
// platform is a shop's own domain (shop123456.taobao.com, brand.tmall.com).
func exShopSub(sub string, reserved map[string]bool) bool {
	return sub != "" && !strings.Contains(sub, ".") && !reserved[sub]
}

// exQueryParam returns the digits of the first query parameter named in
// keys whose value is 5-20 digits.
func exQueryParam(r []rune, qs, qe int, keys *entList) (int, int, bool) {
	for p := qs; p < qe; {
		ks := p
		for p < qe && r[p] != '=' && r[p] != '&' {
			p++
		}
		ke := p
		vs, ve := p, p
		if p < qe && r[p] == '=' {
			p++
			vs = p
			for p < qe && r[p] != '&' {
				p++
			}
			ve = p
		}
		if p < qe {
			p++
		}
		if exAtStr(r, ks, "amp;") {
			ks += 4
		}
		if ve-vs < 5 || ve-vs > 20 || !exAllDigits(r[vs:ve]) {
			continue
		}
		for _, k := range keys.words {
			if ke-ks == len(k) && exAt(r, ks, k) {
				return vs, ve, true
			}
		}
	}
	return 0, 0, false
}

func exHasParam(r []rune, qs, qe int, keys *entList) bool {
	_, _, ok := exQueryParam(r, qs, qe, keys)
	return ok
}

func exAllDigits(r []rune) bool {
	for _, c := range r {
		if !exDigit(c) {
			return false
		}
	}
	return len(r) > 0
}

// exPathID finds an id in the last path segment: 123.html, i123.htm,
// index-123.html, item/123.htm.
func exPathID(r []rune, ps, pe int) (int, int, bool) {
	ls := ps
	for k := pe - 1; k >= ps; k-- {
		if r[k] == '/' {
			ls = k + 1
			break
		}
	}
	switch {
	case exAtStr(r, ls, "index-"):
		ls += 6
	case ls < pe && exLower(r[ls]) == 'i':
		ls++
	}
	e := ls
	for e < pe && exDigit(r[e]) {
		e++
	}
	if e-ls < 5 || e-ls > 20 || !exAtStr(r, e, ".htm") {
		return 0, 0, false
	}
	return ls, e, true
}

// --- item ids without a link -------------------------------------------------

var (
	entIDWords = entWords("id", "itemid", "item_id", "goodsid", "goods_id", "offerid", "offer_id",
		"productid", "product_id", "skuid", "sku_id", "num_iid", "numiid")
	// An "id" after these names a group, a person, an order or a shop, not an item.
	entIDNegative = entWords("群", "用户", "订单", "店铺", "店", "买家", "卖家", "旺旺", "会员", "支付宝", "微信",
		"抖音", "快手", "物流", "快递", "身份证", "qq", "设备", "账号", "群聊")
)

// contextItemIDs finds "id=683920415527", "宝贝id 683920415527" outside
// links. The platform is unknown without a link.
func (x *extractor) contextItemIDs() {
	r := x.r
	for i := 0; i < len(r); {
		if !exLetter(r[i]) {
			i++
			continue
		}
		s := i
		for i < len(r) && (exLetter(r[i]) || r[i] == '_') {
			i++
		}
		if s > 0 && exAlnum(r[s-1]) || x.claimed(s, i) {
			continue
		}
		word := false
		for _, w := range entIDWords.words {
			if len(w) == i-s && exAt(r, s, w) {
				word = true
				break
			}
		}
		if !word {
			continue
		}
		if i-s == 2 {
			k := s
			if k > 0 && r[k-1] == ' ' {
				k--
			}
			if exEndAny(r, k, entIDNegative) > 0 {
				continue
			}
		}
		p := i
		for n := 0; n < 3 && p < len(r) && strings.ContainsRune(" =:：是为#号", r[p]); n++ {
			p++
		}
		ds := p
		for p < len(r) && exDigit(r[p]) && p-ds <= 20 {
			p++
		}
		if p-ds < 6 || p-ds > 20 || p < len(r) && exAlnum(r[p]) || x.claimed(ds, p) {
			continue
		}
		if x.add(EntItemID, "unknown:"+x.digitsOf(ds, p), ds, p) {
			x.claim(ds, p)
		}
		i = p
	}
}

// --- 淘口令 ----------------------------------------------------------------

// exDelim returns the class of a 淘口令 delimiter: full-width and
// half-width forms of one sign are the same delimiter.
func exDelim(c rune) rune {
	switch c {
	case '¥', '￥':
		return '¥'
	case '$', '＄':
		return '$'
	case '¢', '￠':
		return '¢'
	case '€', '₴', '₤', '₳':
		return c
	case '(', '（':
		return '('
	}
	return 0
}

func exCloses(open, c rune) bool {
	if open == '(' {
		return c == ')' || c == '）'
	}
	return exDelim(c) == open
}

var entTokenContext = entWords("淘口令", "口令", "复制", "打开", "手淘", "淘宝")

// taoTokens finds 淘口令: 8-16 letters/digits between matching delimiters.
// Parentheses are ordinary punctuation, so they count only next to
// 淘口令/复制/打开.
func (x *extractor) taoTokens() {
	r := x.r
	for i := 0; i < len(r); i++ {
		d := exDelim(r[i])
		if d == 0 {
			continue
		}
		j := i + 1
		letters, digits := 0, 0
		for j < len(r) && j-i-1 <= 16 && exAlnum(r[j]) {
			if exDigit(r[j]) {
				digits++
			} else {
				letters++
			}
			j++
		}
		if j == i+1 || j >= len(r) || !exCloses(d, r[j]) || letters == 0 || x.claimed(i, j+1) {
			continue
		}
		sp, ok := x.span(i+1, j)
		if !ok {
			continue
		}
		code := x.orig(sp)
		// The length is the original's: the normaliser collapses
		// repeated letters ("AAAb" -> "ab") inside a code.
		n := j - i - 1
		if l := sp.End - sp.Start; l != n && exAlnumText(code) {
			n = l
		}
		if n < 8 || n > 16 {
			continue
		}
		if d == '(' {
			if !x.tokenContext(i, j+1) || digits == 0 && !exMixedCase(code) {
				continue
			}
		}
		whole, ok := x.span(i, j+1)
		if !ok || !x.addSpan(EntTaoToken, code, whole) {
			continue
		}
		x.claim(i, j+1)
		i = j
	}
}

// exAlnumText: only ASCII or full-width letters and digits.
func exAlnumText(s string) bool {
	for _, c := range s {
		if !exAlnum(c) && !(c >= '０' && c <= '９' || c >= 'Ａ' && c <= 'Ｚ' || c >= 'ａ' && c <= 'ｚ') {
			return false
		}
	}
	return s != ""
}

func (x *extractor) tokenContext(s, e int) bool {
	for k := max(0, s-12); k < min(len(x.r), e+12); k++ {
		if (k < s || k >= e) && exAtAny(x.r, k, entTokenContext) > 0 {
			return true
		}
	}
	return false
}

func exMixedCase(s string) bool {
	up, low := false, false
	for _, c := range s {
		up = up || unicode.IsUpper(c)
		low = low || unicode.IsLower(c)
	}
	return up && low
}

// --- mentions ----------------------------------------------------------------

const entMaxMention = 32

var entMentionAll = entWords("全体成员", "全體成員", "所有人", "全体", "全體", "全员", "everyone", "all")

// mentions finds @name. Names are read from the original text: the
// normaliser joins Chinese across the space that ends a mention ("@小雨
// 你好" -> "@小雨你好") and drops the '-' or '(' inside or after a
// nickname. A name ends at whitespace or punctuation; '-', '_', '.' and
// '·' stay inside it ("@小鹿优品-店长").
func (x *extractor) mentions() {
	o := x.n.Original
	if !strings.ContainsAny(o, "@＠") {
		return
	}
	r := []rune(o)
	if len(r) > x.n.OrigLen {
		r = r[:x.n.OrigLen]
	}
	for i := 0; i < len(r); i++ {
		if r[i] != '@' && r[i] != '＠' {
			continue
		}
		if i > 0 && (exAlnum(r[i-1]) || strings.ContainsRune("._%+-", r[i-1])) {
			continue // an e-mail address
		}
		j := i + 1
		for j < len(r) && j-i-1 < entMaxMention {
			c := r[j]
			if exMentionRune(c) {
				j++
				continue
			}
			if j > i+1 && j+1 < len(r) && strings.ContainsRune("-_.·", c) && exMentionRune(r[j+1]) {
				j++
				continue
			}
			break
		}
		if j == i+1 || x.inLink(Span{i, j}) {
			continue
		}
		if l := exAtAny(r, i+1, entMentionAll); l > 0 && (!exLetter(r[i+1]) || i+1+l == j) {
			x.addSpan(EntMention, "all", Span{i, i + 1 + l})
			i += l
			continue
		}
		x.addSpan(EntMention, string(r[i+1:j]), Span{i, j})
		i = j - 1
	}
}

// inLink reports whether an original span overlaps a link found earlier.
func (x *extractor) inLink(sp Span) bool {
	ls := x.linkSpans
	k, _ := slices.BinarySearchFunc(ls, sp.Start, func(l Span, p int) int {
		if l.End <= p {
			return -1
		}
		return 1
	})
	return k < len(ls) && ls[k].Start < sp.End
}

func exMentionRune(c rune) bool {
	if c < 0x80 {
		return exAlnum(c)
	}
	if c == utf8.RuneError {
		return true // invalid UTF-8 inside a nickname
	}
	return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c) || unicode.Is(unicode.So, c) ||
		c == 0x200D
}

// --- contacts ------------------------------------------------------------------

var (
	entWeChatKeys = entWords("微信号", "微信", "威信", "薇信", "v信", "vx号", "vx", "wx号", "wx", "weixin", "wechat", "加v", "v:", "v：")
	entAlipayKeys = entWords("支付宝账号", "支付宝账户", "支付宝号", "支付宝", "zfb账号", "zfb", "alipay")
	entQQStrong   = entWords("qq号", "qq群", "qq", "q号", "q群", "q", "扣扣号", "扣扣", "企鹅号", "企鹅", "群号")
	entQQWeak     = entWords("加我", "加群")
	entNoPhoneCtx = entWords("单号", "订单", "运单", "快递", "物流", "编号", "流水", "id")
	entBankCtx    = entWords("银行卡", "银行", "卡号", "卡", "账号", "账户", "开户", "工行", "建行", "农行", "中行",
		"招行", "交行", "邮储", "储蓄", "借记", "信用社", "农商")
	entBankNeg = entWords("订单", "单号", "运单", "快递", "物流", "身份证", "编号", "流水", "交易号", "条码", "id")
)

func exIDFiller(c rune) bool { return strings.ContainsRune(" :：=是为号", c) }
func exQQFiller(c rune) bool { return strings.ContainsRune(" :：=是为号码#-(（", c) }

// contacts finds WeChat ids, Alipay accounts, QQ numbers, phones and bank
// cards. A number explained once is claimed, so it is never also a QQ
// number, a phone or an amount.
func (x *extractor) contacts(f uint16) {
	if f&fLetter != 0 {
		x.wxids()
	}
	if f&(fLetter|fContact) != 0 {
		x.keywordAccounts()
	}
	if f&fLongNumber == 0 {
		return
	}
	if f&fAt != 0 {
		x.qqMail()
	}
	x.qqContext(entQQStrong, false)
	x.phones()
	x.qqContext(entQQWeak, true)
	x.banks()
}

func (x *extractor) wxids() {
	r := x.r
	for i := 0; i < len(r); i++ {
		if exLower(r[i]) != 'w' || !exAtStr(r, i, "wxid_") || i > 0 && exIDRune(r[i-1]) {
			continue
		}
		j := i + 5
		for j < len(r) && exIDRune(r[j]) && j-i <= 40 {
			j++
		}
		if j-i-5 < 4 || j-i > 40 || x.claimed(i, j) {
			continue
		}
		if x.addOrig(EntWeChat, i, j) {
			x.claim(i, j)
		}
		i = j - 1
	}
}

// keywordAccounts finds the id after 微信/vx/wx and the account after 支付宝/zfb.
func (x *extractor) keywordAccounts() {
	r := x.r
	for i := 0; i < len(r); i++ {
		if exClass(r[i])&cAccount == 0 {
			continue
		}
		switch exLower(r[i]) {
		case '微', '威', '薇', 'v', 'w', '加':
			l := exAtAny(r, i, entWeChatKeys)
			if l == 0 || exLetter(r[i]) && i > 0 && exLetter(r[i-1]) {
				continue
			}
			if exAtStr(r, i, "wxid_") {
				continue
			}
			p := i + l
			for n := 0; n < 4 && p < len(r) && exIDFiller(r[p]); n++ {
				p++
			}
			q := p
			for q < len(r) && exIDRune(r[q]) && q-p <= 20 {
				q++
			}
			if q-p < 6 || q-p > 20 || !exLetter(r[p]) || q < len(r) && r[q] == '@' || x.claimed(p, q) {
				continue
			}
			if x.addOrig(EntWeChat, p, q) {
				x.claim(p, q)
			}
			i = q - 1
		case '支', 'z', 'a':
			l := exAtAny(r, i, entAlipayKeys)
			if l == 0 || exLetter(r[i]) && i > 0 && exLetter(r[i-1]) {
				continue
			}
			p := i + l
			for n := 0; n < 4 && p < len(r) && exIDFiller(r[p]); n++ {
				p++
			}
			if e, digits := exPhoneAt(r, p); e > p {
				if !x.claimed(p, e) {
					x.add(EntAlipay, digits, p, e)
				}
				i = e - 1
				continue
			}
			if e := exEmailAt(r, p); e > p {
				x.addOrig(EntAlipay, p, e)
				i = e - 1
			}
		}
	}
}

// exPhoneAt reads a mobile number at p (11 digits, or 3-4-4 with one kind
// of separator) that is not part of a longer digit run.
func exPhoneAt(r []rune, p int) (int, string) {
	if p >= len(r) || p > 0 && exDigit(r[p-1]) {
		return p, ""
	}
	if e := exRunEnd(r, p); e-p == 11 && exPhonePrefix(r, p) && exPhoneAfter(r, e) {
		return e, string(r[p:e])
	}
	if e, d := exGroupedPhone(r, p); e > p {
		return e, d
	}
	return p, ""
}

func exRunEnd(r []rune, p int) int {
	for p < len(r) && exDigit(r[p]) {
		p++
	}
	return p
}

func exPhonePrefix(r []rune, p int) bool {
	return p+1 < len(r) && r[p] == '1' && r[p+1] >= '3' && r[p+1] <= '9'
}

func exPhoneAfter(r []rune, e int) bool {
	if e >= len(r) {
		return true
	}
	c := r[e]
	if exLetter(c) || c == '_' || exDigit(c) {
		return false
	}
	return !(strings.ContainsRune(".-/:", c) && e+1 < len(r) && exDigit(r[e+1]))
}

// exGroupedPhone reads 138-1234-5678 or 138 1234 5678 at p.
func exGroupedPhone(r []rune, p int) (int, string) {
	if exRunEnd(r, p)-p != 3 || !exPhonePrefix(r, p) || p+13 > len(r) {
		return p, ""
	}
	sep := r[p+3]
	if sep != '-' && sep != ' ' || r[p+8] != sep || exRunEnd(r, p+4) != p+8 || exRunEnd(r, p+9) != p+13 {
		return p, ""
	}
	e := p + 13
	if e < len(r) && (exAlnum(r[e]) || r[e] == sep && e+1 < len(r) && exDigit(r[e+1])) {
		return p, ""
	}
	return e, string(r[p:p+3]) + string(r[p+4:p+8]) + string(r[p+9:p+13])
}

// exEmailAt reads an e-mail address starting at p.
func exEmailAt(r []rune, p int) int {
	q := p
	for q < len(r) && q-p < 64 && (exAlnum(r[q]) || strings.ContainsRune("._%+-", r[q])) {
		q++
	}
	if q == p || q >= len(r) || r[q] != '@' {
		return p
	}
	q++
	ds, lastDot := q, -1
	for q < len(r) && q-ds < 255 && (exAlnum(r[q]) || r[q] == '-' || r[q] == '.') {
		if r[q] == '.' {
			lastDot = q
		}
		q++
	}
	for q > ds && r[q-1] == '.' {
		q--
	}
	if lastDot < 0 || lastDot >= q-2 || lastDot == ds {
		return p
	}
	for _, c := range r[lastDot+1 : q] {
		if !exLetter(c) {
			return p
		}
	}
	return q
}

// qqMail: the local part of an @qq.com address is a QQ number.
func (x *extractor) qqMail() {
	r := x.r
	for i := 1; i < len(r); i++ {
		if r[i] != '@' || !exDigit(r[i-1]) || !exAtStr(r, i+1, "qq.com") {
			continue
		}
		s := i - 1
		for s > 0 && exDigit(r[s-1]) && i-s <= 11 {
			s--
		}
		if i-s < 5 || i-s > 11 || r[s] == '0' || s > 0 && (exIDRune(r[s-1]) || r[s-1] == '.') || x.claimed(s, i) {
			continue
		}
		if x.add(EntQQ, string(r[s:i]), s, i) {
			x.claim(s, i)
		}
	}
}

// qqContext finds 5-11 digit numbers after a QQ keyword. Weak keywords
// (加我) do not take numbers that look like phones.
func (x *extractor) qqContext(keys *entList, weak bool) {
	r := x.r
	for s := 0; s < len(r); s++ {
		if !exDigit(r[s]) || s > 0 && exDigit(r[s-1]) {
			continue
		}
		e := exRunEnd(r, s)
		l := e - s
		if l < 5 || l > 11 || r[s] == '0' || x.claimed(s, e) {
			s = e - 1
			continue
		}
		s0 := s
		s = e - 1
		if e < len(r) && (exLetter(r[e]) || r[e] == '_' || r[e] == '.' && e+1 < len(r) && exDigit(r[e+1])) {
			continue
		}
		if s0 > 0 && r[s0-1] == '.' {
			continue
		}
		if weak && l == 11 && exPhonePrefix(r, s0) {
			continue
		}
		if !exKeywordBefore(r, s0, 4, keys, exQQFiller) {
			continue
		}
		if x.add(EntQQ, string(r[s0:e]), s0, e) {
			x.claim(s0, e)
		}
	}
}

// phones finds mainland mobile numbers.
func (x *extractor) phones() {
	r := x.r
	for s := 0; s < len(r); s++ {
		if !exDigit(r[s]) || s > 0 && exDigit(r[s-1]) {
			continue
		}
		e := exRunEnd(r, s)
		ps, pe, digits := -1, -1, ""
		switch e - s {
		case 11:
			if exPhonePrefix(r, s) && exPhoneAfter(r, e) {
				ps, pe, digits = s, e, string(r[s:e])
			}
		case 13:
			// +86 13812345678 written without a space
			if s > 0 && r[s-1] == '+' && r[s] == '8' && r[s+1] == '6' && exPhonePrefix(r, s+2) && exPhoneAfter(r, e) {
				ps, pe, digits = s+2, e, string(r[s+2:e])
			}
		case 3:
			if ge, d := exGroupedPhone(r, s); ge > s {
				ps, pe, digits = s, ge, d
			}
		}
		if ps >= 0 && exPhoneBefore(r, s) && !x.claimed(ps, pe) && !x.noPhoneContext(s) {
			if x.add(EntPhone, digits, ps, pe) {
				x.claim(ps, pe)
			}
			e = max(e, pe)
		}
		s = e - 1
	}
}

func exPhoneBefore(r []rune, s int) bool {
	if s == 0 {
		return true
	}
	c := r[s-1]
	if exLetter(c) || c == '_' {
		return false
	}
	return !(strings.ContainsRune(".-/:", c) && s >= 2 && exDigit(r[s-2]))
}

// noPhoneContext: order, waybill and serial numbers can look like phones.
func (x *extractor) noPhoneContext(s int) bool {
	for k := s; k > max(0, s-8); k-- {
		if exStop(x.r[k-1]) {
			return false
		}
		if exEndAny(x.r, k, entNoPhoneCtx) > 0 {
			return true
		}
	}
	return false
}

// banks finds 16-19 digit card numbers, contiguous or in groups of four.
func (x *extractor) banks() {
	r := x.r
	for s := 0; s < len(r); s++ {
		if !exDigit(r[s]) || s > 0 && exDigit(r[s-1]) {
			continue
		}
		e := exRunEnd(r, s)
		var digits []rune
		end := e
		switch l := e - s; {
		case l >= 16 && l <= 19:
			digits = r[s:e]
		case l == 4:
			digits, end = exGroupedCard(r, s)
		}
		if digits == nil || !exPhoneBefore(r, s) || end < len(r) && (exLetter(r[end]) || r[end] == '_') ||
			x.claimed(s, end) {
			s = e - 1
			continue
		}
		pos, neg := x.bankContext(s)
		if pos || !neg && exCardPrefix(digits) && exLuhn(digits) && !exIDCardLike(digits) {
			if x.add(EntBank, string(digits), s, end) {
				x.claim(s, end)
			}
			e = end
		}
		s = e - 1
	}
}

// exGroupedCard reads "6222 0212 3456 7890 123": blocks of four with one
// kind of separator, the last block 1-4 digits, 16-19 digits in all.
func exGroupedCard(r []rune, s int) ([]rune, int) {
	digits := append([]rune(nil), r[s:s+4]...)
	p := s + 4
	if p >= len(r) || r[p] != ' ' && r[p] != '-' {
		return nil, p
	}
	sep := r[p]
	for len(digits) < 19 && p+1 < len(r) && r[p] == sep && exDigit(r[p+1]) {
		q := exRunEnd(r, p+1)
		n := q - p - 1
		if n > 4 || len(digits)+n > 19 {
			return nil, p
		}
		digits = append(digits, r[p+1:q]...)
		p = q
		if n < 4 {
			break
		}
	}
	if len(digits) < 16 || p < len(r) && (exDigit(r[p]) || r[p] == sep && p+1 < len(r) && exDigit(r[p+1])) {
		return nil, p
	}
	return digits, p
}

func (x *extractor) bankContext(s int) (pos, neg bool) {
	for k := s; k > max(0, s-12); k-- {
		if exStop(x.r[k-1]) {
			break
		}
		if exEndAny(x.r, k, entBankCtx) > 0 {
			pos = true
		}
		if exEndAny(x.r, k, entBankNeg) > 0 {
			neg = true
		}
	}
	return pos, neg
}

// exCardPrefix: issuer prefixes of cards used in China (Visa, Mastercard,
// UnionPay, JCB). Order and waybill numbers rarely start this way.
func exCardPrefix(d []rune) bool {
	switch {
	case d[0] == '4':
		return true
	case d[0] == '5' && d[1] >= '1' && d[1] <= '5':
		return true
	case d[0] == '6' && d[1] == '2', d[0] == '3' && d[1] == '5':
		return true
	}
	return false
}

func exLuhn(d []rune) bool {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// exIDCardLike: an 18-digit resident id card number (region, birth date).
func exIDCardLike(d []rune) bool {
	if len(d) != 18 {
		return false
	}
	y := string(d[6:8])
	m := int(d[10]-'0')*10 + int(d[11]-'0')
	day := int(d[12]-'0')*10 + int(d[13]-'0')
	return (y == "19" || y == "20") && m >= 1 && m <= 12 && day >= 1 && day <= 31
}

// --- shops -----------------------------------------------------------------------

var (
	// Suffixes by the shortest name (stem) they take: a flagship store
	// can be "小米旗舰店", a bare 店 needs more to be a name, not a kind
	// of shop (宠物店, 水果店).
	entStrongShop = entWords("旗舰店", "专卖店", "专营店", "官方店", "直营店", "旗艦店", "專賣店", "專營店", "直營店",
		"生活馆", "母婴馆", "家居馆", "体验馆", "精品馆", "百货馆", "旗舰馆", "专营馆", "集合馆", "服饰馆", "美妆馆")
	entMidShop  = entWords("工作室", "商行")
	entWeakShop = entWords("店铺", "店鋪", "铺子", "鋪子", "小店", "商城", "店")
	// Words that end the text before a shop name: verbs, prepositions,
	// task markers, pronouns. A hard marker always cuts; a soft one only
	// when what is left is still a name of three or more characters
	// ("帮宝适旗舰店" keeps its 帮).
	entShopHard = entWords("目标是", "目标", "这次是", "新单子", "单子", "任务", "今晚", "今天", "明天", "晚上",
		"每人", "大家", "我们", "你们", "他们", "咱们", "兄弟们", "姐妹们", "老板", "一起", "统一", "继续", "还是",
		"就是", "也是", "都是", "这是", "那是", "投诉", "举报", "差评", "好评", "关注", "下单", "收藏", "加购",
		"曝光", "搜索", "打开", "点开", "进入", "访问", "光顾", "购买", "针对", "对于", "关于", "名叫", "叫做",
		"这家", "那家", "他家", "你家", "我家", "她家", "哪家", "一家", "这个", "那个", "还有", "以及", "或者",
		"轮流", "专门", "专挑", "都去", "都在", "都到", "去", "在", "给", "把", "对", "找", "是", "的", "了", "拍",
		"刷", "搞", "进", "逛", "比", "被", "让", "向", "从", "往", "跟", "就", "也", "还", "再", "又", "啊", "呢", "吧",
		"吗", "嘛", "哦", "叫", "天猫", "淘宝", "京东", "拼多多", "抖音", "闲鱼", "楼下", "楼上", "隔壁", "附近",
		"对面", "门口", "旁边", "街上", "小区", "学校", "公司", "村里", "镇上", "开个", "开了", "开家", "开一家")
	entShopSoft = entWords("帮", "到", "和", "与", "买", "做", "搜", "问", "先", "等", "替", "及", "或", "点", "点钟", "号")
	// A stem ending in one of these is a pronoun or a generic phrase
	// (他家店, 淘宝店, 骗子店铺), not a shop's name.
	entShopGeneric = entWords("淘宝", "天猫", "京东", "拼多多", "抖音", "快手", "闲鱼", "网上", "线上", "线下", "实体",
		"网", "同一家", "这家", "那家", "他家", "她家", "你家", "我家", "哪家", "一家", "某家", "每家", "各家",
		"同家", "两家", "几家", "多家", "自家", "别家", "对家", "人家", "大家", "商家", "卖家", "店家", "这个",
		"那个", "哪个", "一个", "某个", "个", "本", "该", "此", "这", "那", "我", "你", "他", "她", "它", "们", "自己",
		"骗子", "黑", "黑心", "垃圾", "无良", "奸商", "新", "老", "好", "大", "全", "各", "整个", "其他", "其它",
		"别的", "个人", "私人", "同", "其", "开", "进", "到", "逛", "关", "闭", "探", "换", "去", "家", "的",
		"什么", "哪")
	// A stem that is only one of these is no name (官方旗舰店); as the end
	// of a longer stem it is (小米官方旗舰店).
	entShopGenericStem = entWords("官方", "直营", "旗舰", "专卖", "专营", "品牌", "海外", "国际", "正品")
	// Words that introduce a shop name without a suffix: 目标店铺：九号零食.
	entShopNameKeys = entWords("目标店铺", "目标店", "目标商家", "店铺名称", "店铺名", "店名", "店铺叫", "店叫", "商家叫")
	// Words that end such a name.
	entShopNameStop = entWords("每人", "每个", "大家", "所有", "全部", "一起", "统一", "今晚", "今天", "明天", "明早",
		"晚上", "的", "那", "这", "拍", "下单", "刷", "写", "投诉", "差评", "链接", "宝贝", "主推", "店", "铺")
)

func exShopRune(c rune) bool { return exHan(c) || exAlnum(c) }

// exShopNotEnd: characters after 店 that make it part of another word
// (店长, 店员, 店铺 handled as its own suffix).
func exShopNotEnd(last, next rune) bool {
	switch last {
	case '店':
		return strings.ContainsRune("长员主家庆名址面招规标东租铺鋪小", next)
	case '铺', '鋪':
		return strings.ContainsRune("子货垫设满路张开面位盖天床平陈排", next)
	}
	return false
}

// shops finds shop names: up to 14 name characters ending in a shop
// suffix, with leading verbs and markers cut off; and names after
// 目标店铺/店名 without a suffix.
func (x *extractor) shops() {
	r := x.r
	for k := 0; k < len(r); k++ {
		c := r[k]
		if c != '店' && c != '铺' && c != '鋪' && c != '室' && c != '行' && c != '子' && c != '馆' && c != '城' {
			continue
		}
		end := k + 1
		if end < len(r) && exShopNotEnd(c, r[end]) {
			continue
		}
		l, minStem := exEndAny(r, end, entStrongShop), 2
		if l == 0 {
			l, minStem = exEndAny(r, end, entMidShop), 3
		}
		if l == 0 {
			l, minStem = exEndAny(r, end, entWeakShop), 3
		}
		if l == 0 && (c == '铺' || c == '鋪') && !(k > 0 && strings.ContainsRune("床卧通地上下", r[k-1])) {
			l = 1 // 南山茶叶铺
		}
		if l == 0 {
			continue
		}
		a := end - l
		start := exShopStart(r, a, 14-l)
		if start < 0 {
			continue
		}
		stem := a - start
		if stem < minStem || exEndAny(r, a, entShopGeneric) > 0 || exAtAny(r, start, entShopGenericStem) == stem ||
			!exNamed(r[start:a]) || x.claimed(start, end) {
			continue
		}
		if x.addOrig(EntShop, start, end) {
			x.claim(start, end)
		}
	}
	for k := 0; k < len(r); k++ {
		l := exEndAny(r, k+1, entShopNameKeys)
		if l == 0 {
			continue
		}
		p := k + 1
		for n := 0; n < 3 && p < len(r) && strings.ContainsRune(" :：是叫为", r[p]); n++ {
			p++
		}
		if p == k+1 {
			continue // 目标店铺大促开始前: no name follows
		}
		q := p
		for q < len(r) && q-p <= 14 && exShopRune(r[q]) && exAtAny(r, q, entShopNameStop) == 0 {
			if exDigit(r[q]) && q+1 < len(r) && strings.ContainsRune("单件条次遍轮张份套箱包瓶盒个", r[q+1]) {
				break // 目标店1条中差评
			}
			q++
		}
		if q-p < 2 || q-p > 14 || exEndAny(r, q, entShopGeneric) > 0 || !exNamed(r[p:q]) || x.claimed(p, q) {
			continue
		}
		if x.addOrig(EntShop, p, q) {
			x.claim(p, q)
		}
	}
}

// exShopStart finds where the name before a suffix at a starts: after the
// rightmost marker within limit runes, or at a non-name character. It
// returns -1 when the name runs on past the limit with no marker.
func exShopStart(r []rune, a, limit int) int {
	b := a
	for b > 0 && a-b < limit && exShopRune(r[b-1]) {
		b--
	}
	for p := a; p > b; p-- {
		if exEndAny(r, p, entShopHard) > 0 {
			return p
		}
		if exEndAny(r, p, entShopSoft) > 0 && a-p >= 3 {
			return p
		}
		// 拍3件悦宠旗舰店: a number with its counter ends the text before
		if p-2 >= b && strings.ContainsRune("单件条次遍轮张份套箱包瓶盒", r[p-1]) && exDigit(r[p-2]) {
			return p
		}
	}
	if b > 0 && exShopRune(r[b-1]) {
		return -1
	}
	return b
}

// exNamed: a name has a Chinese character or a letter, not only digits.
func exNamed(r []rune) bool {
	for _, c := range r {
		if exHan(c) || exLetter(c) {
			return true
		}
	}
	return false
}

// --- money and counts ---------------------------------------------------------------

// entMoneyKey is a word before a number that makes it an amount. Fees,
// prices and rates are strong. Verbs (给, 转, 要...) are weaker: they need
// an amount of 10 or more and must not begin another word (收藏, 出发,
// 要求). Rates (一单15, normalised 1单15) must touch the number.
type entMoneyKey struct {
	w    []rune
	kind int
	not  string // runes that may not follow a verb
}

const (
	moneyStrong = iota
	moneyVerb
	moneyRate
)

var (
	// entMoneyBefore is indexed by the last rune of each word, so the
	// window before a number costs one map lookup per position.
	entMoneyBefore = func() map[rune][]entMoneyKey {
		m := map[rune][]entMoneyKey{}
		add := func(k entMoneyKey) {
			last := k.w[len(k.w)-1]
			m[last] = append(m[last], k)
		}
		for _, w := range []string{"停手费", "和解费", "保护费", "删评费", "封口费", "辛苦费", "好处费", "费", "价",
			"红包", "钱", "工资", "佣金", "奖励", "返现", "返", "补贴", "便宜", "优惠", "立减", "减", "少于",
			"低于", "不少于", "至少", "最少", "起码", "满", "谈到", "谈好", "券后", "到手", "只要", "仅需", "仅", "售",
			"赔偿", "赔", "补", "少说", "私了", "结算", "日结", "结账", "金", "金额", "损失", "每单", "每条", "每件", "每次", "每个月", "每月", "每天", "每周", "每年", "包月"} {
			add(entMoneyKey{w: []rune(w), kind: moneyStrong})
		}
		for _, w := range []string{"一单", "1单", "一条", "1条", "一件", "1件", "一个", "每个", "1个", "一次", "1次", "1个月", "一个月", "1天", "一天"} {
			add(entMoneyKey{w: []rune(w), kind: moneyRate})
		}
		for _, v := range []struct{ w, not string }{
			{"给", "好差"}, {"转", "发告运"}, {"拿", "去货快"}, {"出", "库发现门货生差行场"}, {"要", "求是不么"},
			{"付", ""}, {"交", "流通易"}, {"收", "藏货件下录"}, {"打", "开卡电折分车"}, {"报", "名单"}, {"还", "有是"},
			{"最低", ""}, {"最高", ""}, {"最多", ""},
		} {
			add(entMoneyKey{w: []rune(v.w), kind: moneyVerb, not: v.not})
		}
		return m
	}()
	entMoneyAfter = entWords("转账", "到账", "成交", "打款", "现金", "拿不出", "私了", "封口", "收手", "停手", "了事",
		"免谈", "删评", "撤诉", "一口价", "红包")
	// entRateAfter: "300一条" (normalised "300 1条") is a price per review.
	entRateAfter = entWords("1条", "1单", "1个", "1件", "1次", "每条", "每单", "每个", "每件", "每次", "一条", "一单")
	// Units after a number that make it something other than money or a count.
	entNotMoneyUnit = entWords("小时", "分钟", "个月", "点", "时", "分", "秒", "天", "日", "号", "月", "年", "周",
		"岁", "%", "％", "‰", "折", "倍", "度", "人", "位", "名", "楼", "层", "星", "级", "斤", "克", "公斤", "米",
		"公里", "寸", "届", "期", "集", "章", "页", "路", "线", "栋", "室", "颗", "粒", "片", "台", "部", "只", "双",
		"对", "支", "辆", "本", "杯", "碗", "顿", "把", "字", "秒")
	// Hotlines (consumer complaints 12315, police 110) are named in
	// complaint tasks; they are not amounts.
	entHotlines = entWords("12315", "12345", "12306", "12321", "12377", "110", "120", "119", "122", "95188", "12318", "12365")
)

func exHotline(d []rune) bool {
	return (len(d) == 3 || len(d) == 5) && exAtAny(d, 0, entHotlines) == len(d)
}

func exCounter(c rune) bool {
	return strings.ContainsRune("单件个条次遍轮张份套箱包瓶盒号笔", c)
}

// numbers classifies every number token not already explained as money, a
// count, or neither.
func (x *extractor) numbers() {
	r := x.r
	for i := 0; i < len(r); i++ {
		if !exDigit(r[i]) || i > 0 && exDigit(r[i-1]) {
			continue
		}
		s := i
		e := exRunEnd(r, s)
		ne := e
		if ne+1 < len(r) && r[ne] == '.' && exDigit(r[ne+1]) {
			ne = exRunEnd(r, ne+1)
		}
		i = ne - 1
		x.number(s, e, ne)
	}
}

// number looks at the token r[s:ne] whose integer part is r[s:e].
func (x *extractor) number(s, e, ne int) {
	r := x.r
	if x.claimed(s, ne) || e-s > 12 {
		return
	}
	// Dates, times, versions, ranges: 6.18, 20:30, 2024-06-10, 1.2.3, 5-10.
	if ne+1 < len(r) && strings.ContainsRune(".:-/~：", r[ne]) && exDigit(r[ne+1]) {
		return
	}
	if s >= 2 && strings.ContainsRune(".:-/~：", r[s-1]) && exDigit(r[s-2]) {
		return
	}
	// Currency before: ¥99, ￥ 99, rmb99, 人民币99.
	cs := -1
	k := s
	if k > 0 && r[k-1] == ' ' {
		k--
	}
	switch {
	case k > 0 && (r[k-1] == '¥' || r[k-1] == '￥') && !x.claimed(k-1, k):
		cs = k - 1
	case exAtStr(r, k-3, "rmb") && (k == 3 || !exLetter(r[k-4])):
		cs = k - 3
	case exAtStr(r, k-3, "人民币"):
		cs = k - 3
	}
	if s > 0 && exLetter(r[s-1]) && cs < 0 {
		return // v2, sf1482..., id1
	}
	if s > 0 && r[s-1] == '第' {
		return // ordinal
	}
	if s > 0 && r[s-1] == '几' {
		return // 几十 (a few tens) is no amount
	}
	p, shift := exMultiplier(r, ne)
	if p < len(r) && exLetter(r[p]) && shift == 0 && !exAtStr(r, p, "rmb") {
		return // 10kg, 4g, 1080p, an alphanumeric code
	}
	q := p
	approx := q < len(r) && (r[q] == '多' || r[q] == '余' || r[q] == '来')
	if approx {
		q++
		if shift == 0 {
			// 200余万元
			if q2, sh := exMultiplier(r, q); sh > 0 {
				q, shift = q2, sh
			}
		}
	}
	if ul, div := exMoneyUnit(r, q); ul > 0 {
		// 9块9 is 9.9 yuan: one digit after 块/元 counts in tenths.
		if ne == e && shift == 0 && div == 0 && (r[q] == '块' || r[q] == '元') && ul == 1 {
			if d := q + 1; d < len(r) && exDigit(r[d]) && (d+1 == len(r) || !exDigit(r[d+1]) && r[d+1] != '.') {
				end := d + 1
				if end < len(r) && (r[end] == '毛' || r[end] == '角') {
					end++
				}
				start := s
				if cs >= 0 {
					start = cs
				}
				x.add(EntMoney, exAmount(r[s:e], r[d:d+1], 0), start, end)
				x.claim(start, end) // the tenths digit is no number of its own
				return
			}
		}
		x.money(s, e, ne, shift-div, s, q+ul, cs)
		return
	}
	if cs >= 0 {
		x.money(s, e, ne, shift, cs, p, cs)
		return
	}
	if shift == 0 && ne == e && q < len(r) && exCounter(r[q]) {
		x.count(s, e, q)
		return
	}
	if exAtAny(r, p, entNotMoneyUnit) > 0 || approx && q < len(r) && exAtAny(r, q, entNotMoneyUnit) > 0 {
		return
	}
	// 1. 2、 at the start of a list item
	if ne == e && q == e && q+1 < len(r) && (r[q] == '.' || r[q] == '、') && !exDigit(r[q+1]) && shift == 0 {
		return
	}
	if s >= 2 && r[s-1] == ' ' && exLetter(r[s-2]) {
		return // iPhone 15, Mate 60
	}
	if shift == 0 && (e-s > 9 || e-s > 1 && r[s] == '0' || exHotline(r[s:e])) {
		return
	}
	if ok, verb := x.moneyContext(s, q); ok && (!verb || exAtLeast10(exAmount(r[s:e], r[min(e+1, ne):ne], shift))) {
		x.money(s, e, ne, shift, s, p, -1)
	}
}

// exMultiplier reads k/w/万/千 after a number at p (3.5k, 1w, 9万).
func exMultiplier(r []rune, p int) (int, int) {
	if p >= len(r) {
		return p, 0
	}
	switch exLower(r[p]) {
	case 'k':
		if p+1 >= len(r) || !exAlnum(r[p+1]) {
			return p + 1, 3
		}
	case 'w':
		if p+1 >= len(r) || !exAlnum(r[p+1]) {
			return p + 1, 4
		}
	case '万':
		return p + 1, 4
	case '千':
		return p + 1, 3
	}
	return p, 0
}

// exMoneyUnit returns the length of a money unit at q and how many decimal
// places it shifts (毛/角 are tenths of a yuan).
func exMoneyUnit(r []rune, q int) (int, int) {
	if q >= len(r) {
		return 0, 0
	}
	switch r[q] {
	case '元':
		if q+1 < len(r) && (r[q+1] == '旦' || r[q+1] == '宵' || r[q+1] == '素') {
			return 0, 0
		}
		return 1, 0
	case '圆':
		return 1, 0
	case '块':
		if exAtStr(r, q, "块钱") {
			return 2, 0
		}
		return 1, 0
	case '毛', '角':
		if exAtStr(r, q+1, "钱") {
			return 2, 1
		}
		if q+1 < len(r) && exHan(r[q+1]) && !strings.ContainsRune("一二两三四五六七八九的啊吧呢了", r[q+1]) {
			return 0, 0 // 毛巾, 角度
		}
		return 1, 1
	case '大':
		if exAtStr(r, q, "大洋") {
			return 2, 0
		}
	case 'r', 'R':
		if exAtStr(r, q, "rmb") && (q+3 >= len(r) || !exLetter(r[q+3])) {
			return 3, 0
		}
	case '人':
		if exAtStr(r, q, "人民币") {
			return 3, 0
		}
	}
	return 0, 0
}

// moneyContext looks for an amount word shortly before s or after q. The
// window before stops at a sentence end, at another number and at a
// comma, except a comma right before the number ("给个准话，5000").
func (x *extractor) moneyContext(s, q int) (ok, verb bool) {
	r := x.r
	for k := s; k > max(0, s-8); k-- {
		c := r[k-1]
		if exStop(c) || k < s && (exDigit(c) || c == ',' || c == '，') {
			break
		}
		for _, mk := range entMoneyBefore[exLower(c)] {
			if !exAt(r, k-len(mk.w), mk.w) {
				continue
			}
			switch mk.kind {
			case moneyRate:
				if k != s {
					continue
				}
			case moneyVerb:
				if k < len(r) && strings.ContainsRune(mk.not, r[k]) {
					continue
				}
				return true, true
			}
			return true, false
		}
	}
	p := q
	if p < len(r) && r[p] == ' ' {
		p++
	}
	if exAtAny(r, p, entRateAfter) > 0 {
		return true, true
	}
	for k := q; k < min(len(r), q+6); k++ {
		if exStop(r[k]) || exDigit(r[k]) {
			break
		}
		if exAtAny(r, k, entMoneyAfter) > 0 {
			return true, false
		}
	}
	return false, false
}

func exAtLeast10(v string) bool {
	i := strings.IndexByte(v, '.')
	if i < 0 {
		i = len(v)
	}
	return i >= 2
}

// exAmount formats integer and fraction digits shifted by shift decimal
// places (3.5 with shift 3 is 3500, 5 with shift -1 is 0.5) as a plain
// decimal without leading or trailing zeros.
func exAmount(intPart, frac []rune, shift int) string {
	digits := string(intPart) + string(frac)
	point := len(intPart) + shift // position of the decimal point in digits
	for point > len(digits) {
		digits += "0"
	}
	for point < 1 {
		digits = "0" + digits
		point++
	}
	ip := strings.TrimLeft(digits[:point], "0")
	if ip == "" {
		ip = "0"
	}
	fp := strings.TrimRight(digits[point:], "0")
	if fp == "" {
		return ip
	}
	return ip + "." + fp
}

func (x *extractor) money(s, e, ne, shift, ss, se, cs int) {
	v := exAmount(x.r[s:e], x.r[min(e+1, ne):ne], shift)
	if cs >= 0 && cs < ss {
		ss = cs
	}
	x.add(EntMoney, v, ss, se)
}

// count records "300单" for r[s:e] followed by a counter at q.
func (x *extractor) count(s, e, q int) {
	r := x.r
	c := r[q]
	next := rune(0)
	if q+1 < len(r) {
		next = r[q+1]
	}
	switch c {
	case '个':
		if exAtStr(r, q+1, "月") || exAtStr(r, q+1, "小时") || exAtStr(r, q+1, "钟") || exAtStr(r, q+1, "星期") ||
			exAtStr(r, q+1, "礼拜") || exAtStr(r, q+1, "工作日") || exAtStr(r, q+1, "多月") || exAtStr(r, q+1, "季度") {
			return
		}
	case '包':
		if next == '邮' {
			return
		}
	case '件':
		if next == '套' {
			return // 四件套 is a product
		}
	case '号':
		// 5号 is mostly a date or an ordinal (5号链接); it counts
		// accounts only when nothing else follows or it is large.
		v := 0
		for _, d := range r[s:e] {
			v = v*10 + int(d-'0')
			if v > 1000 {
				break
			}
		}
		if v <= 31 && (exHan(next) || s > 0 && strings.ContainsRune("是月到前后至周", r[s-1]) || exAtStr(r, max(0, s-2), "今天") || exAtStr(r, max(0, s-2), "明天")) {
			return
		}
	}
	// 一单15 (normalised 1单15) and 300一条 (300 1条) are rates, not one
	// order or review.
	if e-s == 1 && r[s] == '1' && (q+1 < len(r) && exDigit(r[q+1]) || s >= 2 && r[s-1] == ' ' && exDigit(r[s-2])) {
		return
	}
	// 一个 is mostly the indefinite article (看到一个帖子), not a quantity.
	if c == '个' && e-s == 1 && r[s] == '1' {
		if sp, ok := x.span(s, e); ok && x.orig(sp) == "一" {
			return
		}
	}
	digits := strings.TrimLeft(string(r[s:e]), "0")
	if digits == "" {
		digits = "0"
	}
	x.add(EntCount, digits+string(c), s, q+1)
}

// --- times and deadlines --------------------------------------------------------------

var (
	entDayWords = entWords("双十一", "双十二", "双11", "双12", "月底", "月初", "月中", "年底", "年初", "大后天", "本周末", "这周末", "下周末", "今天", "今日", "明天", "明日", "后天", "昨天", "昨日",
		"前天", "今晚", "明晚", "昨晚", "今早", "明早", "今夜", "明夜", "当天", "当晚", "次日", "周末", "本周", "这周",
		"下周", "上周")
	entWeekWords   = entWords("星期", "礼拜", "周")
	entPeriodWords = entWords("凌晨", "早上", "早晨", "清晨", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "夜间",
		"半夜", "深夜", "午夜", "晚间", "白天", "早间", "天亮", "天黑")
	entDeadlinePrefix = entWords("截止到", "截至到", "截止", "截至", "最迟", "最晚", "不晚于", "务必", "限")
	entDeadlineSuffix = entWords("之前", "以前", "为止", "之内", "以内", "截止", "截至", "前", "内")
	entDurUnits       = entWords("分钟", "小时", "钟头", "工作日", "个月", "星期", "礼拜", "天", "日", "周", "月", "年",
		"秒", "min", "h")
	entWithin = entWords("之内", "以内", "内")
)

// times finds deadlines and other time expressions.
func (x *extractor) times() {
	r := x.r
	for i := 0; i < len(r); {
		if !exTimeStart(r[i]) || x.claimed(i, i+1) {
			i++
			continue
		}
		if e := exDuration(r, i); e > i {
			// 30分钟内, 三天之内
			if w := exAtAny(r, e, entWithin); w > 0 && exDeadlineSuffixOK(r, e, w) {
				x.addOrig(EntDeadline, i, e+w)
				i = e + w
				continue
			}
			// 给你三天时间, 限时24小时, 宽限两天
			if ps := exDurationPrefix(r, i); ps >= 0 {
				if exAtStr(r, e, "时间") {
					e += 2
				}
				x.addOrig(EntDeadline, ps, e)
				i = e
				continue
			}
		}
		e, anchored, hourStart := exTimeExpr(r, i)
		if e <= i {
			i++
			continue
		}
		// 有一点 ("a little") is not one o'clock.
		if !anchored && hourStart >= 0 {
			if sp, ok := x.span(hourStart, hourStart+1); ok && x.orig(sp) == "一" {
				i = e
				continue
			}
		}
		if x.claimed(i, e) {
			i = e
			continue
		}
		ds, de := i, e
		if l := exAtAny(r, e, entDeadlineSuffix); l > 0 && exDeadlineSuffixOK(r, e, l) {
			de = e + l
		}
		if ps := exDeadlinePrefix(r, i); ps >= 0 {
			ds = ps
		}
		if ds != i || de != e {
			x.addOrig(EntDeadline, ds, de)
		} else {
			x.addOrig(EntTime, i, e)
		}
		i = de
	}
}

// exTimeStart reports the runes a time expression or a duration can start
// with; the matchers run only there.
func exTimeStart(c rune) bool { return exClass(c)&cTimeStart != 0 }

// exDeadlineSuffixOK rejects 前/内 that begin another word (前3名, 内容).
func exDeadlineSuffixOK(r []rune, e, l int) bool {
	n := e + l
	if n >= len(r) || l > 1 {
		return true
	}
	c := r[n]
	switch r[e] {
	case '前':
		return !exDigit(c) && !strings.ContainsRune("几两一三十面台端后排", c)
	case '内':
		return !strings.ContainsRune("容部存衣裤地外卷销涵行", c)
	}
	return true
}

// exDeadlinePrefix returns where 截止/最迟/... starts before i, or -1.
func exDeadlinePrefix(r []rune, i int) int {
	k := i
	for n := 0; n <= 4; n++ {
		if l := exEndAny(r, k, entDeadlinePrefix); l > 0 {
			return k - l
		}
		if k == 0 {
			return -1
		}
		switch {
		case strings.ContainsRune(" :：在于到至", r[k-1]):
			k--
		case exAtStr(r, k-2, "时间") || exAtStr(r, k-2, "日期"):
			k -= 2
		default:
			return -1
		}
	}
	return -1
}

var entDurationPrefix = entWords("限时", "限", "给你", "给他", "给你们", "宽限", "只给", "再给", "最多给")

// exDurationPrefix returns where a word that makes a duration a time limit
// starts before i, or -1.
func exDurationPrefix(r []rune, i int) int {
	if i > 0 && r[i-1] == ' ' {
		i--
	}
	if l := exEndAny(r, i, entDurationPrefix); l > 0 {
		return i - l
	}
	return -1
}

// exDuration matches "30分钟", "半小时", "3个工作日" at i and returns its
// end, or i.
func exDuration(r []rune, i int) int {
	p := -1
	switch {
	case exDigit(r[i]):
		if i > 0 && (exDigit(r[i-1]) || r[i-1] == '.' || exLetter(r[i-1])) {
			return i
		}
		p = exRunEnd(r, i)
		if p-i > 4 {
			return i
		}
		if p+1 < len(r) && r[p] == '.' && exDigit(r[p+1]) {
			p = exRunEnd(r, p+1)
		}
	case r[i] == '半' || r[i] == '几':
		p = i + 1
	default:
		return i
	}
	for n := 0; n < 3 && p < len(r) && (r[p] == '多' || r[p] == '个' || r[p] == '半'); n++ {
		p++
	}
	l := exAtAny(r, p, entDurUnits)
	if l == 0 || exLetter(r[p]) && p+l < len(r) && exLetter(r[p+l]) {
		return i
	}
	return p + l
}

// exTimeExpr greedily matches a sequence of day, date, period and clock
// parts at i. anchored reports a day, date or period part; hourStart is
// where a lone clock's hour is, for the 一点 check.
func exTimeExpr(r []rune, i int) (end int, anchored bool, hourStart int) {
	p, parts := i, 0
	prevMonth := false
	hourStart = -1
	for parts < 5 {
		q := p
		if parts > 0 && q < len(r) && r[q] == ' ' {
			q++
		}
		if q >= len(r) {
			break
		}
		if e := exDayAt(r, q); e > q {
			p, anchored, prevMonth = e, true, false
			parts++
			continue
		}
		if l := exAtAny(r, q, entPeriodWords); l > 0 {
			p, anchored, prevMonth = q+l, true, false
			parts++
			continue
		}
		if (r[q] == '早' || r[q] == '晚') && q+1 < len(r) {
			// 晚8点, 早9点
			if e, _ := exClockAt(r, q+1); e > q+1 {
				p, anchored, prevMonth = e, true, false
				parts++
				continue
			}
		}
		if e, month := exDateAt(r, q, prevMonth); e > q {
			p, anchored, prevMonth = e, true, month
			parts++
			continue
		}
		if e, minutes := exClockAt(r, q); e > q {
			if !minutes {
				hourStart = q
			}
			p, prevMonth = e, false
			parts++
			continue
		}
		break
	}
	return p, anchored, hourStart
}

func exDayAt(r []rune, q int) int {
	if q > 0 && r[q-1] == '每' {
		return q // 每天, 每周 are frequencies
	}
	// 本周/下周/这周/上周 may go on with a weekday (下周一).
	if c := r[q]; (c == '本' || c == '这' || c == '下' || c == '上') && q+1 < len(r) && r[q+1] == '周' {
		if e := exWeekday(r, q+1); e > q+1 {
			return e
		}
	}
	if l := exAtAny(r, q, entDayWords); l > 0 {
		return q + l
	}
	if q > 0 && exDigit(r[q-1]) {
		return q // 1周 is a duration
	}
	return exWeekday(r, q)
}

// exWeekday matches 周五, 星期天, 礼拜3 at q.
func exWeekday(r []rune, q int) int {
	l := exAtAny(r, q, entWeekWords)
	if l == 0 || q+l >= len(r) {
		return q
	}
	if !strings.ContainsRune("一二三四五六日天1234567", r[q+l]) {
		return q
	}
	e := q + l + 1
	if e < len(r) && (exDigit(r[e]) || exCounter(r[e])) {
		return q // 周3单
	}
	return e
}

// exDateAt matches 2024年, 6月, 18日/号 (after a month, or before a
// period or clock) and 2024-06-18.
func exDateAt(r []rune, q int, prevMonth bool) (int, bool) {
	v, e := exNum(r, q, 4)
	if e < 0 || e >= len(r) || q > 0 && exLetter(r[q-1]) {
		return q, false
	}
	n := e - q
	switch c := r[e]; {
	case c == '年' && n == 4:
		return e + 1, false
	case c == '月' && n <= 2 && v >= 1 && v <= 12 && !(q > 0 && r[q-1] == '个'):
		return e + 1, true
	case (c == '日' || c == '号') && n <= 2 && v >= 1 && v <= 31:
		if prevMonth || exAtAny(r, e+1, entPeriodWords) > 0 || exAtAny(r, e+1, entDeadlineSuffix) > 0 {
			return e + 1, false
		}
		if ce, _ := exClockAt(r, e+1); ce > e+1 {
			return e + 1, false
		}
	case n == 4 && (c == '-' || c == '/' || c == '.'):
		m, me := exNum(r, e+1, 2)
		if me < 0 || me >= len(r) || r[me] != c || m < 1 || m > 12 {
			return q, false
		}
		d, de := exNum(r, me+1, 2)
		if de < 0 || d < 1 || d > 31 || de < len(r) && exDigit(r[de]) {
			return q, false
		}
		return de, false
	}
	return q, false
}

// exClockAt matches 8点, 8点半, 10点整, 8点30(分), 15时30分, 20:30.
func exClockAt(r []rune, q int) (int, bool) {
	h, e := exNum(r, q, 2)
	if e < 0 || e >= len(r) || h > 24 || q > 0 && exLetter(r[q-1]) {
		return q, false
	}
	switch r[e] {
	case '点':
		p := e + 1
		if p < len(r) && strings.ContainsRune("评赞击建意要原餐单菜数", r[p]) {
			return q, false // 3点建议, 大众点评
		}
		switch {
		case p < len(r) && (r[p] == '半' || r[p] == '整' || r[p] == '钟'):
			return p + 1, true
		case exAtStr(r, p, "一刻") || exAtStr(r, p, "1刻") || exAtStr(r, p, "三刻") || exAtStr(r, p, "3刻"):
			return p + 2, true
		}
		if m, me := exNum(r, p, 2); me > 0 && m < 60 && !(me < len(r) && exCounter(r[me])) {
			if me < len(r) && r[me] == '分' {
				me++
			}
			return me, true
		}
		return p, false
	case '时':
		if m, me := exNum(r, e+1, 2); me > 0 && m < 60 && me < len(r) && r[me] == '分' {
			return me + 1, true
		}
	case ':', '：':
		m, me := exNum(r, e+1, 2)
		if me-(e+1) != 2 || m > 59 || me < len(r) && exDigit(r[me]) {
			return q, false
		}
		if me+2 < len(r) && (r[me] == ':' || r[me] == '：') {
			if sec, se := exNum(r, me+1, 2); se-(me+1) == 2 && sec < 60 && !(se < len(r) && exDigit(r[se])) {
				me = se
			}
		}
		return me, true
	}
	return q, false
}

// --- payment codes --------------------------------------------------------------------

var (
	entPayPhrases = entWords("收款二维码", "付款二维码", "收钱码", "收款码", "付款码", "赞赏码", "转账码")
	entScanPay    = entWords("转账", "付款", "支付", "付")
)

// payCodes finds mentions of payment QR codes.
func (x *extractor) payCodes() {
	r := x.r
	for i := 0; i < len(r); i++ {
		if r[i] != '码' {
			continue
		}
		if l := exEndAny(r, i+1, entPayPhrases); l > 0 {
			x.addOrig(EntPaymentCode, i+1-l, i+1)
			continue
		}
		if i > 0 && r[i-1] == '扫' {
			if l := exAtAny(r, i+1, entScanPay); l > 0 {
				x.addOrig(EntPaymentCode, i-1, i+1+l)
				continue
			}
		}
		if exAtStr(r, i-2, "二维码") && x.payNear(i-2, i+1) {
			x.addOrig(EntPaymentCode, i-2, i+1)
		}
	}
}

func (x *extractor) payNear(s, e int) bool {
	for k := max(0, s-4); k < min(len(x.r), e+4); k++ {
		if k >= s && k < e {
			continue
		}
		if strings.ContainsRune("付转扫收", x.r[k]) {
			return true
		}
	}
	return false
}
