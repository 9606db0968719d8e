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
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
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
	vm       string
	nic      int
	duration time.Duration
	count    int
	snaplen  int
	deadman  time.Duration
	conn     vsphereFlags
	ssh      sshFlags
	filters  filterFlags
}

func (c *captureFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.vm, "vm", "", "the VM: its `name`, inventory path, VirtualMachine:MOID, or a vNIC's MAC or guest IP address")
	fs.IntVar(&c.nic, "nic", -1, "which vNIC, counting from 0 (`N`; default: the one --vm names by MAC or IP address, else 0)")
	fs.DurationVar(&c.duration, "duration", 0, "capture for `D` (default: until --count frames, or Ctrl-C)")
	fs.IntVar(&c.count, "count", 0, "stop after `N` frames in all")
	fs.IntVar(&c.snaplen, "s", 0, "snap length in `bytes` (0: whole frames)")
	fs.DurationVar(&c.deadman, "deadman", 60*time.Second, "remote captures stop by themselves this `long` after capturectl stops renewing them (if it is killed)")
	c.conn.register(fs)
	c.ssh.register(fs)
	c.filters.register(fs)
}

// plan discovers the VM and builds the default capture plan: every uplink
// of its vSwitch (receive), PortOutput and VnicRx of its port. The vSphere
// session stays open for the caller (close it with closeClient).
func (c *captureFlags) plan(ctx context.Context, e *env) (*esxi.Client, esxi.Target, session.Plan, error) {
	client, t, p, err := c.planWith(ctx, e)
	if err == nil {
		err = c.ssh.checkAddrHosts(p)
	}
	if err != nil && client != nil {
		closeClient(ctx, client)
		client = nil
	}
	return client, t, p, err
}

func closeClient(ctx context.Context, c *esxi.Client) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = c.Close(lctx) // the session expires on the server anyway
}

func (c *captureFlags) planWith(ctx context.Context, e *env) (*esxi.Client, esxi.Target, session.Plan, error) {
	if strings.TrimSpace(c.vm) == "" {
		return nil, esxi.Target{}, session.Plan{}, usagef("--vm is required")
	}
	if c.duration < 0 || c.count < 0 {
		return nil, esxi.Target{}, session.Plan{}, usagef("--duration and --count must not be negative")
	}
	if c.nic < -1 { // -1: the default, the vNIC --vm names
		return nil, esxi.Target{}, session.Plan{}, usagef("--nic %d: want 0 or more (vNICs count from 0)", c.nic)
	}
	filter, err := c.filters.filter()
	if err != nil {
		return nil, esxi.Target{}, session.Plan{}, err
	}
	if err := c.ssh.validate(e); err != nil {
		return nil, esxi.Target{}, session.Plan{}, err
	}
	client, err := c.conn.connect(ctx, e)
	if err != nil {
		return nil, esxi.Target{}, session.Plan{}, err
	}
	c.ssh.api = client
	t, p, err := c.target(ctx, client, filter)
	return client, t, p, err
}

func (c *captureFlags) target(ctx context.Context, client *esxi.Client, filter pktcap.Filter) (esxi.Target, session.Plan, error) {
	targets, err := client.Discover(ctx, c.vm, esxi.DiscoverOptions{})
	if err != nil {
		return esxi.Target{}, session.Plan{}, err
	}
	if c.nic, err = trace.Select(targets, c.vm, c.nic); err != nil {
		return esxi.Target{}, session.Plan{}, &usageError{err}
	}
	t := targets[c.nic]
	p, err := trace.DefaultPlan(t, session.Plan{Filter: filter, Snaplen: c.snaplen, Duration: c.duration, Count: c.count})
	if errors.Is(err, trace.ErrPlan) {
		return t, p, &usageError{err}
	}
	return t, p, err
}

func (c *captureFlags) options(e *env, t esxi.Target, logger *slog.Logger) (session.Options, error) {
	dial, err := c.ssh.dialer(e, logger, func(host string) string {
		if host == t.Host {
			return t.HostAddress
		}
		return ""
	})
	if err != nil {
		return session.Options{}, err
	}
	return session.Options{Dial: dial, Logger: logger, DeadMan: c.deadman}, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// statusLine redraws line() on stderr once a second while stderr is a
// terminal, and clears it when stopped.
func statusLine(e *env, line func() string) (stop func()) {
	if !isTerminal(e.stderr) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(e.stderr, "\r\033[K")
				return
			case <-tick.C:
				fmt.Fprintf(e.stderr, "\r\033[K%s", line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// liveCounters shows per-point frame counts while the capture runs.
func liveCounters(e *env, s *session.Session) func() {
	return statusLine(e, func() string {
		var parts []string
		for _, st := range s.Stats() {
			parts = append(parts, fmt.Sprintf("%s %d", st.Name, st.Frames))
		}
		return strings.Join(parts, "  ")
	})
}

func runCapture(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "capture", "capture --vm NAME -o FILE|- [--duration D | --count N] [filters]\n\n"+
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
	if *out == "" {
		return usagef("capture: -o FILE or -o - is required")
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
	client, t, plan, err := cf.plan(ctx, e)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client) // after the captures: it stops an SSH service --enable-ssh started
	opts, err := cf.options(e, t, logger)
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
	s, err := session.Start(ctx, plan, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Capturing %s %s (port %d on %s, team uplink %s): all %d points stream; Ctrl-C stops.\n",
		t.VM, t.NIC, t.PortID, t.Host, t.TeamUplink, len(plan.Points))
	stopLive := liveCounters(e, s)
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
