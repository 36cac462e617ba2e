package qq

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures in testdata/cards are shaped like the cards QQ clients send
// (news shares, mini programs, structured XML with odd encodings).
func TestExtractLinkFixtures(t *testing.T) {
	want := map[string]cardLink{
		"news.json":        {Title: "全店5折，拍下立返", URL: "https://m.tb.cn/h.5abc?tk=XYZ", Summary: "点击领取任务，完成后截图找群主"},
		"miniapp.json":     {Title: "拼多多", URL: "https://mobile.yangkeduo.com/goods.html?goods_id=1", Summary: "帮我砍一刀"},
		"prompt_only.json": {Title: "[QQ红包]恭喜发财"},
		"share.xml":        {Title: "退货教程", URL: "https://shop.example/refund?id=1&x=2", Summary: "七天无理由 & 运费险"},
		"gbk_decl.xml":     {Title: "任务单", URL: "https://t.cn/abc", Summary: "今晚八点"},
		"brief_only.xml":   {Title: "[链接]店铺差评模板", URL: "https://item.example/1"},
		"broken.xml":       {Title: "只有标题"},
	}
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join("testdata", "cards", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := extractLink(string(b)); got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
		}
	}
}

func TestExtractLinkRejectsAndBounds(t *testing.T) {
	for _, s := range []string{"", "{", "<", "null", `{"meta":{"a":{"url":"javascript:alert(1)"}}}`, `<msg url="javascript:x"/>`} {
		if l := extractLink(s); l.URL != "" {
			t.Errorf("%q gave URL %q", s, l.URL)
		}
	}
	long := `{"title":"` + strings.Repeat("长", 10000) + `"}`
	if l := extractLink(long); len(l.Title) > maxLinkField || !strings.HasPrefix(l.Title, "长长") {
		t.Fatalf("title %d bytes", len(l.Title))
	}
	deep := strings.Repeat(`{"a":`, 5000) + `{"title":"深"}` + strings.Repeat("}", 5000)
	if l := extractLink(deep); l.Title != "" {
		t.Fatalf("followed nesting beyond the limit: %+v", l)
	}
	if got := truncate("ab\xe4\xb8\xad", 4); got != "ab" {
		t.Fatalf("truncate split a rune: %q", got)
	}
}
