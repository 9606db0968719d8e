package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/internal/testenv"
)

// Every shipped scripted check passes, and writes JUnit.
func TestShippedChecks(t *testing.T) {
	files, _ := filepath.Glob("../../configs/checks/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d checks", len(files))
	}
	junit := filepath.Join(t.TempDir(), "checks.xml")
	stdout, stderr, err := runCmd(t, context.Background(), append([]string{"check", "--junit", junit}, files...)...)
	if err != nil {
		t.Fatalf("check: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "expectations passed") {
		t.Errorf("output:\n%s", stdout)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `package="capturectl.check"`) || strings.Contains(string(x), `failures="1"`) || strings.Count(string(x), "<testsuite ") != len(files) {
		t.Errorf("junit: %v\n%s", err, x)
	}
	testenv.CheckAntJUnit(t, x)
}

// A wrong expectation fails with a readable diff and exit code 1.
func TestCheckWrongExpectation(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "wrong.yaml")
	os.WriteFile(sc, []byte(`name: wrong
lab: lab-non-team-uplink.yaml
vm: web1
duration: 2s
filters: {proto: "0x01"}
traffic:
  - {kind: ping, from: ext1, to: web1, interval: 300ms}
expect:
  - flow: ICMP echo request 192.168.100.201 > 192.168.100.31
    counts: {delivered: {min: 1}}
`), 0o600)
	junit := filepath.Join(dir, "j.xml")
	stdout, _, err := runCmd(t, context.Background(), "check", "--junit", junit, sc)
	if exitCode(err) != exitError {
		t.Fatalf("exit %d (%v); want 1\n%s", exitCode(err), err, stdout)
	}
	if !strings.Contains(stdout, "FAIL    wrong") || !strings.Contains(stdout, "wrong: ICMP echo request 192.168.100.201 > 192.168.100.31: delivered: got 0, want at least 1") {
		t.Errorf("output:\n%s", stdout)
	}
	if x, _ := os.ReadFile(junit); !strings.Contains(string(x), `failures="1"`) {
		t.Errorf("junit:\n%s", x)
	}
}

func TestCheckScenarioErrors(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"vm: a\nbogus: 1\nexpect: [{counts: {delivered: 1}}]\n": "field bogus not found",
		"vm: a\nexpect: [{counts: {deliverd: 1}}]\n":            `unknown verdict "deliverd"`,
		"vm: a\n":                                     "no expectations",
		"expect: [{counts: {delivered: 1}}]\n":        "vm is required",
		"vm: a\nexpect: [{counts: {delivered: x}}]\n": "want a count or {min: N, max: M}",
	} {
		f := filepath.Join(dir, "s.yaml")
		os.WriteFile(f, []byte(body), 0o600)
		_, _, err := runCmd(t, context.Background(), "check", f)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want a usage error containing %q", body, err, want)
		}
	}
}
