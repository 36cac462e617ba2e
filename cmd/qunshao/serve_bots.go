package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/onebot"
	"github.com/qunshao/qunshao/bot/qq"
	"github.com/qunshao/qunshao/bot/supervisor"
	"github.com/qunshao/qunshao/bot/wechat"
	"github.com/qunshao/qunshao/pipeline"
	"github.com/qunshao/qunshao/storage"
)

// botRunners builds a runner for every configured transport and account.
// QR codes to scan are printed on stderr (and shown by `qunshao bots`).
func (a *app) botRunners() ([]supervisor.Runner, error) {
	c := a.cfg.Bots
	var out []supervisor.Runner
	rs, err := onebot.NewRunners(c.OneBot, a.log.With("component", "onebot"))
	if err != nil {
		return nil, err
	}
	out = append(out, rs...)
	if len(c.QQ.Accounts) > 0 {
		// MiraiGo's sign hooks are process-wide: build these runners once.
		rs, err := qq.NewRunners(c.QQ, a.log.With("component", "qq"), a.stderr)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if len(c.WeChat.Accounts) > 0 {
		rs, err := wechat.NewRunners(c.WeChat, a.log.With("component", "wechat"), a.stderr)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// startBots runs the bot accounts under a supervisor, delivering their
// events to the pipeline. The returned stop function ends them and waits:
// events a bot has handed over are stored before the pipeline closes.
func (a *app) startBots(ctx context.Context, st *storage.Store, p *pipeline.Pipeline) (stop func(), err error) {
	runners, err := a.botRunners()
	if err != nil {
		return nil, err
	}
	if len(runners) == 0 {
		a.log.Warn("no chat sources are configured (bots.onebot, bots.qq, bots.wechat); the pipeline is ready and waiting")
		return func() {}, nil
	}
	node := a.cfg.Bots.Node
	if node == "" {
		node, _ = os.Hostname()
	}
	// Submissions outlive the serve context by a grace period, so an event
	// a bot already received is stored rather than refused at shutdown.
	sinkCtx, cancelSink := context.WithCancel(context.WithoutCancel(ctx))
	sink := bot.SinkFunc(func(_ context.Context, ev *bot.Event) error {
		_, err := p.Submit(sinkCtx, ev)
		return err
	})
	sup := supervisor.New(runners, sink, supervisor.Options{
		Groups:      a.cfg.Bots.Groups,
		MinBackoff:  a.cfg.Bots.MinBackoff,
		MaxBackoff:  a.cfg.Bots.MaxBackoff,
		StableAfter: a.cfg.Bots.StableAfter,
		StatusEvery: a.cfg.Bots.StatusEvery,
		OnStatus: func(s []bot.Status) {
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := st.SaveBotStatuses(c, node, s); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Warn("bot status not saved", "err", err)
			}
		},
		Log: a.log.With("component", "supervisor"),
	})
	names := make([]string, len(runners))
	for i, r := range runners {
		names[i] = r.Name()
	}
	a.log.Info("bots starting", "runners", fmt.Sprint(names), "node", node)
	runCtx, cancelRun := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sup.Run(runCtx)
	}()
	return func() {
		cancelRun()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			a.log.Error("bots did not stop within 30s; refusing their further events")
		}
		cancelSink()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			a.log.Error("bots still running after their events were refused; exiting anyway")
		}
	}, nil
}
