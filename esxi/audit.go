package esxi

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The audit: an inventory-wide check for reverse-teaming blind spots and
// the teaming mistakes next to them, from one read of the inventory.
//
// Calls after login: CreateContainerView of the root folder (recursive,
// the types below), one RetrievePropertiesEx through the view (paged by
// the server with ContinueRetrievePropertiesEx on a large inventory), and
// DestroyView. Nothing is read per object, and no esxcli or SSH runs, so
// team uplinks are not known: findings are about configuration.
//
// Terms used by the checks, per port group (standard) or distributed port
// group, from its effective policy:
//
//   - active, standby: the failover order; on a distributed switch an
//     entry may be a LAG (LACP), which counts as one uplink;
//   - uplinks in use: explicit failover uses the first active uplink only;
//     IP hash and the load-balancing policies (originating port ID, source
//     MAC hash, physical NIC load) use every active uplink; with no active
//     uplink the first standby uplink is taken as the one in use (an
//     assumption: the vSphere Client refuses that set-up, the API does not);
//   - blind spot: a load-balancing policy without a LAG (originating port
//     ID, source MAC hash, physical NIC load) with two or more active
//     uplinks. Each port then has one team uplink and reverse teaming drops
//     inbound frames that arrive on the others, promiscuous or not.
//     Explicit failover is not a blind spot here: every port shares the
//     first active uplink, where the physical switch sends the frames of
//     the host's VMs (Target.BlindSpot, about captures, still counts it,
//     because flooded copies on the other uplinks are dropped after
//     PortOutput).
//
// The checks (IDs are stable; see AuditChecks):
//
//   - RT001 (high), per promiscuous port group with the blind spot: a
//     monitor, IDS or L2VPN VM on it sees local→local and local→external
//     frames, external→local frames only when they arrive on its own team
//     uplink, and external→external frames never. Reported whether or not
//     VMs are connected (any VM connected later is affected); the VMs
//     connected now are named.
//   - RT002 (high), per switch: a port group on IP hash (which needs a
//     static EtherChannel or LAG on the physical switch) shares active
//     uplinks with port groups on other policies. The physical switch
//     hashes frames over the LAG members, so the other port groups' VMs
//     lose the frames that reach a member other than their team uplink.
//   - RT003 (medium), per port group on IP hash with standby uplinks, or
//     with switch uplinks left unused: vSphere requires every uplink of
//     the team active (the EtherChannel has as many ports as the team).
//     On a distributed switch whose active uplink is a LAG, standalone
//     uplinks left unused are the normal LACP set-up and not reported.
//   - RT004 (medium), per promiscuous port group without the blind spot
//     that uses one uplink U (a single active uplink, explicit failover,
//     or a LAG), when another port group of the same switch with an
//     overlapping VLAN uses uplinks other than U and has VMs on a host
//     where the promiscuous port group has VMs too: frames from outside
//     to those VMs arrive on the other uplinks and the monitor never sees
//     them. vmkernel ports are not counted as VMs.
//   - RT005 (medium), distributed port group whose active uplinks mix a
//     LAG with standalone uplinks (not supported by vSphere: the LAG must
//     be the only active uplink).
//
// Not read: per-port (DVPort) overrides of a distributed port group's
// policy, NSX (opaque) networks, the physical switch (whether the
// EtherChannel of an IP hash team exists) and link state.

// Finding IDs.
const (
	FindingBlindSpot        = "RT001"
	FindingIPHashMixed      = "RT002"
	FindingIPHashStandby    = "RT003"
	FindingMonitorOneUplink = "RT004"
	FindingLAGMixed         = "RT005"
)

// Severities of findings.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// Kinds of checked objects (AuditObject.Kind).
const (
	ObjectVSwitch     = "vswitch"
	ObjectPortgroup   = "portgroup"
	ObjectDVSwitch    = "dvswitch"
	ObjectDVPortgroup = "dvportgroup"
)

// AuditCheck describes one check of the audit.
type AuditCheck struct {
	ID       string
	Severity string
	// Summary says what the check finds, in a few words.
	Summary string
}

// AuditChecks lists every check in ID order.
var AuditChecks = []AuditCheck{
	{FindingBlindSpot, SeverityHigh, "promiscuous port group with the reverse-teaming blind spot"},
	{FindingIPHashMixed, SeverityHigh, "IP hash next to other teaming policies on the same uplinks"},
	{FindingIPHashStandby, SeverityMedium, "IP hash with standby or unused uplinks"},
	{FindingMonitorOneUplink, SeverityMedium, "promiscuous port group on one uplink, monitored VMs on others"},
	{FindingLAGMixed, SeverityMedium, "LAG active together with standalone uplinks"},
}

// AuditOptions tune Audit.
type AuditOptions struct {
	// Datacenter and Cluster limit the audit to the hosts of a datacenter
	// and of a cluster (names; empty: all). An unknown name is an error.
	Datacenter string
	Cluster    string
	// Parallel bounds how many hosts and distributed switches are
	// analysed at once; 0 means GOMAXPROCS.
	Parallel int
}

// AuditResult is what Audit found. Hosts, Objects and Findings are sorted
// (by name, by path, by path then ID), so two audits of the same
// inventory are equal.
type AuditResult struct {
	Datacenter, Cluster string // the scope asked for
	Hosts               []string
	// Objects are the switches and port groups checked.
	Objects  []AuditObject
	Findings []Finding
}

// AuditObject is one checked switch or port group.
type AuditObject struct {
	// Path is DATACENTER/HOST/VSWITCH[/PORTGROUP] for a standard switch,
	// DATACENTER/DVSWITCH[/DVPORTGROUP] for a distributed one.
	Path string
	Kind string // Object*
	Host string // standard switches only
}

// Finding is one problem found by a check.
type Finding struct {
	ID       string
	Severity string
	// Path names the object (see AuditObject.Path).
	Path       string
	Datacenter string
	Cluster    string // empty for a standalone host or a distributed switch
	Host       string // empty for a distributed switch
	SwitchType string // SwitchStandard or SwitchDistributed
	Switch     string
	Portgroup  string // empty for a switch-wide finding (RT002)
	// Title says what is wrong on one line; Detail why it matters; Fix
	// what to change, on one line.
	Title  string
	Detail string
	Fix    string
	// The port group's effective teaming (empty for RT002).
	TeamingPolicy  string
	ActiveUplinks  []string
	StandbyUplinks []string
	// VMs are the VMs affected: for RT001 and RT004 the promiscuous
	// (monitor) VMs on the port group, sorted by name then NIC.
	VMs []AffectedVM
	// Visibility is what those VMs see of other VMs' traffic (the
	// article's table), for RT001 and RT004.
	Visibility []Visibility
	// Related lists the paths of the other port groups involved (RT002:
	// the port groups on other policies and on IP hash; RT004: the
	// port groups whose VMs the monitor misses).
	Related []string
}

// AffectedVM is a VM's vNIC on the port group of a finding.
type AffectedVM struct {
	Name string
	Ref  string // managed object ID, e.g. vm-42 (VirtualMachine:vm-42 names it to trace --vm)
	Host string
	// NIC is the vNIC's label; NICIndex its position among the VM's
	// vNICs, counting from 0 (the order of Discover's Targets, trace --nic).
	NIC        string
	NICIndex   int
	MAC        string
	PowerState string
}

// Visibility is one row of what a promiscuous VM sees.
type Visibility struct {
	Source, Destination string
	// Seen is yes, partly or no; Note says when.
	Seen string
	Note string
}

// Audit reads the inventory once and runs the checks on every standard
// and distributed switch of the hosts in scope.
func (c *Client) Audit(ctx context.Context, opts AuditOptions) (*AuditResult, error) {
	inv, err := readInventory(ctx, c.vim)
	if err != nil {
		return nil, fmt.Errorf("esxi: audit: %w", err)
	}
	res, err := inv.audit(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("esxi: audit: %w", err)
	}
	return res, nil
}

// ---------------------------------------------------------------------------
// Reading the inventory

// inventory is what the one read returned.
type inventory struct {
	// entities are folders, datacenters and compute resources, for paths.
	entities map[types.ManagedObjectReference]entity
	hosts    []mo.HostSystem
	vms      []mo.VirtualMachine
	dvs      []dvSwitch
	dvpgs    []mo.DistributedVirtualPortgroup
	nets     map[types.ManagedObjectReference]string
}

type entity struct {
	name   string
	parent *types.ManagedObjectReference
}

type dvSwitch struct {
	ref    types.ManagedObjectReference
	name   string
	uuid   string
	parent *types.ManagedObjectReference
}

var auditViewTypes = []string{
	"Folder", "Datacenter", "ComputeResource", "ClusterComputeResource", "HostSystem", "VirtualMachine",
	"Network", "DistributedVirtualPortgroup", "DistributedVirtualSwitch", "VmwareDistributedVirtualSwitch",
}

func auditPropSet() []types.PropertySpec {
	named := []string{"name", "parent"}
	return []types.PropertySpec{
		{Type: "Folder", PathSet: named},
		{Type: "Datacenter", PathSet: named},
		{Type: "ComputeResource", PathSet: named},
		{Type: "ClusterComputeResource", PathSet: named},
		{Type: "HostSystem", PathSet: append([]string{"parent"}, hostProps...)},
		{Type: "VirtualMachine", PathSet: []string{"name", "runtime.host", "runtime.powerState", "config.template", "config.hardware.device"}},
		{Type: "Network", PathSet: []string{"name"}},
		{Type: "DistributedVirtualPortgroup", PathSet: []string{"name", "key", "config.defaultPortConfig", "config.distributedVirtualSwitch", "config.uplink"}},
		{Type: "DistributedVirtualSwitch", PathSet: []string{"name", "uuid", "parent"}},
		{Type: "VmwareDistributedVirtualSwitch", PathSet: []string{"name", "uuid", "parent"}},
	}
}

func readInventory(ctx context.Context, c *vim25.Client) (*inventory, error) {
	cv, err := methods.CreateContainerView(ctx, c, &types.CreateContainerView{
		This:      *c.ServiceContent.ViewManager,
		Container: c.ServiceContent.RootFolder,
		Type:      auditViewTypes,
		Recursive: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create container view: %w", err)
	}
	view := cv.Returnval
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout)
		defer cancel()
		_, _ = methods.DestroyView(dctx, c, &types.DestroyView{This: view}) // the session ends with the view anyway
	}()
	req := types.RetrievePropertiesEx{
		This: c.ServiceContent.PropertyCollector,
		SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{
				Obj: view, Skip: types.NewBool(true),
				SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view"}},
			}},
			PropSet: auditPropSet(),
		}},
	}
	contents, err := mo.RetrievePropertiesEx(ctx, c, req)
	if err != nil {
		return nil, fmt.Errorf("read the inventory: %w", err)
	}
	return decodeInventory(contents)
}

func decodeInventory(contents []types.ObjectContent) (*inventory, error) {
	inv := &inventory{entities: map[types.ManagedObjectReference]entity{}, nets: map[types.ManagedObjectReference]string{}}
	for _, oc := range contents {
		v, err := mo.ObjectContentToType(oc)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", oc.Obj, err)
		}
		switch o := v.(type) {
		case mo.Folder:
			inv.entities[oc.Obj] = entity{o.Name, o.Parent}
		case mo.Datacenter:
			inv.entities[oc.Obj] = entity{o.Name, o.Parent}
		case mo.ComputeResource:
			inv.entities[oc.Obj] = entity{o.Name, o.Parent}
		case mo.ClusterComputeResource:
			inv.entities[oc.Obj] = entity{o.Name, o.Parent}
		case mo.HostSystem:
			inv.hosts = append(inv.hosts, o)
		case mo.VirtualMachine:
			inv.vms = append(inv.vms, o)
		case mo.Network:
			inv.nets[oc.Obj] = o.Name
		case mo.DistributedVirtualPortgroup:
			inv.nets[oc.Obj] = o.Name
			inv.dvpgs = append(inv.dvpgs, o)
		case mo.DistributedVirtualSwitch:
			inv.dvs = append(inv.dvs, dvSwitch{oc.Obj, o.Name, o.Uuid, o.Parent})
		case mo.VmwareDistributedVirtualSwitch:
			inv.dvs = append(inv.dvs, dvSwitch{oc.Obj, o.Name, o.Uuid, o.Parent})
		}
	}
	return inv, nil
}

// datacenterOf walks up the parents to the datacenter; "" when none.
func (inv *inventory) datacenterOf(parent *types.ManagedObjectReference) string {
	for p, n := parent, 0; p != nil && n < 64; n++ {
		e, ok := inv.entities[*p]
		if !ok {
			return ""
		}
		if p.Type == "Datacenter" {
			return unescapeName(e.name)
		}
		p = e.parent
	}
	return ""
}

// ---------------------------------------------------------------------------
// Scope and analysis

// hostInfo is a host in scope.
type hostInfo struct {
	h          *mo.HostSystem
	name       string
	datacenter string
	cluster    string
}

func (inv *inventory) audit(ctx context.Context, opts AuditOptions) (*AuditResult, error) {
	res := &AuditResult{Datacenter: opts.Datacenter, Cluster: opts.Cluster}
	var scope []hostInfo
	dcs, clusters := map[string]bool{}, map[string]bool{}
	for i := range inv.hosts {
		h := &inv.hosts[i]
		hi := hostInfo{h: h, name: unescapeName(h.Name), datacenter: inv.datacenterOf(h.Parent)}
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			hi.cluster = unescapeName(inv.entities[*h.Parent].name)
		}
		dcs[hi.datacenter] = true
		if opts.Datacenter != "" && hi.datacenter != opts.Datacenter {
			continue
		}
		if hi.cluster != "" {
			clusters[hi.cluster] = true
		}
		if opts.Cluster != "" && hi.cluster != opts.Cluster {
			continue
		}
		scope = append(scope, hi)
	}
	if opts.Datacenter != "" && !dcs[opts.Datacenter] {
		return nil, fmt.Errorf("datacenter %q not found (datacenters with hosts: %s)", opts.Datacenter, keyList(dcs))
	}
	if opts.Cluster != "" && !clusters[opts.Cluster] {
		return nil, fmt.Errorf("cluster %q not found (clusters with hosts in scope: %s)", opts.Cluster, keyList(clusters))
	}
	sort.Slice(scope, func(i, j int) bool { return scope[i].name < scope[j].name })
	inScope := map[types.ManagedObjectReference]*hostInfo{}
	for i := range scope {
		inScope[scope[i].h.Self] = &scope[i]
		res.Hosts = append(res.Hosts, scope[i].name)
	}
	vmsByHost := map[types.ManagedObjectReference][]*mo.VirtualMachine{}
	for i := range inv.vms {
		vm := &inv.vms[i]
		if vm.Runtime.Host == nil || vm.Config == nil || vm.Config.Template || inScope[*vm.Runtime.Host] == nil {
			continue
		}
		vmsByHost[*vm.Runtime.Host] = append(vmsByHost[*vm.Runtime.Host], vm)
	}

	// The switches: each host's standard vSwitches, and each distributed
	// switch with a member host in scope.
	var switches []func() *switchView
	for i := range scope {
		hi := &scope[i]
		if hi.h.Config == nil || hi.h.Config.Network == nil {
			continue
		}
		for j := range hi.h.Config.Network.Vswitch {
			switches = append(switches, func() *switchView { return inv.standardSwitch(hi, j, vmsByHost[hi.h.Self]) })
		}
	}
	for i := range inv.dvs {
		d := &inv.dvs[i]
		var members []*hostInfo
		for j := range scope {
			if n := scope[j].h.Config; n != nil && n.Network != nil {
				for _, ps := range n.Network.ProxySwitch {
					if ps.DvsUuid == d.uuid {
						members = append(members, &scope[j])
					}
				}
			}
		}
		if len(members) == 0 {
			continue
		}
		switches = append(switches, func() *switchView { return inv.distributedSwitch(d, members, vmsByHost) })
	}

	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	out := make([]*switchView, len(switches))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, build := range switches {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sw := build()
			sw.check()
			out[i] = sw
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, sw := range out {
		res.Objects = append(res.Objects, sw.objects...)
		res.Findings = append(res.Findings, sw.findings...)
	}
	sort.Slice(res.Objects, func(i, j int) bool { return res.Objects[i].Path < res.Objects[j].Path })
	sort.SliceStable(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.ID < b.ID
	})
	return res, nil
}

func keyList(m map[string]bool) string {
	var l []string
	for k := range m {
		if k != "" {
			l = append(l, k)
		}
	}
	if len(l) == 0 {
		return "none"
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}

// switchView is a switch as the checks see it, standard or distributed.
type switchView struct {
	datacenter, cluster, host string
	typ                       string // SwitchStandard, SwitchDistributed
	name                      string
	path                      string
	uplinks                   []string // all uplink names (vmnics; DVS uplink and LAG names)
	lags                      map[string]bool
	pgs                       []*pgView

	objects  []AuditObject
	findings []Finding
}

// pgView is a port group with its effective policy and its VMs.
type pgView struct {
	name, path      string
	vlan            vlanSet
	policy          string
	active, standby []string
	promiscuous     bool
	vms             []AffectedVM
}

// vlanSet is a set of VLAN IDs as closed ranges; 4095 (all) is 0-4095.
type vlanSet [][2]int

func (s vlanSet) overlaps(o vlanSet) bool {
	for _, a := range s {
		for _, b := range o {
			if a[0] <= b[1] && b[0] <= a[1] {
				return true
			}
		}
	}
	return false
}

func standardVLAN(id int32) vlanSet {
	if id == 4095 {
		return vlanSet{{0, 4095}}
	}
	return vlanSet{{int(id), int(id)}}
}

func (inv *inventory) standardSwitch(hi *hostInfo, i int, vms []*mo.VirtualMachine) *switchView {
	net := hi.h.Config.Network
	vs := &net.Vswitch[i]
	sw := &switchView{datacenter: hi.datacenter, cluster: hi.cluster, host: hi.name, typ: SwitchStandard,
		name: vs.Name, path: hi.datacenter + "/" + hi.name + "/" + vs.Name, uplinks: vswitchNICs(vs, net)}
	sw.objects = append(sw.objects, AuditObject{Path: sw.path, Kind: ObjectVSwitch, Host: hi.name})
	for j := range net.Portgroup {
		pg := &net.Portgroup[j]
		if pg.Spec.VswitchName != vs.Name && (pg.Vswitch == "" || pg.Vswitch != vs.Key) {
			continue
		}
		pol := effectivePolicy(&pg.ComputedPolicy, &pg.Spec.Policy, vs.Spec.Policy)
		v := &pgView{name: pg.Spec.Name, path: sw.path + "/" + pg.Spec.Name, vlan: standardVLAN(pg.Spec.VlanId),
			policy: pol.teaming, active: pol.active, standby: pol.standby, promiscuous: pol.promiscuous}
		for _, vm := range vms {
			v.vms = append(v.vms, inv.vmNICs(vm, hi.name, func(b types.BaseVirtualDeviceBackingInfo) bool {
				nb, ok := b.(*types.VirtualEthernetCardNetworkBackingInfo)
				if !ok {
					return false
				}
				name := nb.DeviceName
				if nb.Network != nil && inv.nets[*nb.Network] != "" {
					name = inv.nets[*nb.Network]
				}
				return name == pg.Spec.Name
			})...)
		}
		sw.pgs = append(sw.pgs, v)
		sw.objects = append(sw.objects, AuditObject{Path: v.path, Kind: ObjectPortgroup, Host: hi.name})
	}
	return sw
}

func (inv *inventory) distributedSwitch(d *dvSwitch, members []*hostInfo, vmsByHost map[types.ManagedObjectReference][]*mo.VirtualMachine) *switchView {
	dc := inv.datacenterOf(d.parent)
	sw := &switchView{datacenter: dc, typ: SwitchDistributed, name: unescapeName(d.name), lags: map[string]bool{}}
	sw.path = dc + "/" + sw.name
	sw.objects = append(sw.objects, AuditObject{Path: sw.path, Kind: ObjectDVSwitch})
	seen := map[string]bool{}
	for _, m := range members {
		for _, ps := range m.h.Config.Network.ProxySwitch {
			if ps.DvsUuid != d.uuid {
				continue
			}
			for _, u := range proxyUplinks(ps) {
				if !seen[u.Name] {
					seen[u.Name] = true
					sw.uplinks = append(sw.uplinks, u.Name)
				}
				if u.LAG {
					sw.lags[u.Name] = true
				}
			}
		}
	}
	for i := range inv.dvpgs {
		pg := &inv.dvpgs[i]
		if pg.Config.DistributedVirtualSwitch == nil || *pg.Config.DistributedVirtualSwitch != d.ref || (pg.Config.Uplink != nil && *pg.Config.Uplink) {
			continue
		}
		var t Target
		distributedPolicy(&t, *pg, nil)
		v := &pgView{name: unescapeName(pg.Name), vlan: distributedVLAN(pg.Config.DefaultPortConfig),
			policy: t.TeamingPolicy, active: t.ActiveUplinks, standby: t.StandbyUplinks, promiscuous: t.Promiscuous}
		v.path = sw.path + "/" + v.name
		for _, m := range members {
			for _, vm := range vmsByHost[m.h.Self] {
				v.vms = append(v.vms, inv.vmNICs(vm, m.name, func(b types.BaseVirtualDeviceBackingInfo) bool {
					db, ok := b.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
					return ok && db.Port.PortgroupKey == pg.Key
				})...)
			}
		}
		sw.pgs = append(sw.pgs, v)
		sw.objects = append(sw.objects, AuditObject{Path: v.path, Kind: ObjectDVPortgroup})
	}
	sort.Slice(sw.pgs, func(i, j int) bool { return sw.pgs[i].name < sw.pgs[j].name })
	return sw
}

func distributedVLAN(s types.BaseDVPortSetting) vlanSet {
	ps, ok := s.(*types.VMwareDVSPortSetting)
	if !ok || ps == nil {
		return vlanSet{{0, 0}}
	}
	switch v := ps.Vlan.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		return vlanSet{{int(v.VlanId), int(v.VlanId)}}
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		var out vlanSet
		for _, r := range v.VlanId {
			out = append(out, [2]int{int(r.Start), int(r.End)})
		}
		return out
	case *types.VmwareDistributedVirtualSwitchPvlanSpec:
		return vlanSet{{int(v.PvlanId), int(v.PvlanId)}}
	}
	return vlanSet{{0, 0}}
}

// vmNICs lists the VM's vNICs whose backing on matches.
func (inv *inventory) vmNICs(vm *mo.VirtualMachine, host string, on func(types.BaseVirtualDeviceBackingInfo) bool) []AffectedVM {
	var out []AffectedVM
	index := -1
	for _, dev := range vm.Config.Hardware.Device {
		card, ok := dev.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		index++
		nic := card.GetVirtualEthernetCard()
		if nic.Backing == nil || !on(nic.Backing) {
			continue
		}
		label := fmt.Sprintf("ethernet-%d", nic.Key)
		if desc := nic.DeviceInfo.GetDescription(); desc != nil && desc.Label != "" {
			label = desc.Label
		}
		out = append(out, AffectedVM{Name: unescapeName(vm.Name), Ref: vm.Self.Value, Host: host, NIC: label, NICIndex: index,
			MAC: strings.ToLower(nic.MacAddress), PowerState: string(vm.Runtime.PowerState)})
	}
	return out
}

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
	if p.policy == "failover_explicit" {
		return act[:1]
	}
	return act
}

var noLAGPolicies = map[string]bool{"loadbalance_srcid": true, "loadbalance_srcmac": true, "loadbalance_loadbased": true}

// blindSpot: a load-balancing policy without a LAG and two or more active
// uplinks.
func (sw *switchView) blindSpot(p *pgView) bool {
	return noLAGPolicies[p.policy] && len(p.active) >= 2 && !sw.hasLAG(p.active)
}

func (sw *switchView) finding(id string, p *pgView) Finding {
	f := Finding{ID: id, Path: sw.path, Datacenter: sw.datacenter, Cluster: sw.cluster, Host: sw.host,
		SwitchType: sw.typ, Switch: sw.name}
	for _, c := range AuditChecks {
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

func (sw *switchView) where() string {
	if sw.typ == SwitchDistributed {
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
		if p.policy == "loadbalance_ip" {
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
		p.name, sw.where(), TeamingPolicyDescription(p.policy), len(p.active), ups, vmNames(p.vms))
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
		if p.policy == "loadbalance_ip" {
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
		if p.policy == "loadbalance_ip" || p.policy == "" {
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
		otherNames = append(otherNames, fmt.Sprintf("%s (%s)", p.name, TeamingPolicyDescription(p.policy)))
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
