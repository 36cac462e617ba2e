package onebot

import "strings"

// CQ codes are OneBot's string message format: plain text with embedded
// codes such as "[CQ:at,qq=123]" or "[CQ:image,file=a.png,url=https://...]".
// Text escapes & [ ] as &amp; &#91; &#93;; code parameters additionally
// escape the comma as &#44;. Implementations report in this format when
// configured with message_format "string" (and always in raw_message).

// cqParam is one key=value of a CQ code; order is kept so that a parsed
// string formats back the way it came.
type cqParam struct {
	Key, Value string
}

// cqSegment is a run of text (Type "text" with a single "text" parameter)
// or one CQ code.
type cqSegment struct {
	Type   string
	Params []cqParam
}

func (s cqSegment) isPlainText() bool {
	return s.Type == "text" && len(s.Params) == 1 && s.Params[0].Key == "text"
}

// parseCQ splits a CQ-code string into segments. It never fails: anything
// that is not a well-formed code ("[CQ:" without a closing "]", an empty
// type, a raw "[" inside a code) is kept as text, so no byte the sender
// wrote is dropped. Adjacent text is merged and "[CQ:text,text=...]" is
// read as text, which makes the result canonical: formatting it and
// parsing again yields the same segments.
func parseCQ(s string) []cqSegment {
	var out []cqSegment
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, cqSegment{Type: "text", Params: []cqParam{{Key: "text", Value: text.String()}}})
			text.Reset()
		}
	}
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "[CQ:")
		if j < 0 {
			text.WriteString(unescapeCQText(s[i:]))
			break
		}
		text.WriteString(unescapeCQText(s[i : i+j]))
		start := i + j
		end := strings.IndexByte(s[start:], ']')
		if end < 0 {
			text.WriteString(unescapeCQText(s[start:]))
			break
		}
		body := s[start+4 : start+end]
		parts := strings.Split(body, ",")
		typ := unescapeCQParam(parts[0])
		if typ == "" || strings.IndexByte(body, '[') >= 0 {
			// Not a code: keep the "[" as text and look for a code after it.
			text.WriteByte('[')
			i = start + 1
			continue
		}
		seg := cqSegment{Type: typ}
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			seg.Params = append(seg.Params, cqParam{Key: unescapeCQParam(k), Value: unescapeCQParam(v)})
		}
		if seg.isPlainText() {
			text.WriteString(seg.Params[0].Value)
		} else {
			flush()
			out = append(out, seg)
		}
		i = start + end + 1
	}
	flush()
	return out
}

// formatCQ is the inverse of parseCQ.
func formatCQ(segs []cqSegment) string {
	var b strings.Builder
	for _, s := range segs {
		if s.isPlainText() {
			b.WriteString(escapeCQText(s.Params[0].Value))
			continue
		}
		b.WriteString("[CQ:")
		b.WriteString(escapeCQParam(s.Type))
		for _, p := range s.Params {
			b.WriteByte(',')
			b.WriteString(escapeCQParam(p.Key))
			b.WriteByte('=')
			b.WriteString(escapeCQParam(p.Value))
		}
		b.WriteByte(']')
	}
	return b.String()
}

func unescapeCQText(s string) string { return unescapeCQ(s, false) }

func unescapeCQParam(s string) string { return unescapeCQ(s, true) }

// unescapeCQ replaces &amp; &#91; &#93; (and in parameters &#44;) in one
// left-to-right pass, so "&amp;#91;" stays "&#91;".
func unescapeCQ(s string, param bool) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == '&' {
			rest := s[i:]
			switch {
			case strings.HasPrefix(rest, "&amp;"):
				b.WriteByte('&')
				i += 5
				continue
			case strings.HasPrefix(rest, "&#91;"):
				b.WriteByte('[')
				i += 5
				continue
			case strings.HasPrefix(rest, "&#93;"):
				b.WriteByte(']')
				i += 5
				continue
			case param && strings.HasPrefix(rest, "&#44;"):
				b.WriteByte(',')
				i += 5
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func escapeCQText(s string) string { return escapeCQ(s, false) }

func escapeCQParam(s string) string { return escapeCQ(s, true) }

func escapeCQ(s string, param bool) string {
	if !strings.ContainsAny(s, "&[],") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			b.WriteString("&amp;")
		case c == '[':
			b.WriteString("&#91;")
		case c == ']':
			b.WriteString("&#93;")
		case c == ',' && param:
			b.WriteString("&#44;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
