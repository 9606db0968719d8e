package audit

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

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
		{Type: "HostSystem", PathSet: append([]string{"parent"}, esxi.HostNetworkProperties()...)},
		{Type: "VirtualMachine", PathSet: []string{"name", "runtime.host", "runtime.powerState", "config.template", "config.hardware.device"}},
		{Type: "Network", PathSet: []string{"name"}},
		{Type: "DistributedVirtualPortgroup", PathSet: []string{"name", "key", "config.defaultPortConfig", "config.distributedVirtualSwitch", "config.uplink"}},
		{Type: "DistributedVirtualSwitch", PathSet: []string{"name", "uuid", "parent"}},
		{Type: "VmwareDistributedVirtualSwitch", PathSet: []string{"name", "uuid", "parent"}},
	}
}

// destroyViewTimeout bounds the DestroyView after the read, which runs
// even when ctx is done.
const destroyViewTimeout = 30 * time.Second

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
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyViewTimeout)
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
			return esxi.UnescapeName(e.name)
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

func (inv *inventory) audit(ctx context.Context, opts Options) (*Result, error) {
	res := &Result{Datacenter: opts.Datacenter, Cluster: opts.Cluster}
	var scope []hostInfo
	dcs, clusters := map[string]bool{}, map[string]bool{}
	for i := range inv.hosts {
		h := &inv.hosts[i]
		hi := hostInfo{h: h, name: esxi.UnescapeName(h.Name), datacenter: inv.datacenterOf(h.Parent)}
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			hi.cluster = esxi.UnescapeName(inv.entities[*h.Parent].name)
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
	typ                       string // esxi.SwitchStandard, esxi.SwitchDistributed
	name                      string
	path                      string
	uplinks                   []string // all uplink names (vmnics; DVS uplink and LAG names)
	lags                      map[string]bool
	pgs                       []*pgView

	objects  []Object
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
	sw := &switchView{datacenter: hi.datacenter, cluster: hi.cluster, host: hi.name, typ: esxi.SwitchStandard,
		name: vs.Name, path: hi.datacenter + "/" + hi.name + "/" + vs.Name, uplinks: esxi.VSwitchNICs(vs, net)}
	sw.objects = append(sw.objects, Object{Path: sw.path, Kind: ObjectVSwitch, Host: hi.name})
	for j := range net.Portgroup {
		pg := &net.Portgroup[j]
		if pg.Spec.VswitchName != vs.Name && (pg.Vswitch == "" || pg.Vswitch != vs.Key) {
			continue
		}
		pol := esxi.StandardTeaming(pg, vs)
		v := &pgView{name: pg.Spec.Name, path: sw.path + "/" + pg.Spec.Name, vlan: standardVLAN(pg.Spec.VlanId),
			policy: pol.Policy, active: pol.Active, standby: pol.Standby, promiscuous: pol.Promiscuous}
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
		sw.objects = append(sw.objects, Object{Path: v.path, Kind: ObjectPortgroup, Host: hi.name})
	}
	return sw
}

func (inv *inventory) distributedSwitch(d *dvSwitch, members []*hostInfo, vmsByHost map[types.ManagedObjectReference][]*mo.VirtualMachine) *switchView {
	dc := inv.datacenterOf(d.parent)
	sw := &switchView{datacenter: dc, typ: esxi.SwitchDistributed, name: esxi.UnescapeName(d.name), lags: map[string]bool{}}
	sw.path = dc + "/" + sw.name
	sw.objects = append(sw.objects, Object{Path: sw.path, Kind: ObjectDVSwitch})
	seen := map[string]bool{}
	for _, m := range members {
		for _, ps := range m.h.Config.Network.ProxySwitch {
			if ps.DvsUuid != d.uuid {
				continue
			}
			for _, u := range esxi.ProxySwitchUplinks(ps) {
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
		t := esxi.DistributedTeaming(*pg)
		v := &pgView{name: esxi.UnescapeName(pg.Name), vlan: distributedVLAN(pg.Config.DefaultPortConfig),
			policy: t.Policy, active: t.Active, standby: t.Standby, promiscuous: t.Promiscuous}
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
		sw.objects = append(sw.objects, Object{Path: v.path, Kind: ObjectDVPortgroup})
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
		out = append(out, AffectedVM{Name: esxi.UnescapeName(vm.Name), Ref: vm.Self.Value, Host: host, NIC: label, NICIndex: index,
			MAC: strings.ToLower(nic.MacAddress), PowerState: string(vm.Runtime.PowerState)})
	}
	return out
}
