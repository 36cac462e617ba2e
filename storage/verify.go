package storage

import (
	"context"
	"fmt"
	"time"
)

// Break is the first broken link found in a group's chain.
type Break struct {
	GroupKey string
	Seq      int64 // chain position where the chain breaks
	RecordID int64 // row id, 0 when the record is missing
	MsgID    string
	// Problem is one of "hash" (the record's fields no longer match its
	// hash: it was edited), "prev_hash" (the link to the previous record
	// does not match: a record before it was edited, removed or
	// replaced), "raw" (the stored raw payload does not match the hash the
	// chain covers), "gap" (a chain position is missing: a record was
	// deleted).
	Problem string
	// Expected is what the chain committed to; Found is what the stored
	// data yields now.
	Expected string
	Found    string
}

func (b Break) String() string {
	id := fmt.Sprintf("record %d (seq %d", b.RecordID, b.Seq)
	if b.MsgID != "" {
		id += ", message " + b.MsgID
	}
	id += ")"
	switch b.Problem {
	case "gap":
		return fmt.Sprintf("group %s: chain position %d is missing: expected seq %s, found %s", b.GroupKey, b.Seq, b.Expected, b.Found)
	case "hash":
		return fmt.Sprintf("group %s: %s was altered: chained hash %s, its fields now hash to %s", b.GroupKey, id, b.Expected, b.Found)
	case "prev_hash":
		return fmt.Sprintf("group %s: %s does not link to the record before it: expected prev_hash %s, found %s", b.GroupKey, id, b.Expected, b.Found)
	case "raw":
		return fmt.Sprintf("group %s: %s raw payload was altered: expected sha256 %s, found %s", b.GroupKey, id, b.Expected, b.Found)
	}
	return fmt.Sprintf("group %s: %s: %s (expected %s, found %s)", b.GroupKey, id, b.Problem, b.Expected, b.Found)
}

// VerifyReport summarises a chain verification.
type VerifyReport struct {
	Groups   int
	Records  int64
	Breaks   []Break // the first break of each broken group
	Heads    map[string]string
	Duration time.Duration
}

// OK reports whether every chain verified.
func (r *VerifyReport) OK() bool { return len(r.Breaks) == 0 }

const verifyPage = 1000

// Verify walks every group's chain from its first record and recomputes
// each link. It reports the first broken link of each group and goes on
// with the other groups. progress, if set, is called after each page with
// the number of records checked so far.
func (s *Store) Verify(ctx context.Context, progress func(records int64)) (*VerifyReport, error) {
	start := time.Now()
	var groups []string
	qctx, cancel := s.timeout(ctx)
	err := s.db.WithContext(qctx).Model(&Record{}).Distinct("group_key").Order("group_key").Pluck("group_key", &groups).Error
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	rep := &VerifyReport{Groups: len(groups), Heads: map[string]string{}}
	for _, g := range groups {
		brk, n, head, err := s.verifyGroup(ctx, g, func(k int64) {
			if progress != nil {
				progress(rep.Records + k)
			}
		})
		rep.Records += n
		if err != nil {
			return rep, err
		}
		if brk != nil {
			rep.Breaks = append(rep.Breaks, *brk)
		} else {
			rep.Heads[g] = head
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func (s *Store) verifyGroup(ctx context.Context, group string, progress func(int64)) (*Break, int64, string, error) {
	prev := GenesisHash
	var seq, n int64
	for {
		var page []Record
		qctx, cancel := s.timeout(ctx)
		err := s.db.WithContext(qctx).Where("group_key = ? AND chain_seq > ?", group, seq).
			Order("chain_seq").Limit(verifyPage).Find(&page).Error
		cancel()
		if err != nil {
			return nil, n, "", fmt.Errorf("read chain of %s after seq %d: %w", group, seq, err)
		}
		for i := range page {
			r := &page[i]
			n++
			if r.ChainSeq != seq+1 {
				return &Break{GroupKey: group, Seq: seq + 1, Problem: "gap",
					Expected: fmt.Sprint(seq + 1), Found: fmt.Sprint(r.ChainSeq)}, n, "", nil
			}
			seq = r.ChainSeq
			if r.PrevHash != prev {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "prev_hash",
					Expected: prev, Found: r.PrevHash}, n, "", nil
			}
			if got := linkHash(r); got != r.Hash {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "hash",
					Expected: r.Hash, Found: got}, n, "", nil
			}
			if got := rawHash(r.Raw); got != r.RawSHA256 {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "raw",
					Expected: r.RawSHA256, Found: got}, n, "", nil
			}
			prev = r.Hash
		}
		progress(n)
		if len(page) < verifyPage {
			return nil, n, prev, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, n, "", err
		}
	}
}
