package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

func runTrace(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "trace", "trace --vm NAME [--nic N] [--duration D | --count N] [filters] [--out DIR] [--json]\n\n"+
		"Discovers the VM's port and team uplink, captures at every uplink and at PortOutput and VnicRx\n"+
		"of the port over SSH, and says where each frame stopped. Exit code 3: frames were filtered\n"+
		"by reverse teaming.")
	var cf captureFlags
	cf.register(fs)
	var ro reportFlags
	ro.register(fs)
	window := fs.Duration("window", trace.DefaultWindow, "sightings of the same bytes within this `duration` are one frame")
	poll := fs.Duration("poll", 2*time.Second, "re-read the port's team uplink every `D` while capturing (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("trace: unexpected argument %q", fs.Arg(0))
	case *window <= 0:
		return usagef("trace: --window %v: want a positive duration", *window)
	case *poll < 0:
		return usagef("trace: --poll %v: want 0 (never) or a positive duration", *poll)
	}
	if err := ro.check(); err != nil {
		return err
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
	cfg := trace.Config{Target: t, Plan: plan, Session: opts, Window: *window, Poll: *poll}
	if *poll > 0 {
		cfg.TeamUplink = trace.Rediscover(client, cf.vm, cf.nic)
	}
	return traceAndReport(ctx, e, cfg, ro)
}

// reportFlags say where a trace's report goes.
type reportFlags struct {
	out    string
	asJSON bool
	force  bool
}

func (r *reportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.out, "out", "", "keep the pcapng, JSON and HTML report in `dir` (a new or empty one; see --force)")
	fs.BoolVar(&r.asJSON, "json", false, "write the JSON report to stdout (the summary goes nowhere)")
	fs.BoolVar(&r.force, "force", false, "let --out replace an earlier run's directory (once every point of the new run streams)")
}

// runFiles are the files of a trace's --out directory.
var runFiles = []string{"trace.pcapng", "trace.json", "trace.html"}

// check refuses an --out directory in use before anything connects.
func (r *reportFlags) check() error {
	if err := session.CheckRunDir(r.out, r.force, runFiles); err != nil {
		return usagef("--out: %w (pick another directory, or --force replaces an earlier run)", err)
	}
	return nil
}

// traceAndReport runs a trace (trace and demo), shows live counts on a
// terminal, and renders the result: the report on stdout, and with
// --out the pcapng with verdict comments, the JSON and the HTML.
func traceAndReport(ctx context.Context, e *env, cfg trace.Config, ro reportFlags) error {
	t := cfg.Target
	var notes *report.PcapngNotes
	var dir *session.RunDir
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if ro.out != "" {
		var err error
		if dir, err = session.OpenRunDir(ro.out, ro.force, runFiles); err != nil {
			return err
		}
		defer dir.Close()
		f, err := dir.Create("trace.pcapng") // committed once every point streams
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Session.Output = f
		notes = report.NewPcapngNotes()
		cfg.OnInstance = notes.Add
	}
	// the report's reader (| head) may go away
	defer session.WatchReader(e.stdout, func() { cancel(fmt.Errorf("stdout: %w", session.ErrReaderGone)) })()
	stopStatus := func() {}
	cfg.OnStart = func(lv *trace.Live) { stopStatus = statusLine(e, func() string { return liveText(lv) }) }
	fmt.Fprintf(e.stderr, "Tracing %s %s: port %d on %s, VLAN %d, %s, team uplink %s; %d capture points.\n",
		t.VM, t.NIC, t.PortID, t.Host, t.VLAN, esxi.TeamingPolicyDescription(t.TeamingPolicy), t.TeamUplink, len(cfg.Plan.Points))
	res, werr := trace.Run(ctx, cfg)
	stopStatus()
	if res == nil {
		return werr
	}
	result := res.Correlation
	if len(res.Session.Remaining) > 0 {
		fmt.Fprintf(e.stderr, "capturectl: may still run on the hosts: %s (run capturectl cleanup)\n", strings.Join(res.Session.Remaining, "; "))
	}
	if cause := context.Cause(ctx); ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
		werr = cause // stdout's reader went away
	}
	early := werr != nil && !errors.Is(werr, context.Canceled)
	if early && !errors.Is(werr, session.ErrReaderGone) {
		fmt.Fprintf(e.stderr, "capturectl: capture ended early: %v (the report covers what was captured)\n", werr)
	}
	meta := report.Meta{Title: fmt.Sprintf("capturectl trace of %s %s on %s", t.VM, t.NIC, t.Host), Host: t.Host, PortID: t.PortID}
	for _, h := range slices.Sorted(maps.Keys(res.Session.Clocks)) {
		c := res.Session.Clocks[h]
		meta.Clocks = append(meta.Clocks, report.HostClock{Host: h, Offset: c.Offset, Uncertainty: c.Uncertainty})
	}
	if dir != nil {
		pcapng := dir.Path("trace.pcapng")
		if err := annotatePcapng(pcapng, notes, result); err != nil {
			fmt.Fprintf(e.stderr, "capturectl: verdict comments not added to %s: %v\n", pcapng, err)
		}
		meta.Files = append(meta.Files, pcapng)
		for _, f := range []struct {
			name  string
			write func(io.Writer, *correlate.Result, report.Meta) error
		}{{"trace.json", report.JSON}, {"trace.html", report.HTML}} {
			path := dir.Path(f.name)
			if err := writeAtomic(path, func(w io.Writer) error { return f.write(w, result, meta) }); err != nil {
				return err
			}
			meta.Files = append(meta.Files, path)
		}
	}
	var err error
	if errors.Is(werr, session.ErrReaderGone) {
		return werr // nobody reads the report
	}
	if ro.asJSON {
		err = report.JSON(e.stdout, result, meta)
	} else {
		err = report.Text(e.stdout, result, meta)
	}
	switch {
	case errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("stdout: %w: %w", session.ErrReaderGone, err)
	case err != nil:
		return err
	case early:
		return werr
	case result.Filtered():
		return errFiltered
	}
	return nil
}

// liveText is the status line of a running trace.
func liveText(lv *trace.Live) string {
	counts := lv.Verdicts()
	var parts []string
	for _, v := range correlate.Verdicts() {
		if n := counts[v]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	var frames uint64
	for _, st := range lv.Points() {
		frames += st.Frames
	}
	return fmt.Sprintf("%d frames captured; %s", frames, strings.Join(parts, ", "))
}

// errNoPackets: the capture holds no packet, so there is nothing to
// annotate and the file stays as it is.
var errNoPackets = errors.New("no packets")

// annotatePcapng rewrites the capture at path with each packet's verdict
// as a packet comment, through a temporary file renamed over it, so the
// capture is never left half-written.
func annotatePcapng(path string, notes *report.PcapngNotes, res *correlate.Result) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	err = writeAtomic(path, func(w io.Writer) error {
		n, err := notes.Annotate(w, in, res)
		if err == nil && n == 0 {
			return errNoPackets
		}
		return err
	})
	if errors.Is(err, errNoPackets) {
		return nil
	}
	return err
}
