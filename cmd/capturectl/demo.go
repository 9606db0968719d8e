package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/capturectl/capturectl/configs"
	"github.com/capturectl/capturectl/lab"
)

// runDemo starts the embedded lab with the article's topology (two ESXi
// hosts, a vCenter, testvm1 pinging testvm2) and runs trace on testvm2
// against it, exactly as a user would against real hosts: discovery through
// the vCenter, pktcap-uw over SSH, correlation, the report.
func runDemo(ctx context.Context, e *env, args []string) error {
	fset := newFlagSet(e, "demo", "demo [--duration D] [--out DIR] [--json]")
	dur := fset.Duration("duration", 4*time.Second, "how long to capture")
	out := fset.String("out", "", "`dir` for the pcapng, JSON and HTML (default: a new temporary directory)")
	asJSON := fset.Bool("json", false, "write the JSON report to stdout")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return usagef("demo: --duration %v out of range (0 to 10m)", *dur)
	}
	if fset.NArg() > 0 {
		return usagef("demo: unexpected argument %q", fset.Arg(0))
	}
	cfg, _, err := loadTopology(configs.Default)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "capturectl-demo-"); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stderr, "Starting the emulated lab (configs/lab-article.yaml): esx01 and esx02 (ESXi 6.7) and a vCenter;")
	fmt.Fprintln(e.stderr, "vSwitch1 with vmnic2+vmnic3, route based on originating port ID, VLAN 100; testvm1 pings testvm2 every")
	fmt.Fprintln(e.stderr, "second, and the physical switch mirrors what it sends to esx02/vmnic2 into esx02/vmnic3.")
	ls, err := startLabSession(ctx, e, cfg, true)
	if err != nil {
		return err
	}
	defer ls.close()
	fmt.Fprintf(e.stderr, "Tracing as `capturectl trace --vm testvm2 --duration %s --out %s` would.\n\n", *dur, dir)
	cf := captureFlags{vms: multiFlag{"testvm2"}, nic: -1, duration: *dur, deadman: 60 * time.Second,
		ssh: sshFlags{known: ls.knownHosts, user: "root"}}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, tc, err := cf.plan(ctx, ls.env, true)
	if err != nil {
		return err
	}
	defer closeClient(ctx, client)
	if tc.Session, err = cf.options(ls.env, tc.Targets(), logger); err != nil {
		return err
	}
	return traceAndReport(ctx, ls.env, tc, reportFlags{out: dir, asJSON: *asJSON, jsonVersion: 2})
}

// labSession is an embedded lab with its vCenter, and the environment a
// command runs with to reach it as a user would (the exports lab serve
// prints): demo and check run trace through it.
type labSession struct {
	lab        *lab.Lab
	env        *env
	knownHosts string
	state      string
}

func startLabSession(ctx context.Context, e *env, cfg *lab.Config, traffic bool) (*labSession, error) {
	state, err := os.MkdirTemp("", "capturectl-lab-")
	if err != nil {
		return nil, err
	}
	l, err := lab.Start(ctx, cfg, lab.Options{StateDir: state, VCenter: true, NoTraffic: !traffic})
	if err != nil {
		os.RemoveAll(state)
		return nil, err
	}
	ls := &labSession{lab: l, knownHosts: filepath.Join(state, "known_hosts"), state: state}
	if err := writeKnownHosts(ls.knownHosts, l); err != nil {
		ls.close()
		return nil, err
	}
	vars := demoEnv(l)
	inner := *e
	inner.getenv = func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return e.getenv(k)
	}
	ls.env = &inner
	return ls, nil
}

func (ls *labSession) close() {
	ls.lab.Close()
	os.RemoveAll(ls.state)
}

// demoEnv is what `lab serve` tells a user to export for the lab, with
// the user's own settings that would send capturectl elsewhere cleared
// (GOVC_TLS_KNOWN_HOSTS, GOVC_INSECURE, an SSH agent).
func demoEnv(l *lab.Lab) map[string]string {
	env := l.Env()
	env["GOVC_TLS_KNOWN_HOSTS"], env["GOVC_INSECURE"], env["SSH_AUTH_SOCK"] = "", "", ""
	return env
}
