package esxi

import (
	"slices"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Decoding of inventory objects for callers that read the inventory
// themselves (package audit reads it in one pass): the same decoding that
// Discover applies to one VM's host and networks, so that both see the
// same policies.

// HostNetworkProperties returns the HostSystem properties that Discover
// reads and that the functions below need: the name and the parts of
// config.network. The slice is a copy.
func HostNetworkProperties() []string { return slices.Clone(hostProps) }

// UnescapeName undoes the API's escaping of '/', '\' and '%' in the name of
// an inventory object.
func UnescapeName(s string) string { return unescapeName(s) }

// Teaming is a port group's effective teaming and security policy, as in
// Target.TeamingPolicy, ActiveUplinks, StandbyUplinks and Promiscuous.
type Teaming struct {
	// Policy is the API's name: loadbalance_srcid, loadbalance_srcmac,
	// loadbalance_ip, loadbalance_loadbased or failover_explicit; empty
	// when no layer sets one.
	Policy string
	// Active and Standby are the failover order, as uplink names.
	Active, Standby []string
	Promiscuous     bool
}

// StandardTeaming is the effective policy of a standard port group on its
// vSwitch vs (nil when unknown): the host's computed policy, else the port
// group's own, else the vSwitch's, the first layer that sets a value wins.
func StandardTeaming(pg *types.HostPortGroup, vs *types.HostVirtualSwitch) Teaming {
	var vsPolicy *types.HostNetworkPolicy
	if vs != nil {
		vsPolicy = vs.Spec.Policy
	}
	p := effectivePolicy(&pg.ComputedPolicy, &pg.Spec.Policy, vsPolicy)
	return Teaming{Policy: p.teaming, Active: p.active, Standby: p.standby, Promiscuous: p.promiscuous}
}

// DistributedTeaming is the policy of a distributed port group's default
// port config (needs config.defaultPortConfig). Per-port overrides are not
// read.
func DistributedTeaming(pg mo.DistributedVirtualPortgroup) Teaming {
	var t Target
	distributedPolicy(&t, pg, nil)
	return Teaming{Policy: t.TeamingPolicy, Active: t.ActiveUplinks, Standby: t.StandbyUplinks, Promiscuous: t.Promiscuous}
}

// VSwitchNICs lists a standard vSwitch's vmnics: from its bridge, else from
// its physical NIC keys looked up in net.
func VSwitchNICs(vs *types.HostVirtualSwitch, net *types.HostNetworkInfo) []string {
	return vswitchNICs(vs, net)
}

// ProxySwitchUplinks lists the uplinks of a distributed switch on one host
// (its proxy switch), with the vmnic behind each, and its LAGs.
func ProxySwitchUplinks(ps types.HostProxySwitch) []Uplink { return proxyUplinks(ps) }
