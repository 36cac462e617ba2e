package importer

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// parseDateTime reads a local date and time at the start of b:
// "2019-07-16 18:15:05", with "/" or "-" between the date's parts, one- or
// two-digit month, day and hour, and, when ampm is set, an optional
// " AM"/" PM" (the 12-hour form QQ writes on some systems). The time is in
// China Standard Time. It returns the time and how many bytes it used.
func parseDateTime(b []byte, ampm bool) (time.Time, int, bool) {
	if len(b) >= 19 && b[4] == '-' && b[7] == '-' && b[10] == ' ' && b[13] == ':' && b[16] == ':' &&
		!(ampm && len(b) >= 22 && b[19] == ' ' && (b[21] == 'M' || b[21] == 'm')) {
		// The usual layout, read without the general loop.
		var v [14]int
		k := 0
		for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
			c := b[i]
			if c < '0' || c > '9' {
				return time.Time{}, 0, false
			}
			v[k] = int(c - '0')
			k++
		}
		year := v[0]*1000 + v[1]*100 + v[2]*10 + v[3]
		month, day := v[4]*10+v[5], v[6]*10+v[7]
		hour, minute, sec := v[8]*10+v[9], v[10]*10+v[11], v[12]*10+v[13]
		if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 || year < 1990 {
			return time.Time{}, 0, false
		}
		t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, cst)
		if t.Day() != day {
			return time.Time{}, 0, false
		}
		return t, 19, true
	}
	i := 0
	num := func(minDigits, maxDigits int) (int, bool) {
		v, n := 0, 0
		for i < len(b) && n < maxDigits && b[i] >= '0' && b[i] <= '9' {
			v = v*10 + int(b[i]-'0')
			i++
			n++
		}
		return v, n >= minDigits
	}
	sep := func(cs string) bool {
		if i < len(b) && strings.IndexByte(cs, b[i]) >= 0 {
			i++
			return true
		}
		return false
	}
	year, ok := num(4, 4)
	if !ok || !sep("-/") {
		return time.Time{}, 0, false
	}
	month, ok := num(1, 2)
	if !ok || !sep("-/") {
		return time.Time{}, 0, false
	}
	day, ok := num(1, 2)
	if !ok || !sep(" ") {
		return time.Time{}, 0, false
	}
	hour, ok := num(1, 2)
	if !ok || !sep(":") {
		return time.Time{}, 0, false
	}
	minute, ok := num(2, 2)
	if !ok || !sep(":") {
		return time.Time{}, 0, false
	}
	sec, ok := num(2, 2)
	if !ok {
		return time.Time{}, 0, false
	}
	if ampm && i+3 <= len(b) && b[i] == ' ' {
		switch string(b[i+1 : i+3]) {
		case "AM", "am", "PM", "pm":
			if hour < 1 || hour > 12 {
				return time.Time{}, 0, false
			}
			pm := b[i+1] == 'P' || b[i+1] == 'p'
			if hour == 12 {
				hour = 0
			}
			if pm {
				hour += 12
			}
			i += 3
		}
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 || year < 1990 {
		return time.Time{}, 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, cst)
	if t.Day() != day {
		return time.Time{}, 0, false // 2月30日
	}
	return t, i, true
}

// parseTimeValue reads the time forms JSON and CSV exports use: Unix
// seconds or milliseconds (as a number or digits), RFC 3339 (any zone,
// shown in CST), or a CST local "2006-01-02 15:04:05".
func parseTimeValue(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if isDigits(s) || (strings.Count(s, ".") == 1 && isDigits(strings.Replace(s, ".", "", 1))) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, false
		}
		var t time.Time
		switch {
		case f > 1e14: // microseconds
			t = time.UnixMicro(int64(f))
		case f > 1e11: // milliseconds
			t = time.UnixMilli(int64(f))
		default:
			sec := int64(f)
			t = time.Unix(sec, int64((f-float64(sec))*1e9))
		}
		t = t.In(cst)
		return t, t.Year() >= 1990 && t.Year() <= 9999
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.In(cst), t.Year() >= 1990 && t.Year() <= 9999
	}
	if t, n, ok := parseDateTime([]byte(s), true); ok {
		rest := bytes.TrimSpace([]byte(s[n:]))
		if len(rest) == 0 {
			return t, true
		}
		if rest[0] == '.' && isDigits(string(rest[1:])) {
			frac, _ := strconv.ParseFloat("0"+string(rest), 64)
			return t.Add(time.Duration(frac * 1e9)), true
		}
	}
	return time.Time{}, false
}
