package wechat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eatmoreapple/openwechat"
	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	ok := Config{Accounts: []Account{{Name: "ops", Desktop: true}, {Name: "ops-2", StorageFile: "/var/lib/q/wx2.json"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Accounts: []Account{{}}}, "accounts[0].name: is empty"},
		{Config{Accounts: []Account{{Name: "../x"}}}, "accounts[0].name: \"../x\" may hold only"},
		{Config{Accounts: []Account{{Name: strings.Repeat("a", 65)}}}, "accounts[0].name:"},
		{Config{Accounts: []Account{{Name: "a"}, {Name: "a"}}}, "accounts[1].name: \"a\" is also the name of accounts[0]"},
		{Config{Accounts: []Account{{Name: "a", StorageFile: "s.json"}, {Name: "b", StorageFile: "./s.json"}}}, "accounts[1].storage_file: \"s.json\" is also used by accounts[0]"},
		{Config{Accounts: []Account{{Name: "a", StorageFile: "data/"}}}, "accounts[0].storage_file: \"data/\" names a directory"},
		{Config{Accounts: []Account{{Name: "a", StorageFile: "a\x00b"}}}, "accounts[0].storage_file: contains a NUL byte"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewRunners(Config{Accounts: []Account{{}}}, nil, nil); err == nil {
		t.Error("NewRunners accepted an invalid config")
	}
}

func TestAccountYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("accounts:\n  - name: ops\n  - name: web\n    desktop: false\n    storage_file: /tmp/x.json\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.Accounts) != 2 || !c.Accounts[0].Desktop || c.Accounts[1].Desktop || c.Accounts[1].StorageFile != "/tmp/x.json" {
		t.Errorf("decoded %+v", c)
	}
	err := yaml.Unmarshal([]byte("accounts:\n  - name: ops\n    destkop: true\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "destkop") {
		t.Errorf("unknown key: %v", err)
	}
	a := Account{Name: "ops"}
	if a.storageFile() != filepath.Join("data", "wechat-ops.json") || a.identitiesFile() != filepath.Join("data", "wechat-ops-identities.json") ||
		a.undeliveredFile() != filepath.Join("data", "wechat-ops-undelivered.jsonl") {
		t.Errorf("files: %s %s %s", a.storageFile(), a.identitiesFile(), a.undeliveredFile())
	}
}

func TestNewRunners(t *testing.T) {
	rs, err := NewRunners(Config{Accounts: []Account{{Name: "ops", Desktop: true}, {Name: "b"}}}, nil, nil)
	if err != nil || len(rs) != 2 || rs[0].Name() != "wechat:ops" || rs[1].Name() != "wechat:b" {
		t.Fatalf("runners: %v %v", rs, err)
	}
	st := rs[0].Status()
	if len(st) != 1 || st[0].Account != "ops" || st[0].State != "starting" || st[0].Transport != "web-wechat" || st[0].Platform != "wechat" {
		t.Errorf("status: %+v", st)
	}
	if err := rs[0].Run(context.Background(), nil); err == nil {
		t.Error("Run accepted a nil sink")
	}
}

// countingRT records the requests that reach the network.
type countingRT struct{ n atomic.Int32 }

func (c *countingRT) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"BaseResponse":{"Ret":0},"MsgID":"1"}`)), Header: http.Header{}}, nil
}

// Even a call of openwechat's send API never reaches the network.
func TestTransportRefusesSending(t *testing.T) {
	base := &countingRT{}
	var blocked []string
	tr := &transport{base: base, stop: context.Background(), onBlocked: func(ep string) { blocked = append(blocked, ep) }}
	b := openwechat.DefaultBot(openwechat.Desktop)
	b.Caller.Client.HTTPClient().Transport = tr
	b.Caller.Client.Domain = "wx2.qq.com"
	_, err := b.Caller.WebWxSendMsg(context.Background(), &openwechat.CallerWebWxSendMsgOptions{
		LoginInfo: &openwechat.LoginInfo{}, BaseRequest: &openwechat.BaseRequest{},
		Message: openwechat.NewTextSendMessage("hi", "@me", "@@group"),
	})
	if !errors.Is(err, errSendBlocked) {
		t.Errorf("send: %v", err)
	}
	if err := b.Caller.Logout(context.Background(), &openwechat.LoginInfo{}); !errors.Is(err, errSendBlocked) {
		t.Errorf("logout: %v", err)
	}
	if base.n.Load() != 0 || len(blocked) == 0 || blocked[0] != "webwxsendmsg" {
		t.Errorf("reached the network %d times; blocked %v", base.n.Load(), blocked)
	}
	for _, ep := range []string{"webwxsendmsg", "webwxsendmsgimg", "webwxsendappmsg", "webwxsendvideomsg", "webwxsendemoticon",
		"webwxuploadmedia", "webwxrevokemsg", "webwxoplog", "webwxupdatechatroom", "webwxcreatechatroom", "webwxverifyuser", "webwxlogout"} {
		if !blockedEndpoint("/cgi-bin/mmwebwx-bin/" + ep) {
			t.Errorf("%s not blocked", ep)
		}
	}
	for _, ep := range []string{"webwxsync", "synccheck", "webwxinit", "webwxstatusnotify", "webwxgetcontact", "webwxbatchgetcontact", "jslogin", "login", "webwxnewloginpage"} {
		if blockedEndpoint("/cgi-bin/mmwebwx-bin/" + ep) {
			t.Errorf("%s blocked", ep)
		}
	}

	// Once stopped, nothing goes out.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.stop = ctx
	req, _ := http.NewRequest(http.MethodGet, "https://webpush.wx2.qq.com/cgi-bin/mmwebwx-bin/synccheck", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, errStopped) || base.n.Load() != 0 {
		t.Errorf("after stop: %v", err)
	}
}

// The hot-login file round-trips the session and its cookies through the
// cookie jar's interface only.
func TestHotSerializer(t *testing.T) {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse("https://wx2.qq.com/cgi-bin/mmwebwx-bin/webwxinit")
	jar.SetCookies(u, []*http.Cookie{{Name: "wxuin", Value: "100", Path: "/"}, {Name: "webwx_data_ticket", Value: "t", Path: "/"}})
	b := openwechat.DefaultBot(openwechat.Desktop)
	b.Caller.Client.HTTPClient().Jar = jar
	b.Caller.Client.Domain = "wx2.qq.com"
	b.Storage.Request = &openwechat.BaseRequest{Uin: 100, Sid: "sid", Skey: "@k", DeviceID: "e1"}
	b.Storage.LoginInfo = &openwechat.LoginInfo{WxUin: 100, WxSid: "sid", SKey: "@k", PassTicket: "p"}
	b.Storage.Response = &openwechat.WebInitResponse{SyncKey: &openwechat.SyncKey{Count: 1, List: []struct{ Key, Val int64 }{{1, 7}}}}
	b.Serializer = hotSerializer{}
	var buf bytes.Buffer
	if err := b.DumpTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), hotFormat) || !strings.Contains(buf.String(), "webwx_data_ticket") {
		t.Errorf("stored: %s", buf.String())
	}
	var item openwechat.HotReloadStorageItem
	if err := (hotSerializer{}).Decode(&buf, &item); err != nil {
		t.Fatal(err)
	}
	if item.LoginInfo.WxSid != "sid" || item.BaseRequest.Skey != "@k" || item.WechatDomain != "wx2.qq.com" || item.SyncKey.List[0].Val != 7 {
		t.Errorf("decoded %+v", item)
	}
	got := item.Jar.AsCookieJar().Cookies(u)
	if len(got) != 2 {
		t.Errorf("cookies after reload: %v", got)
	}
	// A file in openwechat's own format (or anything else) is refused, so
	// that a QR login follows instead of a misread session.
	for _, s := range []string{`{"Jar":{},"BaseRequest":{},"LoginInfo":{}}`, "", "{"} {
		if err := (hotSerializer{}).Decode(strings.NewReader(s), &item); !errors.Is(err, openwechat.ErrInvalidStorage) {
			t.Errorf("Decode(%q) = %v", s, err)
		}
	}
}

// The login's session is saved at once; later saves (with an advanced sync
// key) wait until the messages they cover were delivered.
func TestHotStorageHoldsSyncKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	h := newHotStorage(path)
	buf := make([]byte, 8)
	if _, err := h.Read(buf); !errors.Is(err, openwechat.ErrInvalidStorage) {
		t.Errorf("missing file: %v", err)
	}
	read := func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	if _, err := h.Write([]byte("login")); err != nil || read() != "login" {
		t.Fatalf("login write: %v %q", err, read())
	}
	if _, err := h.Write([]byte("batch1")); err != nil || read() != "login" {
		t.Fatalf("held write reached the file: %q", read())
	}
	h.Write([]byte("batch2"))
	if err := h.flush(); err != nil || read() != "batch2" {
		t.Fatalf("flush: %v %q", err, read())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}
