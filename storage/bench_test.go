package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

// benchTexts are realistic group messages of typical lengths.
var benchTexts = []string{
	"收到",
	"今晚有新任务，8点半发，有号的都在线",
	"【任务】目标：悦宠家居旗舰店 https://item.taobao.com/item.htm?id=683920415527 猫爬架\n每人拍5件，不要付款，锁他kc\n拍完截图发小七，一单8块\n截止今晚12点",
	"已拍5单，库存显示还剩12",
	"618大促 满300减50 领券链接 ￥AbCd1234￥ 复制打开淘宝",
	"请问这个快递一般几天到啊",
}

// BenchmarkIngest measures messages/s through the batched writer into each
// database, 20 groups, acknowledged commits. Reported as msgs/s.
func BenchmarkIngest(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := storagetest.Open(b, be.Config(b))
			w, err := s.NewWriter(storage.WriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			base := time.Date(2024, 6, 10, 20, 0, 0, 0, cst)
			events := make([]*bot.Event, b.N)
			for i := range events {
				ev := msg(fmt.Sprint(i), fmt.Sprint(1000+i%50), benchTexts[i%len(benchTexts)], base.Add(time.Duration(i)*time.Millisecond))
				ev.GroupID = fmt.Sprint(800000 + i%20)
				events[i] = ev
			}
			b.ResetTimer()
			start := time.Now()
			tickets := make([]*storage.Ticket, 0, b.N)
			for _, ev := range events {
				t, err := w.Submit(ctx, ev)
				if err != nil {
					b.Fatal(err)
				}
				tickets = append(tickets, t)
			}
			for _, t := range tickets {
				if _, err := t.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			w.Close(ctx)
			st := w.Stats()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(st.Stored)/float64(max(st.Batches, 1)), "events/batch")
		})
	}
}

// BenchmarkVerify measures chain verification speed (records/s).
func BenchmarkVerify(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := storagetest.Open(b, be.Config(b))
			w, err := s.NewWriter(storage.WriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			const n = 20000
			base := time.Date(2024, 6, 10, 20, 0, 0, 0, cst)
			var last *storage.Ticket
			for i := 0; i < n; i++ {
				ev := msg(fmt.Sprint(i), "1", benchTexts[i%len(benchTexts)], base.Add(time.Duration(i)*time.Millisecond))
				ev.GroupID = fmt.Sprint(800000 + i%20)
				if last, err = w.Submit(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			last.Wait(ctx)
			w.Close(ctx)
			b.ResetTimer()
			var records int64
			start := time.Now()
			for i := 0; i < b.N; i++ {
				rep, err := s.Verify(ctx, nil)
				if err != nil || !rep.OK() {
					b.Fatal(err, rep.Breaks)
				}
				records += rep.Records
			}
			b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
		})
	}
}
