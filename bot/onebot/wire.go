package onebot

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// The OneBot v11 wire format, as NapCat, Lagrange.OneBot and LLOneBot send
// it. Implementations disagree on JSON types (ids as numbers or strings,
// file_size as a string, time as a number or a string), so ids and text
// use flexString and numbers use flexInt, which take either.

// wireFrame is every field qunshao reads from an event frame, an API
// response, or a message object inside an API response (get_msg,
// get_group_msg_history, get_forward_msg nodes).
type wireFrame struct {
	PostType      string `json:"post_type"`
	MetaEventType string `json:"meta_event_type"`
	MessageType   string `json:"message_type"`
	NoticeType    string `json:"notice_type"`
	RequestType   string `json:"request_type"`
	SubType       string `json:"sub_type"`

	Time       flexInt     `json:"time"`
	SelfID     flexString  `json:"self_id"`
	GroupID    flexString  `json:"group_id"`
	GroupName  *flexString `json:"group_name"`
	UserID     flexString  `json:"user_id"`
	OperatorID flexString  `json:"operator_id"`
	MessageID  flexString  `json:"message_id"`
	// Message is the message (array of segments, CQ string or a single
	// segment) in events; in API responses it is the error text.
	Message json.RawMessage `json:"message"`
	// Content carries a forwarded node's message in get_forward_msg.
	Content   json.RawMessage `json:"content"`
	Sender    *wireSender     `json:"sender"`
	Anonymous *wireAnonymous  `json:"anonymous"`
	Nickname  flexString      `json:"nickname"` // forward nodes without a sender object

	Duration flexInt    `json:"duration"`
	CardNew  flexString `json:"card_new"`
	CardOld  flexString `json:"card_old"`
	NameNew  flexString `json:"name_new"`
	NewName  flexString `json:"new_name"`
	Name     flexString `json:"name"`
	NameOld  flexString `json:"name_old"`
	OldName  flexString `json:"old_name"`
	Tag      flexString `json:"tag"`

	// Status is "ok"/"failed" in API responses and an object in
	// heartbeats.
	Status  json.RawMessage `json:"status"`
	Retcode *flexInt        `json:"retcode"`
	Data    json.RawMessage `json:"data"`
	Echo    json.RawMessage `json:"echo"`
	Wording flexString      `json:"wording"`
}

type wireSender struct {
	UserID   flexString `json:"user_id"`
	Nickname flexString `json:"nickname"`
	Card     flexString `json:"card"`
	Role     flexString `json:"role"`
}

type wireAnonymous struct {
	ID   flexString `json:"id"`
	Name flexString `json:"name"`
	Flag flexString `json:"flag"`
}

// wireMember is one entry of get_group_member_list.
type wireMember struct {
	UserID   flexString `json:"user_id"`
	Nickname flexString `json:"nickname"`
	Card     flexString `json:"card"`
	Role     flexString `json:"role"`
	JoinTime flexInt    `json:"join_time"`
}

// wireGroup is one entry of get_group_list, or get_group_info's data.
type wireGroup struct {
	GroupID   flexString `json:"group_id"`
	GroupName flexString `json:"group_name"`
}

// wireLogin is get_login_info's data.
type wireLogin struct {
	UserID   flexString `json:"user_id"`
	Nickname flexString `json:"nickname"`
}

// apiRequest is an action call over WebSocket.
type apiRequest struct {
	Action string `json:"action"`
	Params any    `json:"params"`
	Echo   string `json:"echo"`
}

var errNotScalar = errors.New("want a string or number, got an object or array")

// flexString takes a JSON string, number, boolean or null. Numbers keep
// their literal digits (QQ numbers exceed float64 precision in some
// implementations' ids); integral floats such as 1.2e9 become digits.
// Objects and arrays are refused.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		*s = ""
		return nil
	}
	switch b[0] {
	case '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case 'n':
		*s = ""
	case 't', 'f':
		*s = flexString(b)
	case '{', '[':
		return errNotScalar
	default:
		*s = flexString(numberText(string(b)))
	}
	return nil
}

func (s flexString) String() string { return string(s) }

// numberText renders a JSON number as an id: integers as written,
// integral floats as integers.
func numberText(n string) string {
	if !strings.ContainsAny(n, ".eE") {
		return n
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
		return n
	}
	return strconv.FormatInt(int64(f), 10)
}

// flexInt takes a JSON number or a numeric string. Anything else, and
// values outside int64, read as 0 with OK false: one odd field must not
// cost the whole frame.
type flexInt struct {
	V  int64
	OK bool
}

func (n *flexInt) UnmarshalJSON(b []byte) error {
	*n = flexInt{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return nil
		}
		s = strings.TrimSpace(s)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt{V: v, OK: true}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return nil
	}
	*n = flexInt{V: int64(f), OK: true}
	return nil
}

// jsonText reads a JSON value as text: strings unquoted, null empty,
// everything else (numbers, booleans, objects, arrays) as written.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	case 'n':
		return ""
	}
	return string(raw)
}

// jsonKind returns the first significant byte of a JSON value, 0 when
// there is none.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// idParam renders an id for an API call: digits as a JSON number (what
// every implementation accepts), anything else as a string.
func idParam(id string) any {
	if id != "" && len(id) <= 19 && strings.Trim(id, "0123456789") == "" {
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			return json.Number(id)
		}
	}
	return id
}

// validQQ reports whether s looks like a QQ account or group number.
func validQQ(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == ""
}
