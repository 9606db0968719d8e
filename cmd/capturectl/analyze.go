package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/teaming"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// portFlags describe the traced port: from a saved discovery (--target)
// and/or flags (flags win).
type portFlags struct {
	mac, policy, team, name string
	vlan                    int
	target                  string
	nic                     int
	set                     map[string]bool
}

func (p *portFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.mac, "mac", "", "the traced vNIC's `MAC` address")
	fs.IntVar(&p.vlan, "vlan", 0, "the portgroup's `VLAN`")
	fs.StringVar(&p.policy, "policy", "srcport", "teaming `policy`: srcport, srcmac, explicit, loadbased or iphash")
	fs.StringVar(&p.team, "team-uplink", "", "the port's team `uplink` (vmnicN), as esxcli network vm port list reports it")
	fs.StringVar(&p.name, "port-name", "", "a `name` for the traced port in the report")
	fs.StringVar(&p.target, "target", "", "take the port from a saved `file` of capturectl discover --json")
	fs.IntVar(&p.nic, "nic", 0, "with --target: which vNIC, counting from 0 (`N`; default: the one a discovery by MAC or IP address named, else 0)")
}

// fromTarget fills what the flags did not set from a discover --json file.
func (p *portFlags) fromTarget(fs *flag.FlagSet) error {
	p.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { p.set[f.Name] = true })
	if p.target == "" {
		return nil
	}
	data, err := os.ReadFile(p.target)
	if err != nil {
		return usagef("--target: %v", err)
	}
	var doc struct {
		Version int           `json:"version"`
		Targets []esxi.Target `json:"targets"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != discoverJSONVersion {
		return usagef("--target %s: not the JSON of capturectl discover --json (version %d): %v", p.target, discoverJSONVersion, err)
	}
	if !p.set["nic"] {
		// a discovery by MAC or IP address marked the vNIC it named
		p.nic = max(0, slices.IndexFunc(doc.Targets, func(t esxi.Target) bool { return t.Selected }))
	}
	if p.nic < 0 || p.nic >= len(doc.Targets) {
		return usagef("--nic %d: %s has %d vNICs", p.nic, p.target, len(doc.Targets))
	}
	t := doc.Targets[p.nic]
	fill := func(name string, dst *string, v string) {
		if !p.set[name] && v != "" {
			*dst = v
		}
	}
	fill("mac", &p.mac, t.MAC)
	fill("team-uplink", &p.team, t.TeamUplink)
	if pol, ok := teaming.FromAPI(t.TeamingPolicy); ok {
		fill("policy", &p.policy, string(pol))
	}
	fill("port-name", &p.name, t.VM+" "+t.NIC)
	if !p.set["vlan"] {
		p.vlan = t.VLAN
	}
	return nil
}

func (p *portFlags) port() (correlate.Port, error) {
	cp := correlate.Port{Name: p.name, VLAN: p.vlan, TeamUplink: p.team}
	if p.mac != "" {
		m, err := net.ParseMAC(p.mac)
		if err != nil {
			return cp, usagef("--mac %q: %v", p.mac, err)
		}
		cp.MAC = m
	}
	pol, err := teaming.Parse(p.policy)
	if err != nil {
		return cp, usagef("--policy: %v", err)
	}
	cp.Policy = pol
	return cp, nil
}

func runAnalyze(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "analyze", "analyze [flags] FILE...\n\n"+
		"Correlates saved captures offline: pcapng (interfaces named like esx02/vmnic2/rx or\n"+
		"esx02/50331657/VnicRx, as capturectl writes them), pcap (name its point with --point),\n"+
		"or pktcap-uw console text as operators paste it (the banner names the uplink or port).")
	var points multiFlag
	fs.Var(&points, "point", "`FILE=NAME`: the capture point of a pcap file, a one-interface pcapng (pktcap-uw -P) or a console transcript without banner, e.g. a.pcap=esx02/vmnic2/rx; FILE#N=NAME names interface N of a pcapng (repeatable)")
	var pf portFlags
	pf.register(fs)
	date := fs.String("date", "", "`YYYY-MM-DD` of console transcripts, which print only the time of day (default: today, UTC)")
	window := fs.Duration("window", 5*time.Millisecond, "sightings of the same bytes within this `duration` are one frame")
	asJSON := fs.Bool("json", false, "write the JSON report to stdout")
	htmlOut := fs.String("html", "", "also write the HTML report to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("analyze: no capture files given")
	}
	if err := pf.fromTarget(fs); err != nil {
		return err
	}
	port, err := pf.port()
	if err != nil {
		return err
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	if *date != "" {
		if day, err = time.Parse("2006-01-02", *date); err != nil {
			return usagef("--date %q: want YYYY-MM-DD", *date)
		}
	}
	named := map[string]string{}
	for _, p := range points {
		f, n, ok := strings.Cut(p, "=")
		if !ok {
			return usagef("--point %q: want FILE=NAME", p)
		}
		named[f] = n
	}
	in, err := openInputs(fs.Args(), named, day, *window)
	if err != nil {
		return err
	}
	defer in.close()
	res, err := in.correlate(ctx, correlate.Config{Port: port, Window: *window})
	if err != nil {
		return err
	}
	meta := report.Meta{Title: "capturectl analyze " + strings.Join(fs.Args(), " ")}
	if *htmlOut != "" {
		if err := writeFileWith(*htmlOut, func(w io.Writer) error { return report.HTML(w, res, meta) }); err != nil {
			return err
		}
		meta.Files = append(meta.Files, *htmlOut)
	}
	if *asJSON {
		err = report.JSON(e.stdout, res, meta)
	} else {
		err = report.Text(e.stdout, res, meta)
	}
	if err != nil {
		return err
	}
	if res.Filtered() {
		return errFiltered
	}
	return nil
}

func writeFileWith(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	if err := f(bw); err != nil {
		out.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// inputs are the capture streams of an analysis.
type inputs struct {
	points  []correlate.Point
	sources []source
	closers []io.Closer
	// snaplen is the smallest snap length of the inputs (0: none is
	// smaller than the key): frames are keyed over no more than every
	// point captured
	snaplen int
}

// snapped notes a snap length of an input.
func (in *inputs) snapped(n int) {
	if n > 0 && n < correlate.DefaultKeyLen && (in.snaplen == 0 || n < in.snaplen) {
		in.snaplen = n
	}
}

// emitFunc takes one frame of a source: its point, time (ns since the
// epoch), captured bytes (valid only during the call) and wire length. It
// returns false when the reader is to stop.
type emitFunc func(point int, ns int64, data []byte, origLen int) bool

// A source is one stream of frames of one point, in time order.
type source struct {
	// single is the point of a source whose live interval is its first and
	// last frame (pcap), else -1 (the interval is known beforehand).
	single int
	read   func(emit emitFunc) error
	// or: interface iface of a pcapng file that group reads in one pass
	group *ngGroup
	iface int
}

func (in *inputs) close() {
	for _, c := range in.closers {
		c.Close()
	}
}

func openInputs(files []string, named map[string]string, day time.Time, window time.Duration) (*inputs, error) {
	in := &inputs{}
	for _, name := range files {
		br, f, err := openCapture(name)
		if err != nil {
			in.close()
			return nil, err
		}
		head, _ := br.Peek(4)
		switch pktcap.DetectFormat(head) {
		case pktcap.FormatPcapNG:
			err = in.addPcapng(name, f, br, named, window)
		case pktcap.FormatPcap:
			in.closers = append(in.closers, f)
			err = in.addPcap(name, br, named)
		default:
			err = in.addConsole(name, br, named, day, window)
			f.Close()
		}
		if err != nil {
			in.close()
			return nil, err
		}
	}
	for f := range named {
		found := false
		for _, n := range files {
			found = found || n == f || strings.HasPrefix(f, n+"#") // FILE#IFACE of a pcapng
		}
		if !found {
			in.close()
			return nil, usagef("--point names %q, which is not among the files", f)
		}
	}
	return in, nil
}

// openCapture opens a capture file, gzip-compressed or not (capture.pcap.gz
// reads as capture.pcap). Close the returned closer.
func openCapture(name string) (*bufio.Reader, io.Closer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("analyze: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10) // pcap: PcapReader reads past it in large blocks
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("analyze: %s: %w", name, err)
		}
		return bufio.NewReaderSize(zr, 64<<10), f, nil
	}
	return br, f, nil
}

func (in *inputs) addPcap(file string, r io.Reader, named map[string]string) error {
	name, ok := named[file]
	if !ok {
		return usagef("%s is a pcap file: name its capture point with --point %s=HOST/vmnicN/rx (or HOST/PORTID/PortOutput, ...)", file, file)
	}
	p, err := correlate.PointFromName(name)
	if err != nil {
		return usagef("--point %s=%s: %v", file, name, err)
	}
	pr, err := pktcap.NewPcapReader(r)
	if err != nil {
		return fmt.Errorf("analyze: %s: %w", file, err)
	}
	in.snapped(int(pr.Snaplen()))
	idx := len(in.points)
	in.points = append(in.points, p)
	in.sources = append(in.sources, source{single: idx, read: func(emit emitFunc) error {
		return readFrames(file, idx, pr.Next, emit)
	}})
	return nil
}

// readFrames passes the frames next returns to emit as point's, until the
// end: a capture cut short (a killed run) is read up to the cut.
func readFrames(file string, point int, next func() (int64, []byte, int, error), emit emitFunc) error {
	for {
		ns, data, origLen, err := next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("analyze: %s: %w", file, err)
		}
		if !emit(point, ns, data, origLen) {
			return nil
		}
	}
}

// addPcapng scans the file once for its interfaces (the capture points)
// and their live intervals, then makes each interface a source, all read
// in one more pass (ngGroup): every source is in time order however the
// points are interleaved, with memory bounded. A point's live interval is
// the start and end in its
// statistics block (capturectl writes them with the drop count); without
// one, it is the first to the last packet, widened by the window.
//
// pktcap-uw's own pcapng (-P/--ng) holds one interface, named as it sees
// fit: --point FILE=NAME names it.
func (in *inputs) addPcapng(file string, f io.Closer, br *bufio.Reader, named map[string]string, window time.Duration) error {
	defer f.Close()
	sc, err := pktcap.NewNgScanner(br)
	if err != nil {
		return fmt.Errorf("analyze: %s: %w", file, err)
	}
	type span struct{ first, last int64 }
	var spans []span
	for {
		id, ns, _, _, err := sc.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // a capture cut short is read up to the cut
		}
		if err != nil {
			return fmt.Errorf("analyze: %s: %w", file, err)
		}
		for len(spans) <= id {
			spans = append(spans, span{})
		}
		if s := &spans[id]; s.first == 0 {
			s.first, s.last = ns, ns
		} else {
			s.last = ns
		}
	}
	ifaces := sc.Interfaces()
	g := &ngGroup{file: file, pipes: make([]*pipe, len(ifaces)), starve: make(chan int)}
	if name, ok := named[file]; ok && len(ifaces) != 1 {
		return usagef("--point %s=%s: the file has %d interfaces: name each with --point %s#N=NAME (N from 0, as Wireshark's frame.interface_id)", file, name, len(ifaces), file)
	}
	// interfaces of the same name are one point: the sections of captures
	// joined with cat, say; it is live during theirs, with gaps between
	pointOf := map[string]int{}
	spansOf := map[int][]correlate.Gap{} // the live intervals of each point's interfaces
	for i, intf := range ifaces {
		// --point FILE#N=NAME names interface N; FILE=NAME the only one
		key := fmt.Sprintf("%s#%d", file, i)
		name, isNamed := named[key]
		if !isNamed && len(ifaces) == 1 {
			key = file
			name, isNamed = named[key]
		}
		pointName := intf.Name
		if isNamed {
			pointName = name
		}
		p, err := correlate.PointFromName(pointName)
		switch {
		case err != nil && isNamed:
			return usagef("--point %s=%s: %v", key, name, err)
		case err != nil && len(ifaces) == 1:
			return usagef("%s: its interface is named %q, not after a capture point: name it with --point %s=HOST/vmnicN/rx (or HOST/PORTID/PortOutput, ...)", file, intf.Name, file)
		case err != nil:
			return usagef("%s: interface %d is named %q, not after a capture point: name it with --point %s#%d=HOST/vmnicN/rx (or HOST/PORTID/PortOutput, ...)", file, i, intf.Name, file, i)
		}
		switch st := intf.Stats; {
		case st != nil && !st.Start.IsZero() && !st.End.IsZero():
			p.Start, p.Stop = st.Start, st.End
		case i < len(spans) && spans[i].first != 0:
			p.Start, p.Stop = time.Unix(0, spans[i].first).Add(-window), time.Unix(0, spans[i].last).Add(window)
		}
		if intf.Stats != nil {
			p.Dropped = intf.Stats.Dropped
		}
		in.snapped(int(intf.Snaplen))
		idx, seen := pointOf[p.Name]
		if seen {
			in.points[idx].Dropped += p.Dropped
		} else {
			idx = len(in.points)
			pointOf[p.Name] = idx
			in.points = append(in.points, p)
		}
		if !p.Start.IsZero() && !p.Stop.IsZero() {
			spansOf[idx] = append(spansOf[idx], correlate.Gap{From: p.Start, To: p.Stop})
		}
		g.points = append(g.points, idx)
		in.sources = append(in.sources, source{single: -1, group: g, iface: i})
	}
	for idx, spans := range spansOf {
		if len(spans) < 2 {
			continue
		}
		q := &in.points[idx]
		q.Start, q.Stop, q.Gaps = joinSpans(spans)
	}
	return nil
}

// joinSpans is the union of live intervals: its first start, last stop
// and the gaps between.
func joinSpans(spans []correlate.Gap) (start, stop time.Time, gaps []correlate.Gap) {
	slices.SortFunc(spans, func(a, b correlate.Gap) int { return a.From.Compare(b.From) })
	start, stop = spans[0].From, spans[0].To
	for _, s := range spans[1:] {
		if s.From.After(stop) {
			gaps = append(gaps, correlate.Gap{From: stop, To: s.From})
		}
		if s.To.After(stop) {
			stop = s.To
		}
	}
	return start, stop, gaps
}

var (
	uplinkBanner = regexp.MustCompile(`The name of the uplink is (vmnic\d+)`)
	portBanner   = regexp.MustCompile(`The switch port id is 0x([0-9a-fA-F]+)`)
	pointBanner  = regexp.MustCompile(`The session capture point is ([A-Za-z0-9,]+)`)
)

// A consoleRun is one pktcap-uw session of a console transcript: a banner
// starts one. Since 7.0 one session may capture at several points
// (--capture PortOutput,VnicRx), each frame saying which, so a run has one
// stream per point label, in order of appearance.
type consoleRun struct {
	uplink  string
	port    uint32
	streams []*consoleStream
	dropped uint64
}

type consoleStream struct {
	label string // the point as pktcap-uw prints it, or (points) its name
	obs   []pktcap.Observation
}

func (rn *consoleRun) stream(label string) *consoleStream {
	k := slices.IndexFunc(rn.streams, func(s *consoleStream) bool { return s.label == label })
	if k < 0 {
		k = len(rn.streams)
		rn.streams = append(rn.streams, &consoleStream{label: label})
	}
	return rn.streams[k]
}

// readConsoleRuns splits pktcap-uw console text into runs. Times of day
// are placed on day (the next day after a run crosses midnight).
func readConsoleRuns(file string, r io.Reader, day time.Time) ([]*consoleRun, error) {
	cr := pktcap.NewConsoleReader(r)
	var runs []*consoleRun
	var cur *consoleRun
	var prev time.Duration
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return runs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("analyze: %s: %w", file, err)
		}
		switch rec := rec.(type) {
		case *pktcap.TextLine:
			msg := rec.Message()
			if m := uplinkBanner.FindStringSubmatch(msg); m != nil {
				cur = &consoleRun{uplink: m[1]}
				runs = append(runs, cur)
			} else if m := portBanner.FindStringSubmatch(msg); m != nil {
				id, _ := strconv.ParseUint(m[1], 16, 32)
				cur = &consoleRun{port: uint32(id)}
				runs = append(runs, cur)
			} else if m := pointBanner.FindStringSubmatch(msg); m != nil && cur != nil {
				// the points the session captures at, frames or not
				for _, label := range strings.Split(m[1], ",") {
					cur.stream(label)
				}
			} else if s, ok := pktcap.ParseSummary(msg); ok && cur != nil {
				cur.dropped = uint64(s.Dropped)
			}
		case *pktcap.ConsoleFrame:
			if cur == nil {
				cur = &consoleRun{}
				runs = append(runs, cur)
			}
			if rec.TimeOfDay < prev-12*time.Hour {
				day = day.Add(24 * time.Hour) // the run crossed midnight
			}
			prev = rec.TimeOfDay
			st := cur.stream(rec.Point)
			st.obs = append(st.obs, pktcap.Observation{Time: day.Add(rec.TimeOfDay), Data: rec.Data, OrigLen: rec.Length, VLAN: rec.VLAN})
		}
	}
}

// pointName is the capture point name of a stream of the run.
func (rn *consoleRun) pointName(label string) string {
	switch {
	case rn.uplink != "":
		dir := "rx"
		if pt, _ := pktcap.ParsePoint(label); pt.Stage() == pktcap.StageUplinkTx {
			dir = "tx"
		}
		return rn.uplink + "/" + dir
	case rn.port != 0:
		return fmt.Sprintf("%d/%s", rn.port, label)
	}
	return label
}

// points merges the run's streams by point name: the banner names the
// points as --capture does and frames may name one otherwise (UplinkRcv,
// UplinkRcvKernel), so a stream without frames whose name another stream
// has is that point.
func (rn *consoleRun) points() []*consoleStream {
	withFrames := map[string]bool{}
	for _, st := range rn.streams {
		if len(st.obs) > 0 {
			withFrames[rn.pointName(st.label)] = true
		}
	}
	var merged []*consoleStream
	for _, st := range rn.streams {
		name := rn.pointName(st.label)
		if len(st.obs) == 0 && withFrames[name] {
			continue
		}
		k := slices.IndexFunc(merged, func(m *consoleStream) bool { return m.label == name })
		if k < 0 {
			merged = append(merged, &consoleStream{label: name, obs: st.obs})
			continue
		}
		m := merged[k]
		m.obs = append(m.obs, st.obs...)
		slices.SortStableFunc(m.obs, func(a, b pktcap.Observation) int { return a.Time.Compare(b.Time) })
	}
	return merged
}

// span is the time of the run's first and last frame: its points are one
// session and share it.
func (rn *consoleRun) span() (first, last time.Time) {
	for _, st := range rn.streams {
		if len(st.obs) == 0 {
			continue
		}
		if first.IsZero() || st.obs[0].Time.Before(first) {
			first = st.obs[0].Time
		}
		if l := st.obs[len(st.obs)-1].Time; l.After(last) {
			last = l
		}
	}
	return first, last
}

// addConsole makes each point of each run of pktcap-uw console text a
// point of the analysis. --point FILE=NAME names the point of a transcript
// of one session at one point (frames pasted without the banner, say).
func (in *inputs) addConsole(file string, r io.Reader, named map[string]string, day time.Time, window time.Duration) error {
	runs, err := readConsoleRuns(file, r, day)
	if err != nil {
		return err
	}
	n := 0
	for i, rn := range runs {
		first, last := rn.span()
		if first.IsZero() {
			continue // no frames at all
		}
		points := rn.points()
		for _, st := range points {
			name := st.label
			if given, ok := named[file]; ok {
				if len(runs) != 1 || len(points) != 1 {
					return usagef("--point %s=%s: the transcript holds %d pktcap-uw sessions; --point names the point of a transcript of one session at one point (the banners name the others)", file, given, len(runs))
				}
				name = given
			}
			p, err := correlate.PointFromName(name)
			switch {
			case err != nil && named[file] != "":
				return usagef("--point %s=%s: %v", file, name, err)
			case err != nil:
				return usagef("%s, run %d: %v; the transcript lacks the banner that names the point (\"The name of the uplink is vmnicN\", \"The switch port id is 0x...\"): add it, or name the point of a one-session transcript with --point %s=HOST/vmnicN/rx", file, i+1, err, file)
			}
			p.Name = fmt.Sprintf("%s#%d %s", filepath.Base(file), i+1, name)
			// the run's drop count is the session's: it covers every point
			// of the run
			p.Start, p.Stop, p.Dropped = first.Add(-window), last.Add(window), rn.dropped
			idx := len(in.points)
			in.points = append(in.points, p)
			obs := st.obs
			for _, o := range obs {
				if len(o.Data) < o.OrigLen {
					in.snapped(len(o.Data)) // a snap length (-s) or a trace's capture length
				}
			}
			in.sources = append(in.sources, source{single: -1, read: func(emit emitFunc) error {
				for _, o := range obs {
					if !emit(idx, o.Time.UnixNano(), o.Data, o.OrigLen) {
						return nil
					}
				}
				return nil
			}})
			n++
		}
	}
	if n == 0 {
		return usagef("%s: not a pcap or pcapng file, and no pktcap-uw console frames in it", file)
	}
	return nil
}

// correlate merges the sources in time order into a correlator. Each
// source is read, and its frames keyed, by a goroutine of its own, in
// batches; this goroutine only merges and correlates.
func (in *inputs) correlate(ctx context.Context, cfg correlate.Config) (*correlate.Result, error) {
	cfg.Points = in.points
	if cfg.KeyLen == 0 || (in.snaplen > 0 && in.snaplen < cfg.KeyLen) {
		cfg.KeyLen = in.snaplen
	}
	c, err := correlate.New(cfg)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		wg.Wait()
	}()
	curs := make([]*cursor, len(in.sources))
	heads := make([]int64, len(in.sources)) // ns of each cursor's next frame
	keyer := c.Keyer()
	var groups []*ngGroup
	for i, src := range in.sources {
		if g := src.group; g != nil {
			p := newPipe(keyer)
			p.starve, p.idx = g.starve, src.iface
			g.pipes[src.iface] = p
			curs[i] = p.cursor()
			if src.iface == 0 {
				groups = append(groups, g)
			}
			continue
		}
		curs[i] = startSource(&wg, done, src, keyer)
	}
	for _, g := range groups {
		wg.Go(func() { g.run(&wg, done) })
	}
	live := make([]int, 0, len(curs))
	for i, cu := range curs {
		if !cu.next() {
			if cu.err != nil {
				return nil, cu.err
			}
			continue
		}
		live = append(live, i)
		heads[i] = cu.rec().ns
		if p := in.sources[i].single; p >= 0 {
			c.SetStart(p, time.Unix(0, heads[i]).Add(-cfg.Window))
		}
	}
	for n := 0; len(live) > 0; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		bi := 0
		for k := 1; k < len(live); k++ {
			if heads[live[k]] < heads[live[bi]] {
				bi = k
			}
		}
		i := live[bi]
		cu := curs[i]
		r := cu.rec()
		c.AddKeyed(int(r.point), r.ns, r.key, cu.b.heads[r.off:r.off+uint32(r.n)])
		last := r.ns
		if cu.next() {
			heads[i] = cu.rec().ns
			continue
		}
		if cu.err != nil {
			return nil, cu.err
		}
		live = append(live[:bi], live[bi+1:]...)
		if p := in.sources[i].single; p >= 0 {
			c.SetStop(p, time.Unix(0, last).Add(cfg.Window))
		}
	}
	return c.Close(), ctx.Err()
}

// A batch holds keyed frames of one source: their heads are in heads.
type batch struct {
	recs  []keyedRec
	heads []byte
}

type keyedRec struct {
	ns    int64
	key   correlate.Key
	off   uint32
	point int32
	n     uint8
}

const batchLen = 2048

// cursor reads the batches of one source.
type cursor struct {
	p   *pipe
	b   *batch
	i   int
	err error
}

// startSource reads src in a goroutine, keying its frames, until it ends or
// done is closed.
func startSource(wg *sync.WaitGroup, done <-chan struct{}, src source, key func([]byte, int) correlate.Key) *cursor {
	p := newPipe(key)
	wg.Go(func() {
		err := src.read(func(point int, ns int64, data []byte, origLen int) bool {
			return !p.add(point, ns, data, origLen) || p.send(done)
		})
		p.finish(done, err)
	})
	return p.cursor()
}

// next moves to the next frame; at the end it returns false with err set
// if the source failed.
func (c *cursor) next() bool {
	c.i++
	if c.b != nil && c.i < len(c.b.recs) {
		return true
	}
	if c.b != nil {
		select {
		case c.p.free <- c.b:
		default:
		}
	}
	b, ok := c.receive()
	if !ok {
		c.b = nil
		c.err = <-c.p.errc
		return false
	}
	c.b, c.i = b, 0
	return true
}

// receive waits for the next batch; a member of a pcapng group tells the
// group's scanner that it waits (see ngGroup).
func (c *cursor) receive() (*batch, bool) {
	for c.p.starve != nil && !c.p.alone.Load() {
		select {
		case b, ok := <-c.p.ch:
			return b, ok
		case c.p.starve <- c.p.idx:
		}
	}
	b, ok := <-c.p.ch
	return b, ok
}

func (c *cursor) rec() *keyedRec { return &c.b.recs[c.i] }
