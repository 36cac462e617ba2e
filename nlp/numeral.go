package nlp

import (
	"strconv"
	"strings"
)

// cnDigit returns the value of a Chinese digit.
func cnDigit(r rune) (int64, bool) {
	switch r {
	case '零', '〇':
		return 0, true
	case '一':
		return 1, true
	case '二', '两':
		return 2, true
	case '三':
		return 3, true
	case '四':
		return 4, true
	case '五':
		return 5, true
	case '六':
		return 6, true
	case '七':
		return 7, true
	case '八':
		return 8, true
	case '九':
		return 9, true
	}
	return 0, false
}

// cnUnit returns the value of a Chinese place unit.
func cnUnit(r rune) (int64, bool) {
	switch r {
	case '十':
		return 10, true
	case '百':
		return 100, true
	case '千':
		return 1000, true
	case '万':
		return 10000, true
	case '亿':
		return 100000000, true
	}
	return 0, false
}

func isCNNum(r rune) bool {
	_, d := cnDigit(r)
	_, u := cnUnit(r)
	return d || u
}

// counters are the characters that make a lone numeral a quantity: 一单,
// 五件, 八千块.
const counters = "元块毛角单件个条次遍轮张份套箱包瓶盒号人天周月年秒点多来余"

// parseCN converts a Chinese numeral. It understands the spoken
// abbreviations 三千五 (3500) and 两万五 (25000). ok is false for strings
// that are not well-formed numbers.
func parseCN(s []rune) (int64, bool) {
	var total, section, num int64
	lastUnit := int64(0)
	seenDigit := false
	afterZero := false
	for i, r := range s {
		if d, ok := cnDigit(r); ok {
			if seenDigit && num != 0 && d != 0 {
				return 0, false // 五五 is not a number
			}
			num = d
			seenDigit = true
			if d == 0 {
				afterZero = true
			}
			continue
		}
		u, _ := cnUnit(r)
		switch {
		case u >= 10000:
			section += num
			if section == 0 {
				return 0, false
			}
			total += section * u
			section, num, seenDigit = 0, 0, false
		default:
			if num == 0 {
				if i == 0 && u == 10 {
					num = 1 // 十五
				} else {
					return 0, false
				}
			}
			section += num * u
			num, seenDigit = 0, false
		}
		lastUnit = u
		afterZero = false
	}
	if num != 0 && lastUnit >= 100 && !afterZero {
		// 三千五 = 3500, 两万五 = 25000, 一百二 = 120
		num *= lastUnit / 10
	}
	return total + section + num, true
}

// numeralStop are words made of numeral characters that are not numbers.
var numeralStop = func() [][]rune {
	var out [][]rune
	for _, s := range []string{"万一", "一一", "十分", "千万别", "千万不", "千万要", "千万记", "千万注", "千万得", "千万小", "千万莫", "一点点"} {
		out = append(out, []rune(s))
	}
	return out
}()

func hasRunePrefix(r []rune, i int, p []rune) bool {
	if i < 0 || i+len(p) > len(r) {
		return false
	}
	for k, c := range p {
		if r[i+k] != c {
			return false
		}
	}
	return true
}

// numerals rewrites numbers into digits: Chinese numerals (三千五 ->
// 3500, 五单 -> 5单) and digits with multipliers (3.5k -> 3500, 1w ->
// 10000, 9万 -> 90000, 1万5 -> 15000).
func (n *Normalizer) numerals(in *text, out *Normalized) *text {
	var t *text
	r := in.r
	emit := func(i, j int, val string, from string) {
		if t == nil {
			t = &text{r: append(make([]rune, 0, len(r)+8), r[:i]...), m: append(make([]Span, 0, len(r)+8), in.m[:i]...)}
		}
		sp := Span{in.m[i].Start, in.m[j-1].End}
		if len(t.r) > 0 && isDigit(t.r[len(t.r)-1]) {
			// 300一条 must not read as 3001条.
			t.add(' ', Span{sp.Start, sp.Start})
		}
		for _, c := range val {
			t.add(c, sp)
		}
		out.change(ChangeNumeral, sp, from, val)
	}
	for i := 0; i < len(r); {
		if i >= MaxNormalizeRunes {
			if t != nil {
				t.add(r[i], in.m[i])
			}
			i++
			continue
		}
		// Digits with a multiplier.
		if isDigit(r[i]) && (i == 0 || !(isLetter(r[i-1]) || isDigit(r[i-1]) || r[i-1] == '.')) {
			if j, val, ok := arabicWithUnit(r, i); ok && !(r[j-1] == 'w' && out.upperW[in.m[j-1].Start]) {
				emit(i, j, val, string(r[i:j]))
				i = j
				continue
			}
		}
		if isCNNum(r[i]) {
			j := i
			for j < len(r) && isCNNum(r[j]) {
				j++
			}
			// 五百一条 is 500 and 1条, not 510条: a last bare digit
			// followed by a counter is a number of its own.
			if j-i >= 3 && j < len(r) && strings.ContainsRune(counters, r[j]) {
				if _, d := cnDigit(r[j-1]); d {
					if _, u := cnUnit(r[j-2]); u {
						j--
					}
				}
			}
			if val, ok := n.cnNumber(r, i, j); ok {
				emit(i, j, strconv.FormatInt(val, 10), string(r[i:j]))
				i = j
				continue
			}
			if t != nil {
				t.r = append(t.r, r[i:j]...)
				t.m = append(t.m, in.m[i:j]...)
			}
			i = j
			continue
		}
		if t != nil {
			t.add(r[i], in.m[i])
		}
		i++
	}
	if t == nil {
		return in
	}
	return t
}

// cnNumber decides whether the numeral run r[i:j] is a number here.
func (n *Normalizer) cnNumber(r []rune, i, j int) (int64, bool) {
	run := r[i:j]
	for _, stop := range numeralStop {
		if hasRunePrefix(r, i, stop) || hasRunePrefix(r, i-1, stop) {
			return 0, false
		}
	}
	val, ok := parseCN(run)
	if !ok {
		return 0, false
	}
	hasUnit := false
	for _, c := range run {
		if _, u := cnUnit(c); u {
			hasUnit = true
		}
	}
	next := rune(0)
	if j < len(r) {
		next = r[j]
	}
	counter := next != 0 && strings.ContainsRune(counters, next)
	if next == '点' && len(run) == 1 && run[0] == '一' {
		counter = false // 一点 is "a little"
	}
	if next == '分' && j+1 < len(r) && r[j+1] == '钟' {
		counter = true
	}
	// Part of a larger word (统一, 一起, 唯一): a numeral glued to a
	// preceding Chinese character is only a number before a counter.
	prevCJK := i > 0 && isCJK(r[i-1]) && !strings.ContainsRune("是给转要赔拿出付交收价费约共每第有了到剩还", r[i-1])
	switch {
	case counter:
		return val, true
	case hasUnit && len(run) >= 2 && !prevCJK:
		return val, true
	case hasUnit && len(run) >= 2 && prevCJK && (j == len(r) || !isCJK(next)):
		return val, true
	}
	return 0, false
}

// arabicWithUnit parses "3.5k", "5k", "1w", "9万", "1.5万", "5千",
// "1万5" starting at i; j is the end.
func arabicWithUnit(r []rune, i int) (j int, val string, ok bool) {
	j = i
	for j < len(r) && isDigit(r[j]) {
		j++
	}
	frac := ""
	if j+1 < len(r) && r[j] == '.' && isDigit(r[j+1]) {
		k := j + 1
		for k < len(r) && isDigit(r[k]) {
			k++
		}
		frac = string(r[j+1 : k])
		j = k
	}
	if j >= len(r) || j-i > 12 {
		return 0, "", false
	}
	var mult int64
	switch r[j] {
	case 'k':
		mult = 1000
	case 'w':
		mult = 10000
	case '千':
		mult = 1000
	case '万':
		mult = 10000
	case '亿':
		mult = 100000000
	default:
		return 0, "", false
	}
	if (r[j] == 'k' || r[j] == 'w') && j+1 < len(r) && (isLetter(r[j+1]) || isDigit(r[j+1])) {
		return 0, "", false // an id or a code, not an amount
	}
	whole, err := strconv.ParseInt(string(r[i:j-len([]rune(frac))-boolInt(frac != "")]), 10, 64)
	if err != nil {
		return 0, "", false
	}
	v := whole * mult
	if frac != "" {
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, "", false
		}
		scale := int64(1)
		for range frac {
			scale *= 10
		}
		if mult%scale != 0 {
			return 0, "", false
		}
		v += f * (mult / scale)
	}
	end := j + 1
	// 1万5 = 15000, 3千5 = 3500: one trailing digit counts in the next
	// lower place.
	if (r[j] == '万' || r[j] == '千' || r[j] == 'w' || r[j] == 'k') && frac == "" && end < len(r) && isDigit(r[end]) && (end+1 >= len(r) || !isDigit(r[end+1]) && !isLetter(r[end+1])) {
		v += int64(r[end]-'0') * (mult / 10)
		end++
	}
	return end, strconv.FormatInt(v, 10), true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
