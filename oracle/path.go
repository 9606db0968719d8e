package oracle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/scenario"
)

// The whole path (issue 13): two-host cases traced with from: (trace --vm
// B --from A), every frame of either direction compared with the lab's
// truth of its way from one VM port to the other.

// PathTruth is what really happened to a frame on its way between the
// path's two VM ports.
type PathTruth int

// Path truths.
const (
	// PathTruthDelivered: a copy reached the receiving port's vNIC.
	PathTruthDelivered PathTruth = iota
	// PathTruthFiltered: copies reached the receiving port's PortOutput,
	// every one was stopped there by reverse teaming.
	PathTruthFiltered
	// PathTruthDroppedAtPort: a copy reached PortOutput, none the vNIC,
	// and not all were stopped by reverse teaming.
	PathTruthDroppedAtPort
	// PathTruthNotForwarded: it arrived at the receiving host on an
	// uplink, never reached the receiving port's PortOutput.
	PathTruthNotForwarded
	// PathTruthLost: it left the sending host by an uplink and arrived at
	// none of the receiving host's.
	PathTruthLost
	// PathTruthNotSent: the sending port sent it, it never left the
	// sending host.
	PathTruthNotSent
	// PathTruthOther: none of these (not sent by either end).
	PathTruthOther
	numPathTruths
)

var pathTruthNames = [...]string{"delivered", "filtered by reverse teaming", "dropped at the port", "not forwarded",
	"lost in the network", "not sent", "other"}

func (t PathTruth) String() string {
	if t >= 0 && t < numPathTruths {
		return pathTruthNames[t]
	}
	return fmt.Sprintf("PathTruth(%d)", int(t))
}

// PathAllowed is the contract of the path verdicts: the one definite
// verdict each truth allows (inconclusive is always allowed).
var PathAllowed = map[PathTruth]correlate.PathVerdict{
	PathTruthDelivered:     correlate.PathDelivered,
	PathTruthFiltered:      correlate.PathFiltered,
	PathTruthDroppedAtPort: correlate.PathDroppedAtPort,
	PathTruthNotForwarded:  correlate.PathNotForwarded,
	PathTruthLost:          correlate.PathLostInNetwork,
	PathTruthNotSent:       correlate.PathNotSent,
}

// PathAllows reports whether truth t allows verdict v.
func PathAllows(t PathTruth, v correlate.PathVerdict) bool {
	if v == correlate.PathInconclusive {
		return true
	}
	w, ok := PathAllowed[t]
	return ok && w == v
}

// PathEnd is a VM port of the lab.
type PathEnd struct {
	VM   string
	Host string
	Port uint32
}

// ClassifyPath reads the truth of a frame sent by from toward to from
// what the lab recorded.
func ClassifyPath(f lab.Fate, from, to PathEnd) PathTruth {
	if name, _, _ := strings.Cut(f.From, "#"); name != from.VM {
		return PathTruthOther
	}
	var sent, left, arrived, po, rx bool
	rt, poCopies := 0, 0
	for _, e := range f.Events {
		switch {
		case e.Kind == lab.Sent && e.Host == from.Host && e.Port == from.Port:
			sent = true
		case e.Kind == lab.LeftUplink && e.Host == from.Host:
			left = true
		case e.Kind == lab.Arrived && e.Host == to.Host:
			arrived = true
		case e.Kind == lab.ReachedPortOutput && e.Host == to.Host && e.Port == to.Port:
			po = true
			poCopies++
		case e.Kind == lab.ReachedVnicRx && e.Host == to.Host && e.Port == to.Port:
			rx = true
		case e.Kind == lab.Stopped && e.Host == to.Host && e.Port == to.Port && e.Reason == lab.ReverseTeaming:
			rt++
		}
	}
	switch {
	case !sent:
		return PathTruthOther
	case rx:
		return PathTruthDelivered
	case po && rt == poCopies:
		return PathTruthFiltered
	case po:
		return PathTruthDroppedAtPort
	case arrived:
		return PathTruthNotForwarded
	case left:
		return PathTruthLost
	}
	return PathTruthNotSent
}

// PathMatrix counts frames by truth and final path verdict.
type PathMatrix [numPathTruths][len(correlate.PathVerdictCounts{})]int

// PathFalse is a definite path verdict the truth does not allow.
type PathFalse struct {
	Seed    uint64
	Frame   uint64
	Dir     correlate.Direction
	Verdict correlate.PathVerdict
	Reason  string
	Truth   PathTruth
}

func (f PathFalse) String() string {
	return fmt.Sprintf("seed %d frame %d (%v): verdict %q (%s) but the truth is %q", f.Seed, f.Frame, f.Dir, f.Verdict, f.Reason, f.Truth)
}

// The path's ends in every generated two-host case.
var (
	pathA = PathEnd{VM: "vma", Host: "esx01", Port: 50331657}
	pathB = PathEnd{VM: "vmb", Host: "esx02", Port: 50331657}
)

// GeneratePath makes the two-host case of a seed: vma on esx01 sends to
// vmb on esx02 (both VLAN 100, two uplinks each, a random teaming policy
// without a LAG), traced as trace --vm vmb --from vma. Knobs: both hosts'
// clocks (offsets of seconds, drift within 100 ppm), a slow management
// link, small capture buffers with load, drop bursts, late-starting
// points, loss on any switch port, the switch sending vmb's frames to its
// non-team uplink (reverse teaming) or flooding them (no static MAC), the
// sender's team uplink's switch port out of the VLAN. Traffic: pings both
// ways, UDP and broadcasts from vma. Actions: team-uplink changes of
// either end, loss changes, drop bursts, a clock step.
func GeneratePath(seed uint64) (*Case, error) {
	r := rand.New(rand.NewPCG(seed, 0x9a7e))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	c := &Case{Seed: seed}
	var sum []string
	var b strings.Builder
	fmt.Fprintf(&b, "name: oracle-path-%d\nseed: %d\nhosts:\n", seed, seed)
	policy := pick("srcport", "srcport", "srcmac", "loadbased", "explicit")
	sum = append(sum, policy)
	load := false
	teams := map[string]string{}
	for i, h := range []PathEnd{pathA, pathB} {
		fmt.Fprintf(&b, "  - name: %s\n", h.Host)
		if r.IntN(3) > 0 {
			off := pick("-37s", "2.5s", "-800ms", "45ms", "-3s", "61s", "0s")
			drift := r.IntN(161) - 80
			fmt.Fprintf(&b, "    clock: {offset: %s, drift: %dppm}\n", off, drift)
			sum = append(sum, fmt.Sprintf("%s clock %s %dppm", h.Host, off, drift))
		}
		if r.IntN(4) == 0 {
			lat := pick("5ms", "20ms", "40ms")
			fmt.Fprintf(&b, "    managementLink: {latency: %s, jitter: %s}\n", lat, pick("0s", "1ms", "5ms"))
			sum = append(sum, h.Host+" link "+lat)
		}
		if r.IntN(5) == 0 {
			fmt.Fprintf(&b, "    captureBuffer: %d\n", pick2(r, 16, 64, 256))
			load = true
			sum = append(sum, h.Host+" small capture buffer")
		}
		if r.IntN(5) == 0 {
			fmt.Fprintf(&b, "    dropBursts: {every: %s, length: %s}\n", pick("500ms", "1s"), pick("10ms", "50ms"))
			sum = append(sum, h.Host+" drop bursts")
		}
		team := pick("vmnic2", "vmnic3")
		teams[h.VM] = team
		mac := fmt.Sprintf("00:50:56:cc:00:%02d", i+1)
		fmt.Fprintf(&b, `    vswitches:
      - name: vSwitch0
        uplinks: [vmnic0]
        portgroups: [{name: Management Network, vlan: 0}]
      - name: vSwitch1
        uplinks: [vmnic2, vmnic3]
        teaming: {policy: %s}
        portgroups: [{name: VLAN100, vlan: 100}]
    vms:
      - name: %s
        nics: [{portgroup: VLAN100, mac: "%s", ip: 192.168.100.%d/24, portID: %d, teamUplink: %s}]
`, policy, h.VM, mac, 11+i, h.Port, team)
	}
	fmt.Fprintf(&b, "switch:\n  ports:\n")
	ports := map[string]string{} // host/vmnic -> switch port
	var swPorts []string
	n := 0
	for _, h := range []PathEnd{pathA, pathB} {
		for _, u := range []string{"vmnic2", "vmnic3"} {
			n++
			name := fmt.Sprintf("Gi1/0/%d", n)
			ports[h.Host+"/"+u] = name
			swPorts = append(swPorts, name)
			vlans := "[100]"
			if h == pathA && u == teams[pathA.VM] && r.IntN(8) == 0 {
				vlans = "[200]"
				sum = append(sum, "sender's team port out of the VLAN")
			}
			loss := ""
			if r.IntN(4) == 0 {
				loss = fmt.Sprintf(", loss: %.2f", 0.1+0.5*r.Float64())
				sum = append(sum, "loss on "+name)
			}
			fmt.Fprintf(&b, "    - {name: %s, connect: %s/%s, vlans: %s%s}\n", name, h.Host, u, vlans, loss)
		}
	}
	switch r.IntN(4) {
	case 0: // learn only
		sum = append(sum, "no static MACs")
	default:
		bPort := ports[pathB.Host+"/"+teams[pathB.VM]]
		if r.IntN(3) == 0 {
			other := map[string]string{"vmnic2": "vmnic3", "vmnic3": "vmnic2"}[teams[pathB.VM]]
			bPort = ports[pathB.Host+"/"+other]
			sum = append(sum, "vmb's frames to its non-team uplink")
		}
		fmt.Fprintf(&b, "  staticMACs:\n    - {mac: \"00:50:56:cc:00:01\", vlan: 100, port: %s}\n    - {mac: \"00:50:56:cc:00:02\", vlan: 100, port: %s}\n",
			ports[pathA.Host+"/"+teams[pathA.VM]], bPort)
	}
	c.YAML = b.String()
	topo, err := lab.ParseConfig([]byte(c.YAML), fmt.Sprintf("oracle-path-%d.yaml", seed))
	if err != nil {
		return nil, fmt.Errorf("oracle: seed %d: generated path topology: %w", seed, err)
	}
	c.Topology = topo
	dur := time.Duration(1500+r.IntN(1000)) * time.Millisecond
	sc := &scenario.Scenario{Name: fmt.Sprintf("oracle-path-%d", seed), VM: pathB.VM, From: pathA.VM, Duration: dur}
	every := func() time.Duration { return time.Duration(30+r.IntN(120)) * time.Millisecond }
	sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "ping", From: pathA.VM, To: pathB.VM, Interval: every()})
	if r.IntN(2) == 0 {
		sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "ping", From: pathB.VM, To: pathA.VM, Interval: every()})
	}
	if r.IntN(3) == 0 {
		sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "broadcast", From: pathA.VM, To: "192.168.100.99", Interval: every()})
	}
	if r.IntN(3) == 0 || load {
		sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "udp", From: pathA.VM, To: pathB.VM, Rate: 200 + r.IntN(3000), Size: 100 + r.IntN(900)})
		sum = append(sum, "udp")
	}
	at := func() time.Duration { return time.Duration(r.Int64N(int64(dur) * 8 / 10)) }
	for range r.IntN(4) {
		switch r.IntN(5) {
		case 0, 1:
			vm := pick(pathA.VM, pathB.VM)
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetTeamUplink: &scenario.SetTeamUplink{VM: vm, Uplink: pick("vmnic2", "vmnic3")}})
			c.TeamChanges = true
			sum = append(sum, vm+" team change")
		case 2:
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetLoss: &scenario.SetLoss{Port: swPorts[r.IntN(len(swPorts))], Loss: 0.6 * r.Float64()}})
			sum = append(sum, "loss change")
		case 3:
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), DropBurst: &scenario.DropBurst{Host: pick(pathA.Host, pathB.Host), Length: time.Duration(10+r.IntN(200)) * time.Millisecond}})
			sum = append(sum, "drop burst")
		case 4:
			off := time.Duration(r.IntN(4000)-2000) * time.Millisecond
			h := pick(pathA.Host, pathB.Host)
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetClock: &scenario.SetClock{Host: h, Offset: &off}})
			sum = append(sum, fmt.Sprintf("%s clock step to %v", h, off))
		}
	}
	if r.IntN(4) == 0 {
		d := time.Duration(50+r.IntN(400)) * time.Millisecond
		h := r.IntN(2)
		c.Topology.Hosts[h].CaptureStartDelay = d
		c.YAML += fmt.Sprintf("# %s captureStartDelay: %v\n", c.Topology.Hosts[h].Name, d)
		sum = append(sum, "late starts")
	}
	if err := sc.Validate(sc.Name); err != nil {
		return nil, fmt.Errorf("oracle: seed %d: generated path scenario: %w", seed, err)
	}
	c.Scenario = sc
	c.Summary = strings.Join(sum, ", ")
	return c, nil
}

// PathCaseResult is one two-host case's comparison.
type PathCaseResult struct {
	Case     *Case
	Matrix   PathMatrix
	False    []PathFalse
	Untagged int
	Clock    correlate.ClockAlignment
	Err      error
}

type pathJudged struct {
	head    []byte
	dir     correlate.Direction
	verdict correlate.PathVerdict
	reason  string
	ev      correlate.PathEvidence
}

// RunPathCase runs a two-host case through scenario.Trace with from: and
// compares every frame's final path verdict with the truth.
func RunPathCase(ctx context.Context, c *Case, logger *slog.Logger) *PathCaseResult {
	out := &PathCaseResult{Case: c}
	var l *lab.Lab
	var mu sync.Mutex
	var frames []pathJudged
	opts := scenario.Options{Logger: logger,
		OnLab: func(x *lab.Lab) { l = x; x.Net.RecordTruth() },
		OnPathFrame: func(f *correlate.PathFrame) {
			j := pathJudged{head: slices.Clone(f.Head()), dir: f.Direction, verdict: f.Verdict, reason: f.Reason, ev: f.Evidence()}
			mu.Lock()
			frames = append(frames, j)
			mu.Unlock()
		}}
	res, err := scenario.Trace(ctx, c.Scenario, c.Topology, opts)
	if err != nil {
		out.Err = fmt.Errorf("oracle: path seed %d: %w", c.Seed, err)
		return out
	}
	if res.Path == nil {
		out.Err = fmt.Errorf("oracle: path seed %d: no path result (%s)", c.Seed, res.FromNote)
		return out
	}
	out.Clock = res.Path.Clock
	mu.Lock()
	defer mu.Unlock()
	for _, j := range frames {
		id, ok := lab.FrameID(j.head)
		if !ok {
			out.Untagged++
			continue
		}
		fate, ok := l.Net.Fate(id)
		if !ok {
			out.Untagged++
			continue
		}
		from, to := pathA, pathB
		if j.dir == correlate.BtoA {
			from, to = pathB, pathA
		}
		t := ClassifyPath(fate, from, to)
		v := res.Path.Settle(j.verdict, j.ev)
		out.Matrix[t][v]++
		if !PathAllows(t, v) {
			out.False = append(out.False, PathFalse{Seed: c.Seed, Frame: id, Dir: j.dir, Verdict: v, Reason: j.reason, Truth: t})
		}
	}
	return out
}

// PathReport is a two-host sweep's outcome.
type PathReport struct {
	Cases    int
	Errors   []error
	Matrix   PathMatrix
	False    []PathFalse
	Untagged int
	Elapsed  time.Duration
}

// SweepPath runs the two-host cases of seeds first..first+n-1, parallel
// at a time (a case that could not run is run again once, alone).
func SweepPath(ctx context.Context, first uint64, n, parallel int, logger *slog.Logger) *PathReport {
	start := time.Now()
	rep := &PathReport{}
	var mu sync.Mutex
	sweepSeeds(first, n, parallel, func(s uint64, last bool) bool {
		c, err := GeneratePath(s)
		var cr *PathCaseResult
		if err == nil {
			cr = RunPathCase(ctx, c, logger)
			err = cr.Err
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil && cr != nil && !last && ctx.Err() == nil {
			return true
		}
		rep.Cases++
		if err != nil {
			rep.Errors = append(rep.Errors, err)
			return false
		}
		for t := range cr.Matrix {
			for v := range cr.Matrix[t] {
				rep.Matrix[t][v] += cr.Matrix[t][v]
			}
		}
		rep.False = append(rep.False, cr.False...)
		rep.Untagged += cr.Untagged
		return false
	})
	rep.Elapsed = time.Since(start)
	return rep
}

// Print writes the confusion matrix and the false verdicts.
func (r *PathReport) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "truth \\ path verdict\t")
	for _, v := range correlate.PathVerdicts() {
		fmt.Fprintf(tw, "%s\t", v.ID())
	}
	fmt.Fprintln(tw)
	total, inc, bad := 0, 0, 0
	for t := range numPathTruths {
		fmt.Fprintf(tw, "%s\t", PathTruth(t))
		for v := range correlate.PathVerdicts() {
			k := r.Matrix[t][v]
			total += k
			mark := ""
			if correlate.PathVerdict(v) == correlate.PathInconclusive {
				inc += k
			} else if k > 0 && !PathAllows(PathTruth(t), correlate.PathVerdict(v)) {
				mark = "!"
				bad += k
			}
			fmt.Fprintf(tw, "%s%d\t", mark, k)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	share := 0.0
	if total > 0 {
		share = 100 * float64(inc) / float64(total)
	}
	fmt.Fprintf(w, "%d two-host cases in %v, %d frames (%d untagged not compared), %d inconclusive (%.1f%%), %d false definite verdicts (!), %d errors\n",
		r.Cases, r.Elapsed.Round(time.Second), total, r.Untagged, inc, share, bad, len(r.Errors))
	for _, f := range r.False[:min(10, len(r.False))] {
		fmt.Fprintln(w, "  FALSE:", f)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "ERROR:", e)
	}
}

// Total is the number of frames compared.
func (m *PathMatrix) Total() (n int) {
	for t := range m {
		for _, k := range m[t] {
			n += k
		}
	}
	return n
}
