package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// jobj is a JSON object read leniently: web WeChat's field types are not
// documented and hostile or broken input must still yield what it can. A
// field of an unexpected type reads as empty instead of failing the whole
// message.
type jobj map[string]json.RawMessage

func parseObj(b []byte) (jobj, error) {
	var o jobj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

// str reads a string; a number reads as its digits exactly as sent (ids
// such as NewMsgId do not fit a float64).
func (o jobj) str(k string) string {
	v := bytes.TrimSpace(o[k])
	if len(v) == 0 {
		return ""
	}
	switch {
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		return string(v)
	}
	return ""
}

// num reads an integer from a number or a numeric string; anything else
// (and anything out of range) reads as 0.
func (o jobj) num(k string) int64 {
	v := bytes.TrimSpace(o[k])
	if len(v) == 0 {
		return 0
	}
	s := string(v)
	if v[0] == '"' {
		if json.Unmarshal(v, &s) != nil {
			return 0
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && f > math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return 0
}

// list reads an array of raw values; anything else reads as empty.
func (o jobj) list(k string) []json.RawMessage {
	v := o[k]
	if len(v) == 0 {
		return nil
	}
	var out []json.RawMessage
	if json.Unmarshal(v, &out) != nil {
		return nil
	}
	return out
}
