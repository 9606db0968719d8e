package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/extcap"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

// capturectl as a Wireshark extcap: linked into Wireshark's extcap folder,
// Wireshark runs it with --extcap-* requests (package extcap). A capture
// is a trace with capture's options from the dialog, the capture filter
// mapped onto pktcap-uw's filters, its pcapng into the FIFO Wireshark
// reads, each frame with its verdict as a comment.

const extcapInterface = "capturectl"

// extcapArgs is the capture dialog. Every call is a flag of `capture`,
// except the three extcapEnv and --ssh-addrs translate and extcap's own
// --verdict-wait.
var extcapArgs = []extcap.Arg{
	{Call: "--vm", Display: "VM", Type: extcap.String, Required: true, Group: "Target",
		Tooltip: "the VM: its name, inventory path, VirtualMachine:MOID, or a vNIC's MAC or guest IP address"},
	{Call: "--nic", Display: "vNIC", Type: extcap.Integer, Default: "-1", Group: "Target",
		Tooltip: "which vNIC, counting from 0 (-1: the one the VM was named by, else 0)"},
	{Call: "--duration", Display: "Duration", Type: extcap.String, Group: "Target", Validation: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))*$",
		Tooltip: "stop after this long (e.g. 30s, 5m); empty: until Wireshark stops the capture"},
	{Call: "--count", Display: "Frames", Type: extcap.Unsigned, Default: "0", Group: "Target", Tooltip: "stop after this many frames in all (0: no limit)"},
	{Call: "--url", Display: "vCenter URL", Type: extcap.String, Group: "vCenter", Tooltip: "https://host/sdk (default: GOVC_URL from Wireshark's environment)"},
	{Call: "--vcenter-user", Display: "vCenter user", Type: extcap.String, Group: "vCenter", Tooltip: "default: GOVC_USERNAME"},
	{Call: "--vcenter-password", Display: "vCenter password", Type: extcap.Password, Group: "vCenter",
		Tooltip: "default: GOVC_PASSWORD (safer: Wireshark passes this field on capturectl's command line, where ps shows it)"},
	{Call: "--thumbprint", Display: "Certificate thumbprint", Type: extcap.String, Group: "vCenter", Tooltip: "pin the server certificate's SHA-256 thumbprint"},
	{Call: "--insecure", Display: "Do not verify the certificate", Type: extcap.BoolFlag, Group: "vCenter"},
	{Call: "--ssh-user", Display: "SSH user", Type: extcap.String, Default: "root", Group: "SSH"},
	{Call: "--ssh-password-file", Display: "SSH password file", Type: extcap.FileSelect, Group: "SSH",
		Tooltip: "a file holding the hosts' SSH password (else " + esxi.PasswordEnv + "; keys and the agent are tried first)"},
	{Call: "--known-hosts", Display: "known_hosts file", Type: extcap.FileSelect, Group: "SSH", Tooltip: "default ~/.ssh/known_hosts"},
	{Call: "--accept-new-host-key", Display: "Trust a host key seen for the first time", Type: extcap.BoolFlag, Group: "SSH"},
	{Call: "--ssh-addrs", Display: "SSH addresses", Type: extcap.String, Group: "SSH",
		Tooltip: "HOST=ADDR:PORT,... where a host is not reached at its management address (default: " + envSSHAddrs + ")"},
	{Call: "--verdict-wait", Display: "Verdict wait", Type: extcap.String, Default: session.DefaultHoldWait.String(), Group: "Target",
		Validation: "^([0-9]+(\\.[0-9]+)?(ms|s|m))+$",
		Tooltip:    "a frame waits at most this long for capturectl's verdict (its comment) before it is written without one"},
	{Call: "--deadman", Display: "Dead-man timeout", Type: extcap.String, Default: "60s", Group: "SSH",
		Tooltip: "remote captures stop by themselves this long after capturectl stops renewing them"},
}

// extcapEnv are the dialog's options that stand for govc's environment.
var extcapEnv = map[string]string{"--vcenter-user": "GOVC_USERNAME", "--vcenter-password": "GOVC_PASSWORD"}

func runExtcap(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "extcap" {
		// `capturectl extcap --capture ...` by hand: main sees an extcap
		// request before the command's name
		args = args[1:]
	}
	req, err := extcap.Parse(args)
	if err != nil {
		return &usageError{err}
	}
	if req.Op != extcap.OpInterfaces && req.Interface != extcapInterface {
		return usagef("extcap: unknown interface %q (capturectl offers %q)", req.Interface, extcapInterface)
	}
	switch req.Op {
	case extcap.OpInterfaces:
		return extcap.WriteInterfaces(e.stdout, extcap.Tool{Version: strings.TrimSpace(version), Help: "https://github.com/capturectl/capturectl",
			Display: "capturectl"}, []extcap.Interface{{Value: extcapInterface, Display: "ESXi vSwitch: a VM's uplinks, PortOutput and VnicRx (pktcap-uw over SSH)"}})
	case extcap.OpDLTs:
		return extcap.WriteDLTs(e.stdout, []extcap.DLT{extcap.Ethernet})
	case extcap.OpConfig:
		return extcap.WriteConfig(e.stdout, extcapArgs)
	case extcap.OpValidateFilter:
		// Wireshark takes any output as the filter's error message
		if _, err := extcap.FilterOptions(req.CaptureFilter); err != nil {
			fmt.Fprintln(e.stdout, err)
		}
		return nil
	}
	filter, err := extcap.FilterOptions(req.CaptureFilter)
	if err != nil {
		return &usageError{err}
	}
	capArgs, vars, err := extcapCaptureArgs(req.Options)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(filter))
	for k := range filter {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		capArgs = append(capArgs, "--"+k, filter[k])
	}
	ce := *e
	ce.getenv = func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return e.getenv(k)
	}
	return extcapCapture(ctx, &ce, req.Fifo, capArgs)
}

// extcapCapture is a capture into the FIFO as a trace: every frame goes
// out in time order with its verdict as a comment (report.LiveComment),
// held at most --verdict-wait for it (session.Hold); one written before
// its verdict was known says so (report.PendingComment). The summary goes
// to stderr.
func extcapCapture(ctx context.Context, e *env, fifo string, args []string) error {
	fs := newFlagSet(e, "extcap", "--capture --extcap-interface capturectl --fifo FILE --vm NAME [options]")
	var cf captureFlags
	cf.register(fs)
	wait := fs.Duration("verdict-wait", session.DefaultHoldWait, "a frame waits at most `D` for its verdict before it is written without one")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("extcap: unexpected argument %q", fs.Arg(0))
	case *wait <= 0:
		return usagef("extcap: --verdict-wait %v: want a positive duration", *wait)
	case cf.dryRun:
		return usagef("extcap: --dry-run: run capturectl capture --dry-run for the plan")
	case len(cf.vms) > 1 || cf.portgroup != "":
		// a frame at an uplink shared by two vNICs would need a verdict
		// for each
		return usagef("extcap: one vNIC per capture (each frame's comment is the verdict for that port); got several (--vm twice, --portgroup)")
	}
	hold, err := session.NewHold(session.HoldConfig{MaxWait: *wait, Pending: report.PendingComment(*wait)})
	if err != nil {
		return &usageError{err}
	}
	// the FIFO first, as capture: a bad path is refused before anything
	// connects
	out, err := session.OpenOutput(ctx, fifo)
	if err != nil && ctx.Err() == nil {
		err = &usageError{fmt.Errorf("--fifo %s: %w", fifo, err)}
	}
	if err != nil {
		return err
	}
	defer out.Close()
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, cfg, err := cf.plan(ctx, e, true)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client)
	if cfg.Session, err = cf.options(e, cfg.Targets(), logger); err != nil {
		return err
	}
	cfg.Session.Output, cfg.Session.Hold = out, hold
	// the first vNIC's correlator numbers its points as the plan does
	// (trace.PlanFor puts its points first), so a sighting's point is the
	// pcapng interface of its frame
	cfg.OnInstance = func(i *correlate.Instance) {
		text := report.LiveComment(i)
		for _, s := range i.Sightings {
			hold.Comment(s.Point, s.Time, text)
		}
	}
	fmt.Fprintf(e.stderr, "Capturing %s for Wireshark: %d points, each frame with its verdict (waiting at most %v for it).\n",
		report.TargetsLine(cfg.Targets()), len(cfg.Plan.Points), *wait)
	res, werr := trace.Run(ctx, cfg)
	if res == nil {
		return werr
	}
	st := hold.Stats()
	for _, p := range res.Session.Points {
		drops := fmt.Sprintf("pktcap-uw dropped %d", p.Dropped)
		if p.Dropped < 0 {
			drops = "pktcap-uw's drop count unknown (no summary came)"
		}
		fmt.Fprintf(e.stderr, "  %-32s %d frames, %s\n", p.Name, p.Frames, drops)
	}
	fmt.Fprintf(e.stderr, "Verdict comments: %d frames with their verdict, %d written before it was known (%d after waiting %v, %d with %d MiB held, %d at the end); %d verdicts came after their frame was written.\n",
		st.Commented, st.Pending, st.Waited, *wait, st.Full, session.DefaultHoldBytes>>20, st.Pending-st.Waited-st.Full, st.Late)
	if len(res.Session.Remaining) > 0 {
		fmt.Fprintf(e.stderr, "capturectl: may still run on the hosts: %s (run capturectl cleanup)\n", strings.Join(res.Session.Remaining, "; "))
	}
	// Wireshark stops a capture with SIGTERM, or by closing the FIFO
	if werr != nil && !errors.Is(werr, context.Canceled) && !errors.Is(werr, session.ErrReaderGone) {
		return werr
	}
	return nil
}

// extcapCaptureArgs turns the dialog's options into capture's flags and
// the environment they stand for.
func extcapCaptureArgs(opts []string) ([]string, map[string]string, error) {
	var out []string
	vars := map[string]string{}
	for i := 0; i < len(opts); i++ {
		name, val, hasVal := strings.Cut(opts[i], "=")
		v, isEnv := extcapEnv[name]
		if !isEnv && name != "--ssh-addrs" {
			out = append(out, opts[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(opts) {
				return nil, nil, usagef("extcap: %s needs a value", name)
			}
			i++
			val = opts[i]
		}
		if isEnv {
			vars[v] = val
			continue
		}
		for _, a := range strings.Split(val, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, "--ssh-addr", a)
			}
		}
	}
	return out, vars, nil
}
