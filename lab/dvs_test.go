package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
)

// A distributed switch's proxy switch forwards as a standard vSwitch does:
// the article's observation holds on configs/lab-dvs.yaml, and the port
// carries its DVPort key.
func TestDistributedSwitchPing(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-dvs.yaml")
	host, port, err := n.FindPort("dvsvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	// dvsvm1 on esx01 took DVPort 0; on an 8.0 host the proxy switch is the
	// second portset (0x06000000, after vSwitch0), its uplinks have the top
	// bit set and take the host-wide indexes after vSwitch0's uplink (6 and
	// its shadow 7) and vmk0 (8): 9 and 11
	if host != "esx02" || port.VSwitch != "DSwitch" || port.DVPortID != "1" || port.Portgroup != "dvPG-VLAN100" ||
		port.PortID != 0x06000013 || port.TeamUplink != "vmnic2" || port.UplinkPortID != 0x86000009 || port.VLAN != 100 {
		t.Fatalf("dvsvm2's port: %+v", port)
	}
	v3 := subscribe(t, n, "esx02", Selector{Point: UplinkRcv, Uplink: "vmnic3"}, isICMP)
	po := subscribe(t, n, "esx02", Selector{Point: PortOutput, PortID: port.PortID}, isICMP)
	rx := subscribe(t, n, "esx02", Selector{Point: VnicRx, PortID: port.PortID}, isICMP)
	res, err := n.Ping(context.Background(), "dvsvm1", "dvsvm2", 3, time.Millisecond)
	if err != nil || res.Received != 3 {
		t.Fatalf("ping: %+v %v", res, err)
	}
	if a, b, c := len(drain(v3)), len(drain(po)), len(drain(rx)); a != 3 || b != 6 || c != 3 {
		t.Errorf("vmnic3 rx %d, PortOutput %d, VnicRx %d; want 3, 6 (each request twice), 3", a, b, c)
	}
}

// Over SSH a member host lists the VM's port with the distributed switch,
// the distributed portgroup and the DVPort key; net-stats shows the proxy
// switch as DvsPortset-0; the standard vSwitch list leaves it out.
func TestDistributedSwitchOverSSH(t *testing.T) {
	l := startLab(t, "../configs/lab-dvs.yaml", Options{NoTraffic: true})
	c := dial(t, l, "esx02")
	run := func(cmd string) string { t.Helper(); return mustRun(t, c, cmd) }
	vms, err := esxi.ParseVMList(strings.NewReader(run("esxcli network vm list")))
	if err != nil || len(vms) != 2 || vms[0].Name != "dvsvm2" || strings.Join(vms[0].Networks, ",") != "dvPG-VLAN100" {
		t.Fatalf("network vm list: %+v %v", vms, err)
	}
	ports, err := esxi.ParseVMPortList(strings.NewReader(run(fmt.Sprintf("esxcli network vm port list -w %d", vms[0].WorldID))))
	if err != nil || len(ports) != 1 {
		t.Fatalf("port list: %+v %v", ports, err)
	}
	if p := ports[0]; p.VSwitch != "DSwitch" || p.Portgroup != "dvPG-VLAN100" || p.DVPortID != "1" || p.TeamUplink != "vmnic2" || p.UplinkPortID != 0x86000009 {
		t.Errorf("port: %+v", p)
	}
	if out := run(fmt.Sprintf("vsish -e cat /net/portsets/DvsPortset-0/ports/%d/teamUplink", ports[0].PortID)); out != "vmnic2\n" {
		t.Errorf("vsish teamUplink on the proxy switch: %q", out)
	}
	vss, err := esxi.ParseVSwitchList(strings.NewReader(run("esxcli network vswitch standard list")))
	if err != nil || len(vss) != 1 || vss[0].Name != "vSwitch0" {
		t.Errorf("standard vSwitches: %+v %v; want vSwitch0 alone", vss, err)
	}
	ns, err := esxi.ParseNetStatsPorts(strings.NewReader(run("net-stats -l")))
	if err != nil {
		t.Fatal(err)
	}
	var dvs []string
	for _, p := range ns {
		if p.SwitchName == "DvsPortset-0" {
			dvs = append(dvs, fmt.Sprintf("%d %s", p.PortNum, p.ClientName))
		}
	}
	// The host's view of the distributed switch: its uplinks and the DVPorts
	// it holds (uplink ports, then the VMs'), in the 8.0 layout.
	out := run("esxcli network vswitch dvs vmware list")
	dl, err := esxi.ParseDVSList(strings.NewReader(out))
	if err != nil || len(dl) != 1 {
		t.Fatalf("dvs vmware list: %+v %v\n%s", dl, err, out)
	}
	d := dl[0]
	var dp []string
	for _, p := range d.Ports {
		dp = append(dp, fmt.Sprintf("%s=%s/%s/%v", p.PortID, p.Client, p.PortgroupID, p.InUse))
	}
	if d.Name != "DSwitch" || d.Class != "cswitch" || strings.Join(d.Uplinks, ",") != "vmnic3,vmnic2" || d.UsedPorts != 1+2*2+2 ||
		strings.Join(dp, " ") != "1100=vmnic2/dvportgroup-10/true 1101=vmnic3/dvportgroup-10/true 1=dvsvm2.eth0/dvportgroup-11/true 2=dvsmon.eth0/dvportgroup-12/true" ||
		!strings.Contains(out, "   DVPort:\n") {
		t.Errorf("dvs vmware list: %+v, ports %q\n%s", d, dp, out)
	}
	if e := run("esxcli network vswitch dvs vmware list -v Other; echo rc=$?"); !strings.Contains(e, "rc=1") {
		t.Errorf("dvs list of an unknown switch: %q; want exit 1", e)
	}
	want := fmt.Sprintf("2248146953 vmnic2,2248146955 vmnic3,%d dvsvm2.eth0,%d dvsmon.eth0", ports[0].PortID, ports[0].PortID+1)
	if strings.Join(dvs, ",") != want {
		t.Errorf("DvsPortset-0 in net-stats -l: %q; want %q", dvs, want)
	}
}

func TestDistributedConfigErrors(t *testing.T) {
	head := "hosts:\n  - name: esx01\ndistributedSwitches:\n  - name: DS\n"
	cases := []struct {
		yaml string
		want string
	}{
		{head + "    hosts:\n      - {host: esx09, nics: [vmnic2]}\n", `x.yaml:6: unknown or repeated member host "esx09"`},
		{head + "    uplinks: [U1]\n    hosts:\n      - {host: esx01, nics: [vmnic2, vmnic3]}\n", "x.yaml:7: 2 NICs for 1 uplinks (U1)"},
		{head + "    teaming: {active: [Uplink 3]}\n    hosts:\n      - {host: esx01, nics: [vmnic2]}\n", "Uplink 3 is not an uplink of the switch (Uplink 1)"},
		{head + "    portgroups:\n      - {name: pg, vlan: 5000}\n", "x.yaml:6: VLAN 5000 out of range"},
		{"hosts:\n  - name: esx01\n    vswitches:\n      - {name: vSwitch1, uplinks: [vmnic2]}\n" +
			"distributedSwitches:\n  - name: DS\n    hosts:\n      - {host: esx01, nics: [vmnic2]}\n", "uplink vmnic2 is already used by another vSwitch"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q): got %v; want error containing %q", c.yaml, err, c.want)
		}
	}
}

// One session at two points (7.0+: --capture PortOutput,VnicRx) has one
// capture ring: its frames come out in the order they were captured, the
// sequence numbers following the timestamps.
func TestMultiPointSessionInTimeOrder(t *testing.T) {
	l := startLab(t, "../configs/lab-dvs.yaml", Options{NoTraffic: true})
	c := dial(t, l, "esx02")
	_, port, _ := l.Net.FindPort("dvsvm2", 0)
	stop := keepPinging(t, l.Net, "dvsvm1", "dvsvm2", 20*time.Millisecond)
	defer stop()
	r := runSSH(c, fmt.Sprintf("pktcap-uw --switchport %d --capture PortOutput,VnicRx --proto 0x01 -c 12", port.PortID))
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.stderr)
	}
	recs, err := pktcap.ReadConsole(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	var last time.Duration
	points := map[string]int{}
	n := 0
	for _, rec := range recs {
		f, ok := rec.(*pktcap.ConsoleFrame)
		if !ok {
			continue
		}
		n++
		points[f.Point]++
		if f.TimeOfDay < last || f.Seq != n {
			t.Errorf("frame [%d] at %v after %v: out of order\n%s", f.Seq, f.TimeOfDay, last, r.stdout)
			break
		}
		last = f.TimeOfDay
	}
	// each request: twice at PortOutput, once at VnicRx (the capture may
	// start inside one request's burst)
	if n != 12 || points["PortOutput"] < 7 || points["VnicRx"] < 3 {
		t.Errorf("%d frames, per point %v; want 12, about 8 at PortOutput and 4 at VnicRx", n, points)
	}
}

// A 9.0 member host prints its distributed switch in the 9.0 layout
// ("DVPort: ", as the real 9.0 transcript), with the switch's uplinks and
// DVPorts; 5.5 prints the 5.x class and configured ports.
func TestDVSListByVersion(t *testing.T) {
	for _, c := range []struct{ version, dvport, class string }{
		{"9.0", "   DVPort: \n", "   Class: cswitch\n"},
		{"5.5", "   DVPort:\n", "   Class: etherswitch\n"},
	} {
		cfg := loadTestConfig(t, "../configs/lab-dvs.yaml")
		for i := range cfg.Hosts {
			cfg.Hosts[i].Version = c.version
		}
		l, err := Start(context.Background(), cfg, Options{NoTraffic: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		out := mustRun(t, dial(t, l, "esx02"), "esxcli network vswitch dvs vmware list")
		if !strings.Contains(out, c.dvport) || !strings.Contains(out, c.class) || !strings.Contains(out, "   Uplinks: vmnic3, vmnic2\n") {
			t.Errorf("%s: dvs vmware list:\n%s", c.version, out)
		}
		if dl, err := esxi.ParseDVSList(strings.NewReader(out)); err != nil || len(dl) != 1 || len(dl[0].Ports) != 4 {
			t.Errorf("%s: parsed %+v %v", c.version, dl, err)
		}
	}
}
