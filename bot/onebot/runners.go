package onebot

import (
	"fmt"
	"log/slog"

	"github.com/qunshao/qunshao/bot"
	"github.com/qunshao/qunshao/bot/supervisor"
)

// NewRunners returns the runners the configuration asks for: one for the
// reverse-WS listener (which serves any number of bot accounts), one per
// forward-WS URL, and one for the HTTP POST receiver.
func NewRunners(cfg Config, log *slog.Logger) ([]supervisor.Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bots.onebot: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	endpointFor := func(runner, transport, key string) *endpoint {
		return &endpoint{
			runner: runner, key: key, cfg: cfg, log: log,
			book: &supervisor.StatusBook{Base: bot.Status{Platform: bot.QQ, Runner: runner, Transport: transport}},
		}
	}
	var out []supervisor.Runner
	if cfg.ReverseWS.Enabled {
		ep := endpointFor("onebot:reverse-ws", "reverse-ws", "ws://"+cfg.ReverseWS.Listen+cfg.ReverseWS.Path)
		out = append(out, newReverseRunner(cfg, ep))
	}
	for _, f := range cfg.ForwardWS {
		u := redactURL(f.URL)
		out = append(out, &forwardRunner{ep: endpointFor("onebot:forward-ws:"+u, "forward-ws", u), cfg: f})
	}
	if cfg.HTTPPost.Enabled {
		ep := endpointFor("onebot:http-post", "http-post", "http://"+cfg.HTTPPost.Listen+cfg.HTTPPost.Path)
		out = append(out, newHTTPRunner(cfg, ep))
	}
	return out, nil
}
