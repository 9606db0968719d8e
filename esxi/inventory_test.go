package esxi

import (
	"reflect"
	"testing"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The exported decoding gives what Discover puts in a Target: the first
// layer that sets a value wins (computed, port group, vSwitch).
func TestStandardAndDistributedTeaming(t *testing.T) {
	vs := &types.HostVirtualSwitch{Name: "vSwitch1", Spec: types.HostVirtualSwitchSpec{Policy: &types.HostNetworkPolicy{
		NicTeaming: &types.HostNicTeamingPolicy{Policy: "failover_explicit", NicOrder: &types.HostNicOrderPolicy{ActiveNic: []string{"vmnic2"}, StandbyNic: []string{"vmnic3"}}},
		Security:   &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(true)},
	}}}
	pg := &types.HostPortGroup{Spec: types.HostPortGroupSpec{Name: "L2VPN", VswitchName: "vSwitch1", Policy: types.HostNetworkPolicy{
		NicTeaming: &types.HostNicTeamingPolicy{Policy: "loadbalance_loadbased", NicOrder: &types.HostNicOrderPolicy{ActiveNic: []string{"vmnic2", "vmnic3"}}},
	}}}
	want := Teaming{Policy: "loadbalance_loadbased", Active: []string{"vmnic2", "vmnic3"}, Promiscuous: true}
	if got := StandardTeaming(pg, vs); !reflect.DeepEqual(got, want) {
		t.Errorf("StandardTeaming = %+v; want %+v (port group over vSwitch, promiscuous from the vSwitch)", got, want)
	}
	if got := StandardTeaming(pg, nil); got.Policy != "loadbalance_loadbased" || got.Promiscuous {
		t.Errorf("StandardTeaming without the vSwitch = %+v", got)
	}
	tgt := Target{Portgroup: "L2VPN"}
	standardPolicy(&tgt, &types.HostNetworkInfo{Vswitch: []types.HostVirtualSwitch{*vs}, Portgroup: []types.HostPortGroup{*pg}})
	if got := (Teaming{tgt.TeamingPolicy, tgt.ActiveUplinks, tgt.StandbyUplinks, tgt.Promiscuous}); !reflect.DeepEqual(got, want) {
		t.Errorf("discovery's Target has %+v; StandardTeaming %+v", got, want)
	}

	dpg := mo.DistributedVirtualPortgroup{}
	dpg.Name = "dvPG"
	dpg.Config.DefaultPortConfig = &types.VMwareDVSPortSetting{
		UplinkTeamingPolicy: &types.VmwareUplinkPortTeamingPolicy{
			Policy:          &types.StringPolicy{Value: "loadbalance_srcid"},
			UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{ActiveUplinkPort: []string{"Uplink 1"}, StandbyUplinkPort: []string{"Uplink 2"}},
		},
		SecurityPolicy: &types.DVSSecurityPolicy{AllowPromiscuous: &types.BoolPolicy{Value: types.NewBool(true)}},
	}
	want = Teaming{Policy: "loadbalance_srcid", Active: []string{"Uplink 1"}, Standby: []string{"Uplink 2"}, Promiscuous: true}
	if got := DistributedTeaming(dpg); !reflect.DeepEqual(got, want) {
		t.Errorf("DistributedTeaming = %+v; want %+v", got, want)
	}
	if got := DistributedTeaming(mo.DistributedVirtualPortgroup{}); !reflect.DeepEqual(got, Teaming{}) {
		t.Errorf("DistributedTeaming without a port config = %+v; want nothing", got)
	}
	if UnescapeName("Lab%2fEast") != "Lab/East" {
		t.Error("UnescapeName")
	}
}
