package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
)

// Reports of a run over several vNICs (trace --vm a --vm b, --portgroup):
// the same report as for one, a section per vNIC.

// vmHeading names a vNIC's section.
func vmHeading(v VMTrace) string {
	h := fmt.Sprintf("%s %s on %s", v.VM, v.NIC, v.Host)
	if v.PortID != 0 {
		h += fmt.Sprintf(", port %d", v.PortID)
	}
	return h
}

// TextVMs is Text for a run over several vNICs: with one it is Text; with
// several, m's title, a section per vNIC (its heading, then its report
// with the clock of its host), a line per vNIC's conclusion, and the files.
// With m.Path, the path's section (PathText) comes before the files.
func TextVMs(w io.Writer, vms []VMTrace, m Meta) error {
	if m.Path != nil {
		// the receiver's report, the path's section, then the files
		path, files := m.Path, m.Files
		m.Path, m.Files = nil, nil
		b := &strings.Builder{}
		if err := TextVMs(b, vms, m); err != nil {
			return err
		}
		if err := PathText(b, path); err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintf(b, "Wrote %s\n", f)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	if len(vms) == 1 {
		v := vms[0]
		m.Host, m.PortID = v.Host, v.PortID
		return Text(w, v.Result, m)
	}
	b := &strings.Builder{}
	if m.Title != "" {
		fmt.Fprintf(b, "%s\n", m.Title)
	}
	for _, v := range vms {
		heading := vmHeading(v)
		fmt.Fprintf(b, "\n== %s\n", heading)
		sm := Meta{Host: v.Host, PortID: v.PortID}
		for _, c := range m.Clocks {
			if c.Host == v.Host {
				sm.Clocks = append(sm.Clocks, c)
			}
		}
		if err := Text(b, v.Result, sm); err != nil {
			return err
		}
	}
	for _, n := range m.Notes {
		fmt.Fprintf(b, "\nNote: %s.\n", n)
	}
	fmt.Fprintf(b, "\n== %d vNICs\n", len(vms))
	for _, v := range vms {
		fmt.Fprintf(b, "  %s: %s\n", vmHeading(v), Conclusion(v.Result))
	}
	for _, f := range m.Files {
		fmt.Fprintf(b, "Wrote %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TargetsLine names traced vNICs on one line: VM, NIC, port, host, VLAN,
// teaming and team uplink of each.
func TargetsLine(ts []esxi.Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s %s (port %d on %s, VLAN %d, %s, team uplink %s)",
			t.VM, t.NIC, t.PortID, t.Host, t.VLAN, esxi.TeamingPolicyDescription(t.TeamingPolicy), t.TeamUplink))
	}
	return strings.Join(parts, "; ")
}

// VerifyAuditVM fills v with what a verify trace saw of the VM's vNIC:
// its totals, whether frames were filtered, the conclusion and the flows
// it missed (audit --verify).
func VerifyAuditVM(v *AuditVerify, r *correlate.Result) {
	v.Totals, v.Filtered, v.Conclusion = correlate.CountsByID(r.Totals), r.Filtered(), Conclusion(r)
	for _, f := range SortedFlows(r) {
		if n := f.Counts[correlate.FilteredReverseTeaming]; n > 0 {
			v.Missed = append(v.Missed, AuditMissed{Flow: f.Key.String(), Filtered: n})
		}
	}
}
