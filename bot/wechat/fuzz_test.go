package wechat

import (
	"encoding/json"
	"testing"

	"github.com/eatmoreapple/openwechat"
)

var messageSeeds = []string{
	`{"MsgId":"1","MsgType":1,"FromUserName":"@@g","Content":"@abc:<br/>hi @阿强\u2005 <span class=\"emoji emoji1f604\"></span>","CreateTime":1718000000}`,
	`{"MsgId":"2","MsgType":49,"AppMsgType":2000,"FileName":"微信转账","Content":"@abc:<br/>&lt;msg&gt;&lt;appmsg&gt;&lt;wcpayinfo&gt;&lt;feedesc&gt;￥1.00&lt;/feedesc&gt;&lt;/wcpayinfo&gt;&lt;/appmsg&gt;&lt;/msg&gt;"}`,
	`{"MsgId":"3","MsgType":10002,"Content":"@abc:<br/>&lt;sysmsg type=\"revokemsg\"&gt;&lt;revokemsg&gt;&lt;msgid&gt;1&lt;/msgid&gt;&lt;/revokemsg&gt;&lt;/sysmsg&gt;"}`,
	`{"MsgId":"4","MsgType":10000,"Content":"\"阿强\"邀请\"新人、路人\"加入了群聊"}`,
	`{"MsgId":"5","MsgType":"47","Content":"@abc:<br/>&lt;msg&gt;&lt;emoji md5=\"x\"/&gt;&lt;/msg&gt;","NewMsgId":123456789012345678901234567890}`,
	`{"MsgType":42,"Content":"&lt;msg username=\"wxid\" nickname=\"n\"/&gt;"}`,
	`{"MsgType":1,"Url":"http://x","Content":"地址:<br/>pictype=location"}`,
}

// FuzzConvertMessage: any AddMsgList entry converts without panicking, to
// segments the store accepts.
func FuzzConvertMessage(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := decodeInMsg(raw)
		if err != nil {
			return
		}
		_, body := splitSender(in.Content)
		c := convertContent(in, body, func(name string) (string, bool) { return "wxd_x", name == "阿强" })
		if len(c.segs) == 0 {
			t.Fatalf("no segments for %s", raw)
		}
		for _, s := range c.segs {
			if !s.Type.Valid() {
				t.Fatalf("segment type %q", s.Type)
			}
		}
		parseRevoke(body)
		text := webText(body)
		parseJoin(text)
		parseRename(text)
		parseKickedSelf(text)
	})
}

// FuzzSyncCapture: whatever the sync response, openwechat is given a body
// it can decode without nil messages whenever the response is a JSON
// object, and every message is either handed on or set aside.
func FuzzSyncCapture(f *testing.F) {
	f.Add([]byte(`{"AddMsgList":[` + messageSeeds[0] + `,null,{"MsgType":"x"}],"SyncKey":{"Count":1,"List":[{"Key":1,"Val":2}]}}`))
	f.Add([]byte(`{"addmsglist":[null],"SyncKey":"bad"}`))
	f.Add([]byte(`{"AddMsgList":{},"ModContactList":[{"UserName":"@@a"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &syncCapture{}
		out := c.process(body)
		var env map[string]json.RawMessage
		if json.Unmarshal(body, &env) != nil || env == nil {
			return
		}
		var resp openwechat.WebWxSyncResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("openwechat cannot decode %s (from %s): %v", out, body, err)
		}
		for _, m := range resp.AddMsgList {
			if m == nil {
				t.Fatalf("nil message handed to openwechat: %s", out)
			}
			if c.take(m.MsgId) == nil {
				t.Fatalf("message %q has no captured bytes", m.MsgId)
			}
		}
	})
}

// FuzzSanitizeContacts: a sanitized contact response never holds a null
// entry or more answers than were asked for.
func FuzzSanitizeContacts(f *testing.F) {
	f.Add([]byte(`{"ContactList":[null,{"UserName":"@@a","MemberList":[null]}]}`), 1)
	f.Add([]byte(`{"MemberList":[{"UserName":"@a"}],"Seq":0}`), -1)
	f.Fuzz(func(t *testing.T, body []byte, want int) {
		if want > 1000 {
			want = 1000
		}
		out, _ := sanitizeContacts(body, want)
		var probe struct {
			MemberList  []*openwechat.User
			ContactList []*openwechat.User
		}
		if json.Unmarshal(out, &probe) != nil {
			return
		}
		if want >= 0 && len(probe.ContactList) > want {
			t.Fatalf("%d contacts for %d asked", len(probe.ContactList), want)
		}
		for _, list := range [][]*openwechat.User{probe.MemberList, probe.ContactList} {
			for _, u := range list {
				if u == nil {
					t.Fatalf("null entry left in %s", out)
				}
				for _, m := range u.MemberList {
					if m == nil {
						t.Fatalf("null member left in %s", out)
					}
				}
			}
		}
	})
}
