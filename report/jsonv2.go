package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/capturectl/capturectl/correlate"
)

// SchemaVersionV2 names the v2 JSON layout (JSONV2). v2 is v1 regrouped so
// that it stays open for what later versions of capturectl add without a
// v3: the verdict vocabulary is listed in the document and every count is
// keyed by verdict id (a reader keeps working when an id is added); hosts
// have a section (their clocks) and each traced vNIC has one (its port,
// team uplink, points, verdict totals, conclusion and flows), so that a run
// over several VMs or hosts is one document. v1 (JSON) stays as it was.
const SchemaVersionV2 = "capturectl.trace/v2"

// VMTrace is one traced vNIC's part of a run.
type VMTrace struct {
	VM, NIC, Host string
	PortID        uint32
	Result        *correlate.Result
}

type jsonReportV2 struct {
	Schema   string         `json:"schema"`
	Title    string         `json:"title,omitempty"`
	WindowUS int64          `json:"window_us"`
	Verdicts []jsonVerdict  `json:"verdicts"`
	Hosts    []jsonHostV2   `json:"hosts"`
	VMs      []jsonVMV2     `json:"vms"`
	Files    []string       `json:"files,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Path     *jsonWholePath `json:"path,omitempty"`
}

type jsonVerdict struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

type jsonHostV2 struct {
	Host  string       `json:"host"`
	Clock *jsonClockV2 `json:"clock,omitempty"`
}

type jsonClockV2 struct {
	OffsetUS      int64 `json:"offset_us"`
	UncertaintyUS int64 `json:"uncertainty_us"`
}

type jsonVMV2 struct {
	VM          string         `json:"vm,omitempty"`
	NIC         string         `json:"nic,omitempty"`
	Host        string         `json:"host,omitempty"`
	Port        jsonPort       `json:"port"`
	CommonStart *time.Time     `json:"common_start,omitempty"`
	CommonStop  *time.Time     `json:"common_stop,omitempty"`
	TeamUplinks []jsonChange   `json:"team_uplinks"`
	TeamCheck   jsonCheck      `json:"team_uplink_check"`
	Points      []jsonPoint    `json:"points"`
	Totals      map[string]int `json:"totals"`
	Filtered    bool           `json:"filtered_by_reverse_teaming"`
	Conclusion  string         `json:"conclusion"`
	Flows       []jsonFlow     `json:"flows"`
}

// JSONV2 writes the v2 report of a run: m's title, files and clocks, and a
// section per traced vNIC. The hosts are those of the vNICs and clocks, in
// order of appearance.
func JSONV2(w io.Writer, vms []VMTrace, m Meta) error {
	if len(vms) == 0 {
		return fmt.Errorf("report: JSON v2: no traced vNIC")
	}
	j := jsonReportV2{Schema: SchemaVersionV2, Title: m.Title, WindowUS: vms[0].Result.Window.Microseconds(), Files: m.Files, Notes: m.Notes,
		Hosts: []jsonHostV2{}, VMs: []jsonVMV2{}}
	for _, v := range correlate.Verdicts() {
		j.Verdicts = append(j.Verdicts, jsonVerdict{v.ID(), v.String()})
	}
	hostAt := map[string]int{}
	host := func(h string) *jsonHostV2 {
		if k, ok := hostAt[h]; ok {
			return &j.Hosts[k]
		}
		hostAt[h] = len(j.Hosts)
		j.Hosts = append(j.Hosts, jsonHostV2{Host: h})
		return &j.Hosts[len(j.Hosts)-1]
	}
	for _, v := range vms {
		if v.Host != "" {
			host(v.Host)
		}
	}
	for _, c := range m.Clocks {
		host(c.Host).Clock = &jsonClockV2{c.Offset.Microseconds(), c.Uncertainty.Microseconds()}
	}
	if m.Path != nil {
		j.Path = pathJSON(m.Path)
	}
	for _, v := range vms {
		if v.Result.Window != vms[0].Result.Window {
			return fmt.Errorf("report: JSON v2: vNICs judged with different windows (%v, %v)", vms[0].Result.Window, v.Result.Window)
		}
		one := jsonV1(v.Result, Meta{PortID: v.PortID})
		j.VMs = append(j.VMs, jsonVMV2{VM: v.VM, NIC: v.NIC, Host: v.Host, Port: one.Port, CommonStart: one.CommonStart, CommonStop: one.CommonStop,
			TeamUplinks: one.TeamUplinks, TeamCheck: one.TeamCheck, Points: one.Points, Totals: one.Totals, Filtered: one.Filtered,
			Conclusion: one.Conclusion, Flows: one.Flows})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("report: JSON v2: %w", err)
	}
	return nil
}
