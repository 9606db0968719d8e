package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	targs := []string{"--vm", "testvm2", "--duration", dur.String(), "--known-hosts", ls.knownHosts, "--out", dir}
	if *asJSON {
		targs = append(targs, "--json")
	}
	fmt.Fprintf(e.stderr, "Running: capturectl trace %s\n\n", strings.Join(targs, " "))
	return runTrace(ctx, ls.env, targs)
}

// labSession is an embedded lab with its vCenter, and the environment a
// command runs with to reach it as a user would (the exports lab serve
// prints): demo and check run trace through it.
type labSession struct {
	lab        *lab.Lab
	env        *env
	knownHosts string
	state      string
	restore    func()
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
	if err := writeKnownHosts(ls.knownHosts, l.Hosts()); err != nil {
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
	// the SSH password reaches the SSH client through its environment
	// variable, never a flag
	ls.restore = setenvTemp("CAPTURECTL_SSH_PASSWORD", vars["CAPTURECTL_SSH_PASSWORD"])
	return ls, nil
}

func (ls *labSession) close() {
	if ls.restore != nil {
		ls.restore()
	}
	ls.lab.Close()
	os.RemoveAll(ls.state)
}

// demoEnv is what `lab serve` tells a user to export for the lab.
func demoEnv(l *lab.Lab) map[string]string {
	vc := l.VCenter
	var addrs []string
	pw := ""
	for _, h := range l.Hosts() {
		addrs = append(addrs, h.Name+"="+h.Addr)
		pw = h.Password
	}
	return map[string]string{
		"GOVC_URL": vc.URL().String(), "GOVC_USERNAME": vc.Username(), "GOVC_PASSWORD": vc.Password(),
		"GOVC_TLS_CA_CERTS": vc.CertificateFile(), "GOVC_TLS_KNOWN_HOSTS": "", "GOVC_INSECURE": "",
		envSSHAddrs: strings.Join(addrs, ","), "CAPTURECTL_SSH_PASSWORD": pw, "SSH_AUTH_SOCK": "",
	}
}

// setenvTemp sets an environment variable and returns a function that puts
// the old value back.
func setenvTemp(k, v string) func() {
	old, had := os.LookupEnv(k)
	os.Setenv(k, v)
	return func() {
		if had {
			os.Setenv(k, old)
		} else {
			os.Unsetenv(k)
		}
	}
}
