package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/report"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/teaming"
)

// Flag types and file helpers that several commands use.

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// portFlags describe the traced port: from a saved discovery (--target)
// and/or flags (flags win).
type portFlags struct {
	mac, policy, team, name string
	vlan                    int
	target                  string
	nic                     int
	set                     map[string]bool
}

func (p *portFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.mac, "mac", "", "the traced vNIC's `MAC` address")
	fs.IntVar(&p.vlan, "vlan", 0, "the portgroup's `VLAN`")
	var names []string
	for _, pol := range teaming.Policies() {
		names = append(names, string(pol))
	}
	fs.StringVar(&p.policy, "policy", string(teaming.SrcPort), "teaming `policy`: "+strings.Join(names, ", "))
	fs.StringVar(&p.team, "team-uplink", "", "the port's team `uplink` (vmnicN), as esxcli network vm port list reports it")
	fs.StringVar(&p.name, "port-name", "", "a `name` for the traced port in the report")
	fs.StringVar(&p.target, "target", "", "take the port from a saved `file` of capturectl discover --json")
	fs.IntVar(&p.nic, "nic", 0, "with --target: which vNIC, counting from 0 (`N`; default: the one a discovery by MAC or IP address named, else 0)")
}

// fromTarget fills what the flags did not set from a discover --json file.
func (p *portFlags) fromTarget(fs *flag.FlagSet) error {
	p.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { p.set[f.Name] = true })
	if p.target == "" {
		return nil
	}
	data, err := os.ReadFile(p.target)
	if err != nil {
		return usagef("--target: %v", err)
	}
	doc, err := report.ReadDiscovery(data)
	if err != nil {
		return usagef("--target %s: %v", p.target, err)
	}
	if !p.set["nic"] {
		// a discovery by MAC or IP address marked the vNIC it named
		p.nic = max(0, slices.IndexFunc(doc.Targets, func(t esxi.Target) bool { return t.Selected }))
	}
	if p.nic < 0 || p.nic >= len(doc.Targets) {
		return usagef("--nic %d: %s has %d vNICs", p.nic, p.target, len(doc.Targets))
	}
	t := doc.Targets[p.nic]
	fill := func(name string, dst *string, v string) {
		if !p.set[name] && v != "" {
			*dst = v
		}
	}
	fill("mac", &p.mac, t.MAC)
	fill("team-uplink", &p.team, t.TeamUplink)
	if pol, ok := teaming.FromAPI(t.TeamingPolicy); ok {
		fill("policy", &p.policy, string(pol))
	}
	fill("port-name", &p.name, t.VM+" "+t.NIC)
	if !p.set["vlan"] {
		p.vlan = t.VLAN
	}
	return nil
}

// uplinkName is what a team uplink may be called (vmnicN on standard and
// distributed switches alike, as esxcli network vm port list prints it).
var uplinkName = regexp.MustCompile(`^vmnic[0-9]+$`)

func (p *portFlags) port() (correlate.Port, error) {
	cp := correlate.Port{Name: p.name, VLAN: p.vlan, TeamUplink: p.team}
	if p.vlan < 0 || p.vlan > 4095 {
		return cp, usagef("--vlan %d: want 0 (none) to 4095 (all, tagged by the guest)", p.vlan)
	}
	if p.team != "" && !uplinkName.MatchString(p.team) {
		return cp, usagef("--team-uplink %q: want a physical NIC name such as vmnic2 (esxcli network vm port list's Team Uplink)", p.team)
	}
	if p.mac != "" {
		m, err := net.ParseMAC(p.mac)
		if err != nil {
			return cp, usagef("--mac %q: %v", p.mac, err)
		}
		cp.MAC = m
	}
	pol, err := teaming.Parse(p.policy)
	if err != nil {
		return cp, usagef("--policy: %v", err)
	}
	cp.Policy = pol
	return cp, nil
}

// writeAtomic writes a report file through session.OpenOutput: a
// temporary file in the same directory renamed over it, so a reader (the
// Prometheus textfile collector, a CI job, a browser) never sees half a
// file and a failed write leaves an earlier file as it was. A path that
// exists and is not a regular file (a FIFO, /dev/stdout) is written
// directly.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := session.OpenOutput(context.Background(), path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writeBuffered(f, write); err != nil {
		return err
	}
	return f.Commit()
}

func writeBuffered(w io.Writer, write func(io.Writer) error) error {
	bw := bufio.NewWriter(w)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// checkAddrHosts refuses an --ssh-addr for a host the run never uses (a
// typo in the host's name would otherwise be ignored, and the run would
// dial the host's own address). Only the flags are checked: the
// CAPTURECTL_SSH_ADDRS that lab serve prints lists every lab host. The hosts
// are known after discovery only, so this comes after connecting, but
// before any SSH connection.
func (f *sshFlags) checkAddrHosts(p session.Plan) error {
	used := map[string]bool{}
	var names []string
	for _, pt := range p.Points {
		if !used[pt.Host] {
			used[pt.Host] = true
			names = append(names, pt.Host)
		}
	}
	for _, a := range f.addrs {
		h, _, err := esxi.ParseAddrOverride(strings.TrimSpace(a))
		if err != nil {
			return &usageError{err}
		}
		if !used[h] {
			return usagef("--ssh-addr %s: this run uses no host %q (it captures on %s); name the host as discover shows it",
				a, h, strings.Join(names, ", "))
		}
	}
	return nil
}

// validate checks the SSH settings that need no connection — the address
// overrides (flags and CAPTURECTL_SSH_ADDRS) and the password file — so
// that a bad one is exit 2 before vCenter is contacted.
func (f *sshFlags) validate(e *env) error {
	all := append([]string(nil), f.addrs...)
	if v := e.getenv(envSSHAddrs); v != "" {
		all = append(all, strings.Split(v, ",")...)
	}
	for _, a := range all {
		if _, _, err := esxi.ParseAddrOverride(strings.TrimSpace(a)); err != nil {
			return &usageError{err}
		}
	}
	if _, err := esxi.PasswordFrom(e.getenv, esxi.PasswordEnv, f.pwFile); err != nil {
		return &usageError{err}
	}
	return nil
}
