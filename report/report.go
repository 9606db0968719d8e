// Package report renders a correlate.Result for people (a terminal
// summary, an HTML page with a picture of each flow's path) and for
// programs (JSON with a versioned schema), and an inventory audit
// (audit.Result) as text, JSON, JUnit XML and a Prometheus textfile. JUnit
// has one writer for every command (JUnit, junit.go). It computes no
// verdicts and finds nothing itself.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/capturectl/capturectl/correlate"
)

// Meta is what the report says about the run besides the result.
type Meta struct {
	// Title, e.g. "trace of testvm2 on esx02".
	Title string
	// Host is the ESXi host of the traced port.
	Host string
	// PortID is the traced switch port.
	PortID uint32
	// Files lists what was written (pcapng, JSON, HTML) for the reader.
	Files []string
	// Clocks are the hosts' clocks as the trace read them, by host.
	Clocks []HostClock
	// Notes are what the run says about capturectl's own part (trace.Notes:
	// drops that may be its doing, pcapng frames out of time order).
	Notes []string
	// Path is the whole path of a trace --from (TextVMs, JSONV2).
	Path *correlate.PathResult
}

// HostClock is what was read of a host's clock: host time = capturectl's
// + Offset, to within ±Uncertainty. Times in the report are the host's
// (its frames'): capturectl's own events were put on its clock.
type HostClock struct {
	Host                string
	Offset, Uncertainty time.Duration
}

// clockMatters is the offset from which the terminal report mentions a
// host's clock.
const clockMatters = 50 * time.Millisecond

func (c HostClock) words() string {
	side, off := "ahead of", c.Offset
	if off < 0 {
		side, off = "behind", -off
	}
	return fmt.Sprintf("%s is %s %s capturectl (±%s); times are the host's", c.Host, off.Round(time.Millisecond), side, c.Uncertainty.Round(100*time.Microsecond))
}

func portLine(r *correlate.Result, m Meta) string {
	p := r.Port
	var parts []string
	if m.PortID != 0 {
		parts = append(parts, fmt.Sprintf("port %d", m.PortID))
	}
	if len(p.MAC) > 0 {
		parts = append(parts, p.MAC.String())
	}
	if p.VLAN > 0 {
		parts = append(parts, fmt.Sprintf("VLAN %d", p.VLAN))
	}
	if p.Policy != "" {
		parts = append(parts, p.Policy.Words())
	}
	if p.Promiscuous {
		parts = append(parts, "promiscuous")
	}
	if p.TeamUplink != "" {
		parts = append(parts, "team uplink "+p.TeamUplink)
	}
	name := p.Name
	if name == "" {
		name = "the traced port"
	}
	if m.Host != "" {
		name += " on " + m.Host
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}

func countsText(c [8]int) string {
	var parts []string
	for _, v := range correlate.Verdicts() {
		if n := c[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	if len(parts) == 0 {
		return "nothing judged"
	}
	return strings.Join(parts, "; ")
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000000")
}

// dropWords is a point's drop count, or "unknown" when it reported none.
func dropWords(p correlate.PointStats) string {
	if p.DropsUnknown {
		return "unknown"
	}
	return strconv.FormatUint(p.Dropped, 10)
}

// Text writes the terminal summary: the port, the capture points, one line
// per flow with its verdict counts, then the first examples per verdict.
func Text(w io.Writer, r *correlate.Result, m Meta) error {
	b := &strings.Builder{}
	if m.Title != "" {
		fmt.Fprintf(b, "%s\n", m.Title)
	}
	fmt.Fprintf(b, "Traced: %s\n\n", portLine(r, m))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "capture point\tframes\tduplicates\tdropped by pktcap-uw\tcapturing")
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s – %s\n", p.Name, p.Observations, p.Duplicates, dropWords(p), clock(p.Start), clock(p.Stop))
	}
	tw.Flush()
	if len(r.TeamUplinks) > 1 {
		fmt.Fprintln(b, "\nTeam uplink changes:")
		for _, ch := range r.TeamUplinks {
			at := "start"
			if !ch.At.IsZero() {
				at = clock(ch.At)
			}
			fmt.Fprintf(b, "  %s  %s (%s)\n", at, ch.Uplink, ch.Source)
		}
	}
	for _, c := range m.Clocks {
		if c.Offset.Abs() >= clockMatters {
			fmt.Fprintf(b, "\nClock: %s.\n", c.words())
		}
	}
	for _, n := range m.Notes {
		fmt.Fprintf(b, "\nNote: %s.\n", n)
	}
	if tc := r.TeamUplinkCheck; tc.Disagree {
		fmt.Fprintf(b, "\nWarning: %s.\n", tc.Detail)
	} else if tc.Insufficient {
		fmt.Fprintf(b, "\nTeam uplink: %s.\n", tc.Detail)
	}
	fmt.Fprintln(b, "\nFlows:")
	if len(r.Flows) == 0 {
		fmt.Fprintln(b, "  none: no frame was captured")
	}
	for _, f := range SortedFlows(r) {
		fmt.Fprintf(b, "  %s\n      %s\n", f.Key, countsText(f.Counts))
	}
	first := true
	for _, v := range correlate.Verdicts() {
		var ex []string
		for _, f := range SortedFlows(r) {
			for _, e := range f.Examples {
				if e.Verdict == v && len(ex) < 3 {
					ex = append(ex, fmt.Sprintf("    %s  %s\n      %s\n      %s", clock(e.First), f.Key, e.Reason, sightingsText(r, e)))
				}
			}
		}
		if len(ex) == 0 {
			continue
		}
		if first {
			fmt.Fprintln(b, "\nExamples:")
			first = false
		}
		fmt.Fprintf(b, "  %s:\n%s\n", v, strings.Join(ex, "\n"))
	}
	fmt.Fprintln(b)
	fmt.Fprintln(b, Conclusion(r))
	for _, f := range m.Files {
		fmt.Fprintf(b, "Wrote %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Conclusion is the one-line answer.
func Conclusion(r *correlate.Result) string {
	t := r.Totals
	switch {
	case t[correlate.FilteredReverseTeaming] > 0:
		return fmt.Sprintf("Result: %d frames were filtered by reverse teaming: they reached PortOutput of the port only on uplinks other than its team uplink, and never VnicRx.", t[correlate.FilteredReverseTeaming])
	case t[correlate.DroppedAfterPortOutput] > 0:
		return fmt.Sprintf("Result: %d frames reached PortOutput but not VnicRx for a reason other than reverse teaming.", t[correlate.DroppedAfterPortOutput])
	case t[correlate.Inconclusive] > 0 && t[correlate.Delivered]+t[correlate.DeliveredDupsRemoved]+t[correlate.Local] == 0:
		return fmt.Sprintf("Result: inconclusive: %d frames could not be judged (see the examples).", t[correlate.Inconclusive])
	}
	// nothing filtered or dropped; frames that could not be judged are
	// said apart, never counted as delivered
	every, unjudged := "every frame was delivered", ""
	if n := t[correlate.Inconclusive]; n > 0 {
		every, unjudged = "every frame that could be judged was delivered", fmt.Sprintf(" %d could not be judged (inconclusive: see the examples).", n)
	}
	if n := t[correlate.DeliveredDupsRemoved]; n > 0 {
		return fmt.Sprintf("Result: %s; %d arrived on more than one uplink and reverse teaming removed the extra copies.%s", every, n, unjudged)
	}
	return "Result: nothing was filtered by reverse teaming." + unjudged
}

func sightingsText(r *correlate.Result, e correlate.Example) string {
	var parts []string
	for _, s := range e.Sightings {
		name := fmt.Sprint(s.Point)
		if s.Point < len(r.Points) {
			name = r.Points[s.Point].Name
		}
		parts = append(parts, fmt.Sprintf("%s +%dµs", name, s.Time.Sub(e.First).Microseconds()))
	}
	return "seen at: " + strings.Join(parts, ", ")
}

// SortedFlows lists the result's flows in the order of their first frame.
func SortedFlows(r *correlate.Result) []*correlate.Flow {
	out := append([]*correlate.Flow(nil), r.Flows...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].First.Before(out[j].First) })
	return out
}

// SchemaVersion names the JSON layout; it changes when a field changes
// meaning or goes away (fields may be added within a version).
const SchemaVersion = "capturectl.trace/v1"

// JSON types (documented in the README).
type jsonReport struct {
	Schema      string         `json:"schema"`
	Title       string         `json:"title,omitempty"`
	Host        string         `json:"host,omitempty"`
	Port        jsonPort       `json:"port"`
	WindowUS    int64          `json:"window_us"`
	CommonStart *time.Time     `json:"common_start,omitempty"`
	CommonStop  *time.Time     `json:"common_stop,omitempty"`
	TeamUplinks []jsonChange   `json:"team_uplinks"`
	TeamCheck   jsonCheck      `json:"team_uplink_check"`
	Points      []jsonPoint    `json:"points"`
	Totals      map[string]int `json:"totals"`
	Filtered    bool           `json:"filtered_by_reverse_teaming"`
	Conclusion  string         `json:"conclusion"`
	Flows       []jsonFlow     `json:"flows"`
	Files       []string       `json:"files,omitempty"`
	Clocks      []jsonClock    `json:"host_clocks,omitempty"`
}

type jsonClock struct {
	Host          string `json:"host"`
	OffsetUS      int64  `json:"offset_us"`
	UncertaintyUS int64  `json:"uncertainty_us"`
}

type jsonPort struct {
	Name        string `json:"name,omitempty"`
	PortID      uint32 `json:"port_id,omitempty"`
	MAC         string `json:"mac,omitempty"`
	VLAN        int    `json:"vlan"`
	Promiscuous bool   `json:"promiscuous"`
	Policy      string `json:"teaming_policy,omitempty"`
	TeamUplink  string `json:"team_uplink,omitempty"`
}

type jsonChange struct {
	At     *time.Time `json:"at,omitempty"`
	Uplink string     `json:"uplink"`
	Source string     `json:"source"`
}

type jsonCheck struct {
	Reported     string `json:"reported,omitempty"`
	Inferred     string `json:"inferred_from_egress,omitempty"`
	Disagree     bool   `json:"disagree"`
	Insufficient bool   `json:"insufficient_evidence,omitempty"`
	Detail       string `json:"detail,omitempty"`
}

type jsonPoint struct {
	Name         string     `json:"name"`
	Stage        string     `json:"stage"`
	Uplink       string     `json:"uplink,omitempty"`
	Observations int        `json:"frames"`
	Duplicates   int        `json:"duplicates"`
	Dropped      uint64     `json:"dropped"`
	DropsUnknown bool       `json:"drops_unknown,omitempty"`
	Start        *time.Time `json:"start,omitempty"`
	Stop         *time.Time `json:"stop,omitempty"`
}

type jsonFlow struct {
	Description string         `json:"description"`
	SrcMAC      string         `json:"src_mac"`
	DstMAC      string         `json:"dst_mac"`
	EtherType   string         `json:"ethertype"`
	SrcIP       string         `json:"src_ip,omitempty"`
	DstIP       string         `json:"dst_ip,omitempty"`
	Proto       int            `json:"ip_proto,omitempty"`
	SrcPort     int            `json:"src_port,omitempty"`
	DstPort     int            `json:"dst_port,omitempty"`
	ICMPType    *int           `json:"icmp_type,omitempty"`
	First       time.Time      `json:"first"`
	Last        time.Time      `json:"last"`
	Counts      map[string]int `json:"counts"`
	Path        jsonPath       `json:"path"`
	Examples    []jsonExample  `json:"examples"`
}

type jsonPath struct {
	Uplinks    []jsonEdge `json:"uplinks"`
	PortOutput int        `json:"port_output"`
	VnicRx     int        `json:"vnic_rx"`
}

type jsonEdge struct {
	Uplink    string `json:"uplink"`
	Arrived   int    `json:"arrived"`
	Delivered int    `json:"delivered"`
	Filtered  int    `json:"filtered_by_reverse_teaming"`
}

type jsonExample struct {
	Time      time.Time      `json:"time"`
	Verdict   string         `json:"verdict"`
	Reason    string         `json:"reason"`
	Sightings []jsonSighting `json:"sightings"`
}

type jsonSighting struct {
	Point string    `json:"point"`
	Time  time.Time `json:"time"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func counts(c [8]int) map[string]int { return correlate.CountsByID(c) }

// JSON writes the machine-readable report (schema SchemaVersion).
func JSON(w io.Writer, r *correlate.Result, m Meta) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonV1(r, m))
}

func jsonV1(r *correlate.Result, m Meta) jsonReport {
	j := jsonReport{Schema: SchemaVersion, Title: m.Title, Host: m.Host, WindowUS: r.Window.Microseconds(),
		CommonStart: tp(r.CommonStart), CommonStop: tp(r.CommonStop), Totals: counts(r.Totals), Filtered: r.Filtered(),
		Conclusion: Conclusion(r), Files: m.Files, TeamUplinks: []jsonChange{}, Points: []jsonPoint{}, Flows: []jsonFlow{},
		Port:      jsonPort{Name: r.Port.Name, PortID: m.PortID, VLAN: r.Port.VLAN, Promiscuous: r.Port.Promiscuous, Policy: string(r.Port.Policy), TeamUplink: r.Port.TeamUplink},
		TeamCheck: jsonCheck{Reported: r.TeamUplinkCheck.Reported, Inferred: r.TeamUplinkCheck.Inferred, Disagree: r.TeamUplinkCheck.Disagree, Insufficient: r.TeamUplinkCheck.Insufficient, Detail: r.TeamUplinkCheck.Detail}}
	for _, c := range m.Clocks {
		j.Clocks = append(j.Clocks, jsonClock{c.Host, c.Offset.Microseconds(), c.Uncertainty.Microseconds()})
	}
	if len(r.Port.MAC) > 0 {
		j.Port.MAC = r.Port.MAC.String()
	}
	for _, ch := range r.TeamUplinks {
		j.TeamUplinks = append(j.TeamUplinks, jsonChange{At: tp(ch.At), Uplink: ch.Uplink, Source: ch.Source})
	}
	for _, p := range r.Points {
		j.Points = append(j.Points, jsonPoint{Name: p.Name, Stage: p.Stage.String(), Uplink: p.Uplink, Observations: p.Observations,
			Duplicates: p.Duplicates, Dropped: p.Dropped, DropsUnknown: p.DropsUnknown, Start: tp(p.Start), Stop: tp(p.Stop)})
	}
	for _, f := range SortedFlows(r) {
		k := f.Key
		jf := jsonFlow{Description: k.String(), SrcMAC: net.HardwareAddr(k.SrcMAC[:]).String(), DstMAC: net.HardwareAddr(k.DstMAC[:]).String(),
			EtherType: fmt.Sprintf("0x%04x", k.EtherType), First: f.First.UTC(), Last: f.Last.UTC(), Counts: counts(f.Counts),
			Path: jsonPath{Uplinks: []jsonEdge{}, PortOutput: f.Path.PortOutput, VnicRx: f.Path.VnicRx}, Examples: []jsonExample{}}
		if k.SrcIP.IsValid() {
			jf.SrcIP, jf.DstIP, jf.Proto = k.SrcIP.String(), k.DstIP.String(), int(k.Proto)
			jf.SrcPort, jf.DstPort = int(k.SrcPort), int(k.DstPort)
			if k.ICMPType >= 0 {
				t := k.ICMPType
				jf.ICMPType = &t
			}
		}
		for i, u := range r.Uplinks {
			if f.Path.Arrived == nil {
				break
			}
			jf.Path.Uplinks = append(jf.Path.Uplinks, jsonEdge{Uplink: u, Arrived: f.Path.Arrived[i], Delivered: f.Path.Delivered[i], Filtered: f.Path.Filtered[i]})
		}
		for _, e := range f.Examples {
			je := jsonExample{Time: e.First.UTC(), Verdict: e.Verdict.ID(), Reason: e.Reason, Sightings: []jsonSighting{}}
			for _, s := range e.Sightings {
				je.Sightings = append(je.Sightings, jsonSighting{Point: r.Points[s.Point].Name, Time: s.Time.UTC()})
			}
			jf.Examples = append(jf.Examples, je)
		}
		j.Flows = append(j.Flows, jf)
	}
	return j
}
