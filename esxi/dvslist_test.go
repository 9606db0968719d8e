package esxi

import (
	"reflect"
	"strings"
	"testing"
)

// Real transcripts of esxcli network vswitch dvs vmware list: 5.0 with the
// indentation lost in a blog's code box, a 6.x+ cswitch as printed, and a
// notes paste with a blank line after every line.
func TestParseDVSListTranscripts(t *testing.T) {
	free := func(ids ...string) []DVSPort {
		var out []DVSPort
		for _, id := range ids {
			out = append(out, DVSPort{PortgroupID: "dvportgroup-102", PortID: id})
		}
		return out
	}
	for _, c := range []struct {
		file string
		want []DVS
	}{
		{"esxcli/network-vswitch-dvs-vmware-list_virtuallyhyper-5.0.txt", []DVS{{
			Name: "test", VDSID: "8a fa 1a 50 90 33 85 47-be 84 61 e0 c4 4c e2 ff", UUID: "8afa1a50-9033-8547-be84-61e0c44ce2ff",
			Class: "etherswitch", NumPorts: 256, UsedPorts: 2, ConfiguredPorts: 256, MTU: 1500, CDPStatus: "listen", BeaconTimeout: -1,
			Uplinks: []string{"vmnic4"}, VMwareBranded: true,
			Ports: append([]DVSPort{{Client: "vmnic4", PortgroupID: "dvportgroup-102", InUse: true, PortID: "136"}}, free("137", "138", "139")...),
		}}},
		{"esxcli/network-vswitch-dvs-vmware-list_jp-blog-cswitch.txt", []DVS{{
			Name: "TEST", VDSID: "49 19 f7 9c cd ac 3a 6f-92 ab 12 53 31 b6 2e 97", UUID: "4919f79c-cdac-3a6f-92ab-125331b62e97",
			Class: "cswitch", NumPorts: 3200, UsedPorts: 16, ConfiguredPorts: 512, MTU: 1500, CDPStatus: "advertise", BeaconTimeout: -1,
			Uplinks: []string{"vmnic0"}, VMwareBranded: true,
			Ports: []DVSPort{{Client: "vmnic0", PortgroupID: "dvportgroup-2003", InUse: true, PortID: "8"}},
		}}},
		// 9.0: no uplinks, empty values followed by a space ("Uplinks: ", "DVPort: ", "Client: ")
		{"esxcli/network-vswitch-dvs-vmware-list_esxinitya-9.0.txt", []DVS{{
			Name: "VDS-Prod", VDSID: "50 33 8c 87 5f 05 cd 73-bc 4f 7c 4f 55 23 fc f8", UUID: "50338c87-5f05-cd73-bc4f-7c4f5523fcf8",
			Class: "cswitch", NumPorts: 1590, UsedPorts: 1, ConfiguredPorts: 512, MTU: 1500, CDPStatus: "listen", BeaconTimeout: -1,
			VMwareBranded: true,
			Ports:         []DVSPort{{PortgroupID: "dvportgroup-4024", PortID: "0"}, {PortgroupID: "dvportgroup-4024", PortID: "1"}},
		}}},
	} {
		got, err := ParseDVSList(strings.NewReader(fixture(t, c.file)))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
	}
	got, err := ParseDVSList(strings.NewReader(fixture(t, "esxcli/network-vswitch-dvs-vmware-list_onenote-paste.txt")))
	if err != nil || len(got) != 1 {
		t.Fatalf("notes paste: %v %+v", err, got)
	}
	d := got[0]
	var ids []string
	for _, p := range d.Ports {
		ids = append(ids, p.PortID)
	}
	if d.Name != "DSwitch" || d.UsedPorts != 6 || d.UUID != "5017d416-3dac-5490-c8d0-0a7a4f3cbd0e" || strings.Join(ids, ",") != "16,17,18,19,27" ||
		d.Ports[0].Client != "vmnic4" || !d.Ports[0].InUse || d.Ports[1].InUse {
		t.Errorf("notes paste: %+v", d)
	}
}

// Two switches, an unknown key kept, nothing printed, and what is refused,
// naming the line.
func TestParseDVSListShapes(t *testing.T) {
	two := "DSwitch-A\n   Name: DSwitch-A\n   VDS ID: 50 17 d4 16 3d ac 54 90-c8 d0 0a 7a 4f 3c bd 0e\n   Uplinks: vmnic2, vmnic3\n   Max MTU: 9000\n   DVPort:\n" +
		"         Client: vmnic2\n         DVPortgroup ID: dvportgroup-9\n         In Use: true\n         Port ID: 0\n\n" +
		"         Client: web01.eth0\n         DVPortgroup ID: dvportgroup-10\n         In Use: true\n         Port ID: 12\n\n" +
		"DSwitch-B\n   Name: DSwitch-B\n   Uplinks:\n   DVPort:\n[root@esx01:~] \n"
	got, err := ParseDVSList(strings.NewReader(two))
	if err != nil || len(got) != 2 || got[0].Extra["Max MTU"] != "9000" || !reflect.DeepEqual(got[0].Uplinks, []string{"vmnic2", "vmnic3"}) ||
		len(got[0].Ports) != 2 || got[0].Ports[1].Client != "web01.eth0" || got[1].Name != "DSwitch-B" || got[1].Uplinks != nil || len(got[1].Ports) != 0 {
		t.Errorf("two switches: %v %+v", err, got)
	}
	for _, empty := range []string{"", "[root@esx01:~] esxcli network vswitch dvs vmware list\n[root@esx01:~] \n"} {
		if got, err := ParseDVSList(strings.NewReader(empty)); err != nil || len(got) != 0 {
			t.Errorf("%q: %v %+v; want no switch and no error", empty, err, got)
		}
	}
	for _, c := range []struct{ in, err string }{
		{"   Name: x\n", `line 1: want the switch's name line before "Name: x"`},
		{"x\n   Name: y\n", `line 2: switch "x"'s Name is "y"`},
		{"x\n   MTU: big\n", "line 2:"},
		{"x\n   DVPort:\n      Client: a\n      Name: x\n", `line 4: "Name: x" in the DVPort list`},
		{"x\n   DVPort:\n      Client: a\n      In Use: maybe\n", "line 4:"},
		{"x\n   DVPort:\n      Client: a\n", "a DVPort without a Port ID"},
		{"x\n   VDS ID: zz\n", "line 2:"},
		{"x\n   MTU: 1500\n   MTU: 1500\n", `line 3: "MTU" repeats`},
	} {
		_, err := ParseDVSList(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v; want %q", c.in, err, c.err)
		}
	}
}

func FuzzParseDVSList(f *testing.F) {
	seedTranscripts(f, "esxcli")
	f.Fuzz(func(t *testing.T, in string) {
		dvs, err := ParseDVSList(strings.NewReader(in))
		checkParseErr(t, in, err)
		for _, d := range dvs {
			for _, p := range d.Ports {
				if p.PortID == "" {
					t.Fatalf("a port without an ID in %+v", d)
				}
			}
		}
	})
}
