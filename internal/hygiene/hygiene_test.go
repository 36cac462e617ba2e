// Package hygiene holds repository-wide checks that run with go test:
// formatting, go vet, and the static build the Dockerfile does.
package hygiene

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func goTool(name string) string {
	return filepath.Join(runtime.GOROOT(), "bin", name)
}

func TestGofmt(t *testing.T) {
	out, err := exec.Command(goTool("gofmt"), "-l", root(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("gofmt: %v\n%s", err, out)
	}
	if files := strings.TrimSpace(string(out)); files != "" {
		t.Fatalf("not gofmt-formatted:\n%s", files)
	}
}

func TestGoVet(t *testing.T) {
	if testing.Short() {
		t.Skip("go vet skipped in -short")
	}
	cmd := exec.Command(goTool("go"), "vet", "./...")
	cmd.Dir = root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
}

// TestStaticBuild builds the binary the way the Dockerfile does (no Docker
// engine runs here), so a cgo dependency cannot slip in unnoticed.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("static build skipped in -short")
	}
	out := filepath.Join(t.TempDir(), "qunshao")
	cmd := exec.Command(goTool("go"), "build", "-trimpath", "-o", out, "./cmd/qunshao")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "qunshao") {
		t.Fatalf("static binary does not run: %v %s", err, b)
	}
	// The Dockerfile builds the same package with the same flags.
	df, err := os.ReadFile(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0 go build", "./cmd/qunshao", "USER 65532", "VOLUME [\"/data\"]", `CMD ["serve"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
