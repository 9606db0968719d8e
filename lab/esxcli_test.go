package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/internal/testenv"
)

// The lab's esxcli and net-stats output parses with the same parsers that
// read real hosts (esxi/), and says what the topology says.
func TestEsxcliOverSSH(t *testing.T) {
	l := startLab(t, "../configs/lab-article.yaml", Options{})
	c := dial(t, l, "esx02")
	run := func(cmd string) string { t.Helper(); return mustRun(t, c, cmd) }
	vms, err := esxi.ParseVMList(strings.NewReader(run("esxcli network vm list")))
	if err != nil || len(vms) != 1 || vms[0].Name != "testvm2" || vms[0].NumPorts != 1 {
		t.Fatalf("network vm list: %+v %v", vms, err)
	}
	ports, err := esxi.ParseVMPortList(strings.NewReader(run(fmt.Sprintf("esxcli network vm port list -w %d", vms[0].WorldID))))
	if err != nil || len(ports) != 1 {
		t.Fatalf("port list: %+v %v", ports, err)
	}
	p := ports[0]
	if p.PortID != 50331657 || p.TeamUplink != "vmnic2" || p.VSwitch != "vSwitch1" || p.Portgroup != "VLAN100" || p.MAC != "00:50:56:9d:fd:b1" {
		t.Errorf("port: %+v", p)
	}
	// The team uplink follows a change in the lab.
	if err := l.Net.SetTeamUplink("esx02", 50331657, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	ports, _ = esxi.ParseVMPortList(strings.NewReader(run(fmt.Sprintf("esxcli network vm port list --world-id=%d", vms[0].WorldID))))
	if len(ports) != 1 || ports[0].TeamUplink != "vmnic3" {
		t.Errorf("after SetTeamUplink: %+v; want team uplink vmnic3", ports)
	}
	vss, err := esxi.ParseVSwitchList(strings.NewReader(run("esxcli network vswitch standard list")))
	if err != nil || len(vss) != 2 || vss[1].Name != "vSwitch1" || strings.Join(vss[1].Uplinks, ",") != "vmnic3,vmnic2" {
		t.Errorf("vswitch list: %+v %v", vss, err)
	}
	// Used Ports as real hosts count them: one of the switch's own, the
	// uplinks with their shadow ports, and the clients (vmk0, vNICs)
	if vss[0].UsedPorts != 4 || vss[1].UsedPorts != 6 {
		t.Errorf("Used Ports %d and %d; want 4 (1 uplink, vmk0) and 6 (2 uplinks, testvm2)", vss[0].UsedPorts, vss[1].UsedPorts)
	}
	pgs, err := esxi.ParsePortgroupList(strings.NewReader(run("esxcli network vswitch standard portgroup list")))
	for _, pg := range pgs {
		if pg.Name == "Management Network" && pg.ActiveClients != 1 {
			t.Errorf("Management Network has %d active clients; want 1 (vmk0)", pg.ActiveClients)
		}
	}
	if err != nil || len(pgs) == 0 {
		t.Errorf("portgroup list: %+v %v", pgs, err)
	}
	pol, err := esxi.ParseFailoverPolicy(strings.NewReader(run("esxcli network vswitch standard policy failover get -v vSwitch1")))
	if err != nil || pol.LoadBalancing != "srcport" || strings.Join(pol.ActiveAdapters, ",") != "vmnic2,vmnic3" {
		t.Errorf("failover policy: %+v %v", pol, err)
	}
	procs, err := esxi.ParseVMProcessList(strings.NewReader(run("esxcli vm process list")))
	if err != nil || len(procs) != 1 || procs[0].WorldID != vms[0].WorldID {
		t.Errorf("vm process list: %+v %v", procs, err)
	}
	nics, err := esxi.ParseNICList(strings.NewReader(run("esxcli network nic list")))
	if err != nil || len(nics) != 3 {
		t.Errorf("nic list: %+v %v", nics, err)
	}
	ns, err := esxi.ParseNetStatsPorts(strings.NewReader(run("net-stats -l")))
	if err != nil {
		t.Fatal(err)
	}
	found, vmk := false, false
	for _, e := range ns {
		found = found || (e.PortNum == 50331657 && e.ClientName == "testvm2.eth0" && e.MAC == "00:50:56:9d:fd:b1")
		// vmk0 on the Management Network, numbered as vCenter shows it
		vmk = vmk || (e.PortNum == 33554436 && e.Type == 3 && e.ClientName == "vmk0" && e.SwitchName == "vSwitch0")
	}
	if !found || !vmk {
		t.Errorf("net-stats -l lacks testvm2's port or vmk0: %+v", ns)
	}
	// Errors as esxcli prints them.
	r := runSSH(c, "esxcli network vm port list")
	if r.err == nil || !strings.Contains(r.stderr, "Error: Missing required parameter -w|--world-id") {
		t.Errorf("missing -w: %v %q", r.err, r.stderr)
	}
	r = runSSH(c, "esxcli network bogus list")
	if r.err == nil || !strings.Contains(r.stderr, "Error: Unknown command or namespace network bogus list") {
		t.Errorf("unknown namespace: %v %q", r.err, r.stderr)
	}
	// vsish: the team uplink node, as the notes read it
	if out := run("vsish -e get /net/portsets/vSwitch1/ports/50331657/teamUplink"); out != "vmnic3\n" {
		t.Errorf("vsish teamUplink: %q; want vmnic3 (changed above)", out)
	}
	r = runSSH(c, "vsish -e get /net/portsets/vSwitch0/ports/50331657/teamUplink")
	if r.err == nil || !strings.Contains(r.stderr, "no port 50331657 on portset vSwitch0") {
		t.Errorf("vsish on the wrong portset: %v %q", r.err, r.stderr)
	}
	// a command real hosts have but the lab does not emulate says so
	r = runSSH(c, "esxcli network vswitch dvs vmware lacp config get")
	if r.err == nil || !strings.Contains(r.stderr, "the lab does not emulate esxcli network vswitch dvs vmware lacp config get") {
		t.Errorf("not emulated: %v %q", r.err, r.stderr)
	}
	// a host in no distributed switch lists none, as real hosts do
	if r = runSSH(c, "esxcli network vswitch dvs vmware list"); r.err != nil || r.stdout != "" {
		t.Errorf("dvs list on a host without one: %v %q %q", r.err, r.stdout, r.stderr)
	}
	r = runSSH(c, "net-dvs -l")
	if r.err == nil || !strings.Contains(r.stderr, "net-dvs: a real ESXi host has this command; the lab does not emulate it") {
		t.Errorf("net-dvs: %v %q", r.err, r.stderr)
	}
	r = runSSH(c, "nosuchcommand")
	if r.err == nil || r.stderr != "sh: nosuchcommand: not found\n" {
		t.Errorf("missing command: %v %q; want busybox's not found", r.err, r.stderr)
	}
}

// A 5.5 host prints its NICs' PCI addresses with three digits of bus, as
// the real 5.5 transcript shows (0000:001:00.0).
func TestEsxcli55PCI(t *testing.T) {
	cfg, err := ParseConfig([]byte(`name: old
hosts:
  - name: esx55
    version: "5.5"
    vswitches:
      - {name: vSwitch0, uplinks: [vmnic0, vmnic1], portgroups: [{name: VM Network, vlan: 0}]}
`), "old.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckGoroutines(t)
	l, err := Start(context.Background(), cfg, Options{NoTraffic: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := dial(t, l, "esx55")
	nics, err := esxi.ParseNICList(strings.NewReader(mustRun(t, c, "esxcli network nic list")))
	if err != nil || len(nics) != 2 || nics[0].PCIDevice != "0000:003:00.0" || nics[1].PCIDevice != "0000:003:00.1" {
		t.Errorf("5.5 nic list: %+v %v", nics, err)
	}
}
