package oracle

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

var pathN = flag.Int("oracle.pathn", 0, "two-host cases in TestPathSweep (default 12, 6 under -race, 3 with -short)")

// The two-host sweep (issue 13): trace --vm vmb --from vma on randomized
// two-host cases, every frame of both directions compared with the lab's
// truth. It fails on any false definite path verdict and on a case that
// could not run.
func TestPathSweep(t *testing.T) {
	testenv.CheckGoroutines(t)
	n := *pathN
	if n == 0 {
		switch {
		case testing.Short():
			n = 3
		case raceEnabled:
			n = 6
		default:
			n = 12
		}
	}
	rep := SweepPath(t.Context(), *sweepSeed, n, 2, nil)
	var b strings.Builder
	rep.Print(&b)
	t.Log("\n" + b.String())
	if os.Getenv("ORACLE_PATH_REPORT") != "" {
		os.WriteFile(os.Getenv("ORACLE_PATH_REPORT"), []byte(b.String()), 0o644)
	}
	if rep.Matrix.Total() == 0 {
		t.Fatal("no frame compared")
	}
	for _, e := range rep.Errors {
		t.Error(e)
	}
	for _, f := range rep.False {
		t.Error("false path verdict: ", f)
	}
}

// GeneratePath is deterministic and every case passes the strict parsers.
func TestGeneratePath(t *testing.T) {
	for s := uint64(1); s <= 200; s++ {
		a, err := GeneratePath(s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := GeneratePath(s)
		if a.YAML != b.YAML || a.Summary != b.Summary {
			t.Fatalf("seed %d: two cases", s)
		}
	}
}
