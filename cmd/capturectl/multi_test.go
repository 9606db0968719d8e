//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/lab"
)

const traceV2Schema = "../../report/schema/trace-v2.schema.json"

// pingLoop pings from an external station to a VM until the test ends.
func pingLoop(t *testing.T, l *lab.Lab, from, to string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			l.Net.Ping(ctx, from, to, 1, 0)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

func counts(t *testing.T, l *lab.Lab, host string) lab.Counts {
	t.Helper()
	c, err := l.Counts(host)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trace --vm app2 --vm monitor on the promiscuous-monitor lab: one run
// (esx01's two uplinks captured once, PortOutput and VnicRx of each port:
// 6 pktcap-uw sessions), a section per vNIC in the terminal report, the
// HTML and the JSON v2 (valid against its schema); the monitor misses the
// echo requests to app2 (they arrive on vmnic3, its team uplink is
// vmnic2), so the run exits 3.
func TestTraceTwoVMs(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-promiscuous-monitor.yaml", false)
	pingLoop(t, l, "ext1", "app2")
	dir := t.TempDir()
	before := counts(t, l, "esx01")
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "app2", "--vm", "monitor", "--duration", "2500ms",
		"--known-hosts", kh, "--proto", "0x01", "--out", dir)
	if exitCode(err) != exitFiltered {
		t.Fatalf("exit %d (%v); want %d\n%s\n%s", exitCode(err), err, exitFiltered, stdout, stderr)
	}
	after := counts(t, l, "esx01")
	if n := after.Captures - before.Captures; n != 6 {
		t.Errorf("%d pktcap-uw sessions on esx01; want 6 (vmnic2 and vmnic3 once, PortOutput and VnicRx of both ports)", n)
	}
	for _, want := range []string{"capturectl trace of 2 vNICs", "== app2 Network adapter 1 on esx01", "== monitor Network adapter 1 on esx01",
		"== 2 vNICs", "filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the report:\n%s", want, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^  app2 Network adapter 1 on esx01, port \d+: Result: nothing was filtered by reverse teaming`).MatchString(stdout) {
		t.Errorf("app2's conclusion line is not that nothing was filtered:\n%s", stdout)
	}
	data, err := os.ReadFile(filepath.Join(dir, "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, traceV2Schema, data)
	var doc struct {
		Schema string `json:"schema"`
		VMs    []struct {
			VM       string         `json:"vm"`
			Filtered bool           `json:"filtered_by_reverse_teaming"`
			Totals   map[string]int `json:"totals"`
		} `json:"vms"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "capturectl.trace/v2" || len(doc.VMs) != 2 || doc.VMs[0].VM != "app2" || doc.VMs[1].VM != "monitor" ||
		doc.VMs[0].Filtered || !doc.VMs[1].Filtered || doc.VMs[1].Totals["filtered_reverse_teaming"] == 0 {
		t.Errorf("JSON v2: %+v", doc)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "trace.html"))
	if n := strings.Count(string(html), `<h2 class="vm">`); n != 2 {
		t.Errorf("HTML has %d vNIC sections; want 2", n)
	}
}

// --dry-run (trace and capture) after discovery through the vCenter: every
// host, point and exact pktcap-uw command, and not one SSH connection.
func TestDryRun(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-promiscuous-monitor.yaml", false)
	before := counts(t, l, "esx01")
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--portgroup", "Monitor-VLAN100", "--dry-run", "--known-hosts", kh, "--proto", "0x01")
	if err != nil {
		t.Fatalf("trace --dry-run: %v\n%s", err, stderr)
	}
	for _, want := range []string{"vNIC app1 Network adapter 1", "vNIC app2 Network adapter 1", "vNIC monitor Network adapter 1",
		"host esx01: 8 capture points over one SSH connection",
		"esx01/vmnic2/rx", "for app1 Network adapter 1, app2 Network adapter 1, monitor Network adapter 1",
		"pktcap-uw --uplink vmnic2 -s 0 --proto 0x01 -o -"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the plan:\n%s", want, stdout)
		}
	}
	out2, stderr, err := runCmd(t, context.Background(), "capture", "--vm", "app1", "--dry-run")
	if err != nil || !strings.Contains(out2, "host esx01: 4 capture points") || !strings.Contains(out2, "--capture VnicRx") {
		t.Errorf("capture --dry-run: %v\n%s\n%s", err, out2, stderr)
	}
	if after := counts(t, l, "esx01"); after != before {
		t.Errorf("dry runs touched esx01: %+v before, %+v after", before, after)
	}
	// a plan over the per-host limit is refused before connecting, saying why
	_, _, err = runCmd(t, context.Background(), "trace", "--portgroup", "Monitor-VLAN100", "--vm", "app1", "--dry-run", "--json-version", "1")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "need version 2") {
		t.Errorf("several vNICs with --json-version 1: %v", err)
	}
}

// --verify traces the three affected VMs of esx01 in one run: its uplinks
// once, 8 pktcap-uw sessions where one trace per VM started 12 (4 each).
func TestAuditVerifyShared(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-promiscuous-monitor.yaml", false)
	pingLoop(t, l, "ext1", "app2")
	before := counts(t, l, "esx01")
	out, stderr, err := auditCmd(t, context.Background(), "--verify", "--verify-duration", "2s", "--known-hosts", kh, "--json")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v); want 1\n%s", exitCode(err), err, stderr)
	}
	after := counts(t, l, "esx01")
	sessions := after.Captures - before.Captures
	t.Logf("audit --verify on esx01: %d pktcap-uw sessions, %d SSH connections (one trace per VM, measured on the code before: 12 sessions, 3 SSH connections)",
		sessions, after.SSHConnections-before.SSHConnections)
	if sessions != 8 {
		t.Errorf("%d pktcap-uw sessions; want 8 (vmnic2, vmnic3, PortOutput and VnicRx of 3 ports)", sessions)
	}
	if n := strings.Count(stderr, "audit --verify: tracing "); n != 1 || !regexp.MustCompile(`tracing app1 Network adapter 1 \(port \d+ on esx01.*; app2 .*; monitor .* for 2s`).MatchString(stderr) {
		t.Errorf("%d verify runs; want one for the three VMs:\n%s", n, stderr)
	}
	if !strings.Contains(out, `"filtered_reverse_teaming"`) {
		t.Errorf("verify results:\n%s", out)
	}
}

// The live view in a pseudo-terminal (script(1)): hidden cursor, the
// block redrawn in place, bold headings, the final state left on the
// screen and the cursor shown again; NO_COLOR=1: the same without bold;
// not a terminal: plain lines, no escape code.
func TestLiveViewPTY(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		testenv.Missing(t, "script (util-linux/bsdutils) is needed to run capturectl in a pseudo-terminal")
	}
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	bin := buildCapturectl(t)
	run := func(noColor bool) string {
		cmdline := shQuote(bin) + " trace --vm testvm2 --duration 3s --proto 0x01 --known-hosts " + shQuote(kh) + " >/dev/null"
		cmd := exec.Command(script, "-qfec", cmdline, "/dev/null")
		cmd.Env = append(os.Environ(), beMain+"=1", "TERM=xterm")
		if noColor {
			cmd.Env = append(cmd.Env, "NO_COLOR=1")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("script: %v\n%q", err, out)
		}
		return string(out)
	}
	out := run(false)
	heads := regexp.MustCompile(`\r\x1b\[K\x1b\[1m(\d+s of 3s \([0-9]+s left\)) — (\d+) frames at 4 points\x1b\[0m`).FindAllStringSubmatch(out, -1)
	hide, show := strings.Index(out, "\x1b[?25l"), strings.LastIndex(out, "\x1b[?25h")
	if len(heads) < 2 || hide < 0 || show < hide || !strings.Contains(out, "\r\x1b[6A") {
		t.Fatalf("no live view redrawn in place (%d headings):\n%q", len(heads), out)
	}
	if heads[0][2] == heads[len(heads)-1][2] && heads[0][1] == heads[len(heads)-1][1] {
		t.Errorf("the view did not change between its first and last draw: %q", heads)
	}
	last := out[strings.LastIndex(out, "\x1b[1m"):]
	if !strings.Contains(last, "delivered, duplicates removed") || strings.Contains(out[show:], "\x1b[1m") {
		t.Errorf("final state: %q", last)
	}
	if nc := run(true); strings.Contains(nc, "\x1b[1m") || !strings.Contains(nc, "\x1b[?25h") || !strings.Contains(nc, " of 3s") {
		t.Errorf("NO_COLOR=1:\n%q", nc)
	}
	_, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--duration", "2s", "--proto", "0x01", "--known-hosts", kh)
	if err != nil || strings.Contains(stderr, "\x1b") || !regexp.MustCompile(`(?m)^capturectl: 0s of 2s \(2s left\): esx02/vmnic2/rx \d+`).MatchString(stderr) {
		t.Errorf("not a terminal: %v\n%q", err, stderr)
	}
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// trace --json writes v2 (valid against its schema), --json-version 1
// the v1 document (valid against v1's).
func TestTraceJSONVersions(t *testing.T) {
	_, kh := labEnv(t, "../../configs/lab-article.yaml", true)
	for _, c := range []struct {
		version, schema, want string
	}{{"2", traceV2Schema, "capturectl.trace/v2"}, {"1", "../../report/schema/trace-v1.schema.json", "capturectl.trace/v1"}} {
		stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm2", "--duration", "1500ms", "--proto", "0x01",
			"--known-hosts", kh, "--json", "--json-version", c.version)
		if err != nil {
			t.Fatalf("trace --json-version %s: %v\n%s", c.version, err, stderr)
		}
		testenv.ValidateJSON(t, c.schema, []byte(stdout))
		var doc struct{ Schema string }
		if json.Unmarshal([]byte(stdout), &doc); doc.Schema != c.want {
			t.Errorf("--json-version %s: schema %q; want %q", c.version, doc.Schema, c.want)
		}
	}
	// two hosts in one run: a host section each, a vNIC section each
	stdout, stderr, err := runCmd(t, context.Background(), "trace", "--vm", "testvm1", "--vm", "testvm2", "--duration", "1500ms", "--proto", "0x01",
		"--known-hosts", kh, "--json")
	if err != nil {
		t.Fatalf("trace of two hosts: %v\n%s", err, stderr)
	}
	testenv.ValidateJSON(t, traceV2Schema, []byte(stdout))
	var doc struct {
		Hosts []struct{ Host string }
		VMs   []struct {
			VM     string
			Points []struct{ Name string }
		}
	}
	json.Unmarshal([]byte(stdout), &doc)
	if len(doc.Hosts) != 2 || len(doc.VMs) != 2 || doc.VMs[0].VM != "testvm1" || len(doc.VMs[0].Points) != 4 || doc.VMs[1].Points[0].Name != "esx02/vmnic2/rx" {
		t.Errorf("two hosts: %+v", doc)
	}
}

// Bad combinations of the several-VM flags: exit 2 before anything
// connects (no vCenter is configured here).
func TestMultiUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "--json-version", "3", "--vm", "x"}, "--json-version 3: want 2 (the default) or 1"},
		{[]string{"trace", "--vm", "a", "--vm", "b", "--json-version", "1"}, "need version 2"},
		{[]string{"trace", "--portgroup", "PG", "--nic", "1"}, "--nic picks a vNIC of each --vm"},
		{[]string{"trace", "--vm", " "}, `--vm " ": want a VM name`},
		{[]string{"trace", "--duration", "1s"}, "--vm (or --portgroup) is required"},
		{[]string{"capture", "--portgroup", "PG", "--nic", "0", "--dry-run"}, "--nic picks a vNIC of each --vm"},
	} {
		_, _, err := runCmd(t, context.Background(), c.args...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v (exit %d); want exit %d and %q", c.args, err, exitCode(err), exitUsage, c.want)
		}
	}
}
