package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/qunshao/qunshao/storage"
	"github.com/qunshao/qunshao/storage/storagetest"
)

func TestImportFilesBookkeeping(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		s := storagetest.Open(t, b.Config(t))
		sha := strings.Repeat("ab", 32)
		run := storage.ImportRun{SHA256: sha, Size: 1234, Name: "群聊\x00记录.txt", Kind: storage.ImportChat,
			Format: "qq-txt", Importer: "qunshao-import/1 qq-txt/1", Unit: "line", NoAlert: true}
		prev, err := s.BeginImport(ctx, run)
		if err != nil || prev != nil {
			t.Fatalf("first begin: %v %v", prev, err)
		}
		if err := s.UpdateImportProgress(ctx, sha, storage.ImportProgress{ResumePos: 40, Records: 20, Stored: 15, Duplicates: 5}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishImport(ctx, sha, storage.ImportInterrupted, storage.ImportProgress{ResumePos: 61, Records: 30, Stored: 5, Duplicates: 5}, "context canceled"); err != nil {
			t.Fatal(err)
		}
		f, err := s.ImportFile(ctx, sha)
		if err != nil || f == nil {
			t.Fatal(f, err)
		}
		// Stored adds up what every report stored; the rest is the run's.
		if f.Status != storage.ImportInterrupted || f.Stored != 20 || f.Records != 30 || f.ResumePos != 61 || !f.NoAlert ||
			f.LastError != "context canceled" || f.FinishedUS != 0 || f.Size != 1234 || f.Name != "群聊\uFFFD记录.txt" {
			t.Fatalf("after an interrupted run: %+v", f)
		}
		// A second run sees the first and keeps the resume position.
		run.NoAlert = false
		prev, err = s.BeginImport(ctx, run)
		if err != nil || prev == nil || prev.ResumePos != 61 || prev.Status != storage.ImportInterrupted {
			t.Fatalf("second begin: %+v %v", prev, err)
		}
		f, _ = s.ImportFile(ctx, sha)
		if f.Status != storage.ImportRunning || f.Runs != 2 || f.NoAlert || f.ResumePos != 61 || f.LastError != "" {
			t.Fatalf("running again: %+v", f)
		}
		if err := s.FinishImport(ctx, sha, storage.ImportComplete, storage.ImportProgress{ResumePos: 100, Records: 50, Stored: 30}, ""); err != nil {
			t.Fatal(err)
		}
		f, _ = s.ImportFile(ctx, sha)
		if f.Status != storage.ImportComplete || f.Stored != 50 || f.FinishedUS == 0 {
			t.Fatalf("complete: %+v", f)
		}
		// Another reader (format or version) starts from the beginning.
		run.Format = "liuhen-txt"
		if _, err := s.BeginImport(ctx, run); err != nil {
			t.Fatal(err)
		}
		if f, _ = s.ImportFile(ctx, sha); f.ResumePos != 0 || f.Format != "liuhen-txt" {
			t.Fatalf("another format: %+v", f)
		}
		fs, err := s.ImportFiles(ctx)
		if err != nil || len(fs) != 1 {
			t.Fatalf("list: %v %v", fs, err)
		}
		if err := s.FinishImport(ctx, strings.Repeat("0", 64), storage.ImportComplete, storage.ImportProgress{}, ""); !errors.Is(err, storage.ErrUnknownImport) {
			t.Errorf("finishing an unknown import: %v", err)
		}
		if err := s.FinishImport(ctx, sha, "maybe", storage.ImportProgress{}, ""); err == nil {
			t.Error("unknown status accepted")
		}
		if _, err := s.BeginImport(ctx, storage.ImportRun{SHA256: "short"}); err == nil {
			t.Error("bad hash accepted")
		}
	})
}
