package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/qunshao/qunshao/detect"
	"github.com/qunshao/qunshao/storage"
	"github.com/spf13/cobra"
)

func (a *app) detectionsCommand() *cobra.Command {
	var group, label string
	var limit int
	cmd := &cobra.Command{
		Use:   "detections",
		Short: "List stored detections (newest first) with their explanation",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			f := storage.DetectionFilter{GroupKey: group, Limit: limit}
			if label != "" {
				f.Labels = []string{label}
			}
			ds, err := st.Detections(ctx, f)
			if err != nil {
				return err
			}
			for _, d := range ds {
				var hits []detect.RuleHit
				_ = json.Unmarshal([]byte(d.Rules), &hits)
				var ids []string
				for _, h := range hits {
					ids = append(ids, h.ID)
				}
				fmt.Fprintf(a.stdout, "%-6d %s %-28s #%-5d %-19s %.2f %-8s sender %s (%s) rules %v\n", d.ID,
					time.UnixMicro(d.OccurredUS).UTC().Format(time.RFC3339), d.GroupKey, d.ChainSeq, d.Label, d.Score,
					d.Severity, d.SenderID, d.SenderRole, ids)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only this group (platform:id)")
	cmd.Flags().StringVar(&label, "label", "", "only this label")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

func (a *app) feedbackCommand() *cobra.Command {
	root := &cobra.Command{Use: "feedback", Short: "Record moderators' decisions on detections and export them for training"}
	var fb storage.Feedback
	add := &cobra.Command{
		Use:   "add",
		Short: "Record a decision: confirmed, or false_positive (optionally with the right label)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fb.Label != "" {
				known := false
				for _, l := range detect.Labels {
					known = known || l == fb.Label
				}
				if !known {
					a.usageErr = true
					return fmt.Errorf("--label %q: want one of %v", fb.Label, detect.Labels)
				}
			}
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AddFeedback(ctx, &fb); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "recorded feedback %d on detection %d: %s\n", fb.ID, fb.DetectionID, fb.Decision)
			return nil
		},
	}
	add.Flags().Int64Var(&fb.DetectionID, "detection", 0, "detection id (see `qunshao detections`)")
	add.Flags().StringVar(&fb.Decision, "decision", "", "confirmed or false_positive")
	add.Flags().StringVar(&fb.Label, "label", "", "the right label, for a false positive or a wrong category")
	add.Flags().StringVar(&fb.Moderator, "moderator", "", "who decided")
	add.Flags().StringVar(&fb.Comment, "comment", "", "why")
	var out string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write moderated messages as labelled JSON lines for `qunshao model train --feedback`",
		Long: `Write every moderated detection's message as a labelled line. A confirmed
detection keeps its label (or the moderator's correction); a false positive
without a correction becomes benign_chat.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			exs, err := st.FeedbackExamples(ctx)
			if err != nil {
				return err
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(f)
			enc.SetEscapeHTML(false)
			for _, ex := range exs {
				if err := enc.Encode(detect.Labelled{ID: fmt.Sprintf("feedback-%d", ex.ID), Text: ex.Text,
					Label: FeedbackLabel(ex), Role: ex.SenderRole}); err != nil {
					f.Close()
					return err
				}
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %d moderated messages to %s\n", len(exs), out)
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "feedback.jsonl", "output file")
	root.AddCommand(add, export)
	return root
}

// FeedbackLabel is the training label a moderator's decision implies.
func FeedbackLabel(ex storage.FeedbackExample) string {
	if ex.Label != "" {
		return ex.Label
	}
	if ex.Decision == storage.Confirmed && detect.Malicious(ex.DetectedLabel) {
		return ex.DetectedLabel
	}
	return "benign_chat"
}
