package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/capturectl/capturectl/session"
)

// runCleanup stops pktcap-uw captures that capturectl left on a host (a
// killed or crashed run): only its own, found by the lease files it writes
// under /tmp, matched by PID and command line.
func runCleanup(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "cleanup", "cleanup --host HOST [--all]\n\n"+
		"Finds the leases capturectl writes on a host for each remote capture and stops the\n"+
		"pktcap-uw processes of runs whose deadline passed (--all: of every run, also one that may\n"+
		"still be running elsewhere). Never touches captures it did not start.")
	host := fs.String("host", "", "the ESXi `host` (as discovery names it; reach it with --ssh-addr)")
	all := fs.Bool("all", false, "also stop captures of runs still within their dead-man deadline")
	var sf sshFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *host == "" || fs.NArg() > 0 {
		return usagef("cleanup: --host HOST is required (and takes no arguments)")
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dial, err := sf.dialer(e, logger, nil)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := dial(dctx, *host)
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := session.Cleanup(ctx, c, session.CleanupOptions{All: *all, Logger: logger})
	if err != nil {
		return err
	}
	w := e.stdout
	for _, l := range rep.Stopped {
		fmt.Fprintf(w, "stopped   %s\n", leaseText(l))
	}
	for _, l := range rep.Live {
		fmt.Fprintf(w, "left      %s (its run is within its deadline; --all stops it)\n", leaseText(l))
	}
	for _, l := range rep.StillRunning {
		fmt.Fprintf(w, "RUNNING   %s (could not be stopped)\n", leaseText(l))
	}
	for _, f := range rep.Removed {
		fmt.Fprintf(w, "removed   %s\n", f)
	}
	for _, f := range rep.Unreadable {
		fmt.Fprintf(w, "unreadable lease %s (left in place)\n", f)
	}
	if len(rep.Stopped)+len(rep.Live)+len(rep.StillRunning)+len(rep.Removed) == 0 {
		fmt.Fprintf(w, "%s: nothing of capturectl's found\n", *host)
	}
	if len(rep.StillRunning) > 0 {
		return fmt.Errorf("cleanup: %d captures on %s could not be stopped", len(rep.StillRunning), *host)
	}
	return nil
}

func leaseText(l session.Lease) string {
	return fmt.Sprintf("pid %d run %s point %s started %s: %s", l.PID, l.Run, l.Point,
		time.Unix(l.Start, 0).UTC().Format(time.RFC3339), l.Cmd)
}
