package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/capturectl/capturectl/esxi"
)

// capturectl discover: what a VM's ports, uplinks and policies are.
//
// Output: a readable summary per vNIC on stdout, or with --json one JSON
// document (field names are stable; "version" changes when they do not
// stay compatible):
//
//	{"version": 1, "targets": [ <esxi.Target>, ... ]}
//
// where each target has vm, vm_moref, vm_path, power_state, host,
// host_moref, host_address, nic, nic_key, mac, connected, portgroup, vlan,
// vlan_trunk, switch_type (standard, distributed, opaque), vswitch,
// dvs_uuid, dvportgroup_key, dvport, uplinks [{name, nic, lag}],
// teaming_policy (the API's name, e.g. loadbalance_srcid),
// active_uplinks, standby_uplinks, promiscuous,
// reverse_teaming_blind_spot, port_id, team_uplink, port_source
// ("esxcli via vSphere API" or "ssh") and port_note (why port data is
// missing). Empty optional fields are left out.
//
// Exit codes: exitcodes.go (the README's table).

// discoverJSONVersion is the version of discover's JSON document.
const discoverJSONVersion = 1

// discoverDoc is discover's JSON document (read back by --target).
type discoverDoc struct {
	Version int           `json:"version"`
	Targets []esxi.Target `json:"targets"`
}

// vsphereFlags are the connection flags shared by the commands that talk
// to vCenter or ESXi; each falls back to govc's environment variable.
type vsphereFlags struct {
	url        string
	thumbprint string
	insecure   bool
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
		cfg.URL = f.url
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
	c, err := conn.connect(ctx, e)
	if err != nil {
		return err
	}
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
		r := &sshRunner{dial: dial}
		defer r.close()
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
		return writeDiscoverJSON(e.stdout, targets)
	}
	if len(targets) == 0 {
		fmt.Fprintf(e.stdout, "VM %s has no virtual NICs\n", *vm)
		return nil
	}
	printTargets(e.stdout, targets)
	return nil
}

func writeDiscoverJSON(w io.Writer, targets []esxi.Target) error {
	if targets == nil {
		targets = []esxi.Target{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	doc := discoverDoc{discoverJSONVersion, targets}
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("discover: write JSON: %w", err)
	}
	return nil
}

// printTargets writes the readable summary.
func printTargets(w io.Writer, targets []esxi.Target) {
	if len(targets) == 0 {
		return
	}
	t0 := targets[0]
	host := t0.Host
	if t0.HostAddress != "" && t0.HostAddress != t0.Host {
		host += " (" + t0.HostAddress + ")"
	}
	fmt.Fprintf(w, "VM %s (%s, %s), %s, on host %s\n", t0.VM, t0.VMRef, t0.VMPath, powerWords(t0.PowerState), host)
	if len(targets) == 1 {
		fmt.Fprintln(w, "1 virtual NIC")
	} else {
		fmt.Fprintf(w, "%d virtual NICs\n", len(targets))
	}
	for _, t := range targets {
		fmt.Fprintf(w, "\n%s  %s", t.NIC, t.MAC)
		if !t.Connected {
			fmt.Fprint(w, "  (not connected)")
		}
		if t.Selected {
			fmt.Fprint(w, "  (the vNIC --vm names)")
		}
		fmt.Fprintln(w)
		row := func(k, v string) { fmt.Fprintf(w, "  %-13s %s\n", k, v) }
		row("port group", portgroupWords(t))
		row("switch", switchWords(t))
		if t.TeamingPolicy != "" {
			row("teaming", fmt.Sprintf("%s (%s)", esxi.TeamingPolicyDescription(t.TeamingPolicy), t.TeamingPolicy))
		} else {
			row("teaming", "unknown")
		}
		row("active", listWords(t.ActiveUplinks))
		row("standby", listWords(t.StandbyUplinks))
		row("promiscuous", yesNo(t.Promiscuous))
		if t.PortSource != "" {
			row("switchport", fmt.Sprintf("%d (from %s)", t.PortID, t.PortSource))
			switch {
			case t.TeamUplink != "":
				row("team uplink", t.TeamUplink)
			default:
				row("team uplink", "none")
			}
		} else {
			row("switchport", "unknown")
		}
		if t.PortNote != "" {
			row("note", t.PortNote)
		}
		if t.BlindSpot {
			team := "its team uplink"
			if t.TeamUplink != "" {
				team = "its team uplink " + t.TeamUplink
			}
			fmt.Fprintf(w, "  warning: reverse-teaming blind spot: %d active uplinks without a LAG; inbound frames that arrive on an uplink other than %s are dropped after PortOutput, so pktcap-uw at PortOutput shows frames the VM never receives (capture at VnicRx too)\n",
				len(t.ActiveUplinks), team)
		}
	}
}

func portgroupWords(t esxi.Target) string {
	vlan := "no VLAN"
	switch {
	case t.VLANTrunk != "":
		vlan = "VLAN trunk " + t.VLANTrunk
	case t.VLAN == 4095:
		vlan = "VLAN 4095 (all, tagged by the guest)"
	case t.VLAN != 0:
		vlan = fmt.Sprintf("VLAN %d", t.VLAN)
	}
	pg := t.Portgroup
	if pg == "" {
		pg = "unknown"
	}
	return pg + ", " + vlan
}

func switchWords(t esxi.Target) string {
	name := t.VSwitch
	if name == "" {
		name = "(name unknown)"
	}
	var ups []string
	for _, u := range t.Uplinks {
		switch {
		case u.LAG:
			ups = append(ups, u.Name+" (LAG)")
		case u.NIC != "" && u.NIC != u.Name:
			ups = append(ups, u.Name+"="+u.NIC)
		default:
			ups = append(ups, u.Name)
		}
	}
	s := fmt.Sprintf("%s %s", t.SwitchType, name)
	if t.SwitchType == esxi.SwitchDistributed && t.DVPort != "" {
		s += ", DVPort " + t.DVPort
	}
	if len(ups) > 0 {
		s += ", uplinks " + strings.Join(ups, ", ")
	}
	return s
}

func listWords(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func powerWords(s string) string {
	switch s {
	case "poweredOn":
		return "powered on"
	case "poweredOff":
		return "powered off"
	case "suspended":
		return "suspended"
	}
	return s
}
