package lab

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/capturectl/capturectl/lab/internal/shell"
	"github.com/capturectl/capturectl/pktcap"
)

// The lab's pktcap-uw: the real option set and output formats (through
// package pktcap) on top of the network model's capture taps.
//
// Behaviour modelled on the real tool:
//   - the banner and status lines go to stderr; packets go to stdout as
//     console text, or as a pcap (pcapng with --ng) stream with "-o -", or to
//     a file on the host;
//   - it has no time limit: it runs until -c packets were dumped, a signal
//     (INT, TERM, HUP) stops it, or a write fails. When its SSH channel
//     closes it keeps running (it stays in `ps`) until it next writes;
//   - a reader that is too slow makes the host drop captured frames; the
//     drops are counted and reported in "dropped M packets";
//   - a stop signal ends it at once: frames captured but not yet dumped
//     are lost and not counted as dropped (real builds stopped by a signal
//     print "Join with dump thread failed."; nothing says the ring is
//     written out), so what a point saw just before its stop may be
//     missing — capturectl drains its streams before it signals;
//   - before 7.0 the default uplink point is printed as EtherswitchDispath
//     and --capture takes one point; 7.0 and later print UplinkRcvKernel and
//     accept comma lists.

// tapSel is one capture point a session subscribes to, with the name the
// console output prints for it.
type tapSel struct {
	sel   Selector
	label string
	none  bool // a point the lab carries no traffic at: nothing is tapped
}

func (h *labHost) modern() bool { return h.version >= "7.0" }

func (h *labHost) style() pktcap.Style {
	if h.modern() {
		return pktcap.Style80
	}
	return pktcap.Style67
}

// pktcapSelect maps pktcap-uw options to the lab's capture points, as the
// real tool chooses its point from --capture, --dir and the port given.
func (h *labHost) pktcapSelect(o *pktcap.Options) ([]tapSel, error) {
	if len(o.Capture) > 1 && !h.modern() {
		var names []string
		for _, p := range o.Capture {
			names = append(names, string(p))
		}
		return nil, fmt.Errorf("No such capture point: %s", strings.Join(names, ","))
	}
	dir := pktcap.DirRx
	if d, ok := o.Dir.Get(); ok {
		dir = d
	}
	if o.Trace {
		// every frame the host frees, with the points it passed
		return []tapSel{{Selector{Trace: true}, "PktFree", false}}, nil
	}
	var uplink string
	var portID uint32
	switch {
	case o.Uplink != "":
		if h.n.hostBy[h.name].uplink(o.Uplink) == nil {
			return nil, fmt.Errorf("Failed to find the uplink %s", o.Uplink)
		}
		uplink = o.Uplink
	case o.SwitchPort.Set:
		portID = o.SwitchPort.V
		hh := h.n.hostBy[h.name]
		if hh.port(portID) == nil {
			for _, vs := range hh.vswitches {
				for _, u := range vs.uplinks {
					if u.id == portID {
						uplink = u.nic.name
					}
				}
			}
			if uplink == "" {
				return nil, fmt.Errorf("Failed to find the switch port 0x%08x", portID)
			}
			portID = 0
		}
	case o.Vmk != "":
		return h.vmkSelect(o, dir)
	case o.DVFilter != "":
		return h.dvfilterSelect(o)
	case o.LifID != "":
		return nil, fmt.Errorf("the lab models no VDR ports")
	}
	sel := func(pt pktcap.Stage, label string) tapSel {
		return tapSel{Selector{Point: pt, Uplink: uplink, PortID: portID}, label, false}
	}
	if len(o.Capture) == 0 {
		switch {
		case uplink != "":
			rcv, snd := "EtherswitchDispath", "EtherswitchOutput"
			if h.modern() {
				rcv, snd = "UplinkRcvKernel", "UplinkSndKernel"
			}
			switch dir {
			case pktcap.DirRx:
				return []tapSel{sel(UplinkRcv, rcv)}, nil
			case pktcap.DirTx:
				return []tapSel{sel(UplinkSnd, snd)}, nil
			default:
				return []tapSel{sel(UplinkRcv, rcv), sel(UplinkSnd, snd)}, nil
			}
		case portID != 0:
			switch dir {
			case pktcap.DirRx:
				return []tapSel{sel(PortInput, "PortInput")}, nil
			case pktcap.DirTx:
				return []tapSel{sel(PortOutput, "PortOutput")}, nil
			default:
				return []tapSel{sel(PortInput, "PortInput"), sel(PortOutput, "PortOutput")}, nil
			}
		}
		return nil, errors.New("Please specify a capture point or a port: --uplink, --switchport, --vmk or --capture")
	}
	var out []tapSel
	for _, p := range o.Capture {
		pt := p.Stage()
		switch {
		case pt == Drop:
			out = append(out, tapSel{Selector{Point: Drop}, string(p), false})
			continue
		case !labStage(pt):
			return nil, fmt.Errorf("the lab does not model the capture point %s", p)
		}
		if uplink == "" && portID == 0 {
			return nil, fmt.Errorf("The capture point %s needs a port: --uplink or --switchport", p)
		}
		if uplink != "" && (pt == VnicRx || pt == VnicTx) {
			return nil, fmt.Errorf("The capture point %s is not valid for an uplink", p)
		}
		if portID != 0 && (pt == UplinkRcv || pt == UplinkSnd) {
			return nil, fmt.Errorf("The capture point %s is only valid for an uplink", p)
		}
		out = append(out, sel(pt, string(p)))
	}
	return out, nil
}

// vmkSelect is --vmk: the vmknic's port exists (vmk0 on the vSwitch with
// the Management Network) and the session runs, but the lab carries no
// vmknic traffic, so it dumps nothing (tapSel.none) until stopped.
func (h *labHost) vmkSelect(o *pktcap.Options, dir pktcap.Dir) ([]tapSel, error) {
	found := false
	for _, vs := range h.n.hostBy[h.name].vswitches {
		if _, _, ok := vs.vmk0(); ok && o.Vmk == "vmk0" {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("Failed to find the vmknic %s", o.Vmk)
	}
	var labels []string
	for _, p := range o.Capture {
		if st := p.Stage(); st == UplinkRcv || st == UplinkSnd || st == VnicRx || st == VnicTx {
			return nil, fmt.Errorf("The capture point %s is not valid for a vmknic", p)
		}
		labels = append(labels, string(p))
	}
	if len(labels) == 0 {
		switch dir {
		case pktcap.DirTx:
			labels = []string{"PortOutput"}
		case pktcap.DirBoth:
			labels = []string{"PortInput", "PortOutput"}
		default:
			labels = []string{"PortInput"}
		}
	}
	var out []tapSel
	for _, l := range labels {
		out = append(out, tapSel{label: l, none: true})
	}
	return out, nil
}

// dvfilterSelect is --dvfilter: the filter is on a VM's vNIC (topology
// dvfilters), where the vNIC sends and receives, so the session taps the
// port's VnicTx and VnicRx and prints PreDVFilter or PostDVFilter (--capture,
// or --stage 0 or 1); the lab's filters pass every frame, so both see the same.
func (h *labHost) dvfilterSelect(o *pktcap.Options) ([]tapSel, error) {
	var port *vmPort
	for _, vs := range h.n.hostBy[h.name].vswitches {
		for _, p := range vs.ports {
			if slices.Contains(p.filters, o.DVFilter) {
				port = p
			}
		}
	}
	if port == nil {
		return nil, fmt.Errorf("Failed to find the dvfilter %s (summarize-dvfilter lists a host's filters)", o.DVFilter)
	}
	// "requires a capture point" (vSphere 6.7 Networking guide); --stage
	// auto-selects one (the --help text lists --dvfilter under --stage)
	label := ""
	if st, ok := o.Stage.Get(); ok {
		label = "PreDVFilter"
		if st == pktcap.StagePost {
			label = "PostDVFilter"
		}
	}
	switch {
	case len(o.Capture) == 0 && label == "":
		return nil, fmt.Errorf("--dvfilter needs a capture point: --capture PreDVFilter or PostDVFilter, or --stage 0 or 1")
	case len(o.Capture) > 1:
		return nil, fmt.Errorf("--dvfilter takes one capture point, PreDVFilter or PostDVFilter")
	case len(o.Capture) == 1 && o.Capture[0] != pktcap.PreDVFilter && o.Capture[0] != pktcap.PostDVFilter:
		return nil, fmt.Errorf("The capture point %s is not valid for a dvfilter (PreDVFilter or PostDVFilter)", o.Capture[0])
	case len(o.Capture) == 1:
		label = string(o.Capture[0])
	}
	return []tapSel{{Selector{Point: VnicTx, PortID: port.id}, label, false}, {Selector{Point: VnicRx, PortID: port.id}, label, false}}, nil
}

// pktcapUW is the pktcap-uw command of an emulated host.
func (h *labHost) pktcapUW(ctx context.Context, p *shell.Proc, args []string) int {
	sigs := p.Signals()
	stderr := p.Stderr()
	o, err := pktcap.ParseArgs(args[1:])
	if err == nil {
		err = o.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if o.Help {
		io.WriteString(p.Stdout(), pktcapHelp)
		return 0
	}
	if o.AvailPoints {
		for i, pt := range pktcap.Points() {
			fmt.Fprintf(p.Stdout(), "%2d: %s\n", i+1, pt)
		}
		return 0
	}
	if o.Trace && o.Outfile != "" {
		fmt.Fprintln(stderr, "error: the lab prints --trace to the console only (-o is not emulated with --trace)")
		return 1
	}
	sels, err := h.pktcapSelect(o)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	st := h.style()
	h.mu.Lock()
	h.sessions++
	startDelay := time.Duration(0)
	if d := h.cfg.CaptureStartDelay; d > 0 {
		startDelay = time.Duration(rand.New(rand.NewPCG(h.n.seed, uint64(h.sessions))).Int64N(int64(d) + 1))
	}
	info := pktcap.SessionInfo{ServerPort: 65434 + h.sessions%100, ClientPort: 1060 + h.sessions%900, ID: 35 + h.sessions}
	h.mu.Unlock()
	if st.ThreadLines {
		info.Threads = threadIDs(p.PID())
	}

	// Packets: stdout, or a file on the host.
	var out io.Writer = p.Stdout()
	if o.Outfile != "" && o.Outfile != "-" {
		f, err := p.FS().Create(absFile(p.Cwd(), o.Outfile))
		if err != nil {
			fmt.Fprintf(stderr, "error: Failed to open the file %s: %v\n", o.Outfile, err)
			return 1
		}
		out = f
	}
	if startDelay > 0 {
		select {
		case <-time.After(startDelay):
		case <-ctx.Done():
			return 137
		}
	}
	filter := o.Filter
	var match func([]byte, int) bool
	if !filter.IsZero() {
		match = filter.Match
	}
	var taps []*Tap
	var tapped []tapSel // the sels behind taps, index for index
	for _, s := range sels {
		if s.none {
			continue
		}
		tapped = append(tapped, s)
		tp, err := h.n.subscribe(h.name, s.sel, match, h.cfg.CaptureBuffer, p.PID())
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			for _, t := range taps {
				t.Close()
			}
			return 1
		}
		taps = append(taps, tp)
	}
	defer func() {
		for _, t := range taps {
			t.Close()
		}
	}()

	banner := pktcap.BannerLines(o, st, info)
	for _, l := range banner {
		if _, err := fmt.Fprintln(stderr, l); err != nil {
			return 141
		}
	}
	snap := 0
	if s, ok := o.Snaplen.Get(); ok {
		snap = s
	}
	var emit func(c Captured, label string, seq int) error
	var flush func() error
	switch {
	case o.Trace:
		cw := pktcap.NewConsoleWriter(out, st)
		emit = func(c Captured, _ string, seq int) error {
			return cw.WriteFrame(h.traceFrame(c, seq, snap))
		}
	case o.Outfile == "":
		cw := pktcap.NewConsoleWriter(out, st)
		emit = func(c Captured, label string, seq int) error {
			data := truncate(c.Data, snap)
			return cw.WriteFrame(h.consoleFrame(c, label, seq, data))
		}
	case o.NG:
		var ifaces []pktcap.NgInterface
		for _, l := range labelsOf(sels) {
			ifaces = append(ifaces, pktcap.NgInterface{Name: l, Snaplen: snap})
		}
		ng, err := pktcap.NewNgWriter(out, ifaces)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		emit = func(c Captured, label string, _ int) error {
			data := truncate(c.Data, snap)
			return ng.WritePacket(indexOfLabel(sels, label), c.Time, data, len(c.Data))
		}
		flush = ng.Flush
	default:
		pw, err := pktcap.NewPcapWriter(out, snap)
		if err != nil {
			return 141 // the header could not be written: the reader is gone
		}
		emit = func(c Captured, _ string, _ int) error {
			data := truncate(c.Data, snap)
			return pw.WritePacket(c.Time, data, len(c.Data))
		}
		flush = pw.Flush
	}

	// A session has one capture ring: its frames come out in the order
	// they were captured, across its points. Each point's tap is in that
	// order already (frames enter the taps as the model forwards them), so
	// the session holds at most one frame per tap, its head, and dumps the
	// earliest head; the taps' buffers stay the capture buffer.
	heads := make([]Captured, len(taps))
	has := make([]bool, len(taps))
	refill := func() (any bool) {
		for i, tp := range taps {
			if !has[i] {
				select {
				case heads[i] = <-tp.C:
					has[i] = true
				default:
				}
			}
			any = any || has[i]
		}
		return any
	}
	// wait blocks until a tap has a frame (or a signal, or the end).
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(sigs)}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
	for _, tp := range taps {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tp.C)})
	}
	stopSignal := func(s shell.Signal) bool {
		return s == shell.SIGINT || s == shell.SIGTERM || s == shell.SIGHUP || s == shell.SIGQUIT
	}

	// Writing to a file on the host, 5.5 to 6.5 builds keep a progress
	// line on stderr, rewritten in place and never ended by a newline (a
	// real transcript: "Dump: 385949, broken : 0, drop: 0, file err:
	// 0Join with dump thread failed..."); 6.7 and later were not seen
	// printing it.
	progressShown := false
	progress := func(dumped int, taps []*Tap) {
		if o.Outfile == "" || o.Outfile == "-" || h.version >= "6.7" {
			return
		}
		var dropped uint64
		for _, t := range taps {
			dropped += t.Dropped()
		}
		cr := "\r"
		if !progressShown {
			cr = ""
		}
		progressShown = true
		fmt.Fprintf(stderr, "%sDump: %d, broken : 0, drop: %d, file err: 0", cr, dumped, dropped)
	}

	count := -1
	if c, ok := o.Count.Get(); ok && c > 0 {
		count = c
	}
	hostClock := &h.n.hostBy[h.name].clock
	dumped := 0
	signalled := false
	writeFailed := false
loop:
	for count < 0 || dumped < count {
		if !refill() {
			chosen, v, _ := reflect.Select(cases)
			switch chosen {
			case 0:
				if stopSignal(v.Interface().(shell.Signal)) {
					signalled = true
					break loop
				}
				continue
			case 1:
				return 137
			}
			heads[chosen-2], has[chosen-2] = v.Interface().(Captured), true
			refill()
		}
		first := -1
		for i := range heads {
			if has[i] && (first < 0 || heads[i].Time.Before(heads[first].Time)) {
				first = i
			}
		}
		c := heads[first]
		has[first] = false
		c.Time = hostClock.at(c.Time) // the host stamps frames with its own clock
		if err := emit(c, tapped[first].label, dumped+1); err != nil {
			writeFailed = true
			break loop
		}
		dumped++
		// Output is buffered and flushed whenever no frame waits, so a
		// reader sees frames at once when traffic is light and gets them
		// in large writes under load.
		if flush != nil && !slices.Contains(has, true) && idle(taps) {
			if err := flush(); err != nil {
				writeFailed = true
				break loop
			}
			progress(dumped, taps)
		}
		select {
		case s := <-sigs:
			if stopSignal(s) {
				signalled = true
				break loop
			}
		case <-ctx.Done():
			return 137
		default:
		}
	}
	if flush != nil && !writeFailed {
		flush()
	}
	progress(dumped, taps)
	var dropped uint64
	for _, t := range taps {
		dropped += t.Dropped()
	}
	info.Signalled = signalled
	for _, l := range pktcap.EndLines(o, st, info, pktcap.Summary{Dumped: dumped, Dropped: int(dropped)}) {
		fmt.Fprintln(stderr, l)
	}
	if writeFailed {
		return 141 // killed by SIGPIPE, as a real process writing to a closed pipe
	}
	return 0
}

// idle reports whether no captured frame waits in any tap.
func idle(taps []*Tap) bool {
	for _, t := range taps {
		if len(t.ch) > 0 {
			return false
		}
	}
	return true
}

// truncate applies a snap length (0: whole frame).
func truncate(data []byte, snap int) []byte {
	if snap > 0 && len(data) > snap {
		return data[:snap]
	}
	return data
}

func indexOfLabel(sels []tapSel, label string) int {
	return max(0, slices.Index(labelsOf(sels), label))
}

// labelsOf are the distinct point labels of sels, in order: a pcapng
// interface each.
func labelsOf(sels []tapSel) []string {
	var out []string
	for _, s := range sels {
		if !slices.Contains(out, s.label) {
			out = append(out, s.label)
		}
	}
	return out
}

func absFile(cwd, name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return strings.TrimSuffix(cwd, "/") + "/" + name
}

// consoleFrame builds the console record of a captured frame as the host's
// build prints it.
func (h *labHost) consoleFrame(c Captured, label string, seq int, data []byte) *pktcap.ConsoleFrame {
	t := c.Time.UTC()
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	flags := []string{"TSO not enabled", "Checksum not offloaded and not verified"}
	if label == "UplinkRcvKernel" || label == "UplinkSndKernel" {
		flags = flags[1:] // newer kernel-side uplink points omit the TSO phrase
	}
	vlan := -1
	if c.VLAN > 0 {
		vlan = c.VLAN
	}
	return &pktcap.ConsoleFrame{TimeOfDay: t.Sub(midnight), Seq: seq, Point: label, Flags: flags,
		VLAN: vlan, Length: len(c.Data), Data: data}
}

// traceFrame is a --trace record as the 6.0 transcript shows one
// (pktcap-uw-trace-6.0.txt): a header "Captured at PktFree point, ...,
// capture length C of N." without bytes, then PATH: and a hop per point the
// copy passed, on the host's clock. The lab names only the points it
// models (the sample also shows IOChain and the Etherswitch steps between
// them); the uplink points are printed as the driver-side UplinkRcv and
// UplinkSnd. C is the snap length (-s), else 24 as in the sample.
func (h *labHost) traceFrame(c Captured, seq, snap int) *pktcap.ConsoleFrame {
	clock := &h.n.hostBy[h.name].clock
	ofDay := func(t time.Time) time.Duration {
		t = t.UTC()
		return t.Sub(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC))
	}
	capLen := 24
	if snap > 0 {
		capLen = snap
	}
	vlan := -1
	if c.VLAN > 0 {
		vlan = c.VLAN
	}
	f := &pktcap.ConsoleFrame{TimeOfDay: ofDay(c.Time), Seq: seq, Point: string(pktcap.PktFree),
		Flags: []string{"TSO not enabled", "Checksum not offloaded and not verified"}, VLAN: vlan,
		Length: len(c.Data), CapLength: min(capLen, len(c.Data)), Trace: []pktcap.TraceHop{}}
	names := map[pktcap.Stage]pktcap.Point{UplinkRcv: pktcap.UplinkRcv, UplinkSnd: pktcap.UplinkSnd, PortInput: pktcap.PortInput,
		PortOutput: pktcap.PortOutput, VnicRx: pktcap.VnicRx, VnicTx: pktcap.VnicTx, Drop: pktcap.Drop}
	for _, hop := range c.Path {
		f.Trace = append(f.Trace, pktcap.TraceHop{TimeOfDay: ofDay(clock.at(hop.At)), Point: string(names[hop.Point])})
	}
	f.Trace = append(f.Trace, pktcap.TraceHop{TimeOfDay: f.TimeOfDay, Point: string(pktcap.PktFree)})
	return f
}

// pktcapHelp is the usage text of pktcap-uw as printed by a 6.0-era host
// (testdata/transcripts/pktcap-uw/pktcap-uw-help-nsx6.2-era.txt, between
// the prompts); the lab prints it for every version.
//
//go:embed pktcap-uw-help.txt
var pktcapHelp string

// threadIDs are the "Main thread", "Dump Thread" and "Recv Thread" numbers
// of a session: 12-digit numbers (thread addresses) whose gaps are those of
// the real newer-build transcript (330745392000, +2108288, +2101248), moved
// by the process ID so two sessions differ.
func threadIDs(pid int) [3]uint64 {
	main := uint64(330745392000) + uint64(pid%4096)*0x100000
	return [3]uint64{main, main + 2108288, main + 2108288 + 2101248}
}
