package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/capturectl/capturectl/audit"
	"github.com/capturectl/capturectl/correlate"
)

// Renderers of `capturectl audit`: a terminal summary (colour only when
// asked), JSON (schema AuditSchemaVersion), JUnit XML (one test case per
// checked object, findings as failures) and the Prometheus textfile
// collector format, of the result of package audit.
//
// Every renderer orders its output the same way for the same Audit: hosts
// by name, objects by path, findings by path then ID, and verify results
// in the order given. The only time-dependent values are Audit.Generated
// and, when present, the verify results (live traces).

// AuditSchemaVersion names the audit JSON layout; it changes when a field
// changes meaning or goes away (fields may be added within a version).
const AuditSchemaVersion = "capturectl.audit/v1"

// Audit is one audit run: the result of audit.Run with what the command
// adds to it.
type Audit struct {
	// Result is the scope asked for (Datacenter, Cluster), the hosts, the
	// checked objects and the findings.
	audit.Result
	// Generated is when the audit ran (JSON "generated", JUnit timestamp,
	// the Prometheus last-run timestamp).
	Generated time.Time
	// Hostname is the machine the audit ran on (JUnit's hostname;
	// empty: localhost).
	Hostname string
	// Checks lists every check (audit.Checks), so that the Prometheus file
	// has a series per check even when it found nothing.
	Checks []audit.Check
	// Verify holds the traces of `audit --verify`; nil when not asked.
	Verify []AuditVerify
	// VerifyDuration is how long each verify trace ran.
	VerifyDuration time.Duration
	// Error says why the audit could not run; when set, only the
	// Prometheus renderer is meaningful (success 0).
	Error string
}

// AuditVerify is the short trace of one affected promiscuous VM.
type AuditVerify struct {
	Finding string `json:"finding"` // ID
	Path    string `json:"path"`    // the finding's path
	VM      string `json:"vm"`
	Host    string `json:"host"`
	// Totals counts frame instances by verdict ID (correlate.Verdict.ID).
	Totals map[string]int `json:"totals"`
	// Filtered is true when the trace saw frames that reverse teaming
	// dropped for the VM: what the monitor does not see.
	Filtered   bool   `json:"filtered_by_reverse_teaming"`
	Conclusion string `json:"conclusion,omitempty"`
	// Missed lists the flows with frames filtered by reverse teaming.
	Missed []AuditMissed `json:"missed"`
	// Error says why the trace failed; the other fields are then empty.
	Error string `json:"error,omitempty"`
}

// AuditMissed is a flow the monitor VM did not receive (all or some of).
type AuditMissed struct {
	Flow     string `json:"flow"`
	Filtered int    `json:"filtered"`
}

// ---------------------------------------------------------------------------
// Text

// AuditText writes the readable summary. With color, severities and IDs
// are set off with ANSI colours (for a terminal only).
func AuditText(w io.Writer, a *Audit, color bool) error {
	ew := &errWriter{w: w}
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\033[" + code + "m" + s + "\033[0m"
	}
	sevColor := map[string]string{"high": "1;31", "medium": "33"}
	scope := "all datacenters"
	switch {
	case a.Datacenter != "" && a.Cluster != "":
		scope = "datacenter " + a.Datacenter + ", cluster " + a.Cluster
	case a.Datacenter != "":
		scope = "datacenter " + a.Datacenter
	case a.Cluster != "":
		scope = "cluster " + a.Cluster
	}
	ew.printf("capturectl audit of %s: %s, %s checked: %s\n", scope, plural(len(a.Hosts), "host"),
		plural(len(a.Objects), "switch or port group", "switches and port groups"), findingsWords(a))
	for _, f := range a.Findings {
		ew.printf("\n%s %s  %s\n", paint("1", f.ID), paint(sevColor[f.Severity], f.Severity), f.Path)
		ew.printf("  %s\n", f.Title)
		ew.printf("  why: %s\n", f.Detail)
		if len(f.VMs) > 0 {
			var vms []string
			for _, v := range f.VMs {
				s := v.Name + " " + v.NIC
				if f.SwitchType == "distributed" {
					s += " on " + v.Host
				}
				if v.PowerState != "poweredOn" {
					s += " (" + powerWords(v.PowerState) + ")"
				}
				vms = append(vms, s)
			}
			ew.printf("  VMs: %s\n", strings.Join(vms, ", "))
		}
		if len(f.Visibility) > 0 {
			ew.printf("  what they see:\n")
			for _, v := range f.Visibility {
				line := fmt.Sprintf("    %-18s -> %-18s %s", v.Source, v.Destination, v.Seen)
				if v.Note != "" {
					line += ": " + v.Note
				}
				ew.printf("%s\n", line)
			}
		}
		ew.printf("  fix: %s\n", f.Fix)
	}
	if a.Verify != nil {
		ew.printf("\nVerify: a %s trace of each affected promiscuous VM\n", a.VerifyDuration)
		if len(a.Verify) == 0 {
			ew.printf("  no powered-on promiscuous VM to trace\n")
		}
		for _, v := range a.Verify {
			ew.printf("  %s on %s (%s %s): ", v.VM, v.Host, v.Finding, v.Path)
			if v.Error != "" {
				ew.printf("trace failed: %s\n", v.Error)
				continue
			}
			ew.printf("%s\n", verdictCounts(v.Totals))
			for _, m := range v.Missed {
				ew.printf("    not received: %s (%d filtered by reverse teaming)\n", m.Flow, m.Filtered)
			}
			if v.Conclusion != "" {
				ew.printf("    %s\n", v.Conclusion)
			}
		}
	}
	return ew.err
}

func findingsWords(a *Audit) string {
	if len(a.Findings) == 0 {
		return "no findings"
	}
	sev := a.Severities()
	var parts []string
	for _, s := range sortedKeys(sev) {
		parts = append(parts, fmt.Sprintf("%d %s", sev[s], s))
	}
	return plural(len(a.Findings), "finding") + " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return strconv.Itoa(n) + " " + many[0]
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// verdictCounts says the non-zero counts in verdict order, with the
// verdicts' names.
func verdictCounts(totals map[string]int) string {
	var parts []string
	for _, v := range correlate.Verdicts() {
		if n := totals[v.ID()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	if len(parts) == 0 {
		return "no frames"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// ---------------------------------------------------------------------------
// JSON

type auditJSON struct {
	Schema         string          `json:"schema"`
	Generated      time.Time       `json:"generated"`
	Scope          auditScope      `json:"scope"`
	Summary        auditSummary    `json:"summary"`
	Checks         []audit.Check   `json:"checks"`
	Hosts          []string        `json:"hosts"`
	Findings       []audit.Finding `json:"findings"`
	Objects        []audit.Object  `json:"objects"`
	VerifyDuration string          `json:"verify_duration,omitempty"`
	Verify         []AuditVerify   `json:"verify,omitempty"`
}

type auditScope struct {
	Datacenter string `json:"datacenter"`
	Cluster    string `json:"cluster"`
}

type auditSummary struct {
	Hosts      int            `json:"hosts"`
	Objects    int            `json:"objects"`
	Findings   int            `json:"findings"`
	BySeverity map[string]int `json:"by_severity"`
	ByID       map[string]int `json:"by_id"`
}

// AuditJSON writes the audit as one JSON document (AuditSchemaVersion).
// Lists are never null; maps are written with sorted keys.
func AuditJSON(w io.Writer, a *Audit) error {
	j := auditJSON{Schema: AuditSchemaVersion, Generated: a.Generated.UTC().Truncate(time.Second),
		Scope:    auditScope{a.Datacenter, a.Cluster},
		Summary:  auditSummary{Hosts: len(a.Hosts), Objects: len(a.Objects), Findings: len(a.Findings), BySeverity: map[string]int{}, ByID: map[string]int{}},
		Checks:   nonNil(a.Checks),
		Hosts:    nonNil(a.Hosts),
		Findings: []audit.Finding{},
		Objects:  nonNil(a.Objects),
		Verify:   a.Verify,
	}
	for _, c := range a.Checks {
		j.Summary.ByID[c.ID] = 0
		j.Summary.BySeverity[c.Severity] = 0
	}
	for _, f := range a.Findings {
		j.Summary.ByID[f.ID]++
		j.Summary.BySeverity[f.Severity]++
		f.ActiveUplinks, f.StandbyUplinks, f.VMs = nonNil(f.ActiveUplinks), nonNil(f.StandbyUplinks), nonNil(f.VMs)
		j.Findings = append(j.Findings, f)
	}
	if a.Verify != nil {
		j.VerifyDuration = a.VerifyDuration.String()
		for i := range j.Verify {
			j.Verify[i].Missed = nonNil(j.Verify[i].Missed)
			if j.Verify[i].Totals == nil {
				j.Verify[i].Totals = map[string]int{}
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("report: audit JSON: %w", err)
	}
	return nil
}

func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// ---------------------------------------------------------------------------
// JUnit XML

// AuditJUnit writes JUnit XML: one test suite "capturectl audit" with a
// test case per checked object (classname capturectl.audit.KIND, name the
// object's path); an object with findings fails, its failure type is the
// finding IDs and its body each finding with its fix.
func AuditJUnit(w io.Writer, a *Audit) error {
	byPath := map[string][]audit.Finding{}
	for _, f := range a.Findings {
		byPath[f.Path] = append(byPath[f.Path], f)
	}
	s := JUnitSuite{Name: "capturectl audit", Timestamp: a.Generated, Hostname: a.Hostname,
		Properties: []JUnitProperty{{"datacenter", a.Datacenter}, {"cluster", a.Cluster}, {"hosts", strconv.Itoa(len(a.Hosts))}}}
	objects := append([]audit.Object(nil), a.Objects...)
	known := map[string]bool{}
	for _, o := range objects {
		known[o.Path] = true
	}
	for _, f := range a.Findings { // a finding always names a checked object; never lose one
		if !known[f.Path] {
			known[f.Path] = true
			objects = append(objects, audit.Object{Path: f.Path, Kind: "object", Host: f.Host})
		}
	}
	sort.SliceStable(objects, func(i, j int) bool { return objects[i].Path < objects[j].Path })
	for _, o := range objects {
		c := JUnitCase{ClassName: "capturectl.audit." + o.Kind, Name: o.Path}
		if fs := byPath[o.Path]; len(fs) > 0 {
			var ids, msgs, body []string
			for _, f := range fs {
				ids = append(ids, f.ID)
				msgs = append(msgs, f.ID+": "+f.Title)
				body = append(body, fmt.Sprintf("%s (%s) %s\nwhy: %s\nfix: %s", f.ID, f.Severity, f.Title, f.Detail, f.Fix))
			}
			c.Failure = &JUnitFailure{Message: strings.Join(msgs, "; "), Type: strings.Join(ids, ","), Body: strings.Join(body, "\n\n")}
		}
		s.Cases = append(s.Cases, c)
	}
	return JUnit(w, []JUnitSuite{s})
}

// ---------------------------------------------------------------------------
// Prometheus textfile collector

// AuditPrometheus writes the metrics of the run in the Prometheus text
// exposition format, for node_exporter's textfile collector:
//
//	capturectl_audit_success                      1 when the audit ran, 0 when it could not
//	capturectl_audit_last_run_timestamp_seconds   Unix time of the run
//	capturectl_audit_hosts                        hosts in scope
//	capturectl_audit_objects                      switches and port groups checked
//	capturectl_audit_findings{id,severity}        findings per check (0 included)
//	capturectl_audit_finding{id,severity,path}    1 per finding
//
// When the audit could not run (Error set), only the first two are
// written. The caller should write the file atomically (a temporary file
// renamed over it), as the collector may read it at any time.
func AuditPrometheus(w io.Writer, a *Audit) error {
	ew := &errWriter{w: w}
	metric := func(name, help string) {
		ew.printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	success := 1
	if a.Error != "" {
		success = 0
	}
	metric("capturectl_audit_success", "Whether the last capturectl audit ran (1) or could not run (0).")
	ew.printf("capturectl_audit_success %d\n", success)
	metric("capturectl_audit_last_run_timestamp_seconds", "Unix time of the last capturectl audit.")
	ew.printf("capturectl_audit_last_run_timestamp_seconds %s\n", promFloat(float64(a.Generated.UnixMilli())/1000))
	if a.Error != "" {
		return ew.err
	}
	metric("capturectl_audit_hosts", "Hosts in the scope of the last capturectl audit.")
	ew.printf("capturectl_audit_hosts %d\n", len(a.Hosts))
	metric("capturectl_audit_objects", "Switches and port groups checked by the last capturectl audit.")
	ew.printf("capturectl_audit_objects %d\n", len(a.Objects))
	metric("capturectl_audit_findings", "Findings of the last capturectl audit by check and severity.")
	count := map[[2]string]int{}
	var keys [][2]string
	for _, c := range a.Checks {
		k := [2]string{c.ID, c.Severity}
		if _, ok := count[k]; !ok {
			keys = append(keys, k)
		}
		count[k] += 0
	}
	for _, f := range a.Findings {
		k := [2]string{f.ID, f.Severity}
		if _, ok := count[k]; !ok {
			keys = append(keys, k)
		}
		count[k]++
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		ew.printf("capturectl_audit_findings{id=%s,severity=%s} %d\n", promLabel(k[0]), promLabel(k[1]), count[k])
	}
	if len(a.Findings) > 0 {
		metric("capturectl_audit_finding", "One series per finding of the last capturectl audit, by check, severity and object path.")
		for _, f := range a.Findings {
			ew.printf("capturectl_audit_finding{id=%s,severity=%s,path=%s} 1\n", promLabel(f.ID), promLabel(f.Severity), promLabel(f.Path))
		}
	}
	return ew.err
}

// promLabel quotes a label value: backslash, double quote and line feed
// are escaped.
func promLabel(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func promFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
