package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
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
	fs.StringVar(&p.policy, "policy", "srcport", "teaming `policy`: srcport, srcmac, explicit, loadbased or iphash")
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
	var doc struct {
		Version int           `json:"version"`
		Targets []esxi.Target `json:"targets"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != discoverJSONVersion {
		return usagef("--target %s: not the JSON of capturectl discover --json (version %d): %v", p.target, discoverJSONVersion, err)
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
	fill("policy", &p.policy, apiPolicies[t.TeamingPolicy])
	fill("port-name", &p.name, t.VM+" "+t.NIC)
	if !p.set["vlan"] {
		p.vlan = t.VLAN
	}
	return nil
}

func (p *portFlags) port() (correlate.Port, error) {
	cp := correlate.Port{Name: p.name, VLAN: p.vlan, Policy: p.policy, TeamUplink: p.team}
	if p.mac != "" {
		m, err := net.ParseMAC(p.mac)
		if err != nil {
			return cp, usagef("--mac %q: %v", p.mac, err)
		}
		cp.MAC = m
	}
	switch p.policy {
	case "srcport", "srcmac", "explicit", "loadbased", "iphash":
	default:
		return cp, usagef("--policy %q: want srcport, srcmac, explicit, loadbased or iphash", p.policy)
	}
	return cp, nil
}

func writeFileWith(path string, f func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	if err := f(bw); err != nil {
		out.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
