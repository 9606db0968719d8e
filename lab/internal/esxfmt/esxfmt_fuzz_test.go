package esxfmt_test

// Writer -> parser round trips on fuzzed values: whatever the lab writes
// with a representable value, capturectl's parser must read back unchanged.

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab/internal/esxfmt"
)

// clean reports whether s can be a value in esxcli's text at all: valid
// UTF-8, no control characters, no space other than U+0020, and no space at
// either end (the parsers trim, as the text cannot show it).
func clean(s string) bool {
	if !utf8.ValidString(s) || s != strings.TrimSpace(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
			return false
		}
	}
	return true
}

// items splits a fuzzed string into list items at '|'; ok is false when an
// item could not survive esxcli's ", " joining.
func items(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	parts := strings.Split(s, "|")
	for _, p := range parts {
		if p == "" || !clean(p) || strings.Contains(p, ", ") {
			return nil, false
		}
	}
	return parts, true
}

// promptish reports whether a first table column would read as a shell
// prompt or echoed command (the parsers end a table there; a documented
// limit).
func promptish(s string) bool {
	for _, p := range []string{"[", "~", "#", "$", "esxcli", "localcli", "net-stats", "/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.Contains(s, "@")
}

func allClean(ss ...string) bool {
	for _, s := range ss {
		if !clean(s) {
			return false
		}
	}
	return true
}

func FuzzVMListRoundTrip(f *testing.F) {
	f.Add(uint64(2203241), "Win_Nor", uint16(2), "Security_Lab_Site1_Inside|VM Network", uint64(12), "my  web server", uint16(0), "", false)
	f.Add(uint64(1), "a", uint16(6), "VLAN 7|x, y", uint64(99999999), "VCSA", uint16(1), "VM Network", true)
	f.Add(uint64(193287), "wzh-centos-25.155", uint16(1), "VM Network", uint64(127634), "DPMP3.0", uint16(2), "VM Network|VM Network", false)
	f.Fuzz(func(t *testing.T, w1 uint64, n1 string, p1 uint16, nets1 string, w2 uint64, n2 string, p2 uint16, nets2 string, short bool) {
		l1, ok1 := items(nets1)
		l2, ok2 := items(nets2)
		if !ok1 || !ok2 || !allClean(n1, n2) {
			return // not an input the writer accepts
		}
		in := []esxfmt.VM{{w1, n1, int(p1), l1}, {w2, n2, int(p2), l2}}
		var buf bytes.Buffer
		// the padded last column goes with the full-width dashes, as in the
		// one transcript that shows it (for half of the inputs)
		if err := esxfmt.WriteVMList(&buf, esxfmt.Layout{ShortLastDashes: short, PadLast: !short && w1%2 == 1}, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseVMList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if want := []esxi.VM{{WorldID: w1, Name: n1, NumPorts: int(p1), Networks: l1}, {WorldID: w2, Name: n2, NumPorts: int(p2), Networks: l2}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v; want %+v", got, want)
		}
	})
}

func FuzzVMPortListRoundTrip(f *testing.F) {
	f.Add(uint32(33554578), "vSwitch0", "Security_Lab_Site1_Outside", "", "00:0c:29:47:03:dc", "0.0.0.0", "vmnic0", uint32(33554434), "", uint32(1), "void")
	f.Fuzz(func(t *testing.T, id uint32, vs, pg, dv, mac, ip, team string, upl uint32, filters string, id2 uint32, team2 string) {
		if !allClean(vs, pg, dv, mac, ip, team, filters, team2) {
			return // not an input the writer accepts
		}
		in := []esxfmt.VMPort{{id, vs, pg, dv, mac, ip, team, upl, filters}, {PortID: id2, TeamUplink: team2}}
		var buf bytes.Buffer
		if err := esxfmt.WriteVMPortList(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseVMPortList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(ports(got), in) {
			t.Fatalf("got %+v; want %+v", ports(got), in)
		}
	})
}

func FuzzVSwitchListRoundTrip(f *testing.F) {
	f.Add("vSwitch0", "cswitch", 4736, 4, 128, 1500, "listen", false, 1, 3, "", "vmnic3|vmnic2", "Server Network", "storage")
	f.Fuzz(func(t *testing.T, name, class string, np, up, cp, mtu int, cdp string, be bool, bi, bt int, req, upl, pgs, name2 string) {
		r, ok1 := items(req)
		u, ok2 := items(upl)
		p, ok3 := items(pgs)
		if !ok1 || !ok2 || !ok3 || !allClean(name, class, cdp, name2) || name == "" || name2 == "" {
			return // not an input the writer accepts
		}
		in := []esxfmt.VSwitch{{name, class, np, up, cp, mtu, cdp, be, bi, bt, r, u, p}, {Name: name2}}
		var buf bytes.Buffer
		if err := esxfmt.WriteVSwitchList(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseVSwitchList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(vswitches(got), in) {
			t.Fatalf("got %+v; want %+v", vswitches(got), in)
		}
	})
}

func FuzzFailoverPolicyRoundTrip(f *testing.F) {
	f.Add("srcport", "link", true, true, "vmnic1", "", "", false, uint8(0))
	f.Add("explicit", "beacon", false, true, "vmnic2", "vmnic3|vmnic4", "vmnic5", true, uint8(0x15))
	f.Fuzz(func(t *testing.T, lb, nfd string, notify, failback bool, act, stb, unu string, pg bool, ov uint8) {
		a, ok1 := items(act)
		s, ok2 := items(stb)
		u, ok3 := items(unu)
		if !ok1 || !ok2 || !ok3 || !allClean(lb, nfd) {
			return // not an input the writer accepts
		}
		in := esxfmt.FailoverPolicy{lb, nfd, notify, failback, a, s, u, nil}
		if pg {
			in.Overrides = &esxfmt.FailoverOverrides{ov&1 != 0, ov&2 != 0, ov&4 != 0, ov&8 != 0, ov&16 != 0}
		}
		var buf bytes.Buffer
		if err := esxfmt.WriteFailoverPolicy(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseFailoverPolicy(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if g := policy(got); !reflect.DeepEqual(g, in) {
			t.Fatalf("got %+v; want %+v", g, in)
		}
	})
}

func FuzzPortgroupListRoundTrip(f *testing.F) {
	f.Add("Management Network (1)", "vSwitch0", 1, 28, "VM Network", "storage", 14, 4095, false)
	f.Fuzz(func(t *testing.T, n1, v1 string, c1, vl1 int, n2, v2 string, c2, vl2 int, short bool) {
		if !allClean(n1, v1, n2, v2) || n1 == "" || n2 == "" || promptish(n1) || promptish(n2) {
			return // not an input the writer accepts
		}
		in := []esxfmt.Portgroup{{n1, v1, c1, vl1}, {n2, v2, c2, vl2}}
		var buf bytes.Buffer
		if err := esxfmt.WritePortgroupList(&buf, esxfmt.Layout{ShortLastDashes: short}, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParsePortgroupList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(portgroups(got), in) {
			t.Fatalf("got %+v; want %+v", portgroups(got), in)
		}
	})
}

func FuzzNICListRoundTrip(f *testing.F) {
	f.Add("vmnic0", "0000:02:00.0", "ntg3", "Up", "Up", 1000, "Full", "20:67:7c:d9:a1:6c", 1500, "Broadcom Corporation NetXtreme BCM5719 Gigabit Ethernet", "vusb0", uint8(0))
	f.Add("vmnic0", "0000:04:00.0", "tg3", "Up", "Up", 1000, "Full", "80:4a:14:63:b0:73", 1500, "Broadcom Corporation NetXtreme BCM57766 Gigabit Ethernet", "vmnic1", uint8(4))
	f.Add("vmnic0", "0000:04:00.0", "tg3", "Up", "Up", 100000, "Full", "", 9, "", "vmnic1", uint8(12))
	f.Fuzz(func(t *testing.T, name, pci, drv, admin, link string, speed int, duplex, mac string, mtu int, desc, name2 string, layout uint8) {
		if !allClean(name, pci, drv, admin, link, duplex, mac, desc, name2) || name == "" || name2 == "" || promptish(name) || promptish(name2) {
			return // not an input the writer accepts
		}
		l := esxfmt.Layout{ShortLastDashes: layout&1 != 0, OldNICColumns: layout&2 != 0, Localcli: layout&4 != 0, PadLast: layout&8 != 0}
		in := []esxfmt.NIC{{name, pci, drv, admin, link, speed, duplex, mac, mtu, desc}, {Name: name2}}
		var buf bytes.Buffer
		if err := esxfmt.WriteNICList(&buf, l, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseNICList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if l.OldNICColumns {
			in[0].AdminStatus = "" // not printed in the 5.5 layout
		}
		if !reflect.DeepEqual(nics(got), in) {
			t.Fatalf("got %+v; want %+v\n%s", nics(got), in, buf.String())
		}
	})
}

func FuzzVMProcessListRoundTrip(f *testing.F) {
	f.Add("gns3_vm", uint64(4455345), uint64(0), uint64(4455344), "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10", "/vmfs/volumes/x/gns3_vm/gns3_vm.vmx", "VMware vCenter Server: test")
	f.Fuzz(func(t *testing.T, name string, wid, pid, cid uint64, uuid, cfg, name2 string) {
		if !allClean(name, uuid, cfg, name2) || name == "" || name2 == "" {
			return // not an input the writer accepts
		}
		in := []esxfmt.VMProcess{{name, wid, pid, cid, uuid, cfg}, {DisplayName: name2, WorldID: wid + 1}}
		var buf bytes.Buffer
		if err := esxfmt.WriteVMProcessList(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseVMProcessList(&buf)
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(procs(got), in) {
			t.Fatalf("got %+v; want %+v", procs(got), in)
		}
	})
}

func FuzzNetStatsRoundTrip(f *testing.F) {
	f.Add(uint32(2214592518), uint8(4), uint8(0), "DvsPortset-0", []byte{0, 0x50, 0x56, 1, 0x10, 1}, "vmnic0")
	f.Add(uint32(100663359), uint8(5), uint8(9), "vSwitch0", []byte{0, 0x50, 0x56, 0xbe, 0x4d, 0x12}, "NSX Manager.eth0")
	f.Fuzz(func(t *testing.T, port uint32, typ, sub uint8, sw string, macb []byte, client string) {
		if len(macb) != 6 || sw == "" || strings.ContainsFunc(sw, unicode.IsSpace) || !allClean(sw, client) {
			return // not an input the writer accepts
		}
		mac := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", macb[0], macb[1], macb[2], macb[3], macb[4], macb[5])
		in := []esxfmt.NetStatsPort{{port, int(typ), int(sub), sw, mac, client}}
		var buf bytes.Buffer
		if err := esxfmt.WriteNetStatsPorts(&buf, in); err != nil {
			t.Fatal(err)
		}
		got, err := esxi.ParseNetStatsPorts(&buf)
		if err != nil {
			t.Fatalf("%v\n%q", err, buf.String())
		}
		if !reflect.DeepEqual(netStats(got), in) {
			t.Fatalf("got %+v; want %+v\n%q", netStats(got), in, buf.String())
		}
	})
}
