package main

import (
	"bufio"
	"bytes"
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
	"strconv"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
)

// exitFiltered is the exit code of trace and analyze when frames were
// filtered by reverse teaming.
const exitFiltered = 3

// errFiltered ends a command that printed its report with exitFiltered.
var errFiltered = errors.New("frames were filtered by reverse teaming")

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
	fs.IntVar(&p.nic, "nic", 0, "with --target: which vNIC, counting from 0 (`N`)")
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
	fill("policy", &p.policy, apiPolicies[t.TeamingPolicy])
	fill("port-name", &p.name, t.VM+" "+t.NIC)
	if !p.set["vlan"] {
		p.vlan = t.VLAN
	}
	return nil
}

func (p *portFlags) port() (correlate.Port, error) {
	cp := correlate.Port{Name: p.name, VLAN: p.vlan, Policy: p.policy, TeamUplink: p.team}
	if p.mac != "" {
		m, err := net.ParseMAC(p.mac)
		if err != nil {
			return cp, usagef("--mac %q: %v", p.mac, err)
		}
		cp.MAC = m
	}
	switch p.policy {
	case "srcport", "srcmac", "explicit", "loadbased", "iphash":
	default:
		return cp, usagef("--policy %q: want srcport, srcmac, explicit, loadbased or iphash", p.policy)
	}
	return cp, nil
}

func runAnalyze(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "analyze", "analyze [flags] FILE...\n\n"+
		"Correlates saved captures offline: pcapng (interfaces named like esx02/vmnic2/rx or\n"+
		"esx02/50331657/VnicRx, as capturectl writes them), pcap (name its point with --point),\n"+
		"or pktcap-uw console text as operators paste it (the banner names the uplink or port).")
	var points multiFlag
	fs.Var(&points, "point", "`FILE=NAME`: the capture point of a pcap file, e.g. a.pcap=esx02/vmnic2/rx (repeatable)")
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
	streams []func() (pktcap.Observation, bool, error)
	// single[i] is the point of stream i when it carries one point whose
	// live interval is its first and last packet (pcap), else -1.
	single []int
	// multi marks streams that carry several points (pcapng): their order
	// across points is only approximate.
	multi   bool
	closers []io.Closer
}

func (in *inputs) close() {
	for _, c := range in.closers {
		c.Close()
	}
}

var (
	pcapMagics = [][]byte{{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, {0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}}
	ngMagic    = []byte{0x0a, 0x0d, 0x0d, 0x0a}
)

func openInputs(files []string, named map[string]string, day time.Time, window time.Duration) (*inputs, error) {
	in := &inputs{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			in.close()
			return nil, fmt.Errorf("analyze: %w", err)
		}
		br := bufio.NewReaderSize(f, 1<<20)
		head, _ := br.Peek(4)
		switch {
		case bytes.Equal(head, ngMagic):
			err = in.addPcapng(name, f, br, window)
		case isPcap(head):
			in.closers = append(in.closers, f)
			err = in.addPcap(name, br, named)
		default:
			err = in.addConsole(name, br, day, window)
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
			found = found || n == f
		}
		if !found {
			in.close()
			return nil, usagef("--point names %q, which is not among the files", f)
		}
	}
	return in, nil
}

func isPcap(head []byte) bool {
	for _, m := range pcapMagics {
		if bytes.Equal(head, m) {
			return true
		}
	}
	return false
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
	cr, err := pktcap.NewCaptureReader(r)
	if err != nil {
		return fmt.Errorf("analyze: %s: %w", file, err)
	}
	// The correlator keeps no frame bytes, and a pcap stream is merged
	// without buffering: its packets need not be copied.
	cr.ZeroCopy = true
	idx := len(in.points)
	in.points = append(in.points, p)
	in.single = append(in.single, idx)
	in.streams = append(in.streams, func() (pktcap.Observation, bool, error) {
		pkt, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return pktcap.Observation{}, false, nil
		}
		if err != nil {
			// A capture cut short (a killed run) is still read up to the cut.
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return pktcap.Observation{}, false, nil
			}
			return pktcap.Observation{}, false, fmt.Errorf("analyze: %s: %w", file, err)
		}
		return pktcap.Observation{Point: idx, Time: pkt.Time, Data: pkt.Data, OrigLen: pkt.OrigLen, VLAN: -1}, true, nil
	})
	return nil
}

// addPcapng reads the file once for each interface's first and last packet
// time (the live intervals), then streams it.
// Without statistics, a point counts as capturing from its first to its
// last packet, widened by the grouping window.
func (in *inputs) addPcapng(file string, f *os.File, br *bufio.Reader, window time.Duration) error {
	cr, err := pktcap.NewCaptureReader(br)
	if err != nil {
		f.Close()
		return fmt.Errorf("analyze: %s: %w", file, err)
	}
	base := len(in.points)
	type span struct{ first, last time.Time }
	var spans []span
	for {
		pkt, err := cr.Next()
		if err != nil {
			break
		}
		for len(spans) <= pkt.Interface {
			spans = append(spans, span{})
		}
		s := &spans[pkt.Interface]
		if s.first.IsZero() {
			s.first = pkt.Time
		}
		s.last = pkt.Time
	}
	ifaces := cr.Interfaces()
	for i, intf := range ifaces {
		p, err := correlate.PointFromName(intf.Name)
		if err != nil {
			f.Close()
			return fmt.Errorf("analyze: %s interface %d: %w", file, i, err)
		}
		switch {
		case intf.Stats != nil && !intf.Stats.Start.IsZero() && !intf.Stats.End.IsZero():
			// capturectl records each point's live interval and drops
			p.Start, p.Stop, p.Dropped = intf.Stats.Start, intf.Stats.End, intf.Stats.Dropped
		case i < len(spans):
			p.Start, p.Stop = spans[i].first.Add(-window), spans[i].last.Add(window)
		}
		if intf.Stats != nil {
			p.Dropped = intf.Stats.Dropped
		}
		in.points = append(in.points, p)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	cr, err = pktcap.NewCaptureReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return err
	}
	in.closers = append(in.closers, f)
	in.multi = true
	in.single = append(in.single, -1)
	in.streams = append(in.streams, func() (pktcap.Observation, bool, error) {
		for {
			pkt, err := cr.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return pktcap.Observation{}, false, nil
			}
			if err != nil {
				return pktcap.Observation{}, false, fmt.Errorf("analyze: %s: %w", file, err)
			}
			if pkt.Interface >= len(ifaces) {
				continue
			}
			return pktcap.Observation{Point: base + pkt.Interface, Time: pkt.Time, Data: pkt.Data, OrigLen: pkt.OrigLen, VLAN: pkt.VLAN}, true, nil
		}
	})
	return nil
}

var (
	uplinkBanner = regexp.MustCompile(`The name of the uplink is (vmnic\d+)`)
	portBanner   = regexp.MustCompile(`The switch port id is 0x([0-9a-fA-F]+)`)
)

// addConsole splits pktcap-uw console text into runs (each banner starts
// one) and makes each run a point.
func (in *inputs) addConsole(file string, r io.Reader, day time.Time, window time.Duration) error {
	cr := pktcap.NewConsoleReader(r)
	type run struct {
		uplink  string
		port    uint32
		label   string
		obs     []pktcap.Observation
		dropped uint64
	}
	var runs []*run
	var cur *run
	var prev time.Duration
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("analyze: %s: %w", file, err)
		}
		switch rec := rec.(type) {
		case *pktcap.TextLine:
			msg := rec.Message()
			if m := uplinkBanner.FindStringSubmatch(msg); m != nil {
				cur = &run{uplink: m[1]}
				runs = append(runs, cur)
			} else if m := portBanner.FindStringSubmatch(msg); m != nil {
				id, _ := strconv.ParseUint(m[1], 16, 32)
				cur = &run{port: uint32(id)}
				runs = append(runs, cur)
			} else if s, ok := pktcap.ParseSummary(msg); ok && cur != nil {
				cur.dropped = uint64(s.Dropped)
			}
		case *pktcap.ConsoleFrame:
			if cur == nil {
				cur = &run{}
				runs = append(runs, cur)
			}
			if cur.label == "" {
				cur.label = rec.Point
			}
			if rec.TimeOfDay < prev-12*time.Hour {
				day = day.Add(24 * time.Hour) // the run crossed midnight
			}
			prev = rec.TimeOfDay
			cur.obs = append(cur.obs, pktcap.Observation{Time: day.Add(rec.TimeOfDay), Data: rec.Data, OrigLen: rec.Length, VLAN: rec.VLAN})
		}
	}
	n := 0
	for i, rn := range runs {
		if len(rn.obs) == 0 {
			continue
		}
		var name string
		switch {
		case rn.uplink != "":
			pt, _ := pktcap.ParsePoint(rn.label)
			dir := "rx"
			if pt.Stage() == pktcap.StageUplinkTx {
				dir = "tx"
			}
			name = rn.uplink + "/" + dir
		case rn.port != 0:
			name = fmt.Sprintf("%d/%s", rn.port, rn.label)
		default:
			name = rn.label
		}
		p, err := correlate.PointFromName(name)
		if err != nil {
			return fmt.Errorf("analyze: %s, run %d: %w", file, i+1, err)
		}
		p.Name = fmt.Sprintf("%s#%d %s", filepath.Base(file), i+1, name)
		p.Start, p.Stop, p.Dropped = rn.obs[0].Time.Add(-window), rn.obs[len(rn.obs)-1].Time.Add(window), rn.dropped
		idx := len(in.points)
		in.points = append(in.points, p)
		obs := rn.obs
		k := 0
		in.single = append(in.single, -1)
		in.streams = append(in.streams, func() (pktcap.Observation, bool, error) {
			if k >= len(obs) {
				return pktcap.Observation{}, false, nil
			}
			o := obs[k]
			o.Point = idx
			k++
			return o, true, nil
		})
		n++
	}
	if n == 0 {
		return usagef("%s: not a pcap or pcapng file, and no pktcap-uw console frames in it", file)
	}
	return nil
}

// correlate merges the streams in time order into a correlator.
func (in *inputs) correlate(ctx context.Context, cfg correlate.Config) (*correlate.Result, error) {
	cfg.Points = in.points
	c, err := correlate.New(cfg)
	if err != nil {
		return nil, err
	}
	sink := c.Add
	var m *correlate.Merger
	if in.multi {
		m = correlate.NewMerger(2*time.Second, c.Add)
		sink = m.Add
	}
	err = correlate.MergeSorted(correlate.Streams{Next: in.streams,
		Started: func(s int, t time.Time) {
			if p := in.single[s]; p >= 0 {
				c.SetStart(p, t.Add(-cfg.Window))
			}
		},
		Ended: func(s int, t time.Time) {
			if p := in.single[s]; p >= 0 {
				c.SetStop(p, t.Add(cfg.Window))
			}
		},
	}, sink)
	if err != nil {
		return nil, err
	}
	if m != nil {
		m.Flush()
	}
	return c.Close(), ctx.Err()
}
