package qq

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits for link extraction. The whole card stays in the event's raw
// payload; these bound only what is copied into the link segment, and the
// work spent on content an attacker wrote.
const (
	maxLinkField = 4 << 10 // bytes kept of a title, URL or summary
	maxLinkNodes = 20000   // JSON values or XML tokens visited
	maxLinkDepth = 32      // JSON nesting followed
)

// cardLink is what a link segment shows of a rich card.
type cardLink struct {
	Title, URL, Summary string
}

// extractLink reads the title, target URL and summary of a QQ rich card:
// a LightApp (JSON "ark" message: mini programs, news shares) or a
// structured XML message (serviceID cards). It never fails: what it cannot
// read it leaves empty.
func extractLink(content string) cardLink {
	s := strings.TrimLeft(content, " \t\r\n\ufeff")
	if strings.HasPrefix(s, "<") {
		return extractXMLLink(s)
	}
	return extractJSONLink(s)
}

// extractJSONLink reads a LightApp card such as
//
//	{"app":"com.tencent.structmsg","prompt":"[分享]标题",
//	 "meta":{"news":{"title":"标题","desc":"摘要","jumpUrl":"https://..."}}}
//
// or a mini program's {"meta":{"detail_1":{"title":..,"desc":..,"qqdocurl":..}}}.
// Keys are matched case-insensitively and visited in sorted order, so the
// result does not depend on Go's map order; the first value found for a
// key wins, looking in "meta" first.
func extractJSONLink(content string) cardLink {
	var root any
	if err := json.Unmarshal([]byte(content), &root); err != nil {
		return cardLink{}
	}
	found := map[string]string{}
	nodes := 0
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		nodes++
		if nodes > maxLinkNodes || depth > maxLinkDepth {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			// Strings at this level first, so a card's own title wins
			// over one nested deeper (a preview's, an icon's).
			for _, k := range keys {
				s, ok := x[k].(string)
				if !ok || s == "" {
					continue
				}
				lk := strings.ToLower(k)
				if _, have := found[lk]; have {
					continue
				}
				switch lk {
				case "title", "desc", "summary", "prompt":
					found[lk] = s
				case "jumpurl", "qqdocurl", "url":
					if isWebURL(s) {
						found[lk] = s
					}
				}
			}
			for _, k := range keys {
				switch x[k].(type) {
				case map[string]any, []any:
					walk(x[k], depth+1)
				}
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	// The card itself is under "meta"; top-level strings describe the app
	// ("desc":"新闻"), so they only fill what meta lacks.
	if obj, ok := root.(map[string]any); ok {
		if meta, ok := obj["meta"].(map[string]any); ok {
			walk(meta, 1)
		}
	}
	walk(root, 0)
	l := cardLink{Title: found["title"], Summary: found["desc"]}
	if l.Summary == "" {
		l.Summary = found["summary"]
	}
	if l.Title == "" {
		l.Title = found["prompt"]
	}
	// The keys that hold a card's target, best first: news cards use
	// jumpUrl, mini programs qqdocurl, others url.
	for _, k := range [...]string{"jumpurl", "qqdocurl", "url"} {
		if u := found[k]; u != "" {
			l.URL = u
			break
		}
	}
	return l.bounded()
}

// extractXMLLink reads a structured message such as
//
//	<msg serviceID="1" brief="[分享]标题" url="https://..."><item><title>标题</title><summary>摘要</summary></item></msg>
//
// It is lenient (QQ's XML is often not well-formed and declares charsets
// that are really UTF-8) and stops at the first error, keeping what it
// read so far.
func extractXMLLink(content string) cardLink {
	d := xml.NewDecoder(strings.NewReader(content))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var l cardLink
	var brief, anyURL string
	capture := "" // element whose text is being read: "title" or "summary"
	var text strings.Builder
	for range maxLinkNodes {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			for _, a := range t.Attr {
				switch strings.ToLower(a.Name.Local) {
				case "url":
					if isWebURL(a.Value) {
						if name == "msg" && l.URL == "" {
							l.URL = a.Value
						} else if anyURL == "" {
							anyURL = a.Value
						}
					}
				case "brief":
					if name == "msg" && brief == "" {
						brief = a.Value
					}
				}
			}
			if (name == "title" && l.Title == "") || (name == "summary" && l.Summary == "") {
				capture = name
				text.Reset()
			}
		case xml.CharData:
			if capture != "" && text.Len() < maxLinkField {
				text.Write(t)
			}
		case xml.EndElement:
			if name := strings.ToLower(t.Name.Local); name == capture {
				s := strings.TrimSpace(text.String())
				if capture == "title" {
					l.Title = s
				} else {
					l.Summary = s
				}
				capture = ""
			}
		}
	}
	if l.Title == "" {
		l.Title = brief
	}
	if l.URL == "" {
		l.URL = anyURL
	}
	return l.bounded()
}

func isWebURL(s string) bool {
	p := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

func (l cardLink) bounded() cardLink {
	return cardLink{Title: truncate(l.Title, maxLinkField), URL: truncate(l.URL, maxLinkField), Summary: truncate(l.Summary, maxLinkField)}
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence
// (invalid bytes are cut like any other).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
