package onebot

import (
	"reflect"
	"testing"
)

func TestParseCQ(t *testing.T) {
	text := func(s string) cqSegment { return cqSegment{Type: "text", Params: []cqParam{{"text", s}}} }
	tests := []struct {
		in   string
		want []cqSegment
	}{
		{"", nil},
		{"plain 文本", []cqSegment{text("plain 文本")}},
		{"a&amp;b&#91;c&#93;d&#44;e", []cqSegment{text("a&b[c]d&#44;e")}}, // commas are escaped only inside codes
		{"&amp;#91;", []cqSegment{text("&#91;")}},                         // one pass: not a bracket
		{"[CQ:at,qq=123,name=小王]hi", []cqSegment{{"at", []cqParam{{"qq", "123"}, {"name", "小王"}}}, text("hi")}},
		{"[CQ:image,file=a.png,url=https://x/?a=1&#44;2&amp;b=&#91;3&#93;]", []cqSegment{{"image", []cqParam{{"file", "a.png"}, {"url", "https://x/?a=1,2&b=[3]"}}}}},
		{"[CQ:face,id=1", []cqSegment{text("[CQ:face,id=1")}},                                   // unterminated: text
		{"x[CQ:]y", []cqSegment{text("x[CQ:]y")}},                                               // no type: text
		{"[CQ:a [CQ:face,id=2]", []cqSegment{text("[CQ:a "), {"face", []cqParam{{"id", "2"}}}}}, // a raw [ ends the first
		{"a[CQ:text,text=b]c", []cqSegment{text("abc")}},                                        // text codes are text
		{"[CQ:shake]", []cqSegment{{"shake", nil}}},
		{"[CQ:json,data={\"a\":1&#44;\"b\":2}]", []cqSegment{{"json", []cqParam{{"data", `{"a":1,"b":2}`}}}}},
	}
	for _, tt := range tests {
		got := parseCQ(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCQ(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
		}
		if again := parseCQ(formatCQ(got)); !reflect.DeepEqual(again, got) {
			t.Errorf("%q does not round-trip: %q", tt.in, formatCQ(got))
		}
	}
}
