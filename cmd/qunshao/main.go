// Command qunshao watches paid-promotion chat groups for organised attacks
// on shops and extortion, and keeps every message as verifiable evidence.
// This file only wires the packages together: flags, config, constructors.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/qunshao/qunshao/configs"
	"github.com/spf13/cobra"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// exitError carries a specific exit status (e.g. 1 for a broken chain)
// without printing anything more.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run executes the command line and returns the exit status: 0 success,
// 1 failure, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &app{stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "qunshao:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "qunshao:", err)
	if app.usageErr {
		return 2
	}
	return 1
}

// app holds what every subcommand shares.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	usageErr       bool
	cfg            *configs.Config
	threshold      float64
	log            *slog.Logger
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "qunshao",
		Short: "Watch paid-promotion chat groups for attacks on shops and extortion",
		Long: `qunshao (群哨) watches QQ and WeChat paid-promotion groups through bot
accounts. Every message is stored as tamper-evident evidence (a per-group
SHA-256 hash chain) together with the roles of the group's owner and admins
at that moment, so that an attack task or an extortion demand can be traced
to the people who organised it.

Start with "qunshao demo": it needs no accounts and no database server.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Annotations["noconfig"] == "true" {
				return nil
			}
			return a.loadConfig()
		},
	}
	root.PersistentFlags().StringVarP(&a.configPath, "config", "c", os.Getenv(configs.EnvPrefix+"CONFIG"),
		"configuration file (default: the embedded configs/qunshao.yaml; env QUNSHAO_CONFIG)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		a.usageErr = true
		return fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())
	})
	root.AddCommand(a.serveCommand(), a.demoCommand(), a.dbCommand(), a.configCommand(), a.versionCommand(),
		a.scanCommand(), a.replayCommand(), a.evalCommand(), a.rulesCommand(), a.modelCommand(), a.benchCommand(),
		a.detectionsCommand(), a.feedbackCommand(), a.botsCommand(), a.importCommand(), a.alertsCommand())
	for _, c := range root.Commands() {
		c.Args = wrapArgs(a, c.Args)
	}
	return root
}

// wrapArgs marks argument errors as usage errors (exit 2).
func wrapArgs(a *app, v cobra.PositionalArgs) cobra.PositionalArgs {
	if v == nil {
		v = cobra.NoArgs
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			a.usageErr = true
			return err
		}
		return nil
	}
}

func (a *app) loadConfig() error {
	cfg, err := configs.Load(a.configPath, os.Environ())
	if err != nil {
		a.usageErr = true
		return err
	}
	a.cfg = cfg
	a.log = newLogger(a.stderr, cfg.Log)
	return nil
}

func newLogger(w io.Writer, c configs.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
