package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time intervals name zones; the static image has no zone database
)

// DefaultLocation is the zone of time intervals that do not name one.
const DefaultLocation = "Asia/Shanghai"

// spec is a compiled TimeSpec.
type spec struct {
	loc      *time.Location
	minutes  [][2]int // [start, end) minutes of the day
	weekdays [][2]int // 0 = Sunday
	days     [][2]int // negative from the end
	months   [][2]int // 1-12
	years    [][2]int
}

var weekdayNames = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

var monthNames = map[string]int{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6,
	"july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12}

func compileSpec(ts TimeSpec) (*spec, error) {
	s := &spec{}
	loc := ts.Location
	if loc == "" {
		loc = DefaultLocation
	}
	l, err := time.LoadLocation(loc)
	if err != nil {
		return nil, fmt.Errorf("location: unknown time zone %q", loc)
	}
	s.loc = l
	for i, tr := range ts.Times {
		a, err1 := clockMinutes(tr.StartTime)
		b, err2 := clockMinutes(tr.EndTime)
		if err1 != nil || err2 != nil || a >= b {
			return nil, fmt.Errorf("times[%d]: want start_time < end_time as HH:MM (00:00-24:00), got %q-%q", i, tr.StartTime, tr.EndTime)
		}
		s.minutes = append(s.minutes, [2]int{a, b})
	}
	if s.weekdays, err = ranges("weekdays", ts.Weekdays, func(x string) (int, error) {
		if v, ok := weekdayNames[strings.ToLower(x)]; ok {
			return v, nil
		}
		return 0, fmt.Errorf("unknown weekday %q", x)
	}, false); err != nil {
		return nil, err
	}
	if s.days, err = ranges("days_of_month", ts.DaysOfMonth, func(x string) (int, error) {
		n, err := strconv.Atoi(x)
		if err != nil || n == 0 || n < -31 || n > 31 {
			return 0, fmt.Errorf("day %q must be 1-31 or -31 to -1", x)
		}
		return n, nil
	}, true); err != nil {
		return nil, err
	}
	if s.months, err = ranges("months", ts.Months, func(x string) (int, error) {
		if v, ok := monthNames[strings.ToLower(x)]; ok {
			return v, nil
		}
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > 12 {
			return 0, fmt.Errorf("unknown month %q", x)
		}
		return n, nil
	}, false); err != nil {
		return nil, err
	}
	if s.years, err = ranges("years", ts.Years, func(x string) (int, error) {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1970 || n > 9999 {
			return 0, fmt.Errorf("year %q out of range", x)
		}
		return n, nil
	}, false); err != nil {
		return nil, err
	}
	return s, nil
}

func clockMinutes(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

func ranges(key string, items []string, parse func(string) (int, error), signed bool) ([][2]int, error) {
	var out [][2]int
	for i, it := range items {
		a, b, isRange := strings.Cut(strings.TrimSpace(it), ":")
		lo, err := parse(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", key, i, err)
		}
		hi := lo
		if isRange {
			if hi, err = parse(strings.TrimSpace(b)); err != nil {
				return nil, fmt.Errorf("%s[%d]: %v", key, i, err)
			}
		}
		if !signed && hi < lo || signed && (lo > 0) == (hi > 0) && hi < lo {
			return nil, fmt.Errorf("%s[%d]: range %q ends before it starts", key, i, it)
		}
		out = append(out, [2]int{lo, hi})
	}
	return out, nil
}

// contains reports whether t falls in the window.
func (s *spec) contains(t time.Time) bool {
	t = t.In(s.loc)
	in := func(rs [][2]int, v int) bool {
		if len(rs) == 0 {
			return true
		}
		for _, r := range rs {
			if v >= r[0] && v <= r[1] {
				return true
			}
		}
		return false
	}
	if len(s.minutes) > 0 {
		m := t.Hour()*60 + t.Minute()
		ok := false
		for _, r := range s.minutes {
			if m >= r[0] && m < r[1] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if !in(s.weekdays, int(t.Weekday())) || !in(s.months, int(t.Month())) || !in(s.years, t.Year()) {
		return false
	}
	if len(s.days) > 0 {
		last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, s.loc).Day()
		day := t.Day()
		ok := false
		for _, r := range s.days {
			lo, hi := r[0], r[1]
			if lo < 0 {
				lo = last + 1 + lo
			}
			if hi < 0 {
				hi = last + 1 + hi
			}
			if day >= lo && day <= hi {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// intervals are the compiled named time intervals.
type intervals map[string][]*spec

func compileIntervals(tis []TimeInterval) (intervals, error) {
	out := intervals{}
	for _, ti := range tis {
		for j, ts := range ti.TimeIntervals {
			s, err := compileSpec(ts)
			if err != nil {
				return nil, fmt.Errorf("time interval %s[%d]: %w", ti.Name, j, err)
			}
			out[ti.Name] = append(out[ti.Name], s)
		}
		if _, ok := out[ti.Name]; !ok {
			out[ti.Name] = nil
		}
	}
	return out, nil
}

// active reports whether any window of any named interval contains t.
func (iv intervals) active(names []string, t time.Time) bool {
	for _, n := range names {
		for _, s := range iv[n] {
			if s.contains(t) {
				return true
			}
		}
	}
	return false
}
