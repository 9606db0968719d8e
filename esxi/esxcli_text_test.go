package esxi

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const transcripts = "../testdata/transcripts"

// fixture returns a transcript without its "# source:" provenance line: the
// echoed command (with or without a prompt) followed by the output.
func fixture(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(transcripts, rel))
	if err != nil {
		t.Fatal(err)
	}
	first, rest, ok := strings.Cut(string(b), "\n")
	if !ok || !strings.HasPrefix(first, "# source: ") {
		t.Fatalf("%s: first line must be the '# source:' provenance line, got %q", rel, first)
	}
	return rest
}

// checkEach compares got and want item by item so that a failure names the
// item and shows both values with field names.
func checkEach[T any](t *testing.T, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d items; want %d\ngot:  %+v\nwant: %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("item %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestParseVMListTranscripts(t *testing.T) {
	tests := []struct {
		file string
		want []VM
	}{
		{"esxcli/network-vm-list_rayd62.txt", []VM{
			{2203241, "Win_Nor", 2, []string{"Security_Lab_Site1_Inside", "VM Network"}},
			{2099871, "MediaSrv-Debian11", 1, []string{"VM Network"}},
			{2119668, "FMC_Lab", 1, []string{"VM Network"}},
			{2119833, "FTD_Lab", 6, []string{"Security_Lab_Site1_VPN", "Security_Lab_Site1_DMZ", "Security_Lab_Site1_Inside", "Security_Lab_Site1_Outside", "Security_Lab_Site1_Inside", "VM Network"}},
			{2121270, "vyos_CPE_GW", 3, []string{"Site2_to_PCE", "Site1_to_CPE", "VM Network"}},
			{2124597, "Lab_ISE3", 2, []string{"Security_Lab_Site1_DMZ", "VM Network"}},
			{2127622, "Lab_Linux", 2, []string{"VM Network", "Security_Lab_Site1_DMZ"}},
			{2148996, "Lab_Kali", 2, []string{"Security_Lab_Site1_Outside", "VM Network"}},
			{2173290, "VCSA", 1, []string{"VM Network"}},
			{2178744, "Site1_GW", 2, []string{"Security_Lab_Site1_Outside", "Site1_to_CPE"}},
			{2199940, "ros", 1, []string{"VM Network"}},
		}},
		{"esxcli/network-vm-list_cactus-6.7.txt", []VM{
			{4455488, "ubuntu_gns3", 1, []string{"Server Network"}},
			{4455345, "gns3_vm", 2, []string{"Server Network", "Server Network"}},
		}},
		// the "# " prompt of notes, the last column padded with spaces
		{"esxcli/network-vm-list_notes-6.x.txt", []VM{
			{193286, "wzh-centos-25.155", 1, []string{"VM Network"}},
			{221168, "wzh-DPMP-3.0-25.157", 1, []string{"VM Network"}},
			{184549, "windows-25.158", 1, []string{"VM Network"}},
			{127634, "DPMP3.0", 2, []string{"VM Network", "VM Network"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseVMList(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, tt.want)
		})
	}
}

func TestParseVMListLenient(t *testing.T) {
	want := []VM{
		{4455488, "my  web server", 1, []string{"Server Network"}},
		{12, "db 2", 0, nil},
	}
	tests := []struct{ name, in string }{
		{"crlf and trailing padding", "World ID  Name            Num Ports  Networks      \r\n" +
			"--------  --------------  ---------  --------------\r\n" +
			" 4455488  my  web server          1  Server Network\r\n" +
			"      12  db 2                    0                \r\n"},
		{"prompts around, blank line after", "[root@esx01:~] esxcli network vm list\n" +
			"World ID  Name            Num Ports  Networks\n" +
			"--------  --------------  ---------  --------------\n" +
			" 4455488  my  web server          1  Server Network\n" +
			"      12  db 2                    0\n\n[root@esx01:~] \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVMList(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, want)
		})
	}

	// A copy whose columns no longer line up (spaces collapsed): the row is
	// anchored on the Num Ports field whose count matches the networks.
	in := "World ID  Name  Num Ports  Networks\n--------  ----  ---------  --------\n" +
		"2203241 Lab 7 VM 2 VLAN 7, VM Network\n"
	got, err := ParseVMList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []VM{{2203241, "Lab 7 VM", 2, []string{"VLAN 7", "VM Network"}}})
}

func TestParseVMPortListTranscript(t *testing.T) {
	got, err := ParseVMPortList(strings.NewReader(fixture(t, "esxcli/network-vm-port-list_rayd62.txt")))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []VMPort{
		{PortID: 33554578, VSwitch: "vSwitch0", Portgroup: "Security_Lab_Site1_Outside", MAC: "00:0c:29:47:03:dc", IP: "0.0.0.0", TeamUplink: "vmnic0", UplinkPortID: 33554434},
		{PortID: 33554579, VSwitch: "vSwitch0", Portgroup: "Site1_to_CPE", MAC: "00:0c:29:47:03:d2", IP: "0.0.0.0", TeamUplink: "vmnic0", UplinkPortID: 33554434},
	})
}

func TestParseVMPortListNotes6x(t *testing.T) {
	got, err := ParseVMPortList(strings.NewReader(fixture(t, "esxcli/network-vm-port-list_notes-6.x.txt")))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []VMPort{
		{PortID: 33554458, VSwitch: "vSwitch0", Portgroup: "VM Network", MAC: "00:50:56:ac:e2:16", IP: "0.0.0.0", TeamUplink: "vmnic0", UplinkPortID: 33554436},
	})
}

func TestParseVMPortListVoidAndExtra(t *testing.T) {
	// Layout of a port without an uplink as reported in a published test
	// fixture (reference notes section 7); blocks split by a repeated key
	// when the blank line is missing; an unknown key kept.
	in := "   Port ID: 33554438\r\n   vSwitch: vSwitch1\r\n   Portgroup: PG-CS\r\n   DVPort ID: \r\n" +
		"   MAC Address: 00:50:56:00:00:01\r\n   IP Address: 0.0.0.0\r\n   Team Uplink: void\r\n" +
		"   Uplink Port ID: 0\r\n   Active Filters: \r\n   Port ID: 33554439\r\n   Team Uplink: vmnic2\r\n" +
		"   DVPort ID: 17\r\n   Future Key: x: y\r\n"
	got, err := ParseVMPortList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []VMPort{
		{PortID: 33554438, VSwitch: "vSwitch1", Portgroup: "PG-CS", MAC: "00:50:56:00:00:01", IP: "0.0.0.0", TeamUplinkVoid: true},
		{PortID: 33554439, TeamUplink: "vmnic2", DVPortID: "17", Extra: map[string]string{"Future Key": "x: y"}},
	})
	if got, err := ParseVMPortList(strings.NewReader("[root@esx01:~] esxcli network vm port list -w 1\n")); err != nil || len(got) != 0 {
		t.Errorf("no ports: got %v, %v; want empty, nil", got, err)
	}
}

func TestParseVSwitchListTranscripts(t *testing.T) {
	std := func(name, class string, numPorts, used, configured, mtu int, uplinks, pgs []string) VSwitch {
		return VSwitch{Name: name, Class: class, NumPorts: numPorts, UsedPorts: used, ConfiguredPorts: configured, MTU: mtu,
			CDPStatus: "listen", BeaconInterval: 1, BeaconThreshold: 3, Uplinks: uplinks, Portgroups: pgs}
	}
	tests := []struct {
		file string
		want []VSwitch
	}{
		{"esxcli/network-vswitch-standard-list_cactus-6.7.txt", []VSwitch{
			std("vSwitch0", "cswitch", 4736, 4, 128, 1500, []string{"vmnic0"}, []string{"Management VMkernel"}),
			std("vSwitch1", "cswitch", 4736, 10, 1024, 1500, []string{"vmnic3", "vmnic2", "vmnic1"}, []string{"Server Network"}),
		}},
		{"esxcli/network-vswitch-standard-list_etherswitch-6.7.txt", []VSwitch{
			std("vSwitch0", "etherswitch", 4352, 10, 128, 1500, []string{"vmnic0"}, []string{"VM Network", "synology-iscsi", "Management Network"}),
		}},
		{"esxcli/network-vswitch-standard-list_more-poodle.txt", []VSwitch{
			std("vSwitch0", "cswitch", 6400, 4, 128, 1500, []string{"vmnic0"}, []string{"VM Network", "eno1"}),
		}},
		{"esxcli/network-vswitch-standard-list_hp-elatov.txt", []VSwitch{
			std("vSwitch0", "cswitch", 2816, 5, 128, 1500, []string{"vmnic0"}, []string{"VM_VLAN1", "VM Network", "VM_VLAN3", "Management Network"}),
			std("storage", "cswitch", 2816, 4, 1024, 9000, []string{"vmnic32"}, []string{"nfs-for-vm", "iscsi"}),
		}},
		// 7.0.3 build-24784741: Num Ports 2560, Used Ports 17 on a switch with 13 two-vNIC VMs
		{"esxcli/network-vswitch-standard-list_homer-7.0.3.txt", []VSwitch{
			std("vSwitch0", "cswitch", 2560, 17, 128, 1500, []string{"vmnic0"}, []string{"VM Network", "Management Network"}),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseVSwitchList(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, tt.want)
		})
	}
}

func TestParseFailoverPolicy(t *testing.T) {
	got, err := ParseFailoverPolicy(strings.NewReader(fixture(t, "esxcli/network-vswitch-standard-policy-failover-get_reprint.txt")))
	if err != nil {
		t.Fatal(err)
	}
	want := FailoverPolicy{LoadBalancing: "srcport", NetworkFailureDetection: "link", NotifySwitches: true, Failback: true, ActiveAdapters: []string{"vmnic1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reprint:\ngot  %+v\nwant %+v", got, want)
	}

	// Port group variant. Assumed layout (no verbatim copy was found): the
	// vSwitch keys, then one "Override Vswitch ..." flag per policy part.
	pg := "[root@esx01:~] esxcli network vswitch standard portgroup policy failover get -p 'VM Network'\n" +
		"   Load Balancing: explicit\n   Network Failure Detection: beacon\n   Notify Switches: false\n" +
		"   Failback: false\n   Active Adapters: vmnic2\n   Standby Adapters: vmnic3, vmnic4\n   Unused Adapters: \n" +
		"   Override Vswitch Load Balancing: true\n   Override Vswitch Network Failure Detection: false\n" +
		"   Override Vswitch Notify Switches: false\n   Override Vswitch Failback: true\n   Override Vswitch Uplinks: true\n"
	got, err = ParseFailoverPolicy(strings.NewReader(pg))
	if err != nil {
		t.Fatal(err)
	}
	want = FailoverPolicy{LoadBalancing: "explicit", NetworkFailureDetection: "beacon",
		ActiveAdapters: []string{"vmnic2"}, StandbyAdapters: []string{"vmnic3", "vmnic4"},
		Overrides: &FailoverOverrides{LoadBalancing: true, Failback: true, Uplinks: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("portgroup:\ngot  %+v %+v\nwant %+v %+v", got, got.Overrides, want, want.Overrides)
	}
}

func TestTeamingPolicyName(t *testing.T) {
	for in, want := range map[string]string{"srcport": "loadbalance_srcid", "srcmac": "loadbalance_srcmac", "iphash": "loadbalance_ip", "explicit": "failover_explicit", "lbt": ""} {
		if got, ok := TeamingPolicyName(in); got != want || ok != (want != "") {
			t.Errorf("TeamingPolicyName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestParsePortgroupListTranscripts(t *testing.T) {
	tests := []struct {
		file string
		want []Portgroup
	}{
		{"esxcli/network-vswitch-standard-portgroup-list_cactus-6.7.txt", []Portgroup{
			{"Management VMkernel", "vSwitch0", 1, 0}, {"Server Network", "vSwitch1", 3, 0},
		}},
		{"esxcli/network-vswitch-standard-portgroup-list_more-poodle.txt", []Portgroup{
			{"VM Network", "vSwitch0", 0, 0}, {"eno1", "vSwitch0", 1, 0},
		}},
		{"esxcli/network-vswitch-standard-portgroup-list_hp-elatov.txt", []Portgroup{
			{"Management Network", "vSwitch0", 1, 0}, {"VM Network", "vSwitch0", 0, 0}, {"VM_VLAN1", "vSwitch0", 0, 0},
			{"VM_VLAN3", "vSwitch0", 1, 3}, {"iscsi", "storage", 1, 0}, {"nfs-for-vm", "storage", 0, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParsePortgroupList(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, tt.want)
		})
	}
}

func TestParseNICListTranscripts(t *testing.T) {
	nic := func(name, pci, drv, admin, link string, speed int, duplex, mac string, mtu int, desc string) NIC {
		return NIC{name, pci, drv, admin, link, speed, duplex, mac, mtu, desc, nil}
	}
	const bcm5719 = "Broadcom Corporation NetXtreme BCM5719 Gigabit Ethernet"
	const bcm5709 = "QLogic Corporation QLogic NetXtreme II BCM5709 1000Base-T"
	const x540 = "Intel(R) Ethernet Controller X540-AT2"
	tests := []struct {
		file string
		want []NIC
	}{
		{"esxcli/network-nic-list_r8125-6.7.txt", []NIC{
			nic("vmnic0", "0000:02:00.0", "r8125", "Up", "Up", 1000, "Full", "18:c0:4d:8c:7f:34", 1500, "Realtek Semiconductor Co., Ltd. <class> Ethernet controller"),
			nic("vusb0", "Pseudo", "uether", "Up", "Down", 0, "Half", "00:e0:4c:68:00:84", 1500, "Realtek USB 101001G2.5G LAN"),
		}},
		{"esxcli/network-nic-list_bnx2-6.7.txt", []NIC{
			nic("vmnic0", "0000:01:00.0", "bnx2", "Up", "Up", 100, "Full", "84:8f:69:e3:e3:98", 1500, bcm5709),
			nic("vmnic1", "0000:01:00.1", "bnx2", "Up", "Down", 0, "Half", "84:8f:69:e3:e3:9a", 1500, bcm5709),
			nic("vmnic2", "0000:02:00.0", "bnx2", "Up", "Down", 0, "Half", "84:8f:69:e3:e3:9c", 1500, bcm5709),
			nic("vmnic3", "0000:02:00.1", "bnx2", "Up", "Down", 0, "Half", "84:8f:69:e3:e3:9e", 1500, bcm5709),
		}},
		{"esxcli/network-nic-list_cactus-6.7.txt", []NIC{
			nic("vmnic0", "0000:02:00.0", "ntg3", "Up", "Up", 1000, "Full", "20:67:7c:d9:a1:6c", 1500, bcm5719),
			nic("vmnic1", "0000:02:00.1", "ntg3", "Up", "Up", 1000, "Full", "20:67:7c:d9:a1:6d", 1500, bcm5719),
			nic("vmnic2", "0000:02:00.2", "ntg3", "Up", "Down", 0, "Half", "20:67:7c:d9:a1:6e", 1500, bcm5719),
			nic("vmnic3", "0000:02:00.3", "ntg3", "Up", "Down", 0, "Half", "20:67:7c:d9:a1:6f", 1500, bcm5719),
		}},
		{"esxcli/network-nic-list_more-poodle.txt", []NIC{
			nic("vmnic0", "0000:03:00.0", "ixgben", "Up", "Up", 10000, "Full", "a4:bf:01:4e:37:14", 1500, x540),
			nic("vmnic1", "0000:03:00.1", "ixgben", "Up", "Down", 0, "Half", "a4:bf:01:4e:37:15", 1500, x540),
		}},
		// localcli: one unbroken row of dashes, the columns where the
		// header's names start
		{"esxcli/localcli-network-nic-list_fcy-mac01-6.7.txt", []NIC{
			nic("vmnic0", "0000:04:00.0", "tg3", "Up", "Up", 1000, "Full", "80:4a:14:63:b0:73", 1500, "Broadcom Corporation NetXtreme BCM57766 Gigabit Ethernet"),
		}},
		// 7.0.3 build-24784741; the source redacted the MACs
		{"esxcli/network-nic-list_homer-7.0.3.txt", []NIC{
			nic("vmnic0", "0000:00:1f.6", "ne1000", "Up", "Up", 1000, "Full", "XX:XX:XX:XX:XX:XX", 1500, "Intel Corporation Ethernet Connection (7) I219-LM"),
			nic("vmnic1", "0000:01:00.0", "igc-community", "Up", "Up", 2500, "Full", "XX:XX:XX:XX:XX:XX", 1500, "Intel Corporation Ethernet Controller I226-V"),
		}},
		{"esxcli/network-nic-list_tg3-5.5.txt", []NIC{
			nic("vmnic0", "0000:001:00.0", "tg3", "", "Up", 1000, "Full", "68:5b:35:c9:96:10", 1500, "Broadcom Corporation NetXtreme BCM57766 Gigabit Ethernet"),
			nic("vmnic1", "0000:009:00.0", "tg3", "", "Up", 1000, "Full", "68:5b:35:91:47:85", 1500, "Broadcom Corporation NetXtreme BCM57762 Gigabit Ethernet PCIe"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseNICList(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, tt.want)
		})
	}
}

func TestParseNICListExtraColumnAndEmpty(t *testing.T) {
	// The empty table of a 7.x host (header and dashes, no rows), and an
	// unknown column kept in Extra.
	empty := "Name  PCI Device  Driver  Admin Status  Link Status  Speed  Duplex  MAC Address  MTU  Description\n" +
		"----  ----------  ------  ------------  -----------  -----  ------  -----------  ---  -----------\n"
	got, err := ParseNICList(strings.NewReader(empty))
	if err != nil || len(got) != 0 {
		t.Errorf("empty table: got %v, %v; want no NICs, nil", got, err)
	}
	in := "Name    Link Status  Speed  MAC Address        Future\n" +
		"------  -----------  -----  -----------------  ------\n" +
		"vmnic0  Up            1000  00:50:56:01:10:01  x y\n"
	got, err = ParseNICList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []NIC{{Name: "vmnic0", LinkStatus: "Up", Speed: 1000, MAC: "00:50:56:01:10:01", Extra: map[string]string{"Future": "x y"}}})
}

func TestParseVMProcessListTranscripts(t *testing.T) {
	tests := []struct {
		file string
		want []VMProcess
	}{
		{"esxcli/vm-process-list_cactus-6.7.txt", []VMProcess{
			{DisplayName: "gns3_vm", WorldID: 4455345, ProcessID: 0, VMXCartelID: 4455344, UUID: "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10",
				ConfigFile: "/vmfs/volumes/5bc7459f-967eeb48-b3f7-20677cd9a16c/gns3_vm/gns3_vm.vmx"},
			{DisplayName: "ubuntu_gns3", WorldID: 4455488, ProcessID: 0, VMXCartelID: 4455487, UUID: "56 4d 0c 5a 5c 01 56 36-6d 3b b6 0a 0a e0 46 fe",
				ConfigFile: "/vmfs/volumes/5bc7459f-967eeb48-b3f7-20677cd9a16c/ubuntu_gns3/ubuntu_gns3.vmx"},
		}},
		{"esxcli/vm-process-list_vc1-8.0u3.txt", []VMProcess{
			{DisplayName: "VC", WorldID: 603996, ProcessID: 0, VMXCartelID: 603994, UUID: "56 4d be 1b 45 52 d6 bc-1b 4d 4b 5f 56 53 4d b6",
				ConfigFile: "/vmfs/volumes/66b0c33b-d2f3dff8-8f53-1e00f500013e/VC/VC.vmx"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseVMProcessList(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			checkEach(t, got, tt.want)
		})
	}
	// A display name with spaces and a colon, and a config path with ": ".
	in := "VMware vCenter Server: test\n   World ID: 2102229\n   Process ID: 0\n   VMX Cartel ID: 2102197\n" +
		"   UUID: 56 4d c9 8d 87 2f a6 68-b2 3b 99 9f fb dc 76 cd\n   Display Name: VMware vCenter Server: test\n" +
		"   Config File: /vmfs/volumes/ds/a: b/a.vmx\n"
	got, err := ParseVMProcessList(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []VMProcess{{DisplayName: "VMware vCenter Server: test", WorldID: 2102229, VMXCartelID: 2102197,
		UUID: "56 4d c9 8d 87 2f a6 68-b2 3b 99 9f fb dc 76 cd", ConfigFile: "/vmfs/volumes/ds/a: b/a.vmx"}})
	// 5.5 prints nothing when no VM runs.
	if got, err := ParseVMProcessList(strings.NewReader("~ # esxcli vm process list\n~ #\n")); err != nil || len(got) != 0 {
		t.Errorf("no VMs: got %v, %v; want empty, nil", got, err)
	}
}

func TestCanonicalUUID(t *testing.T) {
	got, err := CanonicalUUID("56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10")
	if want := "564d12f0-0111-999e-2451-75dcde5f4b10"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"", "56 4d", "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 1g", "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10 00"} {
		if _, err := CanonicalUUID(bad); err == nil {
			t.Errorf("CanonicalUUID(%q): got nil error; want one", bad)
		}
	}
}

func TestParseNetStatsPortsTranscripts(t *testing.T) {
	const vmA = "6-vm-ubuntu-18.04-server-amd64-local-1196-01964aa9-e913-47f9-8439-80a4f5a59458"
	tests := []struct {
		file    string
		n       int
		samples map[int]NetStatsPort
	}{
		{"net-stats/net-stats-l_esxi8-dvs.txt", 14, map[int]NetStatsPort{
			0:  {2214592518, 4, 0, "DvsPortset-0", "00:50:56:01:10:01", "vmnic0"},
			2:  {67108874, 3, 0, "DvsPortset-0", "00:50:56:01:10:01", "vmk0"},
			7:  {67108879, 0, 0, "DvsPortset-0", "02:50:56:56:44:52", "vdr-vdrPort"},
			13: {67108885, 5, 9, "DvsPortset-0", "00:50:56:a2:f9:3d", "vedge3.eth0"},
		}},
		{"net-stats/net-stats-l_vswitch-bmc.txt", 13, map[int]NetStatsPort{
			0:  {2248146958, 4, 0, "vSwitch0", "bc:97:e1:d3:42:40", "vmnic0"},
			2:  {100663335, 5, 9, "vSwitch0", "00:50:56:99:db:d6", vmA},
			6:  {2281701400, 4, 0, "vSwitchBMC", "b0:7b:25:d7:19:77", "vusb0"},
			8:  {2315255836, 4, 0, "DvsPortset-0", "00:ae:cd:f6:3c:41", "vmnic5"},
			9:  {167772198, 5, 9, "DvsPortset-0", "00:50:56:99:5d:51", vmA + ".eth1"},
			12: {167772204, 5, 9, "DvsPortset-0", "00:50:56:99:3c:80", "5-vm-ubuntu-18.04-server-amd64-local-1196-0d0f77c5-6e27-4dba-aa00-77dfa723c181.eth1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseNetStatsPorts(strings.NewReader(fixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d ports; want %d", len(got), tt.n)
			}
			for i, want := range tt.samples {
				if got[i] != want {
					t.Errorf("port %d: got %+v; want %+v", i, got[i], want)
				}
			}
		})
	}
	// Client names with spaces, a switch name with a space, CRLF.
	in := "PortNum          Type SubType SwitchName       MACAddress         ClientName\r\n" +
		"100663359           5       9 DvsPortset-1     00:50:56:be:4d:12  NSX Manager.eth0\r\n" +
		"50331657            5       9 my switch        00:50:56:9d:43:42  web 01.eth0\r\n"
	got, err := ParseNetStatsPorts(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	checkEach(t, got, []NetStatsPort{
		{100663359, 5, 9, "DvsPortset-1", "00:50:56:be:4d:12", "NSX Manager.eth0"},
		{50331657, 5, 9, "my switch", "00:50:56:9d:43:42", "web 01.eth0"},
	})
}

// TestParseErrorsNameTheLine feeds real garbage and checks the error says
// which line and what went wrong.
func TestParseErrorsNameTheLine(t *testing.T) {
	parse := map[string]func(string) error{
		"vm list":      func(s string) error { _, err := ParseVMList(strings.NewReader(s)); return err },
		"port list":    func(s string) error { _, err := ParseVMPortList(strings.NewReader(s)); return err },
		"vswitch list": func(s string) error { _, err := ParseVSwitchList(strings.NewReader(s)); return err },
		"failover":     func(s string) error { _, err := ParseFailoverPolicy(strings.NewReader(s)); return err },
		"portgroups":   func(s string) error { _, err := ParsePortgroupList(strings.NewReader(s)); return err },
		"nic list":     func(s string) error { _, err := ParseNICList(strings.NewReader(s)); return err },
		"process list": func(s string) error { _, err := ParseVMProcessList(strings.NewReader(s)); return err },
		"net-stats":    func(s string) error { _, err := ParseNetStatsPorts(strings.NewReader(s)); return err },
	}
	tests := []struct {
		parser, in string
		line       int
		contains   string
	}{
		{"vm list", "[root@esx01:~] esxcli network vm list\nError: Unknown command or namespace network vm list\n", 2, "table header"},
		{"vm list", "", 0, "no output"},
		{"vm list", "World ID  Name  Num Ports  Networks\n--------  ----  ---------  --------\n      12  a          x  n\n", 3, "num ports"},
		{"vm list", "World ID  Name  Num Ports  Networks\n--------  ----  ---------  --------\n 1  a  1  n\n\ngarbage\n", 5, "after the table"},
		{"vm list", "World ID  Name\n--------  ----\n", 0, `no "Num Ports" column`},
		{"port list", "   Port ID: 33554578\n   Uplink Port ID: many\n", 2, "Uplink Port ID"},
		{"port list", "   Port ID: 33554578\nsh: esxcli: not found\n", 2, "not indented"},
		{"port list", "   Port ID: 33554578\n   nonsense\n", 2, "Key: value"},
		{"port list", "   vSwitch: vSwitch0\n", 1, "Port ID"},
		{"vswitch list", "vSwitch0\n   Name: vSwitch0\n   MTU: big\n", 3, "MTU"},
		{"vswitch list", "vSwitch0\n   Name: vSwitch0\n   Beacon Enabled: yes\n", 3, "true"},
		{"failover", "   Load Balancing: srcport\n\n   Load Balancing: iphash\n", 3, "more than one"},
		{"failover", "   Colour: blue\n", 1, "no failover policy key"},
		{"failover", "", 0, "no output"},
		{"portgroups", "Name  Virtual Switch  Active Clients  VLAN ID\n----  --------------  --------------  -------\nA     vSwitch0                     1      ten\n", 3, "vlan id"},
		{"nic list", "Name    Link Status  Speed  MAC Address\n------  -----------  -----  -----------\nvmnic0  Up           fast   x\n", 3, "speed"},
		{"nic list", "Name    Speed\n------  -----\n", 0, "Link"},
		{"process list", "VC\n   World ID: -1\n", 2, "World ID"},
		{"process list", "VC\n   Process ID: 1\n", 1, "World ID"},
		{"net-stats", "PortNum Type\n", 1, "header"},
		{"net-stats", "PortNum          Type SubType SwitchName       MACAddress         ClientName\n1 2 3 vSwitch0 not-a-mac vmk0\n", 2, "want port"},
		{"net-stats", "PortNum          Type SubType SwitchName       MACAddress         ClientName\n99999999999 3 0 vSwitch0 00:50:56:01:10:01 vmk0\n", 2, "port number"},
	}
	for _, tt := range tests {
		t.Run(tt.parser+"/"+tt.contains, func(t *testing.T) {
			err := parse[tt.parser](tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got error %v; want a *ParseError", err)
			}
			if pe.Line != tt.line || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("got %q (line %d); want line %d and an error containing %q", err, pe.Line, tt.line, tt.contains)
			}
		})
	}
}

// What people paste around esxcli output: prompts of every shape (one
// without its "[", as a real paste has it: "root@NX-1050-A:~]"), notes'
// echo lines with the "#" touching the command and a "=>" after it, CRLF
// line ends. The table in the middle reads the same.
func TestParsePastedPromptShapes(t *testing.T) {
	table := "Name                Virtual Switch  Active Clients  VLAN ID\n" +
		"------------------  --------------  --------------  -------\n" +
		"Management Network  vSwitch0                     1        0\n" +
		"VM Network          vSwitch0                     2      100\n"
	want := []Portgroup{{"Management Network", "vSwitch0", 1, 0}, {"VM Network", "vSwitch0", 2, 100}}
	for _, c := range []struct{ name, before, after string }{
		{"ESXi prompt", "[root@esx01:~] esxcli network vswitch standard portgroup list\n", "[root@esx01:~] \n"},
		{"prompt without [", "root@NX-1050-A:~] esxcli network vswitch standard portgroup list\n", "root@NX-1050-A:~]\n"},
		{"notes echo, # touching", "#esxcli network vswitch standard portgroup list =>\n", ""},
		{"notes echo, # and a space", "# esxcli network vswitch standard portgroup list\n\n", "\n"},
		{"old ESXi prompt", "~ # esxcli network vswitch standard portgroup list\n", "~ # "},
		{"Linux-style prompt", "root@esx01:~# esxcli network vswitch standard portgroup list\n", ""},
		{"bare command", "esxcli network vswitch standard portgroup list\n", ""},
		{"nothing around", "", ""},
		{"CRLF", "[root@esx01:~] esxcli network vswitch standard portgroup list\r\n", "\r\n"},
	} {
		in := c.before + table + c.after
		if c.name == "CRLF" {
			in = strings.ReplaceAll(c.before+table, "\n", "\r\n") + c.after
		}
		got, err := ParsePortgroupList(strings.NewReader(in))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}
