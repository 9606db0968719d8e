package scenario

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/lab"
)

// The shipped whole-path checks (trace --vm B --from A, issue 13) pass
// through the library as check will run them: each starts its lab and
// traces through the vCenter and the SSH servers.
func TestShippedPathChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts labs (-short)")
	}
	files, _ := filepath.Glob("../configs/checks/path-*.yaml")
	if len(files) < 4 {
		t.Fatalf("found %d path checks", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			sc, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			topo, err := lab.LoadConfig(filepath.Join("../configs", sc.Lab))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Trace(context.Background(), sc, topo, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res := comparePath(sc, tr.Path)
			if len(res) == 0 {
				t.Fatal("no results")
			}
			failed := false
			for _, r := range res {
				if !r.Pass {
					failed = true
					t.Errorf("%s: %s: got %d, want %s %s", r.FlowName(), r.Verdict, r.Got, r.Want, r.Note)
				} else {
					t.Logf("%s: %s: %d", r.FlowName(), r.Verdict, r.Got)
				}
			}
			if failed {
				// what the verdicts rested on
				p := tr.Path
				t.Logf("clock %+v, orphans %v, misplaced %v", p.Clock, p.Orphans, p.Misplaced)
				for _, f := range p.Flows {
					for _, e := range f.Examples {
						t.Logf("%s: %s: %s", f.Key, e.Verdict, e.Reason)
					}
				}
				for _, pt := range p.Points {
					t.Logf("%s: %d observations, dropped %d (unknown %v), late %d, live %v to %v", pt.Name, pt.Observations, pt.Dropped, pt.DropsUnknown, pt.Late, pt.Start, pt.Stop)
				}
			}
		})
	}
}

// With from: the expectations are path verdicts; a classic-only id, or
// from naming the traced VM, is an error before any lab starts.
func TestParsePathErrors(t *testing.T) {
	for body, want := range map[string]string{
		"vm: b\nfrom: a\nexpect:\n  - counts: {delivered_dups_removed: 1}\n": "unknown path verdict",
		"vm: b\nexpect:\n  - counts: {lost_in_network: 1}\n":                 "unknown verdict",
		"vm: b\nfrom: b\nexpect:\n  - counts: {delivered: 1}\n":              "from names the traced VM",
	} {
		_, err := Parse([]byte(body), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", body, err, want)
		}
	}
}
