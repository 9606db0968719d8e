// Command capturectl finds out where an ESXi virtual switch lost a frame.
//
// It discovers a VM's port and team uplink, captures with pktcap-uw at the
// uplinks and at the VM's port over SSH, and says where each frame stopped.
// `capturectl demo` runs it against the embedded emulated lab.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/capturectl/capturectl/extcap"
	"github.com/capturectl/capturectl/internal/redact"
)

func main() {
	ctx, stop := interruptContext(os.Stderr)
	err := stoppedBy(ctx, run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	stop()
	if err != nil {
		if errors.As(err, new(*interrupted)) || !errors.Is(err, errSilent) && !errors.Is(err, errFiltered) {
			// every error is printed through redact: no URL's password shows
			fmt.Fprintf(os.Stderr, "capturectl: %s\n", redact.Text(err.Error()))
		}
		os.Exit(exitCode(err))
	}
}

// interruptContext is cancelled by the first Ctrl-C, SIGTERM or SIGHUP:
// commands then stop, flush and clean up the hosts (after SIGHUP
// with the cause errHangup). After that Ctrl-C and SIGTERM have their default
// disposition back, so a second one abandons at once; the message says
// what may then still run. SIGPIPE is caught for good: a write to a pipe
// without a reader fails with EPIPE instead of killing capturectl before
// it cleans up (the output then ends the capture, session.ErrReaderGone;
// an SSH socket's EPIPE is a lost connection, never taken for it).
func interruptContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for first := true; ; {
			select {
			case s := <-sigs:
				if s == syscall.SIGPIPE || !first {
					continue // a second SIGHUP: already stopping
				}
				first = false
				fmt.Fprintf(stderr, "\ncapturectl: %v: stopping; press Ctrl-C again to abandon (captures left on ESXi hosts "+
					"then stop by themselves at their dead-man deadline, or run capturectl cleanup --host H)\n", s)
				signal.Reset(os.Interrupt, syscall.SIGTERM)
				if s == syscall.SIGHUP {
					cancel(errHangup)
				}
				cancel(nil)
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// env carries what a command may touch; tests pass buffers.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"analyze", "correlate saved captures offline (pcapng, pcap, pktcap-uw console text)", runAnalyze},
		{"discover", "show a VM's vNICs: port group, VLAN, teaming, uplinks, switchport and team uplink", runDiscover},
		{"audit", "check switches inventory-wide for reverse-teaming blind spots (exit 1: findings)", runAudit},
		{"capture", "capture at a VM's uplinks, PortOutput and VnicRx over SSH into one pcapng", runCapture},
		{"trace", "discover, capture and say where each frame stopped (the main job)", runTrace},
		{"check", "run scripted lab checks (configs/checks/*.yaml) and compare verdicts with expectations", runCheck},
		{"cleanup", "stop captures capturectl left on a host (after a crash or kill -9)", runCleanup},
		{"demo", "run the article's experiment on the embedded lab and show what each capture point saw", runDemo},
		{"extcap", "Wireshark's extcap interface (Wireshark runs capturectl with --extcap-* options; see README)", runExtcap},
		{"lab", "serve the emulated ESXi lab (lab serve [-c FILE])", runLab},
		{"version", "print the version", runVersion},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	if extcap.IsInvocation(args) { // Wireshark runs capturectl from its extcap folder
		return runExtcap(ctx, e, args)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return usagef("unknown command %q (run 'capturectl help' for the list)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: capturectl <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'capturectl <command> -h' for a command's flags.")
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: capturectl %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and maps -h and flag errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errSilent
		}
		return &usageError{err}
	}
	return nil
}

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func runVersion(ctx context.Context, e *env, args []string) error {
	fmt.Fprintf(e.stdout, "capturectl %s\n", strings.TrimSpace(version))
	return nil
}
