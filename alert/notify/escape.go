package notify

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Flavour is the kind of output a template renders to; chat-derived text
// is escaped for it before any template sees it.
type Flavour int

const (
	// Text is plain text (email text part, terminal, webhook "text").
	Text Flavour = iota
	// Markdown is DingTalk, WeCom and Feishu markdown, and Slack mrkdwn.
	Markdown
	// HTML is an HTML document (html/template escapes on top).
	HTML
)

// linkish finds things a client would turn into a link: URLs with or
// without a scheme, and bare domain names.
var linkish = regexp.MustCompile(`(?i)(?:[a-z][a-z0-9+.-]*://)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]+)(?::\d+)?(?:/[^\s]*)?`)

// Defang rewrites links so no client makes them clickable, while a reader
// can still tell exactly what was posted: https://m.tb.cn/x becomes
// hxxps://m[.]tb[.]cn/x.
func Defang(s string) string {
	if strings.IndexByte(s, '.') < 0 {
		return s // no domain without a dot
	}
	return linkish.ReplaceAllStringFunc(s, func(m string) string {
		scheme, rest, ok := strings.Cut(m, "://")
		if !ok {
			scheme, rest = "", m
		}
		host, path, _ := strings.Cut(rest, "/")
		host = strings.ReplaceAll(host, ".", "[.]")
		out := host
		if strings.Contains(rest, "/") {
			out += "/" + path
		}
		if scheme != "" {
			s := strings.ToLower(scheme)
			s = strings.Replace(s, "http", "hxxp", 1)
			s = strings.Replace(s, "ftp", "fxp", 1)
			out = s + "://" + out
		}
		return out
	})
}

// Sanitize makes a string safe to print on one line of a terminal, a log
// or a mail: control and format characters (escape sequences, bidi
// overrides, zero-width characters) become visible \u escapes, line breaks
// become ⏎, invalid UTF-8 becomes U+FFFD.
func Sanitize(s string) string {
	if plain(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(" ⏎ ")
		case r == '\r':
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plain reports whether s is valid UTF-8 without anything Sanitize changes.
func plain(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return false
			}
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029')) {
			return false
		}
	}
	return true
}

// mdFullWidth maps the ASCII characters that mean something in any of the
// markdown dialects (and in Slack's mrkdwn: <!channel>, <url|text>, &) to
// their full-width forms. Backslash escapes are not used because DingTalk
// and WeCom show the backslash; full-width forms read naturally in Chinese
// text and cannot format, link or mention.
var mdFullWidth = strings.NewReplacer(
	`\`, "＼", "`", "｀", "*", "＊", "_", "＿", "[", "［", "]", "］", "(", "（", ")", "）",
	"#", "＃", "!", "！", "|", "｜", "~", "～", "<", "＜", ">", "＞", "&", "＆", "$", "＄",
	"{", "｛", "}", "｝", "=", "＝", "^", "＾",
)

// Escape makes chat-derived text harmless for a flavour.
func Escape(s string, f Flavour) string {
	s = Defang(Sanitize(s))
	if f == Markdown {
		s = mdFullWidth.Replace(s)
	}
	return s
}

// EscapeTrusted escapes text that comes from configuration, not from a
// chat (rule ids): it is sanitised, and for markdown its special
// characters are replaced, but it is not defanged.
func EscapeTrusted(s string, f Flavour) string {
	s = Sanitize(s)
	if f == Markdown {
		s = mdFullWidth.Replace(s)
	}
	return s
}

// Escaped returns a deep copy of n in which every string that can come
// from a chat (group names, nicknames, ids, shop names, links, excerpts,
// label values) is escaped for the flavour. Templates render the copy, so
// an operator's template cannot forget to escape. Enumerations (status,
// category, severity, platform, role) are kept: they are validated values
// the templates look names up by. The console URL comes from
// configuration and is kept.
func Escaped(n *Notification, f Flavour) *Notification {
	e := func(s string) string { return Escape(s, f) }
	c := *n
	c.Receiver, c.GroupKey = e(n.Receiver), e(n.GroupKey)
	c.GroupLabels = escapeMap(n.GroupLabels, e)
	c.Alerts = make([]Alert, len(n.Alerts))
	for i, a := range n.Alerts {
		x := a
		x.GroupKey, x.GroupID, x.GroupName, x.Shop = e(a.GroupKey), e(a.GroupID), e(a.GroupName), e(a.Shop)
		x.ResolvedBy, x.AckedBy = e(a.ResolvedBy), e(a.AckedBy)
		x.Labels = escapeMap(a.Labels, e)
		x.Organizers = escapePeople(a.Organizers, e)
		x.Staff = escapePeople(a.Staff, e)
		x.Shops = escapeList(a.Shops, e)
		x.Links = escapeList(a.Links, e)
		x.Excerpts = make([]Excerpt, len(a.Excerpts))
		for j, ex := range a.Excerpts {
			y := ex
			y.MsgID, y.SenderID, y.SenderNick = e(ex.MsgID), e(ex.SenderID), e(ex.SenderNick)
			y.Rules = escapeList(ex.Rules, func(s string) string { return EscapeTrusted(s, f) })
			y.Parts = make([]Part, len(ex.Parts))
			for k, p := range ex.Parts {
				y.Parts[k] = Part{Text: e(p.Text), Marked: p.Marked}
			}
			x.Excerpts[j] = y
		}
		c.Alerts[i] = x
	}
	return &c
}

func escapeMap(m map[string]string, e func(string) string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[e(k)] = e(v)
	}
	return out
}

func escapeList(l []string, e func(string) string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = e(s)
	}
	return out
}

func escapePeople(ps []Person, e func(string) string) []Person {
	if ps == nil {
		return nil
	}
	out := make([]Person, len(ps))
	for i, p := range ps {
		out[i] = Person{ID: e(p.ID), Nick: e(p.Nick), Role: p.Role, Roles: p.Roles, Messages: p.Messages}
	}
	return out
}

// TruncateBytes cuts s to at most n bytes on a rune boundary, ending with
// suffix when it had to cut.
func TruncateBytes(s string, n int, suffix string) string {
	if len(s) <= n {
		return s
	}
	cut := max(0, n-len(suffix))
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}
