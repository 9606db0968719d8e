package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
)

// apiPolicies maps vSphere teaming policy names to correlate's.
var apiPolicies = map[string]string{
	"loadbalance_srcid": "srcport", "loadbalance_srcmac": "srcmac", "loadbalance_ip": "iphash",
	"loadbalance_loadbased": "loadbased", "failover_explicit": "explicit",
}

// traceRun correlates a live capture: observations go through a Merger
// into the correlator; the team uplink is re-read while it runs.
type traceRun struct {
	mu       sync.Mutex
	c        *correlate.Correlator
	m        *correlate.Merger
	verdicts [8]int
	// notes holds each sighting's verdict comment for the pcapng (--out),
	// up to maxNotes sightings.
	notes map[noteKey]*string
}

type noteKey struct {
	point int
	at    int64
}

const maxNotes = 2_000_000

func (tr *traceRun) note(i *correlate.Instance) {
	if tr.notes == nil || len(tr.notes) >= maxNotes {
		return
	}
	text := "capturectl: " + i.Verdict.String() + ": " + i.Reason()
	for _, s := range i.Sightings {
		tr.notes[noteKey{s.Point, s.Time.UnixNano()}] = &text
	}
}

func (tr *traceRun) add(o pktcap.Observation) {
	tr.mu.Lock()
	tr.m.Add(o)
	tr.mu.Unlock()
}

func runTrace(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "trace", "trace --vm NAME [--nic N] [--duration D | --count N] [filters] [--out DIR] [--json]\n\n"+
		"Discovers the VM's port and team uplink, captures at every uplink and at PortOutput and VnicRx\n"+
		"of the port over SSH, and says where each frame stopped. Exit code 3: frames were filtered\n"+
		"by reverse teaming.")
	var cf captureFlags
	cf.register(fs)
	out := fs.String("out", "", "keep the pcapng, JSON and HTML report in `dir`")
	asJSON := fs.Bool("json", false, "write the JSON report to stdout (the summary goes nowhere)")
	window := fs.Duration("window", 5*time.Millisecond, "sightings of the same bytes within this `duration` are one frame")
	poll := fs.Duration("poll", 2*time.Second, "re-read the port's team uplink every `D` while capturing (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("trace: unexpected argument %q", fs.Arg(0))
	}
	if cf.duration == 0 && cf.count == 0 && !isTerminal(e.stderr) {
		cf.duration = 10 * time.Second // unattended: never run forever
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, t, plan, err := cf.plan(ctx, e)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client)
	opts, err := cf.options(e, t, logger)
	if err != nil {
		return err
	}
	tr := &traceRun{}
	if *out != "" {
		tr.notes = map[noteKey]*string{}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(*out, "trace.pcapng"))
		if err != nil {
			return err
		}
		defer f.Close()
		opts.Output = f
	}

	var points []correlate.Point
	for _, p := range plan.Points {
		cp, err := correlate.PointFromName(p.Name())
		if err != nil {
			return err
		}
		points = append(points, cp)
	}
	mac, _ := net.ParseMAC(t.MAC)
	port := correlate.Port{Name: t.VM + " " + t.NIC, MAC: mac, VLAN: t.VLAN, Promiscuous: t.Promiscuous,
		Policy: apiPolicies[t.TeamingPolicy], TeamUplink: t.TeamUplink}
	tr.c, err = correlate.New(correlate.Config{Points: points, Port: port, Window: *window,
		OnInstance: func(i *correlate.Instance) { tr.verdicts[i.Verdict]++; tr.note(i) }})
	if err != nil {
		return err
	}
	tr.m = correlate.NewMerger(time.Second, tr.c.Add)
	opts.Consumer = tr.add

	fmt.Fprintf(e.stderr, "Tracing %s %s: port %d on %s, VLAN %d, %s, team uplink %s; %d capture points.\n",
		t.VM, t.NIC, t.PortID, t.Host, t.VLAN, esxi.TeamingPolicyDescription(t.TeamingPolicy), t.TeamUplink, len(plan.Points))
	s, err := session.Start(ctx, plan, opts)
	if err != nil {
		return err
	}
	tr.mu.Lock()
	for i, st := range s.Stats() {
		if !st.Start.IsZero() {
			tr.c.SetStart(i, st.Start)
		}
	}
	tr.mu.Unlock()
	stopBg := tr.background(ctx, e, s, client, &cf, t, *poll)
	res, werr := s.Wait()
	stopBg()
	if res == nil {
		return werr
	}
	tr.mu.Lock()
	for i, st := range res.Points {
		if !st.Stop.IsZero() {
			tr.c.SetStop(i, st.Stop)
		}
		if st.Dropped > 0 {
			tr.c.SetDropped(i, uint64(st.Dropped))
		}
	}
	tr.m.Flush()
	result := tr.c.Close()
	tr.mu.Unlock()
	if len(res.Remaining) > 0 {
		fmt.Fprintf(e.stderr, "capturectl: may still run on the hosts: %s (run capturectl cleanup)\n", strings.Join(res.Remaining, "; "))
	}
	if werr != nil && !errors.Is(werr, context.Canceled) {
		fmt.Fprintf(e.stderr, "capturectl: capture ended early: %v (the report covers what was captured)\n", werr)
	}
	meta := report.Meta{Title: fmt.Sprintf("capturectl trace of %s %s on %s", t.VM, t.NIC, t.Host), Host: t.Host, PortID: t.PortID}
	if *out != "" {
		pcapng := filepath.Join(*out, "trace.pcapng")
		if err := annotate(pcapng, tr.notes, result); err != nil {
			fmt.Fprintf(e.stderr, "capturectl: verdict comments not added to %s: %v\n", pcapng, err)
		}
		meta.Files = append(meta.Files, pcapng)
		for _, f := range []struct {
			name  string
			write func(io.Writer, *correlate.Result, report.Meta) error
		}{{"trace.json", report.JSON}, {"trace.html", report.HTML}} {
			path := filepath.Join(*out, f.name)
			if err := writeFileWith(path, func(w io.Writer) error { return f.write(w, result, meta) }); err != nil {
				return err
			}
			meta.Files = append(meta.Files, path)
		}
	}
	if *asJSON {
		err = report.JSON(e.stdout, result, meta)
	} else {
		err = report.Text(e.stdout, result, meta)
	}
	if err != nil {
		return err
	}
	if werr != nil && !errors.Is(werr, context.Canceled) {
		return werr
	}
	if result.Filtered() {
		return errFiltered
	}
	return nil
}

// background re-reads the team uplink every poll interval (a change is fed
// to the correlator with its time) and shows live verdict counts on a
// terminal.
func (tr *traceRun) background(ctx context.Context, e *env, s *session.Session, client *esxi.Client, cf *captureFlags, t esxi.Target, poll time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	if poll > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(poll)
			defer tick.Stop()
			last, lastUplink := time.Now(), t.TeamUplink
			for {
				select {
				case <-done:
					return
				case <-s.Done():
					return
				case <-tick.C:
				}
				asked := time.Now()
				pctx, cancel := context.WithTimeout(ctx, poll)
				targets, err := client.Discover(pctx, cf.vm, esxi.DiscoverOptions{})
				cancel()
				if err != nil || cf.nic >= len(targets) {
					continue
				}
				if u := targets[cf.nic].TeamUplink; u != "" && u != lastUplink {
					tr.mu.Lock()
					tr.c.SetTeamUplinkBetween(last, time.Now(), u, "esxcli network vm port list")
					tr.mu.Unlock()
					lastUplink = u
				}
				last = asked
			}
		}()
	}
	stopStatus := statusLine(e, func() string {
		tr.mu.Lock()
		var parts []string
		for _, v := range correlate.Verdicts() {
			if n := tr.verdicts[v]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, v))
			}
		}
		tr.mu.Unlock()
		var frames uint64
		for _, st := range s.Stats() {
			frames += st.Frames
		}
		return fmt.Sprintf("%d frames captured; %s", frames, strings.Join(parts, ", "))
	})
	return func() { close(done); wg.Wait(); stopStatus() }
}

// annotate rewrites the capture's pcapng with each packet's verdict as a
// packet comment (what Wireshark shows as pkt_comment), keeping interfaces
// and statistics. It writes a new file and renames it over the old one, so
// the capture is never left half-written.
func annotate(path string, notes map[noteKey]*string, res *correlate.Result) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	r, err := pktcap.NewCaptureReader(bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		return err
	}
	suffix := ""
	for _, p := range res.Points {
		if p.Dropped > 0 {
			suffix = " (provisional: a capture point dropped frames; see the report)"
		}
	}
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(out, 1<<20)
	var w *pktcap.NgWriter
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Close()
			return err
		}
		if w == nil {
			// interfaces are known once the first packet was read
			if w, err = pktcap.NewNgWriter(bw, r.Interfaces()); err != nil {
				out.Close()
				return err
			}
		}
		var comments []string
		if n := notes[noteKey{p.Interface, p.Time.UnixNano()}]; n != nil {
			comments = append(comments, *n+suffix)
		}
		if err := w.WritePacket(p.Interface, p.Time, p.Data, p.OrigLen, comments...); err != nil {
			out.Close()
			return err
		}
	}
	if w == nil {
		out.Close()
		return nil // no packets: nothing to annotate
	}
	for i, intf := range r.Interfaces() {
		if intf.Stats != nil {
			w.SetStats(i, *intf.Stats)
		}
	}
	if err := w.Close(); err != nil {
		out.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
