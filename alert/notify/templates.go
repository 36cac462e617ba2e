package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"
)

//go:embed templates
var defaults embed.FS

// Template file names. An operator overrides one by putting a file with
// the same name in alerts.templates_dir.
const (
	TitleTemplate    = "title.tmpl"    // one line: subject, title, fallback text
	TextTemplate     = "text.tmpl"     // plain text
	MarkdownTemplate = "markdown.tmpl" // DingTalk, WeCom, Feishu
	SlackTemplate    = "slack.tmpl"    // Slack mrkdwn
	HTMLTemplate     = "email.html"    // the HTML part of mail (html/template)
)

var textNames = []string{TitleTemplate, TextTemplate, MarkdownTemplate, SlackTemplate}

// China Standard Time, without depending on a zone database in the
// container image.
var cst = time.FixedZone("CST", 8*3600)

// Templates renders notifications. Safe for concurrent use.
type Templates struct {
	text *template.Template
	html *htmltemplate.Template
}

// DefaultTemplates returns the embedded Simplified Chinese templates.
func DefaultTemplates() *Templates {
	t, err := LoadTemplates("")
	if err != nil {
		panic("embedded alert templates: " + err.Error())
	}
	return t
}

// LoadTemplates reads the embedded templates and replaces each with the
// file of the same name in dir, if dir is set. A file in dir with any
// other name is an error (a typo would otherwise be silently ignored).
func LoadTemplates(dir string) (*Templates, error) {
	src := map[string]string{}
	for _, n := range append(textNames, HTMLTemplate) {
		b, err := defaults.ReadFile("templates/" + n)
		if err != nil {
			return nil, err
		}
		src[n] = string(b)
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("templates_dir: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if _, ok := src[e.Name()]; !ok {
				known := append(append([]string{}, textNames...), HTMLTemplate)
				sort.Strings(known)
				return nil, fmt.Errorf("templates_dir: unknown template %s (known: %s)", filepath.Join(dir, e.Name()), strings.Join(known, ", "))
			}
			b, err := fs.ReadFile(os.DirFS(dir), e.Name())
			if err != nil {
				return nil, fmt.Errorf("templates_dir: %w", err)
			}
			src[e.Name()] = string(b)
		}
	}
	t := &Templates{}
	funcs := template.FuncMap{
		"fmtTime": fmtTime,
		"join":    strings.Join,
		"upper":   strings.ToUpper,
	}
	t.text = template.New("qunshao").Funcs(funcs).Option("missingkey=zero")
	for _, n := range textNames {
		if _, err := t.text.New(n).Parse(src[n]); err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
	}
	hfuncs := htmltemplate.FuncMap{
		"fmtTime": fmtTime,
		"join":    strings.Join,
		"title":   func(n *Notification) string { return t.Title(n) },
	}
	h, err := htmltemplate.New(HTMLTemplate).Funcs(hfuncs).Parse(src[HTMLTemplate])
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", HTMLTemplate, err)
	}
	t.html = h
	// Render a sample once, so an override that fails at execution time
	// (a misspelt field) is reported at start, not when an alert fires.
	sample := Sample("templates", "", time.Now())
	for _, n := range textNames {
		if _, err := t.render(n, sample, Text); err != nil {
			return nil, err
		}
	}
	if _, err := t.HTML(sample); err != nil {
		return nil, err
	}
	return t, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(cst).Format("01-02 15:04:05")
}

func (t *Templates) render(name string, n *Notification, f Flavour) (string, error) {
	return t.exec(name, Escaped(n, f))
}

// exec runs a text template on an already escaped notification.
func (t *Templates) exec(name string, escaped *Notification) (string, error) {
	var b bytes.Buffer
	if err := t.text.ExecuteTemplate(&b, name, escaped); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

// TitleText renders the plain-text title and body, escaping once.
func (t *Templates) TitleText(n *Notification) (title, text string, err error) {
	e := Escaped(n, Text)
	title, err = t.exec(TitleTemplate, e)
	if err != nil {
		title = "【群哨告警】（标题模板出错）"
	}
	title = strings.TrimSpace(strings.ReplaceAll(title, "\n", " "))
	text, err = t.exec(TextTemplate, e)
	return title, text, err
}

// Title renders the one-line title as plain text.
func (t *Templates) Title(n *Notification) string {
	s, err := t.render(TitleTemplate, n, Text)
	if err != nil {
		return "【群哨告警】（标题模板出错）"
	}
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", " "))
}

// TitleMarkdown renders the title with chat text escaped for markdown
// (Slack's fallback text, where <!channel> would otherwise mention).
func (t *Templates) TitleMarkdown(n *Notification) string {
	s, err := t.render(TitleTemplate, n, Markdown)
	if err != nil {
		return "【群哨告警】（标题模板出错）"
	}
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", " "))
}

// Text renders the plain-text body.
func (t *Templates) Text(n *Notification) (string, error) { return t.render(TextTemplate, n, Text) }

// Markdown renders the markdown body (DingTalk, WeCom, Feishu).
func (t *Templates) Markdown(n *Notification) (string, error) {
	return t.render(MarkdownTemplate, n, Markdown)
}

// Slack renders the Slack mrkdwn body.
func (t *Templates) Slack(n *Notification) (string, error) {
	return t.render(SlackTemplate, n, Markdown)
}

// HTML renders the HTML mail part.
func (t *Templates) HTML(n *Notification) (string, error) {
	var b bytes.Buffer
	if err := t.html.Execute(&b, Escaped(n, HTML)); err != nil {
		return "", fmt.Errorf("template %s: %w", HTMLTemplate, err)
	}
	return b.String(), nil
}

// Sample is the notification `qunshao alerts test` sends: one made-up
// alert that exercises every field of the templates.
func Sample(receiver, consoleURL string, now time.Time) *Notification {
	now = now.UTC().Truncate(time.Second)
	url := ""
	if consoleURL != "" {
		url = strings.TrimRight(consoleURL, "/") + "/alerts/0"
	}
	a := Alert{
		ID: 0, Fingerprint: "test", Status: Firing, Category: "attack_task", Severity: "high", Platform: "qq",
		GroupKey: "qq:10000", GroupID: "10000", GroupName: "测试群（非真实数据）", Shop: "示例旗舰店",
		Labels:   map[string]string{"category": "attack_task", "severity": "high", "platform": "qq", "group": "qq:10000"},
		StartsAt: now.Add(-3 * time.Minute), LastSeen: now, Count: 3, Risk: 0.9,
		Organizers: []Person{{ID: "20001", Nick: "示例群主", Role: "owner", Messages: 2}},
		Staff:      []Person{{ID: "20001", Nick: "示例群主", Role: "owner"}, {ID: "20002", Nick: "示例管理员", Role: "admin"}},
		Shops:      []string{"示例旗舰店"},
		Links:      []string{"https://example.com/item?id=1"},
		Excerpts: []Excerpt{{
			MsgID: "1", Seq: 1, Time: now.Add(-3 * time.Minute), SenderID: "20001", SenderNick: "示例群主", SenderRole: "owner",
			Label: "attack_task", Rules: []string{"task.mass_order_refund"},
			Parts: []Part{{Text: "（测试）每人拍5件，收到就"}, {Text: "退款", Marked: true}, {Text: "，"}, {Text: "锁库存", Marked: true}},
		}},
		URL: url,
	}
	return &Notification{
		ID: "test-" + now.Format("20060102T150405Z"), Receiver: receiver, GroupKey: "{}:{test}",
		GroupLabels: map[string]string{"test": "true"}, Status: Firing, Alerts: []Alert{a}, Test: true,
		ConsoleURL: consoleURL, CreatedAt: now,
	}
}
