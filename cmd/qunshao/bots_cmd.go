package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) botsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bots",
		Short: "Show every bot account's status as last reported by the running qunshao",
		Long: `Show each bot account qunshao runs: platform, account, transport, state
(online, login_required with the QR code to scan, offline, logged_out,
error), groups watched, events received, errors by kind, and how long ago it
reported. A running 'qunshao serve' reports every bots.status_every.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := st.BotStatuses(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no bot has reported yet (is `qunshao serve` running with bots configured?)")
				return nil
			}
			now := time.Now()
			fmt.Fprintf(a.stdout, "%-7s %-14s %-11s %-15s %6s %8s %6s %10s  %s\n", "PLATFORM", "ACCOUNT", "TRANSPORT", "STATE", "GROUPS", "EVENTS", "ERRORS", "REPORTED", "DETAIL")
			for _, r := range rows {
				var detail []string
				if r.LoginURL != "" {
					detail = append(detail, "scan to log in: "+r.LoginURL)
				}
				if r.LastError != "" {
					detail = append(detail, "last error: "+safeLine(r.LastError))
				}
				keys := make([]string, 0, len(r.Counters))
				for k := range r.Counters {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					detail = append(detail, fmt.Sprintf("%s=%d", k, r.Counters[k]))
				}
				ago := now.Sub(r.Reported).Round(time.Second)
				fmt.Fprintf(a.stdout, "%-8s %-14s %-11s %-15s %6d %8d %6d %9s  %s\n", r.Platform, r.Account, r.Transport, r.State,
					r.Groups, r.Events, r.Errors, ago.String()+" ago", strings.Join(detail, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
