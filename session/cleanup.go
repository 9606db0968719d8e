package session

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/capturectl/capturectl/esxi"
)

// CleanupOptions says which leftovers Cleanup stops.
type CleanupOptions struct {
	// All stops the captures of every lease, also those of runs whose
	// deadline has not passed yet (a capturectl that is still running,
	// or was killed less than its dead-man time ago). Default: only
	// expired leases, so that another live capturectl is not disturbed.
	All bool
	// ExceptRun spares the leases of this run.
	ExceptRun string
	// Logger; default discards.
	Logger *slog.Logger
}

// CleanupReport says what Cleanup found and did.
type CleanupReport struct {
	// Stopped are leases whose pktcap-uw was running and is now stopped.
	Stopped []Lease
	// Removed are lease and deadline files removed (their process had
	// ended, or was stopped).
	Removed []string
	// Live are leases of runs still within their deadline, left alone
	// (see CleanupOptions.All).
	Live []Lease
	// StillRunning are leases whose process could not be stopped.
	StillRunning []Lease
	// Unreadable are lease files that do not parse (left in place).
	Unreadable []string
}

// Cleanup finds the capture leases on the host behind c and stops what
// crashed or killed capturectl runs left behind. It only ever signals a
// process whose PID and pktcap-uw command line both match a lease (never a
// host-wide kill of pktcap-uw), SIGINT first, then SIGTERM and SIGKILL;
// then it removes the leases whose process is gone and the deadlines of
// runs without leases. A deadline file that holds no number (empty, or a
// write cut short) is not taken as expired: its run's leases are Live.
func Cleanup(ctx context.Context, c *esxi.SSHClient, opts CleanupOptions) (*CleanupReport, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &hostConn{name: c.Host, client: c, log: log}
	out, err := h.run(ctx, listScript)
	if err != nil {
		return nil, fmt.Errorf("session: cleanup on %s: list leases: %w", c.Host, err)
	}
	ls, err := parseListing(out)
	if err != nil {
		return nil, fmt.Errorf("session: cleanup on %s: %w", c.Host, err)
	}
	rep := &CleanupReport{Unreadable: ls.bad}
	var targets []Lease
	for _, l := range ls.leases {
		switch {
		case l.Run == opts.ExceptRun:
		// A run is live before its deadline; from it on, as for the
		// watchdog on the host, it has expired.
		case !opts.All && (l.Deadline == deadlineUnknown || l.Deadline > 0 && ls.now < l.Deadline):
			rep.Live = append(rep.Live, l)
		default:
			targets = append(targets, l)
		}
	}
	var procs []proc
	for _, l := range targets {
		if running(ls.ps, l.PID, l.Cmd) {
			procs = append(procs, proc{pid: l.PID, cmd: l.Cmd, label: l.Point})
		}
	}
	left, err := stopProcs(ctx, h, procs, nil)
	for _, l := range targets {
		switch {
		case slices.ContainsFunc(left, func(p proc) bool { return p.pid == l.PID }):
			rep.StillRunning = append(rep.StillRunning, l)
		case slices.ContainsFunc(procs, func(p proc) bool { return p.pid == l.PID }):
			rep.Stopped = append(rep.Stopped, l)
			rep.Removed = append(rep.Removed, l.File)
		default:
			rep.Removed = append(rep.Removed, l.File)
		}
	}
	if err != nil {
		return rep, fmt.Errorf("session: cleanup on %s: %w", c.Host, err)
	}
	// Deadlines of runs that keep no lease any more, when expired (or All).
	// An unknown deadline (a file without a number) of a run without
	// leases is left over too.
	keep := func(run string) bool {
		return run == opts.ExceptRun || slices.ContainsFunc(rep.Live, func(l Lease) bool { return l.Run == run }) ||
			slices.ContainsFunc(rep.StillRunning, func(l Lease) bool { return l.Run == run })
	}
	for run, d := range ls.deadlines {
		if !keep(run) && (opts.All || d <= 0 || ls.now >= d) {
			rep.Removed = append(rep.Removed, deadlineFile(run))
		}
	}
	// Temporary deadline files a write left when cut short, of runs that
	// are over (a live run's may be in the middle of a renewal).
	for run, files := range ls.temps {
		if d, ok := ls.deadlines[run]; !keep(run) && (opts.All || !ok || d <= 0 || ls.now >= d) {
			rep.Removed = append(rep.Removed, files...)
		}
	}
	if len(rep.Removed) > 0 {
		if _, err := h.run(ctx, "rm -f "+strings.Join(rep.Removed, " ")); err != nil {
			return rep, fmt.Errorf("session: cleanup on %s: remove leases: %w", c.Host, err)
		}
	}
	for _, l := range rep.Stopped {
		log.Info("stopped a leftover capture", "pid", l.PID, "point", l.Point, "run", l.Run)
	}
	if len(rep.StillRunning) > 0 {
		return rep, fmt.Errorf("session: cleanup on %s: %d capture(s) could not be stopped", c.Host, len(rep.StillRunning))
	}
	return rep, nil
}
