package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/capturectl/capturectl/configs"
	"github.com/capturectl/capturectl/lab"
)

func runLab(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, "usage: capturectl lab serve [-c FILE] [--state DIR]")
		if len(args) == 0 {
			return usagef("lab: missing subcommand (serve)")
		}
		return errSilent
	}
	switch args[0] {
	case "serve":
		return runLabServe(ctx, e, args[1:])
	}
	return usagef("lab: unknown subcommand %q (want serve)", args[0])
}

// loadTopology reads a topology file, or one of the embedded configs by
// name (with or without .yaml) when no such file exists.
func loadTopology(name string) (*lab.Config, string, error) {
	if name == "" {
		name = configs.Default
	}
	if _, err := os.Stat(name); err == nil {
		cfg, err := lab.LoadConfig(name)
		return cfg, name, err
	}
	base := filepath.Base(name)
	for _, cand := range []string{base, base + ".yaml", "lab-" + base + ".yaml"} {
		data, err := fs.ReadFile(configs.FS, cand)
		if err == nil {
			cfg, err := lab.ParseConfig(data, "configs/"+cand)
			return cfg, "configs/" + cand + " (embedded)", err
		}
	}
	names, _ := fs.Glob(configs.FS, "*.yaml")
	return nil, "", usagef("topology %q: no such file, and no embedded config of that name (embedded: %s)", name, strings.Join(names, ", "))
}

// defaultStateDir keeps a topology's host keys and password between runs.
func defaultStateDir(e *env, topo string) string {
	base := e.getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "capturectl", "lab-"+topo)
}

func runLabServe(ctx context.Context, e *env, args []string) error {
	fset := newFlagSet(e, "lab serve", "lab serve [-c FILE] [--state DIR]")
	file := fset.String("c", "", "topology `file` (default: the embedded configs/"+configs.Default+"; embedded names work too)")
	state := fset.String("state", "", "`dir` for host keys and the generated password (default ~/.local/state/capturectl/lab-NAME)")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usagef("lab serve: unexpected argument %q", fset.Arg(0))
	}
	cfg, src, err := loadTopology(*file)
	if err != nil {
		return err
	}
	if *state == "" {
		name := cfg.Name
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(src), ".yaml")
		}
		*state = defaultStateDir(e, name)
	}
	l, err := lab.Start(ctx, cfg, lab.Options{StateDir: *state, VCenter: true})
	if err != nil {
		return err
	}
	defer l.Close()
	kh := filepath.Join(*state, "known_hosts")
	if err := writeKnownHosts(kh, l); err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "capturectl lab: topology %q from %s, %d hosts\n\n", cfg.Name, src, len(cfg.Hosts))
	hosts := l.Hosts()
	for _, h := range hosts {
		fmt.Fprintf(w, "  %-8s ESXi %-4s ssh %s@%s (port %s)\n", h.Name, h.Version, h.User, hostOf(h.Addr), portOf(h.Addr))
		fmt.Fprintf(w, "  %-8s host key %s\n", "", h.Fingerprint)
	}
	fmt.Fprintf(w, "\nPassword for %s (keyboard-interactive, as on ESXi): %s\n", hosts[0].User, hosts[0].Password)
	fmt.Fprintf(w, "  source: %s\n", l.PasswordSource())
	fmt.Fprintf(w, "Known hosts file: %s\n", kh)
	if vc := l.VCenter; vc != nil {
		fmt.Fprintf(w, "\nvCenter (govmomi vcsim) with the same hosts, vSwitches, portgroups and VMs:\n")
		fmt.Fprintf(w, "  export GOVC_URL=%s GOVC_USERNAME=%s GOVC_PASSWORD=%s\n", vc.URL(), vc.Username(), vc.Password())
		fmt.Fprintf(w, "  export GOVC_TLS_KNOWN_HOSTS=%s   # thumbprint %s\n", filepath.Join(*state, "govc_known_hosts"), vc.Thumbprint())
		fmt.Fprintf(w, "  (or GOVC_TLS_CA_CERTS=%s)\n", vc.CertificateFile())
		tp := vc.URL().Host + " " + vc.Thumbprint() + "\n"
		if err := os.WriteFile(filepath.Join(*state, "govc_known_hosts"), []byte(tp), 0o600); err != nil {
			return fmt.Errorf("lab: write govc known hosts: %w", err)
		}
	}
	if len(cfg.Traffic) > 0 {
		fmt.Fprintln(w, "\nBackground traffic:")
		for _, t := range cfg.Traffic {
			fmt.Fprintf(w, "  %s from %s to %s every %v\n", t.Kind, t.From, t.To, t.Interval)
		}
	}
	h := hosts[len(hosts)-1]
	fmt.Fprintf(w, "\nTry it with a plain OpenSSH client:\n")
	fmt.Fprintf(w, "  ssh -o UserKnownHostsFile=%s -p %s %s@%s pktcap-uw --uplink vmnic2 -c 3 --proto 0x01\n",
		kh, portOf(h.Addr), h.User, hostOf(h.Addr))
	fmt.Fprintf(w, "  ssh -o UserKnownHostsFile=%s -p %s %s@%s 'pktcap-uw --uplink vmnic2 -o -' | tshark -r -\n",
		kh, portOf(h.Addr), h.User, hostOf(h.Addr))
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, h.Name+"="+h.Addr)
	}
	fmt.Fprintf(w, "\nPoint capturectl at the lab (with the GOVC_* exports above):\n")
	fmt.Fprintf(w, "  export %s=%s CAPTURECTL_SSH_PASSWORD=%s\n", envSSHAddrs, strings.Join(addrs, ","), hosts[0].Password)
	fmt.Fprintf(w, "  capturectl discover --vm %s\n", firstVM(cfg))
	fmt.Fprintf(w, "  capturectl trace --vm %s --duration 5s --known-hosts %s\n", firstVM(cfg), kh)
	fmt.Fprintf(w, "\nlab ready; serving until Ctrl-C\n")
	<-ctx.Done()
	fmt.Fprintln(e.stderr, "capturectl lab: stopping")
	return nil
}

// firstVM names a VM of the topology for the examples: the last host's
// first VM (the article's receiving VM).
func firstVM(cfg *lab.Config) string {
	for i := len(cfg.Hosts) - 1; i >= 0; i-- {
		if vms := cfg.Hosts[i].VMs; len(vms) > 0 {
			return vms[0].Name
		}
	}
	return "VM"
}

func writeKnownHosts(path string, l *lab.Lab) error {
	if err := os.WriteFile(path, l.KnownHosts(), 0o600); err != nil {
		return fmt.Errorf("lab: write known hosts: %w", err)
	}
	return nil
}

func hostOf(addr string) string { h, _, _ := strings.Cut(addr, ":"); return h }
func portOf(addr string) string { _, p, _ := strings.Cut(addr, ":"); return p }
