package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/qunshao/qunshao/bot/scenario"
	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/rules"
	"github.com/spf13/cobra"
)

func (a *app) detector() (*detect.Detector, error) {
	return detect.Build(a.cfg.Detect, configs.Files)
}

// scanIn is one input line of `qunshao scan`.
type scanIn struct {
	ID   json.RawMessage `json:"id"`
	Text *string         `json:"text"`
	Role string          `json:"role"`
}

// scanOut is one output line; the shape is a contract scripts rely on.
type scanOut struct {
	ID       json.RawMessage `json:"id"`
	Label    string          `json:"label"`
	Score    float64         `json:"score"`
	Severity string          `json:"severity"`
	Rules    []scanRule      `json:"rules"`
	Entities []scanEntity    `json:"entities"`
}

type scanRule struct {
	ID       string   `json:"id"`
	Category string   `json:"category"`
	Spans    [][2]int `json:"spans"`
}

type scanEntity struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Span  [2]int `json:"span"`
}

type scanErr struct {
	Line  int             `json:"line"`
	ID    json.RawMessage `json:"id,omitempty"`
	Error string          `json:"error"`
}

func toScanOut(id json.RawMessage, v *detect.Verdict) scanOut {
	o := scanOut{ID: id, Label: v.Label, Score: round3(v.Score), Severity: v.Severity, Rules: []scanRule{}, Entities: []scanEntity{}}
	for _, r := range v.Rules {
		sr := scanRule{ID: r.ID, Category: r.Category, Spans: [][2]int{}}
		for _, s := range r.Spans {
			sr.Spans = append(sr.Spans, [2]int{s.Start, s.End})
		}
		o.Rules = append(o.Rules, sr)
	}
	for _, e := range v.Entities {
		o.Entities = append(o.Entities, scanEntity{Type: string(e.Type), Value: e.Value, Span: [2]int{e.Span.Start, e.Span.End}})
	}
	return o
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// maxScanLine bounds one input line (a 1 MB message, JSON-escaped).
const maxScanLine = 16 << 20

func (a *app) scanCommand() *cobra.Command {
	var roleDefault string
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Judge messages: JSON lines {id, text, role} on stdin, one verdict per line on stdout",
		Long: `Read JSON lines {"id": ..., "text": "...", "role": "owner|admin|member"} on
standard input and write one JSON line per input line:

  {"id", "label", "score", "severity",
   "rules": [{"id", "category", "spans": [[start, end], ...]}],
   "entities": [{"type", "value", "span": [start, end]}]}

label is attack_task, extortion, attack_coordination or benign; score is the
probability that the message is malicious; spans are rune offsets into the
original text. A line that cannot be read gets {"line": N, "error": "..."}
and the rest go on. Output order is input order.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.detector()
			if err != nil {
				return err
			}
			return scan(d, cmd.InOrStdin(), a.stdout, roleDefault)
		},
	}
	cmd.Flags().StringVar(&roleDefault, "role", "", "role to assume when a line has none")
	return cmd
}

// scan judges lines on every core and writes results in input order.
func scan(d *detect.Detector, in io.Reader, out io.Writer, roleDefault string) error {
	type job struct {
		line int
		raw  []byte
		res  chan []byte
	}
	jobs := make(chan *job, 256)
	order := make(chan *job, 256)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.res <- scanLine(d, j.line, j.raw, roleDefault)
			}
		}()
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	done := make(chan error, 1)
	go func() {
		var err error
		for j := range order {
			b := <-j.res
			if err == nil {
				if _, err = bw.Write(b); err == nil {
					err = bw.WriteByte('\n')
				}
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		done <- err
	}()
	r := bufio.NewReaderSize(in, 64<<10)
	line := 0
	var readErr error
	for {
		b, err := readLine(r, maxScanLine)
		if len(b) > 0 || err == nil || err == errLineTooLong {
			line++
			j := &job{line: line, res: make(chan []byte, 1)}
			if err == errLineTooLong {
				e, _ := json.Marshal(scanErr{Line: line, Error: fmt.Sprintf("line longer than %d bytes", maxScanLine)})
				j.res <- e
				order <- j
				continue
			}
			j.raw = b
			order <- j
			jobs <- j
		}
		if err != nil && err != errLineTooLong {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	close(jobs)
	close(order)
	wg.Wait()
	if err := <-done; err != nil {
		return err
	}
	return readErr
}

var errLineTooLong = fmt.Errorf("line too long")

// readLine reads one line (without the newline), refusing lines over max
// bytes without holding them in memory.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			if err == io.EOF || err == nil {
				return nil, errLineTooLong
			}
			return nil, err
		}
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		buf = bytes.TrimRight(buf, "\r\n")
		return buf, err
	}
}

func scanLine(d *detect.Detector, line int, raw []byte, roleDefault string) []byte {
	fail := func(id json.RawMessage, msg string) []byte {
		b, _ := json.Marshal(scanErr{Line: line, ID: id, Error: msg})
		return b
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return fail(nil, "empty line")
	}
	var in scanIn
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return fail(nil, "not a JSON object: "+err.Error())
	}
	if in.Text == nil {
		return fail(in.ID, `missing "text"`)
	}
	if len(in.ID) == 0 {
		in.ID = json.RawMessage("null")
	}
	role := in.Role
	if role == "" {
		role = roleDefault
	}
	switch role {
	case "", "owner", "admin", "member", "unknown":
	default:
		return fail(in.ID, fmt.Sprintf("role %q, want owner, admin, member or unknown", role))
	}
	b, err := json.Marshal(toScanOut(in.ID, d.Detect(*in.Text, role)))
	if err != nil {
		return fail(in.ID, err.Error())
	}
	return b
}

func (a *app) replayCommand() *cobra.Command {
	var details bool
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Judge whole group logs: one line per group with risk, organisers and target shops",
		Long: `Read group logs (JSON lines in the format of dev_scenarios.jsonl: id,
platform, group, roster, messages with t/from/text) and write one JSON line
per group:

  {"id", "malicious": bool, "risk": number, "organizers": [ids], "target_shops": [names]}

Every message is judged with its sender's role from the roster; messages are
then correlated over time into campaigns (a task followed by progress
reports, extortion after a campaign). Organisers are the people who post
tasks, demand or negotiate money or direct and pay the attackers, whatever
their role; members who only report progress are not. --details adds the
campaigns, each organiser's evidence, the risk over time and links between
groups (a shop or an organiser seen in several groups).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			ss, err := scenario.Read(f, args[0])
			if err != nil {
				return err
			}
			d, err := a.detector()
			if err != nil {
				return err
			}
			reports := make([]*detect.GroupReport, len(ss))
			for i, s := range ss {
				reports[i] = d.Correlate(detect.ScenarioMessages(s))
				reports[i].ID = s.ID
			}
			links := detect.LinkGroups(reports)
			enc := json.NewEncoder(a.stdout)
			enc.SetEscapeHTML(false)
			for _, r := range reports {
				var err error
				if details {
					err = enc.Encode(struct {
						*detect.GroupReport
						Links []detect.Link `json:"links,omitempty"`
					}{r, links.For(r.ID)})
				} else {
					err = enc.Encode(r.Summary())
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&details, "details", false, "add campaigns, evidence, risk over time and cross-group links")
	return cmd
}

func (a *app) evalCommand() *cobra.Command {
	var asJSON, showErrors bool
	var cv int
	var train []string
	params := detect.DefaultTrainParams()
	cmd := &cobra.Command{
		Use:   "eval FILE",
		Short: "Measure quality on labelled messages: precision, recall, F1, false positives, evasion recall",
		Long: `Judge every line of a labelled corpus (JSON lines {"id","text","label",
"evasion","role"}, the format of dev_messages.jsonl) and print precision,
recall and F1 per label and for malicious-vs-benign, the confusion matrix,
the benign false-positive rate, recall per evasion type and label accuracy
on malicious lines.

With --cv K the model is retrained K times, each time without one fold of
FILE, and each fold is judged by the model that did not see it: figures that
say how the detector does on new lines rather than how well it remembers
these. --train adds labelled files to every fold's training set.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lines, err := readLabelled(args[0])
			if err != nil {
				return err
			}
			d, err := a.detector()
			if err != nil {
				return err
			}
			if a.threshold > 0 {
				d.Threshold = a.threshold
			}
			var rep *detect.Report
			if cv > 1 {
				var extra []detect.Labelled
				for _, p := range train {
					l, err := readLabelled(p)
					if err != nil {
						return err
					}
					extra = append(extra, l...)
				}
				rep, err = d.CrossValidate(lines, extra, cv, params)
			} else {
				rep, err = d.EvaluateLines(lines)
			}
			if err != nil {
				return err
			}
			if !showErrors {
				rep.Errors = nil
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(rep)
			}
			rep.WriteText(a.stdout)
			if showErrors {
				fmt.Fprintln(a.stdout, "\nmisjudged lines")
				for _, e := range rep.Errors {
					fmt.Fprintf(a.stdout, "  %-8s %-20s -> %-20s %.2f  %s\n", e.ID, e.Truth, e.Predicted, e.Score, safeLine(e.Text))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&showErrors, "errors", false, "list the misjudged lines")
	cmd.Flags().IntVar(&cv, "cv", 0, "cross-validate with this many folds (retrains the model per fold)")
	cmd.Flags().StringSliceVar(&train, "train", nil, "extra labelled files always in the training set (with --cv)")
	cmd.Flags().Float64Var(&params.L2, "l2", params.L2, "L2 regularisation for --cv training")
	cmd.Flags().IntVar(&params.Epochs, "epochs", params.Epochs, "training epochs for --cv")
	cmd.Flags().Float64Var(&params.RuleScale, "rule-scale", params.RuleScale, "value of rule and list features for --cv training")
	cmd.Flags().IntVar(&params.MinCount, "min-count", params.MinCount, "drop features seen in fewer training lines (--cv)")
	cmd.Flags().Float64Var(&a.threshold, "threshold", 0, "malicious threshold (default detect.threshold)")
	return cmd
}

func readLabelled(path string) ([]detect.Labelled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return detect.ReadLabelled(f, path)
}

func (a *app) rulesCommand() *cobra.Command {
	var dir string
	load := func() (*rules.Engine, error) {
		if dir != "" {
			return rules.LoadDir(dir)
		}
		if a.cfg.Detect.RulesDir != "" {
			return rules.LoadDir(a.cfg.Detect.RulesDir)
		}
		return rules.LoadFS(configs.Files, detect.RulesDir)
	}
	root := &cobra.Command{
		Use:   "rules",
		Short: "Check rule packs: lint, test their examples",
		Long: `Rule packs are YAML files of word lists, macros and rules (configs/rules in the
source; detect.rules_dir to use your own). A rule's condition is an expr
expression over the message:

  has("list")          a term of the list occurs in the normalised text
  hits("list")         how many distinct terms of the list occur
  word("list")         a word (segmented token) equals a term of the list
  near("a", "b", n)    terms of lists a and b at most n characters apart
  before("a", "b", n)  a term of a followed within n characters by a term of b
  entity("type")       an entity of the type is present; entities("type") counts
  evaded("kind")       normalisation undid a disguise of this kind ("any" for any)
  role, staff          sender's role (owner/admin/member/unknown); owner or admin
  money, text, length  largest amount in yuan; normalised text; its length

Macros are written $name. Every rule needs positive and negative examples.`,
	}
	root.PersistentFlags().StringVar(&dir, "dir", "", "rule pack directory (default: detect.rules_dir, or the embedded packs)")
	lint := &cobra.Command{
		Use:   "lint",
		Short: "Load the packs and report errors (file:line) and warnings",
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := load()
			if err != nil {
				fmt.Fprintln(a.stdout, err)
				return &exitError{code: 1, msg: "rule packs have errors"}
			}
			for _, p := range e.Lint() {
				fmt.Fprintln(a.stdout, p)
			}
			fmt.Fprintf(a.stdout, "%d packs, %d lists, %d rules: ok\n", len(e.Packs), len(e.ListNames()), len(e.Rules))
			return nil
		},
	}
	test := &cobra.Command{
		Use:   "test",
		Short: "Run every rule's positive and negative examples",
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := load()
			if err != nil {
				fmt.Fprintln(a.stdout, err)
				return &exitError{code: 1, msg: "rule packs have errors"}
			}
			d, err := a.detector()
			if err != nil {
				return err
			}
			fails := e.TestExamples(d.Analyzer().Analyze)
			n := 0
			for _, r := range e.Rules {
				n += len(r.Examples.Positive) + len(r.Examples.Negative)
			}
			for _, f := range fails {
				fmt.Fprintln(a.stdout, f)
			}
			fmt.Fprintf(a.stdout, "%d rules, %d examples, %d failed\n", len(e.Rules), n, len(fails))
			if len(fails) > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d rule examples failed", len(fails))}
			}
			return nil
		},
	}
	root.AddCommand(lint, test)
	return root
}

func (a *app) modelCommand() *cobra.Command {
	var data, feedback []string
	var out string
	var feedbackWeight float64
	root := &cobra.Command{Use: "model", Short: "Train the classifier from labelled messages and moderator feedback"}
	train := &cobra.Command{
		Use:   "train",
		Short: "Train a model and write it as JSON",
		Long: `Train the logistic-regression layer on labelled JSON-lines files (the format
of dev_messages.jsonl) and, with --feedback, on moderators' decisions
exported the same way (each weighted --feedback-weight). Training is
deterministic: the same data gives the same model, whose version is a hash
of the data and settings. Point detect.model at the output to use it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(data) == 0 {
				a.usageErr = true
				return fmt.Errorf("--data is required")
			}
			var lines, fb []detect.Labelled
			var sources []detect.Source
			for _, p := range data {
				l, err := readLabelled(p)
				if err != nil {
					return err
				}
				lines = append(lines, l...)
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				sources = append(sources, detect.Source{Name: filepath.Base(p), SHA256: hex.EncodeToString(sum[:]), Lines: len(l)})
			}
			for _, p := range feedback {
				l, err := readLabelled(p)
				if err != nil {
					return err
				}
				fb = append(fb, l...)
			}
			d, err := a.detector()
			if err != nil {
				return err
			}
			m, err := d.Train(lines, fb, detect.DefaultTrainParams(), feedbackWeight)
			if err != nil {
				return err
			}
			m.Sources = sources
			m.TrainedAt = time.Now().UTC().Truncate(time.Second)
			b, err := detect.MarshalModel(m)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "trained model %s on %d lines (%d feedback), %d features -> %s\n", m.Version, len(lines), len(fb), len(m.Features), out)
			return nil
		},
	}
	train.Flags().StringSliceVar(&data, "data", nil, "labelled JSON-lines files")
	train.Flags().StringSliceVar(&feedback, "feedback", nil, "moderator feedback in the same format")
	train.Flags().Float64Var(&feedbackWeight, "feedback-weight", 2, "weight of each feedback line")
	train.Flags().StringVar(&out, "out", "model.json", "where to write the model")
	root.AddCommand(train)
	return root
}

func safeLine(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if r == '\n' {
			b.WriteString(" ⏎ ")
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (a *app) benchCommand() *cobra.Command {
	var file string
	var dur time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure analysis speed per stage, load time and memory",
		Long: `Measure messages per second per core for each analysis stage (normalise,
segment, entities, rules, model) and for the whole analysis, the whole
analysis on every core, the speed of the whole analysis relative to gse
segmentation alone on the same messages, dictionary load time and memory.
Messages come from --messages (JSON lines with a "text" field) or, by
default, the labelled training lines embedded in the binary.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.detector()
			if err != nil {
				return err
			}
			var texts []string
			if file != "" {
				lines, err := readLabelledLoose(file)
				if err != nil {
					return err
				}
				texts = lines
			} else {
				b, err := fs.ReadFile(configs.Files, detect.TrainingFile)
				if err != nil {
					return fmt.Errorf("no embedded messages to bench with; pass --messages: %w", err)
				}
				lines, err := detect.ReadLabelled(bytes.NewReader(b), detect.TrainingFile)
				if err != nil {
					return err
				}
				for _, l := range lines {
					texts = append(texts, l.Text)
				}
			}
			if len(texts) == 0 {
				return fmt.Errorf("no messages to bench with")
			}
			rep := d.Bench(texts, dur)
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.WriteText(a.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "messages", "", "JSON lines with a \"text\" field (default: the embedded training lines)")
	cmd.Flags().DurationVar(&dur, "duration", 2*time.Second, "time spent on each stage")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// readLabelledLoose reads the "text" field of JSON lines, whatever else
// they carry.
func readLabelledLoose(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxScanLine)
	var out []string
	line := 0
	for sc.Scan() {
		line++
		var v struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil || v.Text == nil {
			return nil, fmt.Errorf("%s:%d: want a JSON object with a \"text\" field", path, line)
		}
		out = append(out, *v.Text)
	}
	return out, sc.Err()
}
