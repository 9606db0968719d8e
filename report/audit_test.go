package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/audit"

	"github.com/capturectl/capturectl/internal/testenv"
)

func sampleAudit() *Audit {
	return &Audit{
		Generated: time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC),
		Checks:    []audit.Check{{ID: "RT001", Severity: "high", Summary: "blind spot"}, {ID: "RT002", Severity: "high", Summary: "iphash mixed"}, {ID: "RT003", Severity: "medium", Summary: "iphash standby"}},
		Result: audit.Result{
			Datacenter: "DC0",
			Hosts:      []string{"esx01", "esx02"},
			Objects: []audit.Object{
				{Path: "DC0/esx01/vSwitch1", Kind: "vswitch", Host: "esx01"},
				{Path: "DC0/esx01/vSwitch1/Mon \"A\"", Kind: "portgroup", Host: "esx01"},
				{Path: "DC0/esx02/vSwitch1", Kind: "vswitch", Host: "esx02"},
			},
			Findings: []audit.Finding{{
				ID: "RT001", Severity: "high", Path: "DC0/esx01/vSwitch1/Mon \"A\"", Datacenter: "DC0", Host: "esx01",
				SwitchType: "standard", Switch: "vSwitch1", Portgroup: `Mon "A"`, Title: "blind spot <here> & there", Detail: "why", Fix: "fix it",
				TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"vmnic2", "vmnic3"},
				VMs:        []audit.AffectedVM{{Name: "mon", Ref: "vm-1", Host: "esx01", NIC: "Network adapter 1", MAC: "00:50:56:00:00:01", PowerState: "poweredOn"}},
				Visibility: []audit.Visibility{{Source: "outside the host", Destination: "outside the host", Seen: "no", Note: "never"}},
			}},
		},
	}
}

func TestAuditText(t *testing.T) {
	a := sampleAudit()
	var plain, color bytes.Buffer
	if err := AuditText(&plain, a, false); err != nil {
		t.Fatal(err)
	}
	if err := AuditText(&color, a, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\033") {
		t.Errorf("colour without a terminal:\n%q", plain.String())
	}
	if !strings.Contains(color.String(), "\033[1;31mhigh\033[0m") {
		t.Errorf("no colour when asked:\n%q", color.String())
	}
	for _, want := range []string{
		"capturectl audit of datacenter DC0: 2 hosts, 3 switches and port groups checked: 1 finding (1 high)",
		"RT001 high  DC0/esx01/vSwitch1/Mon \"A\"",
		"  VMs: mon Network adapter 1\n",
		"outside the host   -> outside the host   no: never",
		"  fix: fix it\n",
	} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, plain.String())
		}
	}
	var clean bytes.Buffer
	a.Findings = nil
	AuditText(&clean, a, false)
	if !strings.Contains(clean.String(), "checked: no findings") {
		t.Errorf("clean audit:\n%s", clean.String())
	}
	var v bytes.Buffer
	a.Verify = []AuditVerify{{Finding: "RT001", Path: "p", VM: "mon", Host: "esx01", Totals: map[string]int{"filtered_reverse_teaming": 3, "local": 2},
		Missed: []AuditMissed{{Flow: "ICMP echo request 10.0.0.1 > 10.0.0.2", Filtered: 3}}}, {VM: "x", Error: "boom"}}
	a.VerifyDuration = 3 * time.Second
	AuditText(&v, a, false)
	for _, want := range []string{"Verify: a 3s trace", "filtered by reverse teaming", "not received: ICMP echo request 10.0.0.1 > 10.0.0.2 (3 filtered by reverse teaming)", "trace failed: boom"} {
		if !strings.Contains(v.String(), want) {
			t.Errorf("verify text lacks %q:\n%s", want, v.String())
		}
	}
}

func TestAuditJSON(t *testing.T) {
	var b1, b2 bytes.Buffer
	if err := AuditJSON(&b1, sampleAudit()); err != nil {
		t.Fatal(err)
	}
	AuditJSON(&b2, sampleAudit())
	if b1.String() != b2.String() {
		t.Error("two renderings of the same audit differ")
	}
	var doc map[string]any
	if err := json.Unmarshal(b1.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != AuditSchemaVersion || doc["generated"] != "2026-03-01T02:00:00Z" {
		t.Errorf("schema %v generated %v", doc["schema"], doc["generated"])
	}
	sum := doc["summary"].(map[string]any)
	if sum["findings"] != 1.0 || sum["hosts"] != 2.0 || sum["by_id"].(map[string]any)["RT002"] != 0.0 || sum["by_severity"].(map[string]any)["high"] != 1.0 {
		t.Errorf("summary %v", sum)
	}
	f := doc["findings"].([]any)[0].(map[string]any)
	if f["standby_uplinks"] == nil || f["vms"].([]any)[0].(map[string]any)["moref"] != "vm-1" {
		t.Errorf("finding %v", f)
	}
	if _, ok := doc["verify"]; ok {
		t.Error("verify present without --verify")
	}
	// An empty audit has lists, not nulls.
	var e bytes.Buffer
	AuditJSON(&e, &Audit{})
	if strings.Contains(e.String(), "null") {
		t.Errorf("null in %s", e.String())
	}
}

func TestAuditJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := AuditJUnit(&b, sampleAudit()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML header: %q", b.String()[:40])
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	s := doc.Suites[0]
	testenv.CheckAntJUnit(t, b.Bytes())
	if len(doc.Suites) != 1 || s.Tests != 3 || s.Failures != 1 || len(s.Cases) != 3 || s.Timestamp != "2026-03-01T02:00:00" {
		t.Fatalf("suites %+v", doc)
	}
	c := s.Cases[1]
	if c.Name != `DC0/esx01/vSwitch1/Mon "A"` || c.ClassName != "capturectl.audit.portgroup" || c.Failure == nil ||
		c.Failure.Type != "RT001" || c.Failure.Message != "RT001: blind spot <here> & there" || !strings.Contains(c.Failure.Body, "fix: fix it") {
		t.Errorf("case %+v failure %+v", c, c.Failure)
	}
	if s.Cases[0].Failure != nil || s.Cases[2].Failure != nil {
		t.Error("clean objects fail")
	}
}

var promLine = regexp.MustCompile(`^([a-z_]+)(\{([a-z_]+="(?:[^"\\]|\\.)*"(?:,[a-z_]+="(?:[^"\\]|\\.)*")*)\})? ([0-9.e+-]+|NaN)$`)

// promSamples checks the text format line by line and returns the samples.
func promSamples(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "# TYPE ") {
			typed[strings.Fields(l)[2]] = true
			continue
		}
		if strings.HasPrefix(l, "# HELP ") {
			continue
		}
		m := promLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a sample line: %q", l)
			continue
		}
		if !typed[m[1]] {
			t.Errorf("%s has no # TYPE before it", m[1])
		}
		out[m[1]+m[2]] = m[4]
	}
	if !strings.HasSuffix(text, "\n") {
		t.Error("no final newline")
	}
	return out
}

func TestAuditPrometheus(t *testing.T) {
	var b bytes.Buffer
	if err := AuditPrometheus(&b, sampleAudit()); err != nil {
		t.Fatal(err)
	}
	got := promSamples(t, b.String())
	want := map[string]string{
		"capturectl_audit_success":                                                                 "1",
		"capturectl_audit_last_run_timestamp_seconds":                                              "1772330400",
		"capturectl_audit_hosts":                                                                   "2",
		"capturectl_audit_objects":                                                                 "3",
		`capturectl_audit_findings{id="RT001",severity="high"}`:                                    "1",
		`capturectl_audit_findings{id="RT002",severity="high"}`:                                    "0",
		`capturectl_audit_findings{id="RT003",severity="medium"}`:                                  "0",
		`capturectl_audit_finding{id="RT001",severity="high",path="DC0/esx01/vSwitch1/Mon \"A\""}`: "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q; want %q\n%s", k, got[k], v, b.String())
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d samples; want %d:\n%s", len(got), len(want), b.String())
	}
	// Could not run: success 0 and the time, nothing else.
	a := sampleAudit()
	a.Error = "login failed"
	b.Reset()
	AuditPrometheus(&b, a)
	got = promSamples(t, b.String())
	if len(got) != 2 || got["capturectl_audit_success"] != "0" {
		t.Errorf("failed run:\n%s", b.String())
	}
	if promLabel("a\\b\"c\nd") != `"a\\b\"c\nd"` {
		t.Errorf("promLabel escaping: %s", promLabel("a\\b\"c\nd"))
	}
}
