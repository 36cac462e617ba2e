// Package importer reads the chat exports investigators are handed — QQ's
// message-manager TXT, the QQ NT exporter's JSON and TXT, WeChat exports
// from 留痕 (WeChatMsg), PyWxDump and chatlog — and turns every record into
// the same bot.Event a bot in the group would have delivered, carrying the
// original record's bytes (Raw) and its provenance: the source file's
// SHA-256, the record's line or byte offset, the format and the importer
// version.
//
// Every format is parsed as a stream: memory does not grow with the file,
// a record is at most Input.MaxRecord bytes (longer ones are reported and
// skipped, never buffered), and a malformed record is reported as
// "file:line: reason" without stopping the rest. The driver (Importer)
// hashes a file, detects its format and encoding, parses it and submits
// the events to the evidence pipeline, keeping a resume position in the
// store so that an interrupted import can be run again and finishes
// without duplicates.
package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qunshao/qunshao/bot"
)

// Version is the importer's version, part of every record's provenance. A
// change to how any format is read that changes the events it produces
// must bump it (or the format's own version).
const Version = "1"

// DefaultMaxRecord bounds one record (a message with all its lines, a CSV
// row, a JSON object). It is half the store's default
// storage.writer.max_event_bytes, since both the raw record and its text
// are stored.
const DefaultMaxRecord = 4 << 20

// Units of a record's position.
const (
	UnitLine = "line"
	UnitByte = "byte"
)

// Format reads one kind of export.
type Format interface {
	// Name is the short name used by --format and recorded as provenance.
	Name() string
	// Description says what produces the format.
	Description() string
	Platform() bot.Platform
	// Unit is how records are located: UnitLine or UnitByte.
	Unit() string
	// Version changes when the events the format produces change.
	Version() string
	// Sniff says how sure the format is that a file starting with head
	// (decoded to UTF-8, possibly cut mid-line) is one of its own: 0 (not
	// at all) to 100 (certain).
	Sniff(head []byte) int
	// Parse reads the whole input, handing each record's events and each
	// malformed record to out. It stops at the first error out returns
	// and returns it; other errors are reasons the rest of the file
	// cannot be read.
	Parse(ctx context.Context, in *Input, out Output) error
}

// Input is a file to parse.
type Input struct {
	// R yields the file's bytes from the start, undecoded.
	R        io.Reader
	Encoding Encoding
	// Name is the file's base name; formats that do not name their group
	// derive its name from it.
	Name string
	// MaxRecord bounds a record's size in bytes; DefaultMaxRecord if 0.
	MaxRecord int
	// GroupID, if set, is the group every record belongs to (--group),
	// for exports that do not carry the group's number or id.
	GroupID string
}

func (in *Input) maxRecord() int {
	if in.MaxRecord <= 0 {
		return DefaultMaxRecord
	}
	return in.MaxRecord
}

// Pos locates a record in its file. Line is always set (1-based); Offset is
// the byte offset of the record's first byte.
type Pos struct {
	Line   int64
	Offset int64
}

// Output receives what a parser finds. An error from either method stops
// the parse (the import was cancelled, --strict, the store failed).
type Output interface {
	// Event hands over one event of a record, with Raw set to the
	// record's bytes. A record may yield more than one event (a recalled
	// message yields the message and its recall).
	Event(ev *bot.Event, pos Pos) error
	// Malformed reports a record that cannot be read. reason is a short,
	// fixed phrase (errors are counted by it); detail may quote the input.
	Malformed(pos Pos, reason, detail string) error
}

// Formats lists every format in detection order.
func Formats() []Format {
	return []Format{qqTXT{}, qqntJSON{}, qqntTXT{}, liuhenCSV{}, liuhenTXT{}, pywxdumpCSV{}, chatlogJSON{}}
}

// FormatByName returns the format with that name.
func FormatByName(name string) (Format, error) {
	var names []string
	for _, f := range Formats() {
		if f.Name() == name {
			return f, nil
		}
		names = append(names, f.Name())
	}
	return nil, fmt.Errorf("unknown format %q (known: %s)", name, strings.Join(names, ", "))
}

// Detect picks the format of a file from its first bytes, already decoded
// to UTF-8. It refuses to guess between formats that are equally sure, or
// when none is sure enough.
func Detect(head []byte) (Format, error) {
	type cand struct {
		f     Format
		score int
	}
	var cs []cand
	for _, f := range Formats() {
		if s := f.Sniff(head); s > 0 {
			cs = append(cs, cand{f, s})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].score > cs[j].score })
	switch {
	case len(cs) == 0 || cs[0].score < 30:
		return nil, fmt.Errorf("%w: not a chat export this version knows; name one with --format", ErrUnknownFormat)
	case len(cs) > 1 && cs[1].score == cs[0].score:
		return nil, fmt.Errorf("%w: could be %s or %s; choose with --format", ErrUnknownFormat, cs[0].f.Name(), cs[1].f.Name())
	}
	return cs[0].f, nil
}

// China Standard Time: exports without an explicit zone or epoch are in it.
var cst = time.FixedZone("CST", 8*3600)

// System members: notices are attributed to them, never to a person.
const (
	qqSystemID     = "10000"
	wechatSystemID = "wechat_system" // as the live WeChat adapter records it
)

func qqSystem(id string) bot.Member {
	if id == "" {
		id = qqSystemID
	}
	return bot.Member{ID: id, Nick: "系统消息", Role: bot.RoleUnknown}
}

func wechatSystem() bot.Member {
	return bot.Member{ID: wechatSystemID, Nick: "系统消息", Role: bot.RoleUnknown}
}

// newMessageEvent allocates a message event and its message together.
func newMessageEvent() (*bot.Event, *bot.Message) {
	me := &struct {
		ev  bot.Event
		msg bot.Message
	}{}
	me.ev.Message = &me.msg
	return &me.ev, &me.msg
}

// nameID derives an identifier from a display name for sources that give
// no account or group number: "name:" and the name, cut (with a hash of
// the whole) to fit bot.MaxIDLen. Such ids are marked bot.IDDerived where
// the model allows; group ids of this form never match a monitored group.
func nameID(name string) string {
	name = strings.ToValidUTF8(strings.TrimSpace(name), "\uFFFD")
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, name)
	id := "name:" + name
	if len(id) <= bot.MaxIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "~" + hex.EncodeToString(sum[:8])
	cut := bot.MaxIDLen - len(suffix)
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return id[:cut] + suffix
}

// stem is a file name without directory and extension (and without the
// "_utf8" 留痕 appends).
func stem(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	return strings.TrimSuffix(name, "_utf8")
}

// quote shows untrusted input in an error message: cut, with control and
// format characters (escape sequences, bidi overrides) escaped.
func quote(b []byte) string {
	const max = 80
	s := string(b)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.QuoteToGraphic(s[:cut]) + "…"
	}
	return strconv.QuoteToGraphic(s)
}

// validID reports whether s can be a bot id (see bot.MaxIDLen).
func validID(s string) bool {
	if s == "" || len(s) > bot.MaxIDLen || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// isBlank reports whether b is empty or white space only (including the
// ideographic space U+3000).
func isBlank(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch c {
			case ' ', '\t', '\r', '\n', '\v', '\f':
				i++
				continue
			}
			return false
		}
		r, n := utf8.DecodeRune(b[i:])
		if !unicode.IsSpace(r) {
			return false
		}
		i += n
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
