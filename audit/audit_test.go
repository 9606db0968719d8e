package audit

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// ---------------------------------------------------------------------------
// The checks on hand-built switches

type pgSpec struct {
	name            string
	vlan            vlanSet
	policy          string
	active, standby []string
	promisc         bool
	vms             []string // VM names, on host "h1" unless "name@host"
}

func buildSwitch(typ string, uplinks []string, lags []string, pgs ...pgSpec) *switchView {
	sw := &switchView{datacenter: "DC", host: "h1", typ: typ, name: "vSwitch1", path: "DC/h1/vSwitch1", uplinks: uplinks, lags: map[string]bool{}}
	if typ == esxi.SwitchDistributed {
		sw.host, sw.path = "", "DC/DSwitch"
	}
	for _, l := range lags {
		sw.lags[l] = true
	}
	for _, p := range pgs {
		v := &pgView{name: p.name, path: sw.path + "/" + p.name, vlan: p.vlan, policy: p.policy, active: p.active, standby: p.standby, promiscuous: p.promisc}
		if v.vlan == nil {
			v.vlan = vlanSet{{100, 100}}
		}
		for _, n := range p.vms {
			name, host, ok := strings.Cut(n, "@")
			if !ok {
				host = "h1"
			}
			v.vms = append(v.vms, AffectedVM{Name: name, Host: host, NIC: "Network adapter 1", PowerState: "poweredOn"})
		}
		sw.pgs = append(sw.pgs, v)
	}
	return sw
}

func ids(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ID+" "+f.Path)
	}
	slices.Sort(out)
	return out
}

var two = []string{"vmnic2", "vmnic3"}

func TestAuditChecks(t *testing.T) {
	const (
		srcid     = "loadbalance_srcid"
		srcmac    = "loadbalance_srcmac"
		loadbased = "loadbalance_loadbased"
		iphash    = "loadbalance_ip"
		explicit  = "failover_explicit"
	)
	cases := []struct {
		name string
		sw   *switchView
		want []string
	}{
		{"srcport, 2 active, promiscuous", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: srcid, active: two, promisc: true, vms: []string{"mon"}}),
			[]string{"RT001 DC/h1/vSwitch1/Mon"}},
		{"srcmac, promiscuous without VMs is still reported", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: srcmac, active: two, promisc: true}),
			[]string{"RT001 DC/h1/vSwitch1/Mon"}},
		{"load-based, promiscuous", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: loadbased, active: two, promisc: true}),
			[]string{"RT001 DC/h1/vSwitch1/Mon"}},
		{"srcport, 2 active, not promiscuous: reverse teaming as intended", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "App", policy: srcid, active: two, vms: []string{"a"}}),
			[]string{}},
		{"one active, one standby: clean", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: srcid, active: two[:1], standby: two[1:], promisc: true, vms: []string{"mon"}}),
			[]string{}},
		{"explicit failover with 2 active shares the first: clean", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: explicit, active: two, promisc: true, vms: []string{"mon"}},
			pgSpec{name: "App", policy: explicit, active: two, vms: []string{"a"}}),
			[]string{}},
		{"standby only: first standby in use, clean", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: srcid, standby: two, promisc: true, vms: []string{"mon"}},
			pgSpec{name: "App", policy: srcid, standby: two, vms: []string{"a"}}),
			[]string{}},
		{"IP hash, promiscuous, all active: clean", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Mon", policy: iphash, active: two, promisc: true, vms: []string{"mon"}},
			pgSpec{name: "App", policy: iphash, active: two, vms: []string{"a"}}),
			[]string{}},
		{"IP hash next to srcport on the same uplinks", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Web", policy: iphash, active: two},
			pgSpec{name: "Backup", policy: srcid, active: two}),
			[]string{"RT002 DC/h1/vSwitch1"}},
		{"IP hash next to explicit failover on a shared uplink", buildSwitch(esxi.SwitchStandard, []string{"vmnic2", "vmnic3", "vmnic4"}, nil,
			pgSpec{name: "Web", policy: iphash, active: two},
			pgSpec{name: "Mgmt", policy: explicit, active: []string{"vmnic3"}, standby: []string{"vmnic4"}}),
			[]string{"RT002 DC/h1/vSwitch1", "RT003 DC/h1/vSwitch1/Web"}},
		{"IP hash and srcport on separate uplinks: only the unused uplinks are reported", buildSwitch(esxi.SwitchStandard, []string{"vmnic2", "vmnic3", "vmnic4", "vmnic5"}, nil,
			pgSpec{name: "Web", policy: iphash, active: two},
			pgSpec{name: "Other", policy: srcid, active: []string{"vmnic4", "vmnic5"}}),
			[]string{"RT003 DC/h1/vSwitch1/Web"}},
		{"IP hash with a standby uplink", buildSwitch(esxi.SwitchStandard, []string{"vmnic2", "vmnic3", "vmnic4"}, nil,
			pgSpec{name: "DB", policy: iphash, active: two, standby: []string{"vmnic4"}}),
			[]string{"RT003 DC/h1/vSwitch1/DB"}},
		{"monitor pinned to vmnic2, app of its VLAN on vmnic3", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Sniffer", policy: explicit, active: two[:1], standby: two[1:], promisc: true, vms: []string{"sniff"}},
			pgSpec{name: "App", policy: explicit, active: two[1:], standby: two[:1], vms: []string{"app"}}),
			[]string{"RT004 DC/h1/vSwitch1/Sniffer"}},
		{"monitor pinned, srcport app of its VLAN", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Sniffer", policy: explicit, active: two[:1], promisc: true, vms: []string{"sniff"}},
			pgSpec{name: "App", policy: srcid, active: two, vms: []string{"app"}}),
			[]string{"RT004 DC/h1/vSwitch1/Sniffer"}},
		{"monitor pinned, app in another VLAN", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Sniffer", vlan: vlanSet{{300, 300}}, policy: explicit, active: two[:1], promisc: true, vms: []string{"sniff"}},
			pgSpec{name: "App", vlan: vlanSet{{301, 301}}, policy: srcid, active: two, vms: []string{"app"}}),
			[]string{}},
		{"monitor on VLAN 4095 sees every VLAN", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Sniffer", vlan: standardVLAN(4095), policy: explicit, active: two[:1], promisc: true, vms: []string{"sniff"}},
			pgSpec{name: "App", vlan: vlanSet{{301, 301}}, policy: srcid, active: two, vms: []string{"app"}}),
			[]string{"RT004 DC/h1/vSwitch1/Sniffer"}},
		{"monitor pinned without VMs", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Spare", policy: explicit, active: two[:1], promisc: true},
			pgSpec{name: "App", policy: srcid, active: two, vms: []string{"app"}}),
			[]string{}},
		{"monitor pinned, app VMs without VMs", buildSwitch(esxi.SwitchStandard, two, nil,
			pgSpec{name: "Sniffer", policy: explicit, active: two[:1], promisc: true, vms: []string{"sniff"}},
			pgSpec{name: "App", policy: srcid, active: two}),
			[]string{}},
		// Distributed switches.
		{"DVS: srcport over two uplinks, promiscuous", buildSwitch(esxi.SwitchDistributed, []string{"Uplink 1", "Uplink 2"}, nil,
			pgSpec{name: "DVMon", policy: srcid, active: []string{"Uplink 1", "Uplink 2"}, promisc: true, vms: []string{"mon@h1", "mon2@h2"}}),
			[]string{"RT001 DC/DSwitch/DVMon"}},
		{"DVS: a LAG as the only active uplink, IP hash, unused standalone uplinks: clean", buildSwitch(esxi.SwitchDistributed, []string{"Uplink 1", "Uplink 2", "lag1"}, []string{"lag1"},
			pgSpec{name: "DVMon", policy: iphash, active: []string{"lag1"}, promisc: true, vms: []string{"mon"}},
			pgSpec{name: "DVApp", policy: iphash, active: []string{"lag1"}, vms: []string{"app"}}),
			[]string{}},
		{"DVS: srcport over a LAG (one uplink): clean", buildSwitch(esxi.SwitchDistributed, []string{"lag1"}, []string{"lag1"},
			pgSpec{name: "DVMon", policy: srcid, active: []string{"lag1"}, promisc: true}),
			[]string{}},
		{"DVS: LAG and standalone uplink active together", buildSwitch(esxi.SwitchDistributed, []string{"Uplink 1", "lag1"}, []string{"lag1"},
			pgSpec{name: "DVApp", policy: srcid, active: []string{"lag1", "Uplink 1"}}),
			[]string{"RT005 DC/DSwitch/DVApp"}},
		{"DVS: monitor and app of a trunk range on different uplinks, same host", buildSwitch(esxi.SwitchDistributed, []string{"Uplink 1", "Uplink 2"}, nil,
			pgSpec{name: "DVMon", vlan: vlanSet{{100, 200}}, policy: explicit, active: []string{"Uplink 1"}, promisc: true, vms: []string{"mon@h1"}},
			pgSpec{name: "DVApp", vlan: vlanSet{{150, 150}}, policy: explicit, active: []string{"Uplink 2"}, vms: []string{"app@h1"}}),
			[]string{"RT004 DC/DSwitch/DVMon"}},
		{"DVS: monitor and app on different hosts", buildSwitch(esxi.SwitchDistributed, []string{"Uplink 1", "Uplink 2"}, nil,
			pgSpec{name: "DVMon", policy: explicit, active: []string{"Uplink 1"}, promisc: true, vms: []string{"mon@h1"}},
			pgSpec{name: "DVApp", policy: explicit, active: []string{"Uplink 2"}, vms: []string{"app@h2"}}),
			[]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.sw.check()
			if got := ids(c.sw.findings); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q; want %q", got, c.want)
			}
			for _, f := range c.sw.findings {
				if f.Severity == "" || f.Title == "" || f.Fix == "" || f.Detail == "" || strings.Contains(f.Fix, "\n") {
					t.Errorf("%s: incomplete: %+v", f.ID, f)
				}
			}
		})
	}
}

// The blind-spot finding names the VMs and says what they miss.
func TestAuditBlindSpotDetails(t *testing.T) {
	sw := buildSwitch(esxi.SwitchStandard, two, nil,
		pgSpec{name: "Mon", policy: "loadbalance_srcid", active: two, promisc: true, vms: []string{"zeta", "alpha"}})
	sw.check()
	if len(sw.findings) != 1 {
		t.Fatalf("findings %v", ids(sw.findings))
	}
	f := sw.findings[0]
	if got := []string{f.VMs[0].Name, f.VMs[1].Name}; !reflect.DeepEqual(got, []string{"alpha", "zeta"}) {
		t.Errorf("VMs %q; want sorted alpha, zeta", got)
	}
	if !strings.Contains(f.Title, "affected: alpha, zeta") || f.Severity != SeverityHigh || f.Host != "h1" || f.Portgroup != "Mon" {
		t.Errorf("finding %+v", f)
	}
	var seen []string
	for _, v := range f.Visibility {
		seen = append(seen, v.Source+">"+v.Destination+"="+v.Seen)
	}
	want := []string{"a VM on this host>a VM on this host=yes", "a VM on this host>outside the host=yes",
		"outside the host>a VM on this host=partly", "outside the host>outside the host=no"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("visibility %q; want the article's table %q", seen, want)
	}
}

func TestVLANSets(t *testing.T) {
	cases := []struct {
		a, b vlanSet
		want bool
	}{
		{standardVLAN(100), standardVLAN(100), true},
		{standardVLAN(100), standardVLAN(101), false},
		{standardVLAN(0), standardVLAN(0), true},
		{standardVLAN(4095), standardVLAN(7), true},
		{vlanSet{{100, 200}, {300, 300}}, standardVLAN(250), false},
		{vlanSet{{100, 200}, {300, 300}}, standardVLAN(300), true},
	}
	for _, c := range cases {
		if got := c.a.overlaps(c.b); got != c.want || c.b.overlaps(c.a) != c.want {
			t.Errorf("%v overlaps %v: got %v; want %v", c.a, c.b, got, c.want)
		}
	}
	dv := []struct {
		s    types.BaseDVPortSetting
		want vlanSet
	}{
		{nil, vlanSet{{0, 0}}},
		{&types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: 42}}, vlanSet{{42, 42}}},
		{&types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{VlanId: []types.NumericRange{{Start: 1, End: 10}}}}, vlanSet{{1, 10}}},
		{&types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchPvlanSpec{PvlanId: 7}}, vlanSet{{7, 7}}},
	}
	for _, c := range dv {
		if got := distributedVLAN(c.s); !reflect.DeepEqual(got, c.want) {
			t.Errorf("distributedVLAN(%#v) = %v; want %v", c.s, got, c.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Against vcsim: distributed switches, clusters, and the calls made

func TestAuditSimDistributedAndScope(t *testing.T) {
	s, m := startSim(t, simulator.VPX())
	c := connectSim(t, s)
	ctx := context.Background()
	sctx := m.Service.Context

	// DC0_DVPG0: promiscuous, srcport over two uplinks. Every host gets a
	// proxy switch for DVS0 with two uplinks.
	var dvs *simulator.DistributedVirtualSwitch
	var pg *simulator.DistributedVirtualPortgroup
	for _, o := range sctx.Map.All("") {
		switch o := o.(type) {
		case *simulator.DistributedVirtualSwitch:
			dvs = o
		case *simulator.DistributedVirtualPortgroup:
			if o.Name == "DC0_DVPG0" {
				pg = o
			}
		}
	}
	if dvs == nil || pg == nil {
		t.Fatal("vcsim has no DVS0/DC0_DVPG0")
	}
	sctx.WithLock(pg, func() {
		pg.Config.DefaultPortConfig = &types.VMwareDVSPortSetting{
			Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: 100},
			UplinkTeamingPolicy: &types.VmwareUplinkPortTeamingPolicy{
				Policy:          &types.StringPolicy{Value: "loadbalance_srcid"},
				UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{ActiveUplinkPort: []string{"Uplink 1", "Uplink 2"}},
			},
			SecurityPolicy: &types.DVSSecurityPolicy{AllowPromiscuous: &types.BoolPolicy{Value: types.NewBool(true)}},
		}
	})
	for _, o := range sctx.Map.All("HostSystem") {
		h := o.(*simulator.HostSystem)
		sctx.WithLock(h, func() {
			n := *h.Config.Network
			n.ProxySwitch = []types.HostProxySwitch{{DvsUuid: dvs.Uuid, DvsName: dvs.Name,
				UplinkPort: []types.KeyValue{{Key: "16", Value: "Uplink 1"}, {Key: "17", Value: "Uplink 2"}}}}
			h.Config.Network = &n
		})
	}

	log := logCalls(c)
	res, err := Run(ctx, c.Vim(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := log.Calls(), []string{"CreateContainerView", "RetrievePropertiesEx", "DestroyView"}; !reflect.DeepEqual(got, want) {
		t.Errorf("API calls %q; want %q (one pass, no per-object round trips)", got, want)
	}
	var blind *Finding
	for i, f := range res.Findings {
		if f.ID == FindingBlindSpot && f.Path == "DC0/DVS0/DC0_DVPG0" {
			blind = &res.Findings[i]
		}
	}
	if blind == nil {
		t.Fatalf("no RT001 for DC0/DVS0/DC0_DVPG0 in %q", ids(res.Findings))
	}
	if blind.SwitchType != esxi.SwitchDistributed || blind.Host != "" || len(blind.VMs) == 0 || blind.VMs[0].Host == "" {
		t.Errorf("finding %+v", *blind)
	}
	if len(res.Hosts) != 4 {
		t.Errorf("hosts %q; want the 4 of vcsim's VPX model", res.Hosts)
	}

	// --cluster: the cluster's hosts only, and only its VMs are named.
	res, err = Run(ctx, c.Vim(), Options{Datacenter: "DC0", Cluster: "DC0_C0", Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != 3 || slices.Contains(res.Hosts, "DC0_H0") {
		t.Errorf("cluster DC0_C0: hosts %q; want DC0_C0_H0..2", res.Hosts)
	}
	for _, f := range res.Findings {
		for _, vm := range f.VMs {
			if !strings.HasPrefix(vm.Host, "DC0_C0_") {
				t.Errorf("cluster DC0_C0: %s names VM %s on %s", f.ID, vm.Name, vm.Host)
			}
		}
	}
	for _, o := range res.Objects {
		if o.Kind == ObjectVSwitch && !strings.HasPrefix(o.Host, "DC0_C0_") {
			t.Errorf("cluster DC0_C0: checked %s", o.Path)
		}
	}

	for _, bad := range []Options{{Datacenter: "nope"}, {Cluster: "nope"}, {Datacenter: "DC0", Cluster: "nope"}} {
		if _, err := Run(ctx, c.Vim(), bad); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
			t.Errorf("%+v: err %v; want not found", bad, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Against the lab: the 20-host topology

func TestAuditLab20(t *testing.T) {
	_, c := startVCLab(t, "../configs/lab-audit-20.yaml")
	log := logCalls(c)
	start := time.Now()
	res, err := Run(context.Background(), c.Vim(), Options{Parallel: 4})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// how fast it is: the 3 API calls below, whatever the hosts' number
	// (a time limit here would fail on a busy machine, not a slow audit)
	t.Logf("audit of %d hosts, %d objects: %s", len(res.Hosts), len(res.Objects), took)
	if n := len(log.Calls()); n != 3 {
		t.Errorf("API calls %q; want 3", log.Calls())
	}
	want := []string{
		"RT001 DC0/esx01/vSwitch1/IDS", "RT001 DC0/esx02/vSwitch1/Monitor", "RT001 DC0/esx03/vSwitch1/L2VPN",
		"RT002 DC0/esx04/vSwitch1", "RT003 DC0/esx05/vSwitch1/DB", "RT004 DC0/esx06/vSwitch1/Sniffer",
	}
	if got := ids(res.Findings); !reflect.DeepEqual(got, want) {
		t.Errorf("findings %q; want exactly %q", got, want)
	}
	if len(res.Hosts) != 20 {
		t.Errorf("hosts %d; want 20", len(res.Hosts))
	}
	// Every finding's path is a checked object; objects are sorted.
	paths := map[string]bool{}
	for i, o := range res.Objects {
		paths[o.Path] = true
		if i > 0 && res.Objects[i-1].Path >= o.Path {
			t.Errorf("objects not sorted at %s", o.Path)
		}
	}
	for _, f := range res.Findings {
		if !paths[f.Path] {
			t.Errorf("%s %s: not a checked object", f.ID, f.Path)
		}
	}
	byPath := map[string]Finding{}
	for _, f := range res.Findings {
		byPath[f.Path] = f
	}
	if f := byPath["DC0/esx01/vSwitch1/IDS"]; fmt.Sprint(vmList(f.VMs)) != "[ids01 web01]" || f.TeamingPolicy != "loadbalance_srcid" {
		t.Errorf("esx01 IDS: VMs %v, policy %s", vmList(f.VMs), f.TeamingPolicy)
	}
	if f := byPath["DC0/esx03/vSwitch1/L2VPN"]; f.TeamingPolicy != "loadbalance_loadbased" || !reflect.DeepEqual(f.ActiveUplinks, two) {
		t.Errorf("esx03 L2VPN: the portgroup override over the vSwitch's explicit failover was not applied: %+v", f)
	}
	if f := byPath["DC0/esx04/vSwitch1"]; !reflect.DeepEqual(f.Related, []string{"DC0/esx04/vSwitch1/Backup", "DC0/esx04/vSwitch1/Web"}) {
		t.Errorf("esx04 related %q", f.Related)
	}
	if f := byPath["DC0/esx06/vSwitch1/Sniffer"]; !reflect.DeepEqual(f.Related, []string{"DC0/esx06/vSwitch1/App"}) || fmt.Sprint(vmList(f.VMs)) != "[sniff06]" {
		t.Errorf("esx06: related %q, VMs %v", f.Related, vmList(f.VMs))
	}
}

// The lab's distributed switch (configs/lab-dvs.yaml): the promiscuous
// distributed portgroup is the one blind spot, named by its switch.
func TestAuditLabDistributed(t *testing.T) {
	_, c := startVCLab(t, "../configs/lab-dvs.yaml")
	res, err := Run(context.Background(), c.Vim(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Findings); !reflect.DeepEqual(got, []string{"RT001 DC0/DSwitch/dvPG-Monitor"}) {
		t.Fatalf("findings %q", got)
	}
	f := res.Findings[0]
	if fmt.Sprint(vmList(f.VMs)) != "[dvsmon]" || !reflect.DeepEqual(f.ActiveUplinks, []string{"Uplink 1", "Uplink 2"}) {
		t.Errorf("VMs %v, active uplinks %v", vmList(f.VMs), f.ActiveUplinks)
	}
}

func vmList(v []AffectedVM) []string {
	var out []string
	for _, vm := range v {
		out = append(out, vm.Name)
	}
	return out
}

// decodeInventory keeps what the checks need from each kind of object.
func TestDecodeInventory(t *testing.T) {
	dc := types.ManagedObjectReference{Type: "Datacenter", Value: "dc-1"}
	folder := types.ManagedObjectReference{Type: "Folder", Value: "f-1"}
	cl := types.ManagedObjectReference{Type: "ClusterComputeResource", Value: "c-1"}
	prop := func(name string, v any) types.DynamicProperty { return types.DynamicProperty{Name: name, Val: v} }
	contents := []types.ObjectContent{
		{Obj: dc, PropSet: []types.DynamicProperty{prop("name", "Lab%2fEast")}},
		{Obj: folder, PropSet: []types.DynamicProperty{prop("name", "host"), prop("parent", dc)}},
		{Obj: cl, PropSet: []types.DynamicProperty{prop("name", "Prod"), prop("parent", folder)}},
		{Obj: types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"}, PropSet: []types.DynamicProperty{prop("name", "esx01"), prop("parent", cl)}},
		{Obj: types.ManagedObjectReference{Type: "VmwareDistributedVirtualSwitch", Value: "dvs-1"}, PropSet: []types.DynamicProperty{prop("name", "DSwitch"), prop("uuid", "u-1")}},
	}
	inv, err := decodeInventory(contents)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.hosts) != 1 || len(inv.dvs) != 1 || inv.dvs[0].uuid != "u-1" {
		t.Fatalf("inventory %+v", inv)
	}
	if got := inv.datacenterOf(inv.hosts[0].Parent); got != "Lab/East" {
		t.Errorf("datacenter %q; want Lab/East (unescaped)", got)
	}
	res, err := inv.audit(context.Background(), Options{Cluster: "Prod"})
	if err != nil || !reflect.DeepEqual(res.Hosts, []string{"esx01"}) {
		t.Errorf("cluster Prod: %v, %v", res, err)
	}
}
