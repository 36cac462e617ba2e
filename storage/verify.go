package storage

import (
	"context"
	"fmt"
	"runtime"
	"sync"
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
	case "meta":
		return fmt.Sprintf("group %s: %s meta column was altered: %s", b.GroupKey, id, b.Found)
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
	err := s.db.WithContext(qctx).Model(&evidenceRow{}).Distinct("group_key").Order("group_key").Pluck("group_key", &groups).Error
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

// checkedRow is one row with the values recomputed from it.
type checkedRow struct {
	row     evidenceRow
	rec     *Record
	metaErr error
	link    string // hash recomputed from the fields
	raw     string // hash recomputed from the raw payload
}

type chainPage struct {
	rows []checkedRow
	err  error
}

// verifyGroup reads a chain page by page in one goroutine while the
// previous page is hashed on every core; the links are then checked in
// order.
func (s *Store) verifyGroup(ctx context.Context, group string, progress func(int64)) (*Break, int64, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan chainPage, 2)
	go func() {
		defer close(pages)
		var after int64
		for {
			rows, err := s.readChainPage(ctx, group, after)
			select {
			case pages <- chainPage{rows, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(rows) < verifyPage {
				return
			}
			after = rows[len(rows)-1].row.ChainSeq
		}
	}()
	prev := GenesisHash
	var seq, n int64
	for p := range pages {
		if p.err != nil {
			return nil, n, "", fmt.Errorf("read chain of %s after seq %d: %w", group, seq, p.err)
		}
		hashRows(p.rows)
		for i := range p.rows {
			c := &p.rows[i]
			n++
			row := &c.row
			if row.ChainSeq != seq+1 {
				return &Break{GroupKey: group, Seq: seq + 1, Problem: "gap",
					Expected: fmt.Sprint(seq + 1), Found: fmt.Sprint(row.ChainSeq)}, n, "", nil
			}
			seq = row.ChainSeq
			if c.metaErr != nil {
				return &Break{GroupKey: group, Seq: seq, RecordID: row.ID, MsgID: row.MsgID,
					Problem: "meta", Expected: "valid JSON", Found: c.metaErr.Error()}, n, "", nil
			}
			r := c.rec
			if r.PrevHash != prev {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "prev_hash",
					Expected: prev, Found: r.PrevHash}, n, "", nil
			}
			if c.link != r.Hash {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "hash",
					Expected: r.Hash, Found: c.link}, n, "", nil
			}
			if c.raw != r.RawSHA256 {
				return &Break{GroupKey: group, Seq: seq, RecordID: r.ID, MsgID: r.MsgID, Problem: "raw",
					Expected: r.RawSHA256, Found: c.raw}, n, "", nil
			}
			prev = r.Hash
		}
		progress(n)
	}
	if err := ctx.Err(); err != nil {
		return nil, n, "", err
	}
	return nil, n, prev, nil
}

// readChainPage reads up to verifyPage rows after a chain position with a
// plain scan (no reflection per row).
func (s *Store) readChainPage(ctx context.Context, group string, after int64) ([]checkedRow, error) {
	qctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.db.WithContext(qctx).Raw(`SELECT id, group_key, chain_seq, kind, occurred_us, actor_id, msg_id, dedup_key, text, meta, raw, hash
FROM evidence WHERE group_key = ? AND chain_seq > ? ORDER BY chain_seq LIMIT ?`, group, after, verifyPage).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]checkedRow, 0, verifyPage)
	for rows.Next() {
		var c checkedRow
		r := &c.row
		if err := rows.Scan(&r.ID, &r.GroupKey, &r.ChainSeq, &r.Kind, &r.OccurredUS, &r.ActorID, &r.MsgID,
			&r.DedupKey, &r.Text, &r.Meta, &r.Raw, &r.Hash); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// hashRows decodes and hashes a page on every core.
func hashRows(rows []checkedRow) {
	workers := runtime.GOMAXPROCS(0)
	per := (len(rows) + workers - 1) / workers
	var wg sync.WaitGroup
	for start := 0; start < len(rows); start += per {
		part := rows[start:min(start+per, len(rows))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range part {
				c := &part[i]
				c.rec, c.metaErr = c.row.record()
				if c.metaErr == nil {
					c.link = linkHash(c.rec)
					c.raw = rawHash(c.rec.Raw)
				}
			}
		}()
	}
	wg.Wait()
}
