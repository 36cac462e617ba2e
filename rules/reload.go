package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Watcher reloads rule packs from a directory when its files change, so
// rules can be edited without a restart. A pack that fails to load is
// reported and the previous engine stays in use.
type Watcher struct {
	Dir      string
	Interval time.Duration
	// Apply receives each newly loaded engine.
	Apply func(*Engine)
	Log   *slog.Logger

	fingerprint string
}

// Reload loads the directory now and applies it if it changed. It returns
// whether a new engine was applied.
func (w *Watcher) Reload() (bool, error) {
	fp, err := dirFingerprint(w.Dir)
	if err != nil {
		return false, err
	}
	if fp == w.fingerprint {
		return false, nil
	}
	e, err := LoadDir(w.Dir)
	if err != nil {
		w.fingerprint = fp // do not retry the same broken files every tick
		return false, err
	}
	w.fingerprint = fp
	w.Apply(e)
	return true, nil
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := w.Reload()
			switch {
			case err != nil:
				log.Error("rule packs not reloaded; the previous rules stay in force", "dir", w.Dir, "err", err)
			case changed:
				log.Info("rule packs reloaded", "dir", w.Dir)
			}
		}
	}
}

// dirFingerprint hashes the names, sizes and contents of the YAML files.
func dirFingerprint(dir string) (string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (filepath.Ext(p) == ".yaml" || filepath.Ext(p) == ".yml") {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read rules dir: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
