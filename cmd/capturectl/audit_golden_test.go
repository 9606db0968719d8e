package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// timeRE matches what changes between two audits of the same inventory:
// the JSON "generated", the JUnit timestamp and hostname, and the
// Prometheus last run.
var (
	timeAttrRE = regexp.MustCompile(`("generated": "|timestamp="|hostname=")[^"]*"`)
	timePromRE = regexp.MustCompile(`(?m)^capturectl_audit_last_run_timestamp_seconds \S+$`)
)

func normalizeAuditTime(b []byte) []byte {
	b = timeAttrRE.ReplaceAll(b, []byte(`${1}TIME"`))
	return timePromRE.ReplaceAll(b, []byte("capturectl_audit_last_run_timestamp_seconds TIME"))
}

// goldenFile compares got with testdata/golden/audit/name at the top of
// the module, or rewrites the file with -update.
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "golden", "audit", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file %s (go test -update rewrites it)\ngot:\n%s", name, path, got)
	}
}

// Every output of an audit of the 20-host lab and of the distributed
// switch lab, byte for byte apart from the time: the checks' texts, the
// inventory read and the renderers together.
func TestAuditGoldenLabs(t *testing.T) {
	for _, lab := range []string{"lab-audit-20", "lab-dvs"} {
		t.Run(lab, func(t *testing.T) {
			labEnv(t, "../../configs/"+lab+".yaml", false)
			dir := t.TempDir()
			junit, prom := filepath.Join(dir, "audit.xml"), filepath.Join(dir, "audit.prom")
			ctx := context.Background()
			text, stderr, err := auditCmd(t, ctx, "--junit", junit, "--prom", prom)
			if exitCode(err) != 1 {
				t.Fatalf("exit %d (%v); want 1 (findings)\n%s", exitCode(err), err, stderr)
			}
			js, stderr, err := auditCmd(t, ctx, "--json")
			if exitCode(err) != 1 {
				t.Fatalf("--json: exit %d (%v); want 1 (findings)\n%s", exitCode(err), err, stderr)
			}
			goldenFile(t, lab+".txt", []byte(text))
			testenv.ValidateJSON(t, "../../report/schema/audit-v1.schema.json", []byte(js))
			goldenFile(t, lab+".json", normalizeAuditTime([]byte(js)))
			for _, f := range []struct{ path, name string }{{junit, lab + ".xml"}, {prom, lab + ".prom"}} {
				data, err := os.ReadFile(f.path)
				if err != nil {
					t.Fatal(err)
				}
				if f.path == junit {
					testenv.CheckAntJUnit(t, data)
				} else {
					promtool(t, data)
				}
				goldenFile(t, f.name, normalizeAuditTime(data))
			}
		})
	}
}

// promtool checks a Prometheus textfile with the Prometheus project's own
// linter, as the node exporter's textfile collector would read it.
func promtool(t *testing.T, data []byte) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		testenv.Missing(t, "promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, data)
	}
}
