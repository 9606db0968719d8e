package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

// trace --from on the path lab (the switch port toward the receiver's
// team uplink loses half of what it sends): the report has the path's
// section after the receiver's, with both directions, the clocks and the
// hops; trace.json has the path, valid against the v2 schema, its counts
// those of the text.
func TestTraceFrom(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-path.yaml", true)
	dir := t.TempDir()
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--from", "testvm1", "--duration", "4s",
		"--known-hosts", kh, "--proto", "0x01", "--out", dir)
	if err != nil && exitCode(err) != 3 {
		t.Fatalf("trace --from: %v\n%s\n%s", err, stdout, stderr)
	}
	t.Logf("trace --from:\n%s", stdout)
	for _, want := range []string{"\n== Path ", "A to B: ", "B to A: ", "Clocks: esx02 against esx01 ", "ICMP echo request 192.168.100.11 > 192.168.100.12 (A to B"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the report:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
	if i, j := strings.Index(stdout, "== Path"), strings.Index(stdout, "Wrote "); i < 0 || j < i {
		t.Errorf("the path's section should come before the files:\n%s", stdout)
	}
	if page, err := os.ReadFile(filepath.Join(dir, "trace.html")); err != nil || !strings.Contains(string(page), `aria-label="whole path of ICMP echo request`) {
		t.Errorf("trace.html draws no path (%v)", err)
	}
	doc, err := os.ReadFile(filepath.Join(dir, "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, traceV2Schema, doc)
	var j struct {
		Path *struct {
			Totals map[string]map[string]int
			Flows  []struct{ Direction string }
		}
	}
	if err := json.Unmarshal(doc, &j); err != nil || j.Path == nil {
		t.Fatalf("trace.json has no path (%v):\n%s", err, doc)
	}
	sent := 0
	for _, n := range j.Path.Totals["a_to_b"] {
		sent += n
	}
	if sent == 0 || len(j.Path.Flows) == 0 {
		t.Errorf("path: %+v", j.Path)
	}
}

// --from takes one --vm, and JSON v2.
func TestTraceFromUsage(t *testing.T) {
	for _, args := range [][]string{
		{"trace", "--vm", "a", "--vm", "b", "--from", "c"},
		{"trace", "--vm", "a", "--from", "c", "--json", "--json-version", "1"},
	} {
		_, _, err := runCmd(t, context.Background(), args...)
		if exitCode(err) != 2 {
			t.Errorf("%q: exit %d (%v); want 2", args, exitCode(err), err)
		}
	}
}
