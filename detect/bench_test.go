package detect_test

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"testing"

	"github.com/qunshao/qunshao/configs"
	"github.com/qunshao/qunshao/detect"
)

var (
	detOnce sync.Once
	det     *detect.Detector
)

func detector(t testing.TB) *detect.Detector {
	t.Helper()
	detOnce.Do(func() {
		var err error
		det, err = detect.Build(detect.DefaultConfig(), configs.Files)
		if err != nil {
			panic(err)
		}
	})
	return det
}

// benchTexts are realistic messages: the development corpus when present,
// else the embedded training lines.
func benchTexts(t testing.TB) []string {
	var texts []string
	for _, p := range []string{"../../shared/corpus/dev_messages.jsonl", "../configs/model/extra.jsonl"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Text string }
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				texts = append(texts, l.Text)
			}
		}
		f.Close()
		if len(texts) > 0 {
			return texts
		}
	}
	for _, s := range []string{"收到", "今晚任务：每人去他家拍3件，拍下不要付款", "拍下确认收货后五星好评返现5元", "老板，停手费五千，今晚前到账"} {
		texts = append(texts, s)
	}
	return texts
}

func BenchmarkSegmentAlone(b *testing.B) {
	d, texts := detector(b), benchTexts(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Analyzer().Seg.Segment(texts[i%len(texts)])
	}
}

func BenchmarkAnalyse(b *testing.B) {
	d, texts := detector(b), benchTexts(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Detect(texts[i%len(texts)], "")
	}
}
