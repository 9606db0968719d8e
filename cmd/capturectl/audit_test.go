package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// auditCmd runs the audit command with buffers. (It calls runAudit
// directly: main.go's command table is not this file's.)
func auditCmd(t testing.TB, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errb syncBuf
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv}
	err := runAudit(ctx, e, args)
	return out.String(), errb.String(), err
}

type auditDoc struct {
	Schema    string `json:"schema"`
	Generated string `json:"generated"`
	Summary   struct {
		Hosts    int `json:"hosts"`
		Findings int `json:"findings"`
	} `json:"summary"`
	Findings []struct {
		ID   string `json:"id"`
		Path string `json:"path"`
		VMs  []struct {
			Name string `json:"name"`
		} `json:"vms"`
	} `json:"findings"`
	Verify []struct {
		VM       string         `json:"vm"`
		Totals   map[string]int `json:"totals"`
		Filtered bool           `json:"filtered_by_reverse_teaming"`
		Missed   []struct {
			Flow     string `json:"flow"`
			Filtered int    `json:"filtered"`
		} `json:"missed"`
		Error string `json:"error"`
	} `json:"verify"`
}

var generatedRE = regexp.MustCompile(`"generated": "[^"]*"`)

// The 20-host lab: exactly the seeded findings, in every output, and the
// same JSON twice.
func TestAuditLab20(t *testing.T) {
	labEnv(t, "../../configs/lab-audit-20.yaml", false)
	dir := t.TempDir()
	junit, prom := filepath.Join(dir, "audit.xml"), filepath.Join(dir, "audit.prom")
	ctx := context.Background()

	// how fast: BenchmarkAudit20 (a time limit here would fail on a busy
	// machine, not on a slow audit)
	text, stderr, err := auditCmd(t, ctx, "--junit", junit, "--prom", prom)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v); want 1 (findings)\n%s", exitCode(err), err, stderr)
	}
	if err.Error() != "audit: 6 findings (4 high, 2 medium)" {
		t.Errorf("error %q", err)
	}
	if strings.Contains(text, "\033") {
		t.Error("ANSI colour on a non-terminal")
	}
	wantFindings := []string{
		"RT001 DC0/esx01/vSwitch1/IDS", "RT001 DC0/esx02/vSwitch1/Monitor", "RT001 DC0/esx03/vSwitch1/L2VPN",
		"RT002 DC0/esx04/vSwitch1", "RT003 DC0/esx05/vSwitch1/DB", "RT004 DC0/esx06/vSwitch1/Sniffer",
	}
	// Text: one header line per finding, in order.
	var textFindings []string
	for _, m := range regexp.MustCompile(`(?m)^(RT\d{3}) (?:high|medium)  (\S+)$`).FindAllStringSubmatch(text, -1) {
		textFindings = append(textFindings, m[1]+" "+m[2])
	}
	if !reflect.DeepEqual(textFindings, wantFindings) {
		t.Errorf("text findings %q; want %q\n%s", textFindings, wantFindings, text)
	}
	if !strings.HasPrefix(text, "capturectl audit of all datacenters: 20 hosts, 95 switches and port groups checked: 6 findings (4 high, 2 medium)\n") {
		t.Errorf("text header:\n%s", text)
	}

	// JSON, twice: equal apart from "generated".
	j1, _, err1 := auditCmd(t, ctx, "--json")
	j2, _, err2 := auditCmd(t, ctx, "--json", "--parallel", "1")
	if exitCode(err1) != 1 || exitCode(err2) != 1 {
		t.Fatalf("--json: %v, %v", err1, err2)
	}
	if generatedRE.ReplaceAllString(j1, "") != generatedRE.ReplaceAllString(j2, "") {
		t.Error("two audits of the same inventory differ beyond \"generated\"")
	}
	var doc auditDoc
	if err := json.Unmarshal([]byte(j1), &doc); err != nil {
		t.Fatal(err)
	}
	var jsonFindings []string
	for _, f := range doc.Findings {
		jsonFindings = append(jsonFindings, f.ID+" "+f.Path)
	}
	if doc.Schema != "capturectl.audit/v1" || doc.Summary.Hosts != 20 || doc.Summary.Findings != 6 || !reflect.DeepEqual(jsonFindings, wantFindings) {
		t.Errorf("JSON: schema %s, %d hosts, findings %q", doc.Schema, doc.Summary.Hosts, jsonFindings)
	}
	if _, err := time.Parse(time.RFC3339, doc.Generated); err != nil {
		t.Errorf("generated %q: %v", doc.Generated, err)
	}

	// JUnit: a test case per checked object, the seeded ones failing.
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var jdoc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Type string `xml:"type,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &jdoc); err != nil || len(jdoc.Suites) != 1 {
		t.Fatalf("%v: %d suites", err, len(jdoc.Suites))
	}
	ju := jdoc.Suites[0]
	var failed []string
	for _, c := range ju.Cases {
		if c.Failure != nil {
			failed = append(failed, c.Failure.Type+" "+c.Name)
		}
	}
	sort.Strings(failed)
	if ju.Tests != 95 || len(ju.Cases) != 95 || ju.Failures != 6 || !reflect.DeepEqual(failed, wantFindings) {
		t.Errorf("JUnit: %d tests, %d failures %q", ju.Tests, ju.Failures, failed)
	}

	// Prometheus textfile.
	data, err = os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"capturectl_audit_success 1\n", "capturectl_audit_hosts 20\n", "capturectl_audit_objects 95\n",
		`capturectl_audit_findings{id="RT001",severity="high"} 3` + "\n",
		`capturectl_audit_findings{id="RT002",severity="high"} 1` + "\n",
		`capturectl_audit_findings{id="RT003",severity="medium"} 1` + "\n",
		`capturectl_audit_findings{id="RT004",severity="medium"} 1` + "\n",
		`capturectl_audit_findings{id="RT005",severity="medium"} 0` + "\n",
		`capturectl_audit_finding{id="RT004",severity="medium",path="DC0/esx06/vSwitch1/Sniffer"} 1` + "\n",
		"capturectl_audit_last_run_timestamp_seconds ",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("prom file lacks %q:\n%s", want, data)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}

	// Scope: a datacenter that exists, and ones that do not.
	if _, _, err := auditCmd(t, ctx, "--datacenter", "DC0", "--json"); exitCode(err) != 1 {
		t.Errorf("--datacenter DC0: %v", err)
	}
	_, _, err = auditCmd(t, ctx, "--datacenter", "nope", "--prom", prom)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), `audit: could not run: datacenter "nope" not found (datacenters with hosts: DC0)`) {
		t.Errorf("--datacenter nope: exit %d, %v", exitCode(err), err)
	}
	if data, _ := os.ReadFile(prom); !strings.Contains(string(data), "capturectl_audit_success 0\n") || strings.Contains(string(data), "findings{") {
		t.Errorf("prom file after a failed run:\n%s", data)
	}
	if _, _, err := auditCmd(t, ctx, "--cluster", "nope"); exitCode(err) != exitUsage {
		t.Errorf("--cluster nope (the lab has no clusters): exit %d, %v", exitCode(err), err)
	}
}

// A lab without promiscuous port groups or IP hash: exit 0.
func TestAuditClean(t *testing.T) {
	labEnv(t, "../../configs/lab-article.yaml", false)
	out, stderr, err := auditCmd(t, context.Background())
	if err != nil {
		t.Fatalf("exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	if !strings.Contains(out, "2 hosts, 8 switches and port groups checked: no findings") {
		t.Errorf("output:\n%s", out)
	}
}

// Could not run, and bad usage: exit code 2.
func TestAuditCouldNotRun(t *testing.T) {
	t.Setenv("GOVC_URL", "")
	t.Setenv("GOVC_USERNAME", "u")
	t.Setenv("GOVC_PASSWORD", "p")
	ctx := context.Background()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--parallel", "0"}, "--parallel 0"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"--verify-duration", "0s"}, "--verify-duration"},
		{nil, "URL"},
		{[]string{"--url", "https://127.0.0.1:1/sdk"}, "audit: could not run"},
	}
	for _, c := range cases {
		_, stderr, err := auditCmd(t, ctx, c.args...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error()+stderr, c.want) {
			t.Errorf("audit %q: exit %d, %v; want %d and %q", c.args, exitCode(err), err, exitUsage, c.want)
		}
	}
}

// --verify on the promiscuous-monitor lab: the monitor's trace shows the
// echo requests from outside to app2 (which arrive on vmnic3, app2's team
// uplink) filtered by reverse teaming: what the monitor does not see.
func TestAuditVerify(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-promiscuous-monitor.yaml", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			l.Net.Ping(ctx, "ext1", "app2", 1, 0) // external -> local, arrives on vmnic3
			l.Net.Ping(ctx, "ext1", "app1", 1, 0) // external -> local, arrives on vmnic2
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	out, stderr, err := auditCmd(t, context.Background(), "--verify", "--verify-duration", "2s", "--known-hosts", kh, "--json")
	t.Logf("audit --verify: %s", time.Since(start))
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v); want 1\n%s", exitCode(err), err, stderr)
	}
	var doc auditDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Findings) != 1 || doc.Findings[0].ID != "RT001" || doc.Findings[0].Path != "DC0/esx01/vSwitch1/Monitor-VLAN100" {
		t.Fatalf("findings %+v", doc.Findings)
	}
	var vms []string
	for _, v := range doc.Verify {
		vms = append(vms, v.VM)
		if v.Error != "" {
			t.Errorf("verify %s: %s", v.VM, v.Error)
		}
		if v.VM != "monitor" {
			continue
		}
		missedApp2 := 0
		for _, m := range v.Missed {
			if strings.Contains(m.Flow, "> 192.168.100.22") {
				missedApp2 += m.Filtered
			}
			if strings.Contains(m.Flow, "> 192.168.100.21") {
				t.Errorf("monitor missed frames to app1, which arrive on its own team uplink: %+v", m)
			}
		}
		if !v.Filtered || missedApp2 == 0 || v.Totals["filtered_reverse_teaming"] == 0 {
			t.Errorf("monitor's verify trace shows no frames to app2 filtered by reverse teaming: %+v", v)
		}
		t.Logf("monitor: %v; missed %+v", v.Totals, v.Missed)
	}
	if !reflect.DeepEqual(vms, []string{"app1", "app2", "monitor"}) {
		t.Errorf("verified VMs %q; want every powered-on VM of the promiscuous port group", vms)
	}
	procs, _ := l.Processes("esx01")
	for _, p := range procs {
		if len(p.Cmdline) > 0 && p.Cmdline[0] == "pktcap-uw" {
			t.Errorf("left running on esx01: %v", p.Cmdline)
		}
	}
}

// BenchmarkAudit20 is an audit of the 20-host lab through its vCenter:
// connect, read every host, check, write the JUnit and Prometheus files.
func BenchmarkAudit20(b *testing.B) {
	labEnv(b, "../../configs/lab-audit-20.yaml", false)
	dir := b.TempDir()
	for b.Loop() {
		_, _, err := auditCmd(b, context.Background(), "--junit", filepath.Join(dir, "audit.xml"), "--prom", filepath.Join(dir, "audit.prom"))
		if exitCode(err) != 1 {
			b.Fatalf("exit %d (%v); want 1 (findings)", exitCode(err), err)
		}
	}
}
