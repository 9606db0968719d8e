package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/capturectl/capturectl/esxi"
)

// DiscoveryVersion is the version of discover's JSON document; it changes
// when its fields do not stay compatible.
const DiscoveryVersion = 1

// Discovery is discover's JSON document, {"version": 1, "targets": [...]}
// (read back by analyze --target). Each target has vm, vm_moref, vm_path,
// power_state, host, host_moref, host_address, nic, nic_key, mac,
// connected, portgroup, vlan, vlan_trunk, switch_type (standard,
// distributed, opaque), vswitch, dvs_uuid, dvportgroup_key, dvport,
// uplinks [{name, nic, lag}], teaming_policy (the API's name, e.g.
// loadbalance_srcid), active_uplinks, standby_uplinks, promiscuous,
// reverse_teaming_blind_spot, port_id, team_uplink, port_source
// ("esxcli via vSphere API" or "ssh") and port_note (why port data is
// missing). Empty optional fields are left out.
type Discovery struct {
	Version int           `json:"version"`
	Targets []esxi.Target `json:"targets"`
}

// DiscoverJSON writes targets as one indented Discovery document.
func DiscoverJSON(w io.Writer, targets []esxi.Target) error {
	// lists are never null (a copy: the caller's targets stay as they are)
	targets = append([]esxi.Target{}, targets...)
	for i := range targets {
		t := &targets[i]
		t.Uplinks, t.ActiveUplinks, t.StandbyUplinks = nonNil(t.Uplinks), nonNil(t.ActiveUplinks), nonNil(t.StandbyUplinks)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Discovery{DiscoveryVersion, targets}); err != nil {
		return fmt.Errorf("report: discovery JSON: %w", err)
	}
	return nil
}

// ReadDiscovery reads a Discovery document; a document of another version
// (or not one at all) is an error that says so.
func ReadDiscovery(data []byte) (*Discovery, error) {
	var d Discovery
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("not the JSON of capturectl discover --json: %w", err)
	}
	if d.Version != DiscoveryVersion {
		return nil, fmt.Errorf("not the JSON of capturectl discover --json version %d (version %d)", DiscoveryVersion, d.Version)
	}
	return &d, nil
}

// DiscoverText writes discover's readable summary of a VM's vNICs: for
// each its port group, switch, teaming, uplinks, switchport and team
// uplink, and a warning where reverse teaming hides frames.
func DiscoverText(w io.Writer, targets []esxi.Target) {
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
