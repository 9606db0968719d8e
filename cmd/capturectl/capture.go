package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

// sshFlags say how to reach the ESXi hosts over SSH.
type sshFlags struct {
	addrs     multiFlag
	known     string
	acceptNew bool
	user      string
	pwFile    string
	enable    bool         // --enable-ssh
	api       *esxi.Client // set once connected: explains SSH failures, starts the SSH service
}

// envSSHAddrs lists host address overrides, "HOST=ADDR:PORT,..." (lab
// serve prints it).
const envSSHAddrs = "CAPTURECTL_SSH_ADDRS"

func (f *sshFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.addrs, "ssh-addr", "`HOST=ADDR:PORT`: where to reach a host over SSH (repeatable) ["+envSSHAddrs+"=H=A,...]")
	fs.StringVar(&f.known, "known-hosts", "", "known_hosts `file` for host keys (default ~/.ssh/known_hosts)")
	fs.BoolVar(&f.acceptNew, "accept-new-host-key", false, "trust a host key seen for the first time and add it to the known_hosts file")
	fs.StringVar(&f.user, "ssh-user", "root", "SSH `user` on the hosts")
	fs.BoolVar(&f.enable, "enable-ssh", false, "start a host's stopped SSH service (TSM-SSH) through the API for the run, and stop it again afterwards")
	fs.StringVar(&f.pwFile, "ssh-password-file", "", "read the SSH password from `file` (else "+esxi.PasswordEnv+"; keys and the agent are tried first)")
}

// dialer returns a session.Dialer for the hosts of targets.
func (f *sshFlags) dialer(e *env, logger *slog.Logger, addrOf func(host string) string) (session.Dialer, error) {
	over := map[string]string{}
	all := append([]string(nil), f.addrs...)
	if v := e.getenv(envSSHAddrs); v != "" {
		all = append(strings.Split(v, ","), all...)
	}
	for _, a := range all {
		h, addr, err := esxi.ParseAddrOverride(strings.TrimSpace(a))
		if err != nil {
			return nil, &usageError{err}
		}
		over[h] = addr
	}
	pw, err := esxi.PasswordFrom(e.getenv, esxi.PasswordEnv, f.pwFile)
	if err != nil {
		return nil, &usageError{err}
	}
	pwSource := esxi.PasswordEnv // PasswordFrom's order: the variable, then the file
	if e.getenv(esxi.PasswordEnv) == "" {
		pwSource = "--ssh-password-file " + f.pwFile
	}
	return func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		addr := over[host]
		if addr == "" && addrOf != nil {
			if a := addrOf(host); a != "" {
				addr = a + ":22"
			}
		}
		if f.enable {
			if f.api == nil {
				return nil, usagef("--enable-ssh: this command has no vSphere session to start host %s's SSH service through", host)
			}
			if _, err := f.api.EnableSSH(ctx, host); err != nil {
				return nil, err
			}
		}
		c, err := esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: addr, User: f.user, Password: pw, PasswordSource: pwSource,
			KnownHostsFile: f.known, AcceptNewHostKey: f.acceptNew, Logger: logger, Getenv: e.getenv})
		return c, f.api.ExplainSSH(ctx, host, err)
	}, nil
}

// given reports whether the user set any SSH setting (so an SSH fallback
// is wanted).
func (f *sshFlags) given(e *env) bool {
	return len(f.addrs) > 0 || f.known != "" || f.pwFile != "" || e.getenv(envSSHAddrs) != "" || e.getenv(esxi.PasswordEnv) != ""
}

// filterFlags are the pktcap-uw flow filters capture and trace pass on
// (pktcap.FilterOptions).
type filterFlags struct {
	vals map[string]*string
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	f.vals = map[string]*string{}
	for _, o := range pktcap.FilterOptions() {
		f.vals[o.Name] = fs.String(o.Name, "", "pktcap-uw filter: "+o.Help)
	}
}

func (f *filterFlags) filter() (pktcap.Filter, error) {
	set := map[string]string{}
	for name, v := range f.vals {
		if *v != "" {
			set[name] = *v
		}
	}
	filter, err := pktcap.ParseFilter(set)
	if err != nil {
		return filter, &usageError{err}
	}
	return filter, nil
}

// captureFlags are what capture and trace share.
type captureFlags struct {
	vms       multiFlag
	portgroup string
	nic       int
	duration  time.Duration
	count     int
	snaplen   int
	deadman   time.Duration
	dryRun    bool
	conn      vsphereFlags
	ssh       sshFlags
	filters   filterFlags
}

func (c *captureFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.vms, "vm", "the VM: its `name`, inventory path, VirtualMachine:MOID, or a vNIC's MAC or guest IP address "+
		"(repeatable: several vNICs in one run, each host's uplinks captured once for all)")
	fs.StringVar(&c.portgroup, "portgroup", "", "also every vNIC on the standard or distributed port group `NAME`")
	fs.IntVar(&c.nic, "nic", -1, "which vNIC of each --vm, counting from 0 (`N`; default: the one --vm names by MAC or IP address, else 0)")
	fs.DurationVar(&c.duration, "duration", 0, "capture for `D` (default: until --count frames, or Ctrl-C)")
	fs.IntVar(&c.count, "count", 0, "stop after `N` frames in all")
	fs.IntVar(&c.snaplen, "s", 0, "snap length in `bytes` (0: whole frames)")
	fs.DurationVar(&c.deadman, "deadman", 60*time.Second, "remote captures stop by themselves this `long` after capturectl stops renewing them (if it is killed)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "discover, print the plan (every host, point and pktcap-uw command) and stop: connects to nothing but the vSphere API")
	c.conn.register(fs)
	c.ssh.register(fs)
	c.filters.register(fs)
}

// plan discovers the vNICs and builds the capture plan: every uplink of
// their vSwitches (receive, once per host), PortOutput and VnicRx of each
// port, checked against the per-host limit. With poll each vNIC's team
// uplink is re-read through the vSphere session while the trace runs; it
// stays open for the caller (close it with closeClient).
func (c *captureFlags) plan(ctx context.Context, e *env, poll bool) (*esxi.Client, trace.Config, error) {
	client, cfg, err := c.planWith(ctx, e, poll)
	if err == nil {
		err = c.ssh.checkAddrHosts(cfg.Plan)
	}
	if err != nil && client != nil {
		closeClient(ctx, client)
		client = nil
	}
	return client, cfg, err
}

func closeClient(ctx context.Context, c *esxi.Client) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = c.Close(lctx) // the session expires on the server anyway
}

func (c *captureFlags) planWith(ctx context.Context, e *env, poll bool) (*esxi.Client, trace.Config, error) {
	var none trace.Config
	for _, vm := range c.vms {
		if strings.TrimSpace(vm) == "" {
			return nil, none, usagef("--vm %q: want a VM name, path, VirtualMachine:MOID, MAC or IP address", vm)
		}
	}
	switch {
	case len(c.vms) == 0 && c.portgroup == "":
		return nil, none, usagef("--vm (or --portgroup) is required")
	case c.duration < 0 || c.count < 0:
		return nil, none, usagef("--duration and --count must not be negative")
	case c.nic < -1: // -1: the default, the vNIC --vm names
		return nil, none, usagef("--nic %d: want 0 or more (vNICs count from 0)", c.nic)
	case c.nic >= 0 && len(c.vms) == 0:
		return nil, none, usagef("--nic picks a vNIC of each --vm; --portgroup takes every vNIC on the port group")
	}
	filter, err := c.filters.filter()
	if err != nil {
		return nil, none, err
	}
	if err := c.ssh.validate(e); err != nil {
		return nil, none, err
	}
	client, err := c.conn.connect(ctx, e)
	if err != nil {
		return nil, none, err
	}
	c.ssh.api = client
	chosen, err := trace.Choose(ctx, client, c.vms, c.nic, c.portgroup)
	if errors.Is(err, trace.ErrNIC) || errors.Is(err, trace.ErrNoVM) {
		return client, none, &usageError{err}
	}
	if err != nil {
		return client, none, err
	}
	cfg, err := trace.MultiConfig(client, chosen, session.Plan{Filter: filter, Snaplen: c.snaplen, Duration: c.duration, Count: c.count}, poll)
	if errors.Is(err, trace.ErrPlan) {
		return client, cfg, &usageError{err}
	}
	return client, cfg, err
}

func (c *captureFlags) options(e *env, targets []esxi.Target, logger *slog.Logger) (session.Options, error) {
	addrs := map[string]string{}
	for _, t := range targets {
		if addrs[t.Host] == "" {
			addrs[t.Host] = t.HostAddress
		}
	}
	dial, err := c.ssh.dialer(e, logger, func(host string) string { return addrs[host] })
	if err != nil {
		return session.Options{}, err
	}
	return session.Options{Dial: dial, Logger: logger, DeadMan: c.deadman}, nil
}

// printPlan is --dry-run: every host, its points and the exact pktcap-uw
// command of each.
func printPlan(w io.Writer, cfg trace.Config, deadman time.Duration) error {
	for _, t := range cfg.Targets() {
		fmt.Fprintf(w, "vNIC %s %s: port %d on %s, %s, VLAN %d, team uplink %s\n", t.VM, t.NIC, t.PortID, t.Host, t.Portgroup, t.VLAN, t.TeamUplink)
	}
	for _, h := range trace.Describe(cfg) {
		fmt.Fprintf(w, "\nhost %s: %d capture points over one SSH connection\n", h.Host, len(h.Points))
		for _, p := range h.Points {
			fmt.Fprintf(w, "  %-32s for %s\n    %s\n", p.Name, strings.Join(p.For, ", "), p.Command)
		}
	}
	_, err := fmt.Fprintf(w, "\nEach command runs as `exec COMMAND` after a lease file and a dead-man watchdog (%s) are set up; "+
		"nothing was started (--dry-run).\n", deadman)
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// liveView shows a run's progress on stderr (report.LiveView) from now
// until stop, which leaves the final state: redrawn in place once a
// second on a terminal (bold headings unless NO_COLOR or TERM=dumb), a
// plain line every 10 s elsewhere. verdicts is nil for a capture.
func liveView(e *env, plan session.Plan, points func() []session.PointStats, verdicts func() map[correlate.Verdict]int) (stop func()) {
	tty := isTerminal(e.stderr)
	v := report.NewLiveView(e.stderr, tty, e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb")
	start := time.Now()
	status := func() report.LiveStatus {
		s := report.LiveStatus{Elapsed: time.Since(start), Duration: plan.Duration, Count: uint64(plan.Count)}
		for _, p := range points() {
			s.Points = append(s.Points, report.LivePoint{Name: p.Name, Frames: p.Frames, Dropped: p.Dropped})
		}
		if verdicts != nil {
			counts := verdicts()
			s.Verdicts = []report.LiveCount{}
			for _, vd := range correlate.Verdicts() {
				s.Verdicts = append(s.Verdicts, report.LiveCount{Verdict: vd.String(), N: counts[vd]})
			}
		}
		return s
	}
	return v.Run(status)
}

func runCapture(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "capture", "capture --vm NAME [--vm NAME2 | --portgroup PG] -o FILE|- [--duration D | --count N] [filters] [--dry-run]\n\n"+
		"Captures with pktcap-uw at every uplink of the VM's vSwitch (receive side) and at PortOutput\n"+
		"and VnicRx of its port, in parallel over SSH, into one pcapng with an interface per point.")
	var cf captureFlags
	cf.register(fs)
	out := fs.String("o", "", "pcapng output `file`, or - for stdout (pipe into tshark -r - or wireshark -k -i -)")
	perPoint := fs.String("per-point", "", "also write one pcap per point into `dir`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("capture: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" && !cf.dryRun {
		return usagef("capture: -o FILE or -o - is required")
	}
	if cf.dryRun {
		client, cfg, err := cf.plan(ctx, e, false)
		if err != nil {
			return err
		}
		closeClient(ctx, client)
		return printPlan(e.stdout, cfg, cf.deadman)
	}
	// The outputs first: a bad path is refused before anything connects,
	// and nothing replaces an earlier file before every point streams.
	var w io.Writer = e.stdout
	if *out != "-" {
		if fi, err := os.Stat(*out); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			fmt.Fprintf(e.stderr, "Waiting for a reader of the FIFO %s.\n", *out)
		}
		f, err := session.OpenOutput(ctx, *out)
		if err != nil && ctx.Err() == nil {
			err = &usageError{fmt.Errorf("-o %s: %w", *out, err)}
		}
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, cfg, err := cf.plan(ctx, e, false)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client) // after the captures: it stops an SSH service --enable-ssh started
	opts, err := cf.options(e, cfg.Targets(), logger)
	if err != nil {
		return err
	}
	opts.Output = w
	if *perPoint != "" {
		if err := os.MkdirAll(*perPoint, 0o755); err != nil {
			return err
		}
		opts.PointOutput = session.PointFiles(*perPoint)
	}
	plan := cfg.Plan
	s, err := session.Start(ctx, plan, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Capturing %s: all %d points stream; Ctrl-C stops.\n", report.TargetsLine(cfg.Targets()), len(plan.Points))
	stopLive := liveView(e, plan, s.Stats, nil)
	res, err := s.Wait()
	stopLive()
	if res != nil {
		for _, p := range res.Points {
			fmt.Fprintf(e.stderr, "  %-32s %d frames, pktcap-uw dropped %d\n", p.Name, p.Frames, max(p.Dropped, 0))
		}
		if len(res.Remaining) > 0 {
			fmt.Fprintf(e.stderr, "capturectl: may still run on the hosts: %s (run capturectl cleanup)\n", strings.Join(res.Remaining, "; "))
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(e.stderr, "Wrote %s\n", *out)
	}
	return nil
}
