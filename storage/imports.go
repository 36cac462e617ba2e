package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ImportFile is one file handed to `qunshao import`: a chat export, or a
// roster file that came with one. Evidence records imported from it carry
// its SHA256 in Record.SourceFile, so every record traces back to the
// original bytes.
//
// The row is bookkeeping, not evidence: it is updated as runs progress (the
// file's identity, SHA256 and Size, never changes). Records, Duplicates and
// Errors describe the latest run, which always reads the whole file; Stored
// adds up what every run stored, i.e. how many ledger records came from the
// file.
type ImportFile struct {
	SHA256 string `gorm:"primaryKey;size:64"`
	Size   int64  `gorm:"not null"`
	// Name is the file's base name when it was first imported.
	Name string `gorm:"size:255;not null"`
	// Kind is ImportChat or ImportRoster.
	Kind     string `gorm:"size:16;not null"`
	Format   string `gorm:"size:32;not null"`
	Importer string `gorm:"size:64;not null"`
	// NoAlert: detections on records from this file must not page anyone
	// (`qunshao import --no-alert`, for historical material). The latest
	// run decides.
	NoAlert bool `gorm:"not null"`
	// Status is ImportRunning, ImportInterrupted, ImportFailed or
	// ImportComplete.
	Status string `gorm:"size:16;not null"`
	Runs   int64  `gorm:"not null"`
	// StartedUS is when the first run began, UpdatedUS when the row last
	// changed, FinishedUS when a run last completed (0 before that).
	StartedUS  int64 `gorm:"not null"`
	UpdatedUS  int64 `gorm:"not null"`
	FinishedUS int64 `gorm:"not null"`
	Records    int64 `gorm:"not null"`
	Stored     int64 `gorm:"not null"`
	Duplicates int64 `gorm:"not null"`
	Errors     int64 `gorm:"not null"`
	// ResumePos is a position in the file (in ResumeUnit, "line" or
	// "byte") before which every record is known to be committed; a run
	// that resumes an interrupted import does not submit those again.
	ResumePos  int64  `gorm:"not null"`
	ResumeUnit string `gorm:"size:8;not null"`
	// LastError is why the latest run stopped early, if it did.
	LastError string `gorm:"size:1024;not null"`
}

// TableName fixes the table name.
func (ImportFile) TableName() string { return "import_files" }

// Kinds of imported files.
const (
	ImportChat   = "chat"
	ImportRoster = "roster"
)

// Import statuses.
const (
	ImportRunning     = "running"
	ImportInterrupted = "interrupted"
	ImportFailed      = "failed"
	ImportComplete    = "complete"
)

// v6ImportFile is the frozen table of migration 6.
type v6ImportFile struct {
	SHA256     string `gorm:"primaryKey;size:64"`
	Size       int64  `gorm:"not null"`
	Name       string `gorm:"size:255;not null"`
	Kind       string `gorm:"size:16;not null"`
	Format     string `gorm:"size:32;not null"`
	Importer   string `gorm:"size:64;not null"`
	NoAlert    bool   `gorm:"not null"`
	Status     string `gorm:"size:16;not null"`
	Runs       int64  `gorm:"not null"`
	StartedUS  int64  `gorm:"not null"`
	UpdatedUS  int64  `gorm:"not null"`
	FinishedUS int64  `gorm:"not null"`
	Records    int64  `gorm:"not null"`
	Stored     int64  `gorm:"not null"`
	Duplicates int64  `gorm:"not null"`
	Errors     int64  `gorm:"not null"`
	ResumePos  int64  `gorm:"not null"`
	ResumeUnit string `gorm:"size:8;not null"`
	LastError  string `gorm:"size:1024;not null"`
}

func (v6ImportFile) TableName() string { return "import_files" }

// migrateImports is schema step 6: the imported-files table.
func migrateImports(tx *gorm.DB, driver string) error {
	return createTables(tx, driver, &v6ImportFile{})
}

// ImportRun is what one run of an import says about itself when it starts.
type ImportRun struct {
	SHA256   string
	Size     int64
	Name     string
	Kind     string
	Format   string
	Importer string
	// Unit is the position unit of the format ("line" or "byte").
	Unit    string
	NoAlert bool
}

// ImportProgress is a running (or final) account of a run.
type ImportProgress struct {
	// ResumePos: every record before it is committed.
	ResumePos int64
	// Records, Duplicates and Errors count this run so far. Stored is
	// what the run stored since its previous report (it is added to the
	// file's total, so a run that is killed keeps what it reported).
	Records, Stored, Duplicates, Errors int64
}

// BeginImport records that a run over a file starts and returns the row as
// it was before (nil for a file never seen), so the caller can resume an
// interrupted run. Resuming only applies to the same format and importer:
// when either changed, the resume position is reset.
func (s *Store) BeginImport(ctx context.Context, run ImportRun) (*ImportFile, error) {
	if len(run.SHA256) != 64 {
		return nil, fmt.Errorf("begin import: sha256 %q is not 64 hex digits", run.SHA256)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	now := time.Now().UnixMicro()
	var prev *ImportFile
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []ImportFile
		q := tx.Where("sha256 = ?", run.SHA256).Limit(1)
		if s.driver != SQLite {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return tx.Create(&ImportFile{
				SHA256: run.SHA256, Size: run.Size, Name: cutImportText(clean(run.Name), 255), Kind: run.Kind,
				Format: run.Format, Importer: run.Importer, NoAlert: run.NoAlert, Status: ImportRunning,
				Runs: 1, StartedUS: now, UpdatedUS: now, ResumeUnit: run.Unit,
			}).Error
		}
		old := rows[0]
		prev = &old
		cols := map[string]any{
			"format": run.Format, "importer": run.Importer, "no_alert": run.NoAlert, "status": ImportRunning,
			"runs": old.Runs + 1, "updated_us": now, "last_error": "",
		}
		if old.Format != run.Format || old.Importer != run.Importer || old.ResumeUnit != run.Unit {
			cols["resume_pos"], cols["resume_unit"] = int64(0), run.Unit
		}
		return tx.Model(&ImportFile{}).Where("sha256 = ?", run.SHA256).Updates(cols).Error
	})
	if err != nil {
		return nil, fmt.Errorf("begin import of %s: %w", run.SHA256, err)
	}
	return prev, nil
}

// UpdateImportProgress saves how far a running import got, so that a run
// that is killed can be resumed from there.
func (s *Store) UpdateImportProgress(ctx context.Context, sha string, p ImportProgress) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Model(&ImportFile{}).Where("sha256 = ?", sha).Updates(map[string]any{
		"resume_pos": p.ResumePos, "records": p.Records, "duplicates": p.Duplicates, "errors": p.Errors,
		"stored": gorm.Expr("stored + ?", p.Stored), "updated_us": time.Now().UnixMicro(),
	}).Error
	if err != nil {
		return fmt.Errorf("save import progress of %s: %w", sha, err)
	}
	return nil
}

// FinishImport closes a run with its status (ImportComplete,
// ImportInterrupted or ImportFailed) and final counts (Stored: since the
// last progress report). lastErr says why a run stopped early.
func (s *Store) FinishImport(ctx context.Context, sha, status string, p ImportProgress, lastErr string) error {
	switch status {
	case ImportComplete, ImportInterrupted, ImportFailed:
	default:
		return fmt.Errorf("finish import of %s: status %q", sha, status)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	now := time.Now().UnixMicro()
	cols := map[string]any{
		"status": status, "resume_pos": p.ResumePos, "records": p.Records, "duplicates": p.Duplicates,
		"errors": p.Errors, "stored": gorm.Expr("stored + ?", p.Stored), "updated_us": now,
		"last_error": cutImportText(clean(lastErr), 1024),
	}
	if status == ImportComplete {
		cols["finished_us"] = now
	}
	res := s.db.WithContext(ctx).Model(&ImportFile{}).Where("sha256 = ?", sha).Updates(cols)
	if res.Error != nil {
		return fmt.Errorf("finish import of %s: %w", sha, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("finish import of %s: %w", sha, ErrUnknownImport)
	}
	return nil
}

// ErrUnknownImport is returned when a run is finished that was never begun.
var ErrUnknownImport = errors.New("no such imported file")

// ImportFile returns the imported file with this SHA-256 (lowercase hex),
// or nil and no error when no file with that hash was imported. Records'
// SourceFile is such a hash.
func (s *Store) ImportFile(ctx context.Context, sha string) (*ImportFile, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []ImportFile
	if err := s.db.WithContext(ctx).Where("sha256 = ?", sha).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read imported file %s: %w", sha, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// ImportFiles lists imported files, most recently updated first.
func (s *Store) ImportFiles(ctx context.Context) ([]ImportFile, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows []ImportFile
	if err := s.db.WithContext(ctx).Order("updated_us DESC, sha256").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list imported files: %w", err)
	}
	return rows, nil
}

// cutImportText cuts s to at most n bytes without splitting a UTF-8 sequence.
func cutImportText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
