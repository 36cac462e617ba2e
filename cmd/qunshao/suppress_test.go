package main

import (
	"context"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func TestImportSuppressor(t *testing.T) {
	st := storagetest.Open(t, storagetest.SQLiteConfig(t))
	ctx := context.Background()
	quiet, loud := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, run := range []storage.ImportRun{
		{SHA256: quiet, Size: 1, Name: "history.txt", Format: "qq-txt", Importer: "test", Unit: "line", NoAlert: true},
		{SHA256: loud, Size: 1, Name: "fresh.txt", Format: "qq-txt", Importer: "test", Unit: "line"},
	} {
		if _, err := st.BeginImport(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	s := importSuppressor(st)
	for _, c := range []struct {
		rec  *storage.Record
		want bool
	}{
		{&storage.Record{SourceFile: quiet}, true},
		{&storage.Record{SourceFile: quiet}, true}, // cached
		{&storage.Record{SourceFile: loud}, false},
		{&storage.Record{}, false},                                    // live message
		{&storage.Record{SourceFile: strings.Repeat("c", 64)}, false}, // unknown file
		{nil, false},
	} {
		if got := s(ctx, &storage.Detection{}, c.rec); got != c.want {
			t.Errorf("%+v: suppressed = %v, want %v", c.rec, got, c.want)
		}
	}
}
