package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/internal/redact"
	"github.com/capturectl/capturectl/report"
)

// capturectl discover: what a VM's ports, uplinks and policies are.
//
// Output: a readable summary per vNIC on stdout, or with --json one JSON
// document (field names are stable; "version" changes when they do not
// stay compatible):
//
//	{"version": 1, "targets": [ <esxi.Target>, ... ]}
//
// (report.Discovery; its fields are described there).
//
// Exit codes: exitcodes.go (the README's table).

// vsphereFlags are the connection flags shared by the commands that talk
// to vCenter or ESXi; each falls back to govc's environment variable.
type vsphereFlags struct {
	url        string
	thumbprint string
	insecure   bool
	warned     bool // the --url password warning was given
}

func (f *vsphereFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.url, "url", "", "vCenter or ESXi `URL`, [https://][user[:password]@]host[/sdk] [GOVC_URL]")
	fset.StringVar(&f.thumbprint, "thumbprint", "", "pin the server certificate's SHA-256 (or SHA-1) `thumbprint` (pins from a file: GOVC_TLS_KNOWN_HOSTS; CAs: GOVC_TLS_CA_CERTS)")
	fset.BoolVar(&f.insecure, "insecure", false, "do not verify the server certificate (warns) [GOVC_INSECURE]")
}

// config merges the flags over the environment.
func (f *vsphereFlags) config(e *env) (esxi.Config, error) {
	cfg, err := esxi.ConfigFromEnv(e.getenv)
	if err != nil {
		return cfg, &usageError{err}
	}
	if f.url != "" {
		cfg.URL, cfg.URLSource = f.url, "--url"
		if _, _, hasPW := redact.URLPassword(f.url); hasPW && !f.warned {
			f.warned = true
			fmt.Fprintf(e.stderr, "capturectl: warning: the password given in --url shows in ps and in the shell's history; "+
				"set %s instead (and %s without a password, or --url without one)\n", esxi.EnvPassword, esxi.EnvURL)
		}
	}
	if f.thumbprint != "" {
		cfg.Thumbprint = f.thumbprint
	}
	if f.insecure {
		cfg.Insecure = true
	}
	cfg.Warn = func(msg string) { fmt.Fprintf(e.stderr, "capturectl: warning: %s\n", msg) }
	return cfg, nil
}

// connect opens the vSphere session; bad settings are usage errors.
func (f *vsphereFlags) connect(ctx context.Context, e *env) (*esxi.Client, error) {
	cfg, err := f.config(e)
	if err != nil {
		return nil, err
	}
	c, err := esxi.Connect(ctx, cfg)
	if errors.Is(err, esxi.ErrConfig) {
		return nil, &usageError{err}
	}
	return c, err
}

func runDiscover(ctx context.Context, e *env, args []string) error {
	const usage = "discover --vm NAME|PATH [--json] [--url URL] [--thumbprint TP] [--insecure] [--ports auto|api|ssh|none] [ssh flags]\n\n" +
		"User and password: GOVC_USERNAME, GOVC_PASSWORD (a value naming a file means its contents) or the URL's user:password."
	fset := newFlagSet(e, "discover", usage)
	vm := fset.String("vm", "", "the VM: its `name`, inventory path (/DC/vm/folder/name), VirtualMachine:MOID, or a vNIC's MAC or guest IP address")
	asJSON := fset.Bool("json", false, "print one JSON document {\"version\": 1, \"targets\": [...]} instead of the summary")
	ports := fset.String("ports", esxi.PortsAuto, "where the switchport ID and team uplink come from: auto (API, else SSH when SSH settings are given), api, ssh or none")
	var conn vsphereFlags
	conn.register(fset)
	var sf sshFlags
	sf.register(fset)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usagef("discover: unexpected argument %q (the VM goes in --vm)", fset.Arg(0))
	}
	if strings.TrimSpace(*vm) == "" {
		return usagef("discover: --vm is required")
	}
	switch *ports {
	case esxi.PortsAuto, esxi.PortsAPI, esxi.PortsSSH, esxi.PortsNone:
	default:
		return usagef("discover: --ports %q: want auto, api, ssh or none", *ports)
	}
	if err := sf.validate(e); err != nil {
		return err
	}
	c, err := conn.connect(ctx, e)
	if err != nil {
		return err
	}
	sf.api = c
	defer func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = c.Close(lctx) // the session expires on the server anyway
	}()
	opts := esxi.DiscoverOptions{Ports: *ports}
	if *ports == esxi.PortsSSH || (*ports == esxi.PortsAuto && sf.given(e)) {
		dial, err := sf.dialer(e, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return err
		}
		r := &esxi.SSHRunner{Dial: dial}
		defer r.Close()
		opts.SSH = r
	}
	targets, err := c.Discover(ctx, *vm, opts)
	if err != nil {
		if errors.Is(err, esxi.ErrConfig) {
			return &usageError{err}
		}
		return err
	}
	if *asJSON {
		return report.DiscoverJSON(e.stdout, targets)
	}
	if len(targets) == 0 {
		fmt.Fprintf(e.stdout, "VM %s has no virtual NICs\n", *vm)
		return nil
	}
	report.DiscoverText(e.stdout, targets)
	return nil
}
