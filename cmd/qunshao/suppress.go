package main

import (
	"context"
	"sync"
	"time"

	"github.com/qunshao/qunshao/storage"
)

// importSuppressor keeps detections on records imported with --no-alert
// from paging anyone. Live records (no source file) always alert. The
// answer per file is cached briefly: a large historical import yields
// many detections and the flag only changes when the file is imported
// again.
func importSuppressor(st *storage.Store) func(context.Context, *storage.Detection, *storage.Record) bool {
	type entry struct {
		noAlert bool
		at      time.Time
	}
	var mu sync.Mutex
	cache := map[string]entry{}
	return func(ctx context.Context, _ *storage.Detection, rec *storage.Record) bool {
		if rec == nil || rec.SourceFile == "" {
			return false
		}
		mu.Lock()
		e, ok := cache[rec.SourceFile]
		mu.Unlock()
		if ok && time.Since(e.at) < 10*time.Second {
			return e.noAlert
		}
		f, err := st.ImportFile(ctx, rec.SourceFile)
		if err != nil {
			// Unknown: alerting on an imported detection is the safer
			// mistake than silently dropping a live-looking one.
			return false
		}
		e = entry{noAlert: f != nil && f.NoAlert, at: time.Now()}
		mu.Lock()
		if len(cache) > 4096 {
			clear(cache)
		}
		cache[rec.SourceFile] = e
		mu.Unlock()
		return e.noAlert
	}
}
