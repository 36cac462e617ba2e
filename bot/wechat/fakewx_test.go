package wechat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWX speaks the web-WeChat wire protocol as far as openwechat uses it:
// the login endpoints (jslogin, login polling, webwxnewloginpage), session
// setup (webwxinit, webwxstatusnotify), the long poll (synccheck), message
// sync (webwxsync) and contacts (webwxgetcontact, webwxbatchgetcontact).
// The real openwechat client talks to it through toFake, which keeps every
// request's path and query and only changes where it goes.
//
// Every QR login starts a new session in which every UserName is different,
// as on the real service; a hot login continues the session while the fake
// keeps it alive.
type fakeWX struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	log       []string // host+path of every request, in order
	session   int
	sid       string
	alive     bool
	uin       int64
	uuids     int
	polls     map[string]int
	confirmed bool
	people    map[string]*fakePerson
	groups    []*fakeGroup
	queue     [][]byte
	retcode   string
	syncVal   int
	kick      chan struct{}
}

type fakePerson struct {
	nick   string
	attr   int64
	avatar string // seq of the avatar URL, if the member list carries one
}

type fakeGroup struct {
	handle     string
	name       string
	owner      string
	members    []string
	cards      map[string]string
	inContacts bool
}

func newFakeWX(t *testing.T) *fakeWX {
	f := &fakeWX{
		t: t, uin: 100, polls: map[string]int{}, people: map[string]*fakePerson{},
		retcode: "0", kick: make(chan struct{}, 1),
	}
	f.people["self"] = &fakePerson{nick: "哨兵"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWX) transport() http.RoundTripper {
	return &toFake{host: f.srv.Listener.Addr().String(), base: &http.Transport{}}
}

// toFake sends each request to the fake server, keeping its path, query,
// body and Host header, so that openwechat's client (cookie jar, redirect
// policy, retries) works exactly as against WeChat's hosts.
type toFake struct {
	host string
	base *http.Transport
}

func (t *toFake) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme = "http"
	r.URL.Host = t.host
	r.Host = req.URL.Host
	return t.base.RoundTrip(r)
}

func (t *toFake) CloseIdleConnections() { t.base.CloseIdleConnections() }

// ---- scenario helpers ----

func (f *fakeWX) person(handle, nick string, attr int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.people[handle] = &fakePerson{nick: nick, attr: attr}
}

func (f *fakeWX) group(handle, name, owner string, inContacts bool, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups = append(f.groups, &fakeGroup{handle: handle, name: name, owner: owner, members: members, cards: map[string]string{}, inContacts: inContacts})
}

func (f *fakeWX) setCard(group, handle, card string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.findGroup(group).cards[handle] = card
}

func (f *fakeWX) renameGroup(group, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.findGroup(group).name = name
}

func (f *fakeWX) addMember(group, handle string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.findGroup(group)
	g.members = append(g.members, handle)
}

func (f *fakeWX) findGroup(handle string) *fakeGroup {
	for _, g := range f.groups {
		if g.handle == handle {
			return g
		}
	}
	f.t.Fatalf("fake: no group %s", handle)
	return nil
}

// confirm makes the next login polls report the QR code scanned, then
// confirmed.
func (f *fakeWX) confirm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed = true
}

// expire ends the session on the server side: a hot login is refused.
func (f *fakeWX) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alive = false
}

func (f *fakeWX) setRetcode(rc string) {
	f.mu.Lock()
	f.retcode = rc
	f.mu.Unlock()
	f.wake()
}

func (f *fakeWX) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// push queues a webwxsync response body.
func (f *fakeWX) push(body []byte) {
	f.mu.Lock()
	f.queue = append(f.queue, body)
	f.mu.Unlock()
	f.wake()
}

func (f *fakeWX) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// userName is a person's UserName in the current session.
func (f *fakeWX) userName(handle string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.un(handle)
}

func (f *fakeWX) groupName(handle string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gn(handle)
}

func (f *fakeWX) un(handle string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("u/%d/%s", f.session, handle)))
	return "@" + hex.EncodeToString(h[:])
}

func (f *fakeWX) gn(handle string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("g/%d/%s", f.session, handle)))
	return "@@" + hex.EncodeToString(h[:])
}

// jsonBytes encodes like WeChat: no HTML escaping, indented so that tests
// can see that raw payloads are kept byte for byte.
func jsonBytes(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// wxMsg is an AddMsgList entry.
type wxMsg map[string]any

func (f *fakeWX) baseMsg(id string, typ int, from, to, content string) wxMsg {
	n, _ := strconv.ParseInt(id, 10, 64)
	return wxMsg{
		"MsgId": id, "FromUserName": from, "ToUserName": to, "MsgType": typ, "Content": content,
		"Status": 3, "ImgStatus": 1, "CreateTime": 1718000000 + n%1000, "VoiceLength": 0, "PlayLength": 0,
		"FileName": "", "FileSize": "", "MediaId": "", "Url": "", "AppMsgType": 0, "StatusNotifyCode": 0,
		"StatusNotifyUserName": "", "ForwardFlag": 0, "HasProductId": 0, "Ticket": "", "ImgHeight": 0,
		"ImgWidth": 0, "SubMsgType": 0, "NewMsgId": json.Number(id), "OriContent": "", "EncryFileName": "",
		"MMPeerUserName": from,
		"RecommendInfo": map[string]any{"UserName": "", "NickName": "", "QQNum": 0, "Province": "", "City": "",
			"Content": "", "Signature": "", "Alias": "", "Scene": 0, "VerifyFlag": 0, "AttrStatus": 0, "Sex": 0,
			"Ticket": "", "OpCode": 0},
		"AppInfo": map[string]any{"AppID": "", "Type": 0},
	}
}

// groupMsg is a member's message in a group: the content carries the
// sender's UserName, as web WeChat sends it.
func (f *fakeWX) groupMsg(id string, typ int, group, sender, content string) wxMsg {
	return f.baseMsg(id, typ, f.groupName(group), f.userName("self"), f.userName(sender)+":<br/>"+content)
}

func (m wxMsg) with(kv ...any) wxMsg {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func (m wxMsg) bytes() []byte { return jsonBytes(m) }

// syncBody builds a webwxsync response around message entries given as
// bytes, so that a test knows each entry's exact bytes.
func (f *fakeWX) syncBody(msgs [][]byte, modGroups ...string) []byte {
	f.mu.Lock()
	f.syncVal++
	val := f.syncVal
	var mods []string
	for _, g := range modGroups {
		mods = append(mods, string(jsonBytes(map[string]any{"UserName": f.gn(g), "NickName": f.findGroup(g).name})))
	}
	f.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"BaseResponse":{"Ret":0,"ErrMsg":""},"AddMsgCount":%d,"AddMsgList":[`, len(msgs))
	b.Write(bytes.Join(msgs, []byte(",\n")))
	fmt.Fprintf(&b, `],"ModContactCount":%d,"ModContactList":[%s],"DelContactCount":0,"DelContactList":[],`, len(mods), strings.Join(mods, ","))
	fmt.Fprintf(&b, `"ModChatRoomMemberCount":0,"ModChatRoomMemberList":[],"Profile":{},"ContinueFlag":0,`)
	fmt.Fprintf(&b, `"SyncKey":{"Count":1,"List":[{"Key":1,"Val":%d}]},"SKey":"","SyncCheckKey":{"Count":1,"List":[{"Key":1,"Val":%d}]}}`, val, val)
	return b.Bytes()
}

// ---- wire protocol ----

func (f *fakeWX) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ep := path.Base(r.URL.Path)
	f.mu.Lock()
	f.log = append(f.log, r.Host+r.URL.Path)
	f.mu.Unlock()
	switch ep {
	case "jslogin":
		f.mu.Lock()
		f.uuids++
		uuid := fmt.Sprintf("QR%d", f.uuids)
		f.mu.Unlock()
		fmt.Fprintf(w, `window.QRLogin.code = 200; window.QRLogin.uuid = "%s";`, uuid)
	case "login":
		f.serveLogin(w, r)
	case "webwxnewloginpage":
		f.mu.Lock()
		f.session++
		f.sid = fmt.Sprintf("sid%d", f.session)
		f.alive = true
		sid, skey, uin := f.sid, fmt.Sprintf("@crypt_%d", f.session), f.uin
		f.mu.Unlock()
		for _, c := range []*http.Cookie{{Name: "wxuin", Value: strconv.FormatInt(uin, 10)}, {Name: "wxsid", Value: sid}, {Name: "webwx_data_ticket", Value: "ticket"}} {
			c.Path = "/"
			http.SetCookie(w, c)
		}
		fmt.Fprintf(w, `<error><ret>0</ret><message></message><skey>%s</skey><wxsid>%s</wxsid><wxuin>%d</wxuin><pass_ticket>pt%%2B1</pass_ticket><isgrayscale>1</isgrayscale></error>`, skey, sid, uin)
	case "webwxinit":
		var req struct{ BaseRequest struct{ Sid string } }
		_ = json.Unmarshal(body, &req)
		if !f.valid(req.BaseRequest.Sid) {
			fmt.Fprint(w, `{"BaseResponse":{"Ret":1101,"ErrMsg":""}}`)
			return
		}
		w.Write(f.initBody())
	case "webwxstatusnotify":
		fmt.Fprint(w, `{"BaseResponse":{"Ret":0,"ErrMsg":""},"MsgID":"1"}`)
	case "synccheck":
		f.serveSyncCheck(w, r)
	case "webwxsync":
		if !f.valid(r.URL.Query().Get("sid")) {
			fmt.Fprint(w, `{"BaseResponse":{"Ret":1101,"ErrMsg":""},"AddMsgCount":0,"AddMsgList":[],"SyncKey":{"Count":0,"List":[]}}`)
			return
		}
		f.mu.Lock()
		var out []byte
		if len(f.queue) > 0 {
			out, f.queue = f.queue[0], f.queue[1:]
		}
		f.mu.Unlock()
		if out == nil {
			out = f.syncBody(nil)
		}
		w.Write(out)
	case "webwxgetcontact":
		w.Write(f.contactBody())
	case "webwxbatchgetcontact":
		var req struct{ List []struct{ UserName string } }
		_ = json.Unmarshal(body, &req)
		w.Write(f.batchBody(req.List))
	default:
		// Anything else answers success, so that a request the adapter must
		// never make would not fail loudly here; the request log tells.
		fmt.Fprint(w, `{"BaseResponse":{"Ret":0,"ErrMsg":""},"MsgID":"1","LocalID":"1"}`)
	}
}

func (f *fakeWX) valid(sid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.alive && sid == f.sid
}

func (f *fakeWX) serveLogin(w http.ResponseWriter, r *http.Request) {
	uuid := r.URL.Query().Get("uuid")
	f.mu.Lock()
	confirmed := f.confirmed
	if confirmed {
		f.polls[uuid]++
	}
	n := f.polls[uuid]
	if n >= 2 {
		f.confirmed = false // the next QR login needs its own scan
	}
	f.mu.Unlock()
	switch {
	case !confirmed:
		time.Sleep(10 * time.Millisecond) // a long poll, shortened
		fmt.Fprint(w, `window.code=408;`)
	case n == 1:
		fmt.Fprint(w, `window.code=201;window.userAvatar = 'data:img/jpg;base64,AAAA';`)
	default:
		fmt.Fprintf(w, "window.code=200;\nwindow.redirect_uri=\"https://wx2.qq.com/cgi-bin/mmwebwx-bin/webwxnewloginpage?ticket=T%s&uuid=%s&lang=zh_CN&scan=1718000000\";", uuid, uuid)
	}
}

func (f *fakeWX) serveSyncCheck(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("sid")
	deadline := time.After(40 * time.Millisecond)
	for {
		f.mu.Lock()
		rc, ok, queued := f.retcode, f.alive && sid == f.sid, len(f.queue)
		f.mu.Unlock()
		switch {
		case !ok:
			fmt.Fprint(w, `window.synccheck={retcode:"1101",selector:"0"}`)
			return
		case rc != "0":
			fmt.Fprintf(w, `window.synccheck={retcode:"%s",selector:"0"}`, rc)
			return
		case queued > 0:
			fmt.Fprint(w, `window.synccheck={retcode:"0",selector:"2"}`)
			return
		}
		select {
		case <-f.kick:
		case <-deadline:
			fmt.Fprint(w, `window.synccheck={retcode:"0",selector:"0"}`)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeWX) groupContact(g *fakeGroup, withMembers bool) map[string]any {
	c := map[string]any{
		"Uin": 0, "UserName": f.gn(g.handle), "NickName": g.name, "HeadImgUrl": "/cgi-bin/mmwebwx-bin/webwxgetheadimg?seq=0&username=" + f.gn(g.handle),
		"ContactFlag": 3, "MemberCount": len(g.members), "MemberList": []any{}, "RemarkName": "", "HideInputBarFlag": 0,
		"Sex": 0, "Signature": "", "VerifyFlag": 0, "OwnerUin": 0, "PYInitial": "", "PYQuanPin": "", "StarFriend": 0,
		"AppAccountFlag": 0, "Statues": 1, "AttrStatus": 0, "Province": "", "City": "", "Alias": "", "SnsFlag": 0,
		"UniFriend": 0, "DisplayName": "", "ChatRoomId": 0, "KeyWord": "", "EncryChatRoomId": "", "IsOwner": 0,
	}
	if withMembers {
		var list []any
		for _, h := range g.members {
			p := f.people[h]
			m := map[string]any{"Uin": 0, "UserName": f.un(h), "NickName": p.nick, "AttrStatus": p.attr, "PYInitial": "",
				"PYQuanPin": "", "RemarkPYInitial": "", "RemarkPYQuanPin": "", "MemberStatus": 0, "DisplayName": g.cards[h], "KeyWord": ""}
			if p.avatar != "" {
				m["HeadImgUrl"] = "/cgi-bin/mmwebwx-bin/webwxgeticon?seq=" + p.avatar + "&username=" + f.un(h)
			}
			list = append(list, m)
		}
		c["MemberList"] = list
		c["ChatRoomOwner"] = f.un(g.owner)
		c["EncryChatRoomId"] = "@" + strings.TrimPrefix(f.gn(g.handle), "@@")[:32]
	}
	return c
}

func (f *fakeWX) initBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var contacts []any
	for _, g := range f.groups {
		if g.inContacts {
			contacts = append(contacts, f.groupContact(g, false))
		}
	}
	return jsonBytes(map[string]any{
		"BaseResponse": map[string]any{"Ret": 0, "ErrMsg": ""},
		"Count":        len(contacts), "ContactList": contacts,
		"SyncKey": map[string]any{"Count": 1, "List": []any{map[string]any{"Key": 1, "Val": 1}}},
		"User": map[string]any{"Uin": f.uin, "UserName": f.un("self"), "NickName": "哨兵", "HeadImgUrl": "", "RemarkName": "",
			"Sex": 0, "Signature": "", "VerifyFlag": 0, "ContactFlag": 0, "HeadImgFlag": 1, "SnsFlag": 0},
		"ChatSet": "", "SKey": "", "ClientVersion": 1, "SystemTime": 1718000000, "GrayScale": 1,
		"InviteStartCount": 40, "MPSubscribeMsgCount": 0, "MPSubscribeMsgList": []any{}, "ClickReportInterval": 600000,
	})
}

func (f *fakeWX) contactBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []any{map[string]any{"Uin": 0, "UserName": f.un("friend"), "NickName": "朋友", "VerifyFlag": 0, "ContactFlag": 1, "MemberList": []any{}}}
	for _, g := range f.groups {
		if g.inContacts {
			list = append(list, f.groupContact(g, false))
		}
	}
	return jsonBytes(map[string]any{"BaseResponse": map[string]any{"Ret": 0, "ErrMsg": ""}, "MemberCount": len(list), "MemberList": list, "Seq": 0})
}

func (f *fakeWX) batchBody(req []struct{ UserName string }) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []any
	for _, it := range req {
		for _, g := range f.groups {
			if f.gn(g.handle) == it.UserName {
				list = append(list, f.groupContact(g, true))
			}
		}
		for h, p := range f.people {
			if f.un(h) == it.UserName {
				list = append(list, map[string]any{"Uin": 0, "UserName": it.UserName, "NickName": p.nick, "AttrStatus": p.attr, "VerifyFlag": 0, "MemberList": []any{}})
			}
		}
	}
	return jsonBytes(map[string]any{"BaseResponse": map[string]any{"Ret": 0, "ErrMsg": ""}, "Count": len(list), "ContactList": list})
}
