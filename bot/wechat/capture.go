package wechat

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/eatmoreapple/openwechat"
)

// defaultMaxCapture bounds the webwxsync response the transport holds in
// memory to keep each message's bytes. Real responses are a few kilobytes
// to a few megabytes.
const defaultMaxCapture = 64 << 20

// syncCapture keeps the bytes of the latest webwxsync response, message by
// message, so that an event's Raw is exactly what WeChat sent for it rather
// than openwechat's re-encoding (which drops fields openwechat does not
// model, such as MMPeerUserName or fields WeChat adds later).
//
// It also shields openwechat from input it would choke on: a message that
// does not decode into openwechat.Message makes openwechat drop the whole
// response, and a null entry in AddMsgList makes it panic. Such messages are
// kept aside (pending) for the session to convert on its own, and openwechat
// is given the rest.
//
// openwechat handles one sync response at a time in one goroutine, calling
// the message handler for each message after the response has been read,
// so the latest response is the one whose messages are being handled.
type syncCapture struct {
	count func(kind string)

	// good counts responses that parsed; the session uses it to tell
	// consecutive failures from occasional ones.
	good atomic.Int64

	mu      sync.Mutex
	entries []capturedMsg // messages openwechat will hand to the handler, in order
	pending [][]byte      // messages openwechat could not decode, for the session
	garbage [][]byte      // responses (or parts) that are not JSON at all
	mods    []string      // groups in ModContactList: their rosters changed
}

type capturedMsg struct {
	id   string
	raw  []byte
	used bool
}

// process records one webwxsync response and returns the body openwechat
// should decode.
func (c *syncCapture) process(body []byte) []byte {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil || env == nil {
		// Not a JSON object: openwechat fails on it too and reports the
		// error to the session, which keeps the bytes.
		c.mu.Lock()
		c.entries = nil
		c.garbage = append(c.garbage, body)
		c.mu.Unlock()
		return body
	}
	c.good.Add(1)

	var strict openwechat.WebWxSyncResponse
	strictOK := json.Unmarshal(body, &strict) == nil
	rewrite := !strictOK

	var list []json.RawMessage
	if v, ok := field(env, "AddMsgList"); ok && !isJSONNull(v) {
		if err := json.Unmarshal(v, &list); err != nil {
			c.bump("malformed_sync")
			c.mu.Lock()
			c.garbage = append(c.garbage, v)
			c.mu.Unlock()
			list, rewrite = nil, true
		}
	}
	if strictOK && len(strict.AddMsgList) != len(list) {
		strictOK, rewrite = false, true // cannot happen for valid JSON; be safe
	}
	var entries []capturedMsg
	var pending [][]byte
	good := make([]json.RawMessage, 0, len(list))
	for i, raw := range list {
		if isJSONNull(raw) {
			// openwechat would dereference it and crash; there is nothing
			// in it to keep.
			c.bump("malformed_sync")
			rewrite = true
			continue
		}
		var id string
		if strictOK {
			if strict.AddMsgList[i] == nil {
				rewrite = true
				continue
			}
			id = strict.AddMsgList[i].MsgId
		} else {
			var m openwechat.Message
			if err := json.Unmarshal(raw, &m); err != nil {
				c.bump("malformed_message")
				pending = append(pending, raw)
				continue
			}
			id = m.MsgId
		}
		entries = append(entries, capturedMsg{id: id, raw: raw})
		good = append(good, raw)
	}
	var syncKey json.RawMessage
	if v, ok := field(env, "SyncKey"); ok {
		var sk *openwechat.SyncKey
		if err := json.Unmarshal(v, &sk); err != nil {
			c.bump("malformed_sync")
			rewrite = true
		} else {
			syncKey = v
		}
	}
	mods, _ := field(env, "ModContactList")
	modList := modGroups(mods)

	c.mu.Lock()
	c.entries = entries
	c.pending = append(c.pending, pending...)
	c.mods = append(c.mods, modList...)
	c.mu.Unlock()

	if !rewrite {
		return body
	}
	// openwechat reads only AddMsgList and SyncKey from the response.
	out := map[string]json.RawMessage{"AddMsgList": mustMarshal(good)}
	if syncKey != nil {
		out["SyncKey"] = syncKey
	}
	return mustMarshal(out)
}

// take returns the bytes of the next message with this id that openwechat
// hands to the handler, or nil when they were not captured.
func (c *syncCapture) take(id string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if e := &c.entries[i]; !e.used && e.id == id {
			e.used = true
			return e.raw
		}
	}
	return nil
}

// drain hands the session what it must deal with itself.
func (c *syncCapture) drain() (pending, garbage [][]byte, mods []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pending, garbage, mods = c.pending, c.garbage, c.mods
	c.pending, c.garbage, c.mods = nil, nil, nil
	return pending, garbage, mods
}

// reset forgets the latest response (it was too big to capture).
func (c *syncCapture) reset() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}

func (c *syncCapture) bump(kind string) {
	if c.count != nil {
		c.count(kind)
	}
}

// modGroups lists the groups in a ModContactList: WeChat sends a group
// there when its members or name change.
func modGroups(v json.RawMessage) []string {
	if len(v) == 0 {
		return nil
	}
	var list []json.RawMessage
	if json.Unmarshal(v, &list) != nil {
		return nil
	}
	var out []string
	for _, raw := range list {
		o, err := parseObj(raw)
		if err != nil {
			continue
		}
		if u := o.str("UserName"); strings.HasPrefix(u, "@@") && isSessionUserName(u) {
			out = append(out, u)
		}
	}
	return out
}

// field looks a key up the way encoding/json (and so openwechat) matches
// struct fields: an exact match first, else one that differs in case.
func field(o map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := o[key]; ok {
		return v, true
	}
	for k, v := range o {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// sanitizeContacts keeps openwechat from crashing on a contact response
// (webwxgetcontact, webwxbatchgetcontact): it dereferences every entry
// without checking, and stores batch answers by their position in the
// request. It drops null entries and answers beyond the want asked for
// (want < 0: not known), and returns body unchanged when neither occurs.
func sanitizeContacts(body []byte, want int) ([]byte, bool) {
	var probe struct {
		MemberList  []*openwechat.User
		ContactList []*openwechat.User
	}
	if json.Unmarshal(body, &probe) != nil {
		return body, false // openwechat fails to decode it and reports an error
	}
	clean := want < 0 || len(probe.ContactList) <= want
	for _, list := range [][]*openwechat.User{probe.MemberList, probe.ContactList} {
		for _, u := range list {
			if u == nil {
				clean = false
				break
			}
			for _, m := range u.MemberList {
				if m == nil {
					clean = false
				}
			}
		}
	}
	if clean {
		return body, false
	}
	var v map[string]any
	if json.Unmarshal(body, &v) != nil || v == nil {
		return body, false
	}
	dropNulls(v)
	for k, e := range v {
		if l, ok := e.([]any); ok && want >= 0 && strings.EqualFold(k, "ContactList") && len(l) > want {
			v[k] = l[:want]
		}
	}
	return mustMarshal(v), true
}

// dropNulls removes null elements from every array in v.
func dropNulls(v any) any {
	switch t := v.(type) {
	case []any:
		out := t[:0]
		for _, e := range t {
			if e != nil {
				out = append(out, dropNulls(e))
			}
		}
		return out
	case map[string]any:
		for k, e := range t {
			t[k] = dropNulls(e)
		}
	}
	return v
}

func isJSONNull(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// mustMarshal encodes values built from json.RawMessage that were decoded
// successfully, which cannot fail to encode.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("wechat: encode " + err.Error())
	}
	return b
}
