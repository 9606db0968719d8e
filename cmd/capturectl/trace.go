package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

func runTrace(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "trace", "trace --vm NAME [--vm NAME2...] [--portgroup PG] [--nic N] [--duration D | --count N] [filters] [--from SENDER] [--out DIR] [--json [--json-version 1]] [--dry-run]\n\n"+
		"Discovers the VMs' ports and team uplinks, captures at every uplink and at PortOutput and VnicRx\n"+
		"of each port over SSH (a host's uplinks once for all its vNICs), and says where each frame stopped.\n"+
		"With --from SENDER, the whole path from the sender to the --vm and back, on both hosts.\n"+
		"Exit code 3: frames of some vNIC (or of the path) were filtered by reverse teaming.")
	var cf captureFlags
	cf.register(fs)
	var ro reportFlags
	ro.register(fs)
	window := fs.Duration("window", trace.DefaultWindow, "sightings of the same bytes within this `duration` are one frame")
	poll := fs.Duration("poll", 2*time.Second, "re-read each port's team uplink every `D` while capturing (0: never)")
	from := fs.String("from", "", "follow the frames from this sender (a VM's name, MAC or IP, or an address outside the inventory) to the --vm and back, on both hosts")
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
	if ro.jsonVersion == 1 && (len(cf.vms) > 1 || cf.portgroup != "" || *from != "") {
		return usagef("trace: --json-version 1 describes one vNIC; several (--vm twice, --portgroup) and --from need version 2")
	}
	if *from != "" && (len(cf.vms) > 1 || cf.portgroup != "") {
		return usagef("trace: --from follows the path to one --vm; got several (--vm twice, --portgroup)")
	}
	if cf.duration == 0 && cf.count == 0 && !isTerminal(e.stderr) {
		cf.duration = 10 * time.Second // unattended: never run forever
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, cfg, err := cf.plan(ctx, e, *poll > 0 && !cf.dryRun)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client)
	targets := cfg.Targets()
	if *from != "" {
		if cfg, err = withFrom(ctx, e, client, cfg, *from, *poll > 0 && !cf.dryRun); err != nil {
			return err
		}
		if f := cfg.From.Target; f != nil {
			targets = append(targets, *f) // its host's address
		}
	}
	if cf.dryRun {
		return printPlan(e.stdout, cfg, cf.deadman)
	}
	if cfg.Session, err = cf.options(e, targets, logger); err != nil {
		return err
	}
	cfg.Window, cfg.Poll = *window, *poll
	if *poll == 0 {
		cfg.Poll = -1
	}
	return traceAndReport(ctx, e, cfg, ro)
}

// reportFlags say where a trace's report goes.
type reportFlags struct {
	out         string
	asJSON      bool
	jsonVersion int
	force       bool
}

func (r *reportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.out, "out", "", "keep the pcapng, JSON and HTML report in `dir` (a new or empty one; see --force)")
	fs.BoolVar(&r.asJSON, "json", false, "write the JSON report ("+report.SchemaVersionV2+") to stdout (the summary goes nowhere)")
	fs.IntVar(&r.jsonVersion, "json-version", 2, "the JSON layout of --json and --out's trace.json: 2, or 1 ("+report.SchemaVersion+", one vNIC only)")
	fs.BoolVar(&r.force, "force", false, "let --out replace an earlier run's directory (once every point of the new run streams)")
}

// runFiles are the files of a trace's --out directory.
var runFiles = []string{"trace.pcapng", "trace.json", "trace.html"}

// check refuses an --out directory in use before anything connects.
func (r *reportFlags) check() error {
	if r.jsonVersion != 1 && r.jsonVersion != 2 {
		return usagef("--json-version %d: want 2 (the default) or 1", r.jsonVersion)
	}
	if err := session.CheckRunDir(r.out, r.force, runFiles); err != nil {
		return usagef("--out: %w (pick another directory, or --force replaces an earlier run)", err)
	}
	return nil
}

// traceAndReport runs a trace (trace and demo), shows the live view on
// stderr, and renders the result: the report on stdout, and with --out
// the pcapng with verdict comments, the JSON and the HTML.
func traceAndReport(ctx context.Context, e *env, cfg trace.Config, ro reportFlags) error {
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
		cfg.OnInstance = notes.Add // the first vNIC's verdicts
	}
	// the report's reader (| head) may go away
	defer session.WatchReader(e.stdout, func() { cancel(fmt.Errorf("stdout: %w", session.ErrReaderGone)) })()
	stopLive := func() {}
	cfg.OnStart = func(lv *trace.Live) { stopLive = liveView(e, cfg.Plan, lv.Points, lv.Verdicts) }
	fmt.Fprintf(e.stderr, "Tracing %s; %d capture points.\n", report.TargetsLine(cfg.Targets()), len(cfg.Plan.Points))
	res, werr := trace.Run(ctx, cfg)
	stopLive()
	if res == nil {
		return werr
	}
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
	vms, meta := traceReport(res)
	render := func(w io.Writer, html bool) error {
		switch {
		case html:
			return report.HTMLVMs(w, vms, meta)
		case ro.jsonVersion == 1:
			return report.JSON(w, res.Correlation, meta)
		}
		return report.JSONV2(w, vms, meta)
	}
	if dir != nil {
		pcapng := dir.Path("trace.pcapng")
		if err := notes.AnnotateFile(pcapng, res.Correlation, writeAtomic); err != nil {
			fmt.Fprintf(e.stderr, "capturectl: verdict comments not added to %s: %v\n", pcapng, err)
		}
		meta.Files = append(meta.Files, pcapng)
		for _, name := range []string{"trace.json", "trace.html"} {
			path := dir.Path(name)
			if err := writeAtomic(path, func(w io.Writer) error { return render(w, name == "trace.html") }); err != nil {
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
		err = render(e.stdout, false)
	} else {
		err = report.TextVMs(e.stdout, vms, meta)
	}
	switch {
	case errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("stdout: %w: %w", session.ErrReaderGone, err)
	case err != nil:
		return err
	case early:
		return werr
	case res.Filtered():
		return errFiltered
	}
	return nil
}

// traceReport is what the reports of a finished trace show: a section per
// vNIC, the title, each host's clock and capturectl's own part.
func traceReport(res *trace.Result) ([]report.VMTrace, report.Meta) {
	var vms []report.VMTrace
	for _, v := range res.VMs() {
		vms = append(vms, report.VMTrace{VM: v.Target.VM, NIC: v.Target.NIC, Host: v.Target.Host, PortID: v.Target.PortID, Result: v.Correlation})
	}
	t := res.Target
	meta := report.Meta{Title: fmt.Sprintf("capturectl trace of %s %s on %s", t.VM, t.NIC, t.Host), Host: t.Host, PortID: t.PortID}
	if len(vms) > 1 {
		meta.Title = fmt.Sprintf("capturectl trace of %d vNICs", len(vms))
	}
	for _, h := range slices.Sorted(maps.Keys(res.Session.Clocks)) {
		c := res.Session.Clocks[h]
		meta.Clocks = append(meta.Clocks, report.HostClock{Host: h, Offset: c.Offset, Uncertainty: c.Uncertainty})
	}
	meta.Notes = trace.Notes(res)
	if res.FromNote != "" {
		meta.Notes = append(meta.Notes, res.FromNote)
	}
	meta.Path = res.Path
	return vms, meta
}

// withFrom makes cfg a trace of the whole path from the sender (trace
// --from), saying on stderr what the plan left out.
func withFrom(ctx context.Context, e *env, client *esxi.Client, cfg trace.Config, from string, poll bool) (trace.Config, error) {
	cfg, notes, err := trace.WithFrom(ctx, client, cfg, from, poll)
	if errors.Is(err, trace.ErrPlan) || errors.Is(err, esxi.ErrVMNotFound) || errors.Is(err, trace.ErrNIC) {
		return cfg, &usageError{err}
	}
	for _, n := range notes {
		fmt.Fprintf(e.stderr, "capturectl: --from: %s\n", n)
	}
	return cfg, err
}
