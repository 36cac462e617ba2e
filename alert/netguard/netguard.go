// Package netguard keeps alert receivers from being turned against the
// network qunshao runs in. A receiver URL comes from configuration, but a
// webhook can redirect and a DNS name can resolve to anything, so the check
// happens where it cannot be bypassed: in the dialer, on the address that is
// actually about to be connected to, for every connection (redirects and
// retries included). Loopback, private (RFC 1918, fc00::/7), link-local
// (including the 169.254.169.254 cloud metadata service), CGNAT
// (100.64.0.0/10), unspecified, multicast, broadcast and reserved addresses
// are refused unless the configuration explicitly allows private targets.
//
// URL hosts are also checked before any request: spellings of IPv4
// addresses that only some resolvers understand (2130706433, 0177.0.0.1,
// 0x7f.1) are refused outright, whatever the opt-in, because they exist to
// slip past checks like this one.
package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every refusal, so callers can tell a blocked
// destination (permanent) from a network failure (retryable).
var ErrRefused = errors.New("destination refused by outbound safety")

// Guard decides which destinations may be dialled.
type Guard struct {
	// AllowPrivate permits loopback, private, link-local and CGNAT
	// destinations (alerts.allow_private_targets). Tests set it to reach
	// their servers on 127.0.0.1.
	AllowPrivate bool
	// Allow permits these networks only (alerts.allowed_targets): an
	// internal relay at 10.0.0.5 without opening every private address.
	Allow []netip.Prefix
}

// ParseAllow reads CIDRs and single addresses ("10.0.0.5",
// "10.1.0.0/16", "fd00::/64").
func ParseAllow(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %q is neither an address nor a CIDR", i, s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches the local host
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // CGNAT (RFC 6598); also Alibaba Cloud's metadata 100.100.100.200
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and 255.255.255.255
		"::/128",          // unspecified
		"::1/128",         // loopback
		"::ffff:0:0/96",   // IPv4-mapped (checked again after unmapping)
		"64:ff9b::/96",    // NAT64 (embedded IPv4 checked separately)
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4 (embedded IPv4 checked separately)
		"fc00::/7",        // unique local, incl. fd00:ec2::254 (AWS metadata)
		"fe80::/10",       // link-local
		"fec0::/10",       // deprecated site-local
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// CheckAddr refuses an address that is not a public unicast address,
// unless private targets are allowed.
func (g Guard) CheckAddr(ip netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrRefused)
	}
	ip = ip.WithZone("")
	for _, p := range g.Allow {
		if p.Contains(ip) || (ip.Is4In6() && p.Contains(ip.Unmap())) {
			return nil
		}
	}
	if reason := privateReason(ip); reason != "" {
		return fmt.Errorf("%w: %s is %s (set alerts.allow_private_targets to reach it)", ErrRefused, ip, reason)
	}
	return nil
}

func privateReason(ip netip.Addr) string {
	if ip.Is4In6() {
		if r := privateReason(ip.Unmap()); r != "" {
			return "an IPv4-mapped " + r
		}
		return "an IPv4-mapped IPv6 address"
	}
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata lives here)"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsMulticast():
		return "a multicast address"
	}
	if ip.Is6() {
		b := ip.As16()
		// Addresses that embed an IPv4 address: judge the embedded one.
		if netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
			if r := privateReason(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); r != "" {
				return "a NAT64 address of " + r
			}
		}
		if netip.MustParsePrefix("2002::/16").Contains(ip) {
			if r := privateReason(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); r != "" {
				return "a 6to4 address of " + r
			}
			return ""
		}
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			if p == cgnat {
				return "a carrier-grade NAT address"
			}
			return "a reserved address (" + p.String() + ")"
		}
	}
	return ""
}

// control is net.Dialer.Control: it runs after name resolution, on the
// exact address about to be connected to.
func (g Guard) control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrRefused, host)
	}
	return g.CheckAddr(ip)
}

// Dialer returns a dialer that refuses forbidden destinations at connect
// time.
func (g Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.control}
}

// DialContext dials through the guarded dialer after checking the host's
// spelling.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if err := g.CheckHost(host); err != nil {
		return nil, err
	}
	return g.Dialer(30*time.Second).DialContext(ctx, network, address)
}

// CheckHost refuses ambiguous IPv4 spellings (decimal, octal, hex, fewer
// than four parts) always, and literal addresses that CheckAddr refuses.
// Names are checked when they are dialled.
func (g Guard) CheckHost(host string) error {
	h := strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if h == "" {
		return fmt.Errorf("%w: empty host", ErrRefused)
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return g.CheckAddr(ip)
	}
	if v4, ok := parseLooseIPv4(h); ok {
		return fmt.Errorf("%w: host %q is a non-canonical spelling of the IP address %s", ErrRefused, host, v4)
	}
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return g.CheckAddr(netip.MustParseAddr("127.0.0.1"))
	}
	return nil
}

// CheckURL checks a receiver URL's scheme and host.
func (g Guard) CheckURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q (only http and https)", ErrRefused, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL", ErrRefused)
	}
	return g.CheckHost(u.Hostname())
}

// parseLooseIPv4 reads the forms inet_aton accepts besides dotted decimal:
// 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
func parseLooseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		digits := p
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	switch len(vals) {
	case 1:
		n = vals[0]
	case 2:
		if vals[0] > 255 || vals[1] > 0xffffff {
			return netip.Addr{}, false
		}
		n = vals[0]<<24 | vals[1]
	case 3:
		if vals[0] > 255 || vals[1] > 255 || vals[2] > 0xffff {
			return netip.Addr{}, false
		}
		n = vals[0]<<24 | vals[1]<<16 | vals[2]
	case 4:
		for _, v := range vals {
			if v > 255 {
				return netip.Addr{}, false
			}
		}
		n = vals[0]<<24 | vals[1]<<16 | vals[2]<<8 | vals[3]
	}
	if n > 0xffffffff {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// MaxRedirects bounds how many redirects a receiver request follows.
const MaxRedirects = 3

// Client returns an HTTP client whose every connection goes through the
// guard: no proxy (a proxy would dial on our behalf, unchecked), redirects
// limited and checked, TLS 1.2 at least.
func (g Guard) Client(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRefused, MaxRedirects)
			}
			return g.CheckURL(req.URL)
		},
	}
}
