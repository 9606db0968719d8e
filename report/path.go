package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
)

// The whole path of a trace --from: per flow and direction where its
// frames stopped (lost in the network, not sent, filtered at the receiver,
// ...), the hops with their latencies, and the alignment of the two
// hosts' clocks the cross-host verdicts and latencies rest on.

// PathText writes the path's section of the terminal report.
func PathText(w io.Writer, r *correlate.PathResult) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "\n== Path %s -> %s\n", endName(r.A), endName(r.B))
	if c := r.Clock; c.HostA != c.HostB {
		switch {
		case c.Inconsistent:
			fmt.Fprintf(b, "Clocks: %s and %s could not be aligned (%s): no verdict rests on matching frames across them.\n", c.HostA, c.HostB, c.Reason)
		default:
			src := "the SSH readings alone"
			if c.FromFrames {
				src = fmt.Sprintf("%d frames each way", min(c.Requests, c.Replies))
			}
			fmt.Fprintf(b, "Clocks: %s against %s %s ± %s after the SSH readings (%s).\n", c.HostB, c.HostA,
				signed(c.Residual), c.Uncertainty.Round(10*time.Microsecond), src)
		}
	}
	for d, t := range r.Totals {
		fmt.Fprintf(b, "%s: %s\n", correlate.Direction(d), pathCounts(t))
	}
	for _, f := range r.Flows {
		fmt.Fprintf(b, "\n  %s (%s, %s -> %s)\n      %s\n", f.Key, f.Direction, f.From, f.To, pathCounts(f.Counts))
		for u, n := range f.OffTeam {
			fmt.Fprintf(b, "      %d left on %s, not the sender's team uplink\n", n, u)
		}
		for _, h := range f.Hops {
			fmt.Fprintf(b, "      %-28s -> %-28s %6d  %s\n", h.From, h.To, h.Frames, latency(h.Latency))
		}
		for _, e := range f.Examples {
			fmt.Fprintf(b, "      e.g. %s %s: %s\n", clock(e.First), e.Verdict, e.Reason)
		}
	}
	if n := r.Other; n > 0 {
		fmt.Fprintf(b, "\n%d frames were not between the two ends (not judged).\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func endName(e correlate.End) string {
	if e.Port.Name == "" {
		return e.Host
	}
	return e.Port.Name + " on " + e.Host
}

func signed(d time.Duration) string {
	d = d.Round(10 * time.Microsecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func pathCounts(c correlate.PathVerdictCounts) string {
	var parts []string
	for v, n := range c {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, correlate.PathVerdict(v)))
		}
	}
	if len(parts) == 0 {
		return "no frames"
	}
	return strings.Join(parts, ", ")
}

func latency(l correlate.Latency) string {
	switch {
	case l.Unknown:
		return "latency unknown: " + l.Reason
	case l.N == 0:
		return ""
	}
	s := fmt.Sprintf("p50 %v  p99 %v  max %v", l.P50, l.P99, l.Max)
	if l.Uncertainty > 0 {
		s += fmt.Sprintf("  (± %v)", l.Uncertainty.Round(10*time.Microsecond))
	}
	return s
}

// The path in JSON v2 ("path").
type jsonWholePath struct {
	From   string              `json:"from"`
	To     string              `json:"to"`
	Clock  jsonPathClock       `json:"clock"`
	Totals map[string]jsonDirC `json:"totals"`
	Flows  []jsonPathFlow      `json:"flows"`
	Other  int                 `json:"not_judged"`
}

type jsonDirC = map[string]int

type jsonPathClock struct {
	HostA         string `json:"host_a"`
	HostB         string `json:"host_b"`
	ResidualUS    int64  `json:"residual_us"`
	UncertaintyUS int64  `json:"uncertainty_us"`
	FromFrames    bool   `json:"from_frames"`
	Inconsistent  bool   `json:"inconsistent"`
	Reason        string `json:"reason,omitempty"`
}

type jsonPathFlow struct {
	Flow      string          `json:"flow"`
	Direction string          `json:"direction"`
	From      string          `json:"from"`
	To        string          `json:"to"`
	Counts    map[string]int  `json:"counts"`
	OffTeam   map[string]int  `json:"off_team_uplink,omitempty"`
	Hops      []jsonHop       `json:"hops"`
	Examples  []jsonPathFrame `json:"examples"`
}

type jsonHop struct {
	From      string     `json:"from"`
	To        string     `json:"to"`
	CrossHost bool       `json:"cross_host"`
	Frames    int        `json:"frames"`
	Latency   *jsonLatUS `json:"latency_us,omitempty"`
	Unknown   string     `json:"latency_unknown,omitempty"`
}

type jsonLatUS struct {
	N           int   `json:"n"`
	Min         int64 `json:"min"`
	P50         int64 `json:"p50"`
	P90         int64 `json:"p90"`
	P99         int64 `json:"p99"`
	Max         int64 `json:"max"`
	Uncertainty int64 `json:"uncertainty"`
}

type jsonPathFrame struct {
	First   time.Time `json:"first"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason"`
}

func directionID(d correlate.Direction) string {
	if d == correlate.AtoB {
		return "a_to_b"
	}
	return "b_to_a"
}

func pathJSON(r *correlate.PathResult) *jsonWholePath {
	c := r.Clock
	j := &jsonWholePath{From: endName(r.A), To: endName(r.B), Totals: map[string]jsonDirC{}, Flows: []jsonPathFlow{}, Other: r.Other,
		Clock: jsonPathClock{HostA: c.HostA, HostB: c.HostB, ResidualUS: c.Residual.Microseconds(), UncertaintyUS: c.Uncertainty.Microseconds(),
			FromFrames: c.FromFrames, Inconsistent: c.Inconsistent, Reason: c.Reason}}
	for d, t := range r.Totals {
		j.Totals[directionID(correlate.Direction(d))] = t.ByID()
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	for _, f := range r.Flows {
		jf := jsonPathFlow{Flow: f.Key.String(), Direction: directionID(f.Direction), From: f.From, To: f.To, Counts: f.Counts.ByID(),
			OffTeam: f.OffTeam, Hops: []jsonHop{}, Examples: []jsonPathFrame{}}
		for _, h := range f.Hops {
			jh := jsonHop{From: h.From, To: h.To, CrossHost: h.CrossHost, Frames: h.Frames}
			switch l := h.Latency; {
			case l.Unknown:
				jh.Unknown = l.Reason
			case l.N > 0:
				jh.Latency = &jsonLatUS{l.N, us(l.Min), us(l.P50), us(l.P90), us(l.P99), us(l.Max), us(l.Uncertainty)}
			}
			jf.Hops = append(jf.Hops, jh)
		}
		for _, e := range f.Examples {
			jf.Examples = append(jf.Examples, jsonPathFrame{e.First, e.Verdict.ID(), e.Reason})
		}
		j.Flows = append(j.Flows, jf)
	}
	return j
}

// pathFlowView is a path flow as the HTML report shows it.
type pathFlowView struct {
	Title, Counts string
	SVG           template.HTML
	Ex            []correlate.PathFrameExample
}

// pathView is the HTML report's path section (nil without a path).
func pathView(r *correlate.PathResult) map[string]any {
	if r == nil {
		return nil
	}
	var b strings.Builder
	PathText(&b, &correlate.PathResult{A: r.A, B: r.B, Clock: r.Clock}) // its clock line
	clockLine := ""
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "Clocks: ") {
			clockLine = l
		}
	}
	var totals []string
	for d, t := range r.Totals {
		totals = append(totals, fmt.Sprintf("%s: %s", correlate.Direction(d), pathCounts(t)))
	}
	var flows []pathFlowView
	for _, f := range r.Flows {
		flows = append(flows, pathFlowView{Title: fmt.Sprintf("%s (%s, %s → %s)", f.Key, f.Direction, f.From, f.To),
			Counts: pathCounts(f.Counts), SVG: template.HTML(pathFlowSVG(f)), Ex: f.Examples})
	}
	return map[string]any{"Title": endName(r.A) + " → " + endName(r.B), "Clock": clockLine, "Totals": totals, "Flows": flows}
}

// pathFlowSVG draws a flow's path, one box per stage that saw its frames
// in order (the hops), each edge with the frames that crossed it and its
// median latency, and each loss where it happened: not sent before the
// sending host's uplinks, lost in the network on the edge between the
// hosts, not forwarded before the receiving port, filtered and dropped
// after its PortOutput.
func pathFlowSVG(f *correlate.PathFlow) string {
	var nodes []string
	for i, h := range f.Hops {
		if i == 0 {
			nodes = append(nodes, h.From)
		}
		nodes = append(nodes, h.To)
	}
	const boxW, gap, top = 130, 42, 30
	w := 20 + len(nodes)*(boxW+gap)
	h := 190
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="whole path of %s">`,
		w, h, w, h, template.HTMLEscapeString(f.Key.String()))
	b.WriteString(`<defs><marker id="parrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	x := func(i int) int { return 20 + i*(boxW+gap) }
	for i, n := range nodes {
		host, stage, _ := strings.Cut(n, " ")
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="44" rx="6" fill="#f6f6f6" stroke="#555"/>`, x(i), top, boxW)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="13" font-family="sans-serif">%s</text>`, x(i)+boxW/2, top+18, template.HTMLEscapeString(stage))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" font-family="sans-serif" fill="#444">%s</text>`, x(i)+boxW/2, top+34, template.HTMLEscapeString(host))
	}
	crossAt := -1
	for i, hp := range f.Hops {
		x1, x2, y := x(i)+boxW, x(i+1), top+22
		color := "#555"
		if hp.Frames == 0 {
			color = "#bbb"
		}
		if hp.CrossHost {
			crossAt = i
			color = "#36c"
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" marker-end="url(#parrow)"/>`, x1, y, x2-2, y, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" font-family="sans-serif">%d</text>`, (x1+x2)/2, y-6, hp.Frames)
		if l := hp.Latency; l.N > 0 && !l.Unknown {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10" font-family="sans-serif" fill="#666">%v</text>`, (x1+x2)/2, y+14, l.P50)
		}
	}
	// where the losses happened, under the edge or box they belong to
	loss := func(at int, what string) {
		if what == "" {
			return
		}
		if at < 0 {
			at = 0
		}
		cx := x(at) + boxW + gap/2
		if at >= len(nodes)-1 {
			cx = x(len(nodes)-1) + boxW/2
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c00" stroke-width="2" stroke-dasharray="5,4"/>`, cx, top+46, cx, top+96)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="16" fill="#c00" font-family="sans-serif">✕</text>`, cx, top+112)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#c00" font-family="sans-serif">%s</text>`, cx, top+128, template.HTMLEscapeString(what))
	}
	last := len(nodes) - 2 // the edge into the receiving VnicRx
	said := func(vs ...correlate.PathVerdict) string {
		var parts []string
		for _, v := range vs {
			if n := f.Counts[v]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, v))
			}
		}
		return strings.Join(parts, ", ")
	}
	loss(crossAt-1, said(correlate.PathNotSent))
	loss(crossAt, said(correlate.PathLostInNetwork))
	loss(last-1, said(correlate.PathNotForwarded))
	loss(last, said(correlate.PathFiltered, correlate.PathDroppedAtPort))
	b.WriteString(`</svg>`)
	return b.String()
}
