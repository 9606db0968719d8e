package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/teaming"
)

// ---------------------------------------------------------------------------
// The checks

func (sw *switchView) isLAG(u string) bool { return sw.lags[u] }

func (sw *switchView) hasLAG(l []string) bool { return slices.ContainsFunc(l, sw.isLAG) }

// inUse lists the uplinks a port group's ports use (see the file comment).
func (sw *switchView) inUse(p *pgView) []string {
	act := p.active
	if len(act) == 0 {
		if len(p.standby) == 0 {
			return nil
		}
		act = p.standby[:1]
	}
	if p.teaming() == teaming.Explicit {
		return act[:1]
	}
	return act
}

// blindSpot: a load-balancing policy that filters reverse traffic (not
// explicit failover, whose ports all use one uplink), two or more active
// uplinks and no LAG among them.
func (sw *switchView) blindSpot(p *pgView) bool {
	pol := p.teaming()
	return pol.ReverseFilter() && pol != teaming.Explicit && len(p.active) >= 2 && !sw.hasLAG(p.active)
}

func (sw *switchView) finding(id string, p *pgView) Finding {
	f := Finding{ID: id, Path: sw.path, Datacenter: sw.datacenter, Cluster: sw.cluster, Host: sw.host,
		SwitchType: sw.typ, Switch: sw.name}
	for _, c := range Checks {
		if c.ID == id {
			f.Severity = c.Severity
		}
	}
	if p != nil {
		f.Path, f.Portgroup = p.path, p.name
		f.TeamingPolicy = p.policy
		f.ActiveUplinks = slices.Clone(p.active)
		f.StandbyUplinks = slices.Clone(p.standby)
	}
	return f
}

// teaming is the port group's policy ("" when the API named none or one
// teaming does not know).
func (p *pgView) teaming() teaming.Policy {
	pol, _ := teaming.FromAPI(p.policy)
	return pol
}

func (sw *switchView) where() string {
	if sw.typ == esxi.SwitchDistributed {
		return "distributed switch " + sw.name
	}
	return "vSwitch " + sw.name + " on " + sw.host
}

func (sw *switchView) check() {
	for _, p := range sw.pgs {
		sortVMs(p.vms)
	}
	for _, p := range sw.pgs {
		if p.promiscuous && sw.blindSpot(p) {
			sw.rt001(p)
		}
		if p.teaming().NeedsLAG() {
			sw.rt003(p)
		}
		if p.promiscuous && !sw.blindSpot(p) {
			sw.rt004(p)
		}
		if sw.hasLAG(p.active) && slices.ContainsFunc(p.active, func(u string) bool { return !sw.isLAG(u) }) {
			f := sw.finding(FindingLAGMixed, p)
			f.Title = fmt.Sprintf("port group %s on %s has a LAG and standalone uplinks active together: %s", p.name, sw.where(), strings.Join(p.active, ", "))
			f.Detail = "vSphere supports a LAG only as the single active uplink of a port group; with standalone uplinks active as well, ports that use them are subject to reverse teaming while the physical switch hashes frames over the LAG"
			f.Fix = "make the LAG the only active uplink of " + p.name + " and move the standalone uplinks to unused"
			sw.findings = append(sw.findings, f)
		}
	}
	sw.rt002()
}

func sortVMs(v []AffectedVM) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].Name != v[j].Name {
			return v[i].Name < v[j].Name
		}
		if v[i].Host != v[j].Host {
			return v[i].Host < v[j].Host
		}
		return v[i].NIC < v[j].NIC
	})
}

func vmNames(v []AffectedVM) string {
	var names []string
	for _, vm := range v {
		if !slices.Contains(names, vm.Name) {
			names = append(names, vm.Name)
		}
	}
	if len(names) == 0 {
		return "no VMs connected now"
	}
	return strings.Join(names, ", ")
}

func (sw *switchView) rt001(p *pgView) {
	f := sw.finding(FindingBlindSpot, p)
	f.VMs = slices.Clone(p.vms)
	ups := strings.Join(p.active, ", ")
	f.Title = fmt.Sprintf("promiscuous port group %s on %s has the reverse-teaming blind spot: %s with %d active uplinks (%s), no LAG; affected: %s",
		p.name, sw.where(), esxi.TeamingPolicyDescription(p.policy), len(p.active), ups, vmNames(p.vms))
	f.Detail = fmt.Sprintf("each port transmits on one team uplink and reverse teaming drops inbound frames that arrive on the other active uplinks, promiscuous mode or not: a monitor VM on %s misses frames from outside the host to VMs whose traffic arrives on another uplink, and the team uplink changes with power cycles, vMotion and link failures", p.name)
	f.Fix = fmt.Sprintf("give %s explicit failover with one active uplink and the others standby (or a LAG with IP hash), so every frame for this host's VMs arrives on the monitor's uplink", p.name)
	f.Visibility = []Visibility{
		{"a VM on this host", "a VM on this host", "yes", ""},
		{"a VM on this host", "outside the host", "yes", ""},
		{"outside the host", "a VM on this host", "partly", "only frames that arrive on the monitor VM's own team uplink (one of " + ups + "); reverse teaming drops the rest after PortOutput"},
		{"outside the host", "outside the host", "no", "the physical switch does not send them to this host unless it floods them"},
	}
	sw.findings = append(sw.findings, f)
}

func (sw *switchView) rt002() {
	var iphash []*pgView
	ipUplinks := map[string]bool{}
	for _, p := range sw.pgs {
		if p.teaming().NeedsLAG() {
			iphash = append(iphash, p)
			for _, u := range p.active {
				ipUplinks[u] = true
			}
		}
	}
	if len(iphash) == 0 {
		return
	}
	var others []*pgView
	shared := map[string]bool{}
	for _, p := range sw.pgs {
		if p.teaming().NeedsLAG() || p.policy == "" {
			continue
		}
		hit := false
		for _, u := range sw.inUse(p) {
			if ipUplinks[u] {
				shared[u], hit = true, true
			}
		}
		if hit {
			others = append(others, p)
		}
	}
	if len(others) == 0 {
		return
	}
	f := sw.finding(FindingIPHashMixed, nil)
	var ipNames, otherNames []string
	for _, p := range iphash {
		ipNames = append(ipNames, p.name)
		f.Related = append(f.Related, p.path)
	}
	for _, p := range others {
		otherNames = append(otherNames, fmt.Sprintf("%s (%s)", p.name, esxi.TeamingPolicyDescription(p.policy)))
		f.Related = append(f.Related, p.path)
	}
	sort.Strings(f.Related)
	var sharedList []string
	for _, u := range sw.uplinks {
		if shared[u] {
			sharedList = append(sharedList, u)
		}
	}
	for u := range shared {
		if !slices.Contains(sharedList, u) {
			sharedList = append(sharedList, u)
		}
	}
	f.Title = fmt.Sprintf("%s mixes IP hash (%s) with other teaming policies (%s) on uplinks %s",
		sw.where(), strings.Join(ipNames, ", "), strings.Join(otherNames, ", "), strings.Join(sharedList, ", "))
	f.Detail = "IP hash needs a static EtherChannel (or LAG) on the physical switch, which then hashes inbound frames over every member; the port groups on other policies accept frames only on each port's team uplink, so reverse teaming drops the frames the switch sends down the other members (without the EtherChannel, the IP hash port groups' MACs flap between switch ports instead)"
	f.Fix = fmt.Sprintf("use one teaming policy for every port group on these uplinks: IP hash for all of them with the EtherChannel, or remove IP hash and the EtherChannel; or move %s to other uplinks", strings.Join(otherNames, ", "))
	sw.findings = append(sw.findings, f)
}

func (sw *switchView) rt003(p *pgView) {
	var unused []string
	if !sw.hasLAG(p.active) {
		for _, u := range sw.uplinks {
			if !sw.isLAG(u) && !slices.Contains(p.active, u) && !slices.Contains(p.standby, u) {
				unused = append(unused, u)
			}
		}
	}
	if len(p.standby) == 0 && len(unused) == 0 {
		return
	}
	f := sw.finding(FindingIPHashStandby, p)
	var what []string
	if len(p.standby) > 0 {
		what = append(what, "standby "+strings.Join(p.standby, ", "))
	}
	if len(unused) > 0 {
		what = append(what, "unused "+strings.Join(unused, ", "))
	}
	f.Title = fmt.Sprintf("port group %s on %s uses IP hash with %s", p.name, sw.where(), strings.Join(what, "; "))
	f.Detail = "with IP hash every uplink of the team must be active and the EtherChannel must have as many ports as the team: the physical switch sends frames down every member, and a member that is standby or unused here is not where the port group's traffic is expected"
	f.Fix = fmt.Sprintf("make every uplink of the EtherChannel active for %s (no standby or unused uplinks), or take the unused ones out of the EtherChannel", p.name)
	sw.findings = append(sw.findings, f)
}

func (sw *switchView) rt004(p *pgView) {
	use := sw.inUse(p)
	if len(use) != 1 || len(p.vms) == 0 {
		return
	}
	u := use[0]
	monHosts := map[string]bool{}
	for _, vm := range p.vms {
		monHosts[vm.Host] = true
	}
	var missed []*pgView
	var missedVMs []string
	for _, q := range sw.pgs {
		if q == p || !q.vlan.overlaps(p.vlan) {
			continue
		}
		other := slices.ContainsFunc(sw.inUse(q), func(x string) bool { return x != u })
		if !other {
			continue
		}
		var names []string
		for _, vm := range q.vms {
			if monHosts[vm.Host] && !slices.Contains(names, vm.Name) {
				names = append(names, vm.Name)
			}
		}
		if len(names) == 0 {
			continue
		}
		sort.Strings(names)
		missed = append(missed, q)
		missedVMs = append(missedVMs, fmt.Sprintf("%s (%s: %s)", q.name, strings.Join(sw.inUse(q), ", "), strings.Join(names, ", ")))
	}
	if len(missed) == 0 {
		return
	}
	f := sw.finding(FindingMonitorOneUplink, p)
	f.VMs = slices.Clone(p.vms)
	for _, q := range missed {
		f.Related = append(f.Related, q.path)
	}
	f.Title = fmt.Sprintf("promiscuous port group %s on %s receives on %s only, but port groups of its VLAN use other uplinks: %s; affected: %s",
		p.name, sw.where(), u, strings.Join(missedVMs, "; "), vmNames(p.vms))
	f.Detail = fmt.Sprintf("frames from outside the host to the VMs of those port groups arrive on their own uplinks; reverse teaming drops them for the monitor's ports, whose team uplink is %s", u)
	f.Fix = fmt.Sprintf("make %s the active uplink of the monitored port groups as well (others standby), or monitor with a port mirror instead of promiscuous mode", u)
	f.Visibility = []Visibility{
		{"a VM on this host", "a VM on this host", "yes", ""},
		{"a VM on this host", "outside the host", "yes", ""},
		{"outside the host", "a VM on this host", "partly", "only for VMs whose traffic arrives on " + u + "; not for " + vmsOf(missed, monHosts)},
		{"outside the host", "outside the host", "no", "the physical switch does not send them to this host unless it floods them"},
	}
	sw.findings = append(sw.findings, f)
}

func vmsOf(pgs []*pgView, hosts map[string]bool) string {
	var names []string
	for _, q := range pgs {
		for _, vm := range q.vms {
			if hosts[vm.Host] && !slices.Contains(names, vm.Name) {
				names = append(names, vm.Name)
			}
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
