package netguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qunshao/qunshao/alert/netguard"
)

func TestAddressesRefused(t *testing.T) {
	g := netguard.Guard{}
	for _, s := range []string{
		"127.0.0.1", "127.8.9.10", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "100.100.100.200", "0.0.0.0", "0.1.2.3",
		"255.255.255.255", "224.0.0.1", "240.0.0.1", "198.18.0.1",
		"::1", "::", "fc00::1", "fd00:ec2::254", "fdff:ffff::1", "fe80::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::",
	} {
		ip := netip.MustParseAddr(s)
		err := g.CheckAddr(ip)
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("%s allowed", s)
		}
		if err := (netguard.Guard{AllowPrivate: true}).CheckAddr(ip); err != nil {
			t.Errorf("%s refused with allow_private: %v", s, err)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "203.119.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1",
		"192.169.0.1", "2400:3200::1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil && s != "::ffff:8.8.8.8" {
			t.Errorf("%s refused: %v", s, err)
		}
	}
}

func TestHostSpellings(t *testing.T) {
	for _, h := range []string{"2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "127.1", "017700000001",
		"3232235777", "0251.0376.0251.0376", "10.1", "[::1]", "[::ffff:127.0.0.1]", "localhost", "api.localhost",
		"169.254.169.254", "0", "127.0.0.1.", "[fd00::1]"} {
		if err := (netguard.Guard{}).CheckHost(h); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("host %q allowed", h)
		}
	}
	// Non-canonical spellings are refused even with private targets
	// allowed: nothing legitimate writes an address like that.
	for _, h := range []string{"2130706433", "0177.0.0.1", "0x7f.1"} {
		if err := (netguard.Guard{AllowPrivate: true}).CheckHost(h); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("host %q allowed with allow_private", h)
		}
	}
	for _, h := range []string{"oapi.dingtalk.com", "qyapi.weixin.qq.com", "8.8.8.8", "1e100.net", "123.example.com"} {
		if err := (netguard.Guard{}).CheckHost(h); err != nil {
			t.Errorf("host %q refused: %v", h, err)
		}
	}
	for _, u := range []string{"file:///etc/passwd", "gopher://x", "http://user:pw@example.com/"} {
		pu, _ := url.Parse(u)
		if err := (netguard.Guard{}).CheckURL(pu); err == nil {
			t.Errorf("URL %s allowed", u)
		}
	}
}

func TestAllowList(t *testing.T) {
	allow, err := netguard.ParseAllow([]string{"10.0.0.5", "192.168.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	g := netguard.Guard{Allow: allow}
	for s, want := range map[string]bool{"10.0.0.5": true, "10.0.0.6": false, "192.168.7.200": true, "192.168.8.1": false, "::ffff:10.0.0.5": true} {
		if got := g.CheckAddr(netip.MustParseAddr(s)) == nil; got != want {
			t.Errorf("%s allowed=%v, want %v", s, got, want)
		}
	}
	if _, err := netguard.ParseAllow([]string{"nonsense"}); err == nil {
		t.Error("bad entry accepted")
	}
}

// The check runs at dial time on the resolved address: a name that
// resolves to loopback is refused, and so is every hop of a redirect.
func TestDialTimeChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	get := func(g netguard.Guard, u string) error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
		resp, err := g.Client(5*time.Second, nil).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	// Without the opt-in: refused by the dialer, whatever the spelling.
	for _, u := range []string{srv.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port,
		"http://2130706433:" + port, "http://0177.0.0.1:" + port} {
		if err := get(netguard.Guard{}, u); !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET %s: %v, want refused", u, err)
		}
	}
	// With it: reached.
	if err := get(netguard.Guard{AllowPrivate: true}, srv.URL); err != nil {
		t.Fatalf("with allow_private: %v", err)
	}

	// Redirects: the first hop is allowed (exactly 127.0.0.1), each target
	// is private and refused.
	allow, _ := netguard.ParseAllow([]string{"127.0.0.1"})
	g := netguard.Guard{Allow: allow}
	for _, target := range []string{"http://127.0.0.2:" + port + "/", "http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/", "http://[fd00::1]/", "http://2130706433/", "http://100.64.0.1/", "http://[::ffff:192.168.0.1]/"} {
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		}))
		err := get(g, redirect.URL)
		redirect.Close()
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("redirect to %s: %v, want refused", target, err)
		}
	}
	// A redirect back to the allowed address is followed.
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL, http.StatusFound)
	}))
	defer back.Close()
	if err := get(g, back.URL); err != nil {
		t.Errorf("redirect to an allowed address: %v", err)
	}
}
