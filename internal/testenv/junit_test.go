package testenv_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

// The checker finds what the Ant schema rejects.
func TestAntJUnitChecker(t *testing.T) {
	ok := `<testsuites><testsuite name="s" package="p" id="0" timestamp="2026-03-01T01:03:04" hostname="h" tests="1" failures="1" errors="0" time="0.000">` +
		`<properties></properties><testcase name="c" classname="k" time="0"><failure type="x">b</failure></testcase><system-out></system-out><system-err></system-err></testsuite></testsuites>`
	if err := testenv.AntJUnit([]byte(ok)); err != nil {
		t.Fatalf("valid document refused: %v", err)
	}
	for _, bad := range []struct{ old, new string }{
		{`<testsuites>`, `<testsuites name="x">`},
		{` id="0"`, ` id="1"`},
		{`2026-03-01T01:03:04`, `2026-03-01T01:03:04Z`},
		{` hostname="h"`, ``},
		{` time="0.000"`, ` time="1s"`},
		{`<properties></properties>`, ``},
		{`<system-err></system-err>`, ``},
		{`<failure type="x">`, `<failure message="m">`},
		{` failures="1"`, ` failures="0"`},
		{`<testcase name="c" classname="k" time="0">`, `<testcase name="c" classname="k">`},
		{`</testcase>`, `</testcase><system-out></system-out>`},
	} {
		doc := strings.Replace(ok, bad.old, bad.new, 1)
		if err := testenv.AntJUnit([]byte(doc)); err == nil {
			t.Errorf("%q -> %q accepted", bad.old, bad.new)
		}
	}
	// the golden files of the report package are what AuditJUnit writes
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "audit", "*.xml"))
	if len(files) == 0 {
		t.Fatal("no golden JUnit files")
	}
	for _, f := range files {
		if !slices.Contains([]string{"empty.xml", "sample.xml"}, filepath.Base(f)) {
			continue // the labs' files have their times normalized; cmd checks the real ones
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { testenv.CheckAntJUnit(t, b) })
	}
}
