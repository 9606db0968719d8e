package esxfmt_test

// The point of these tests: capturectl's parser (package esxi) and the lab's
// writer (this package) are both checked against the same real transcript.
// Each transcript is parsed, the values converted to this package's structs,
// written, and the result compared with the transcript byte for byte.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab/internal/esxfmt"
)

const transcripts = "../../../testdata/transcripts"

// transcript splits a transcript file into its echoed command line and the
// command's output (cmd is empty when the source shows no command line).
// Blank lines between the command and the output are the
// copier's (esxcli prints none) and are dropped.
func transcript(t testing.TB, rel string) (cmd, out string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(transcripts, rel))
	if err != nil {
		t.Fatal(err)
	}
	src, rest, ok := strings.Cut(string(b), "\n")
	if !ok || !strings.HasPrefix(src, "# source: ") {
		t.Fatalf("%s: first line must be the '# source:' provenance line", rel)
	}
	cmd, out, _ = strings.Cut(rest, "\n")
	if !strings.Contains(cmd, "esxcli ") && !strings.Contains(cmd, "localcli ") && !strings.Contains(cmd, "net-stats") {
		// the source shows the output without the command
		cmd, out = "", rest
	}
	return cmd, strings.TrimLeft(out, "\n")
}

// How a transcript copy relates to what the host printed.
type fidelity int

const (
	verbatim      fidelity = iota // byte for byte
	trailingLost                  // the copy lost trailing spaces ("DVPort ID:" for "DVPort ID: ")
	indentAndTail                 // a reprint: indentation and trailing spaces lost
	doubled                       // a notes paste: a blank line after every line, trailing spaces lost
)

// undouble removes the blank line a notes paste put after every line of
// the copy; a line where that blank is missing is kept, so the comparison
// shows it.
func undouble(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for k := 0; k < len(lines); k++ {
		out = append(out, lines[k])
		if k+1 < len(lines) && lines[k+1] == "" {
			k++
		}
	}
	return strings.Join(out, "\n")
}

func normalize(s string, f fidelity) string {
	if f == verbatim {
		return s
	}
	lines := strings.Split(s, "\n")
	for k, l := range lines {
		l = strings.TrimRight(l, " ")
		if f == indentAndTail {
			l = strings.TrimLeft(l, " ")
		}
		lines[k] = l
	}
	return strings.Join(lines, "\n")
}

func compare(t *testing.T, got, want string, f fidelity) {
	t.Helper()
	if f == doubled {
		want = undouble(want)
	}
	g, w := normalize(got, f), normalize(want, f)
	if g == w {
		return
	}
	gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
	for k := 0; k < max(len(gl), len(wl)); k++ {
		var a, b string
		if k < len(gl) {
			a = gl[k]
		}
		if k < len(wl) {
			b = wl[k]
		}
		if a != b {
			t.Fatalf("first difference at output line %d:\ngot  %q\nwant %q\n\nfull output:\n%s", k+1, a, b, got)
		}
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// Converters from the parser's types to the writer's.

func vms(in []esxi.VM) []esxfmt.VM {
	out := make([]esxfmt.VM, len(in))
	for k, v := range in {
		out[k] = esxfmt.VM{WorldID: v.WorldID, Name: v.Name, NumPorts: v.NumPorts, Networks: v.Networks}
	}
	return out
}

func ports(in []esxi.VMPort) []esxfmt.VMPort {
	out := make([]esxfmt.VMPort, len(in))
	for k, p := range in {
		team := p.TeamUplink
		if p.TeamUplinkVoid {
			team = "void"
		}
		out[k] = esxfmt.VMPort{PortID: p.PortID, VSwitch: p.VSwitch, Portgroup: p.Portgroup, DVPortID: p.DVPortID,
			MAC: p.MAC, IP: p.IP, TeamUplink: team, UplinkPortID: p.UplinkPortID, ActiveFilters: p.ActiveFilters}
	}
	return out
}

func vswitches(in []esxi.VSwitch) []esxfmt.VSwitch {
	out := make([]esxfmt.VSwitch, len(in))
	for k, v := range in {
		out[k] = esxfmt.VSwitch{Name: v.Name, Class: v.Class, NumPorts: v.NumPorts, UsedPorts: v.UsedPorts,
			ConfiguredPorts: v.ConfiguredPorts, MTU: v.MTU, CDPStatus: v.CDPStatus, BeaconEnabled: v.BeaconEnabled,
			BeaconInterval: v.BeaconInterval, BeaconThreshold: v.BeaconThreshold, BeaconRequiredBy: v.BeaconRequiredBy,
			Uplinks: v.Uplinks, Portgroups: v.Portgroups}
	}
	return out
}

func policy(p esxi.FailoverPolicy) esxfmt.FailoverPolicy {
	out := esxfmt.FailoverPolicy{LoadBalancing: p.LoadBalancing, NetworkFailureDetection: p.NetworkFailureDetection,
		NotifySwitches: p.NotifySwitches, Failback: p.Failback, ActiveAdapters: p.ActiveAdapters,
		StandbyAdapters: p.StandbyAdapters, UnusedAdapters: p.UnusedAdapters}
	if o := p.Overrides; o != nil {
		out.Overrides = &esxfmt.FailoverOverrides{LoadBalancing: o.LoadBalancing, NetworkFailureDetection: o.NetworkFailureDetection,
			NotifySwitches: o.NotifySwitches, Failback: o.Failback, Uplinks: o.Uplinks}
	}
	return out
}

func portgroups(in []esxi.Portgroup) []esxfmt.Portgroup {
	out := make([]esxfmt.Portgroup, len(in))
	for k, p := range in {
		out[k] = esxfmt.Portgroup{Name: p.Name, VSwitch: p.VSwitch, ActiveClients: p.ActiveClients, VLANID: p.VLANID}
	}
	return out
}

func nics(in []esxi.NIC) []esxfmt.NIC {
	out := make([]esxfmt.NIC, len(in))
	for k, n := range in {
		out[k] = esxfmt.NIC{Name: n.Name, PCIDevice: n.PCIDevice, Driver: n.Driver, AdminStatus: n.AdminStatus,
			LinkStatus: n.LinkStatus, Speed: n.Speed, Duplex: n.Duplex, MAC: n.MAC, MTU: n.MTU, Description: n.Description}
	}
	return out
}

func procs(in []esxi.VMProcess) []esxfmt.VMProcess {
	out := make([]esxfmt.VMProcess, len(in))
	for k, p := range in {
		out[k] = esxfmt.VMProcess{DisplayName: p.DisplayName, WorldID: p.WorldID, ProcessID: p.ProcessID,
			VMXCartelID: p.VMXCartelID, UUID: p.UUID, ConfigFile: p.ConfigFile}
	}
	return out
}

func dvswitches(in []esxi.DVS) []esxfmt.DVS {
	out := make([]esxfmt.DVS, len(in))
	for k, d := range in {
		out[k] = esxfmt.DVS{Name: d.Name, UUID: d.UUID, Class: d.Class, NumPorts: d.NumPorts, UsedPorts: d.UsedPorts,
			ConfiguredPorts: d.ConfiguredPorts, MTU: d.MTU, CDPStatus: d.CDPStatus, BeaconTimeout: d.BeaconTimeout,
			Uplinks: d.Uplinks, VMwareBranded: d.VMwareBranded}
		for _, p := range d.Ports {
			out[k].Ports = append(out[k].Ports, esxfmt.DVSPort{Client: p.Client, PortgroupID: p.PortgroupID, InUse: p.InUse, PortID: p.PortID})
		}
	}
	return out
}

func netStats(in []esxi.NetStatsPort) []esxfmt.NetStatsPort {
	out := make([]esxfmt.NetStatsPort, len(in))
	for k, p := range in {
		out[k] = esxfmt.NetStatsPort(p)
	}
	return out
}

// roundTrip parses out with the esxi parser named by kind and writes the
// values back with the esxfmt writer.
func roundTrip(t *testing.T, kind string, l esxfmt.Layout, out string) string {
	t.Helper()
	r := strings.NewReader(out)
	var buf bytes.Buffer
	var err error
	switch kind {
	case "vm list":
		err = esxfmt.WriteVMList(&buf, l, vms(must[[]esxi.VM](t)(esxi.ParseVMList(r))))
	case "vm port list":
		err = esxfmt.WriteVMPortList(&buf, ports(must[[]esxi.VMPort](t)(esxi.ParseVMPortList(r))))
	case "vswitch list":
		err = esxfmt.WriteVSwitchList(&buf, vswitches(must[[]esxi.VSwitch](t)(esxi.ParseVSwitchList(r))))
	case "failover get":
		err = esxfmt.WriteFailoverPolicy(&buf, policy(must[esxi.FailoverPolicy](t)(esxi.ParseFailoverPolicy(r))))
	case "portgroup list":
		err = esxfmt.WritePortgroupList(&buf, l, portgroups(must[[]esxi.Portgroup](t)(esxi.ParsePortgroupList(r))))
	case "nic list":
		err = esxfmt.WriteNICList(&buf, l, nics(must[[]esxi.NIC](t)(esxi.ParseNICList(r))))
	case "vm process list":
		err = esxfmt.WriteVMProcessList(&buf, procs(must[[]esxi.VMProcess](t)(esxi.ParseVMProcessList(r))))
	case "dvs list":
		err = esxfmt.WriteDVSList(&buf, l, dvswitches(must[[]esxi.DVS](t)(esxi.ParseDVSList(r))))
	case "net-stats":
		err = esxfmt.WriteNetStatsPorts(&buf, netStats(must[[]esxi.NetStatsPort](t)(esxi.ParseNetStatsPorts(r))))
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestWritersReproduceTranscripts(t *testing.T) {
	tests := []struct {
		file   string
		kind   string
		layout esxfmt.Layout
		fid    fidelity
	}{
		{"esxcli/network-vm-list_rayd62.txt", "vm list", esxfmt.Layout67, verbatim},
		{"esxcli/network-vm-list_cactus-6.7.txt", "vm list", esxfmt.Layout67, verbatim},
		{"esxcli/network-vm-port-list_rayd62.txt", "vm port list", esxfmt.Layout{}, trailingLost},
		{"esxcli/network-vswitch-standard-list_cactus-6.7.txt", "vswitch list", esxfmt.Layout{}, verbatim},
		{"esxcli/network-vswitch-standard-list_more-poodle.txt", "vswitch list", esxfmt.Layout{}, verbatim},
		{"esxcli/network-vswitch-standard-list_hp-elatov.txt", "vswitch list", esxfmt.Layout{}, verbatim},
		{"esxcli/network-vswitch-standard-list_etherswitch-6.7.txt", "vswitch list", esxfmt.Layout{}, trailingLost},
		{"esxcli/network-vswitch-standard-policy-failover-get_reprint.txt", "failover get", esxfmt.Layout{}, indentAndTail},
		{"esxcli/network-vswitch-standard-portgroup-list_cactus-6.7.txt", "portgroup list", esxfmt.Layout67, verbatim},
		{"esxcli/network-vswitch-standard-portgroup-list_more-poodle.txt", "portgroup list", esxfmt.LayoutNewer, verbatim},
		{"esxcli/network-vswitch-standard-portgroup-list_hp-elatov.txt", "portgroup list", esxfmt.Layout67, verbatim},
		{"esxcli/network-nic-list_r8125-6.7.txt", "nic list", esxfmt.Layout67, verbatim},
		{"esxcli/network-nic-list_bnx2-6.7.txt", "nic list", esxfmt.Layout67, verbatim},
		{"esxcli/network-nic-list_cactus-6.7.txt", "nic list", esxfmt.Layout67, verbatim},
		{"esxcli/network-nic-list_more-poodle.txt", "nic list", esxfmt.LayoutNewer, verbatim},
		{"esxcli/network-nic-list_tg3-5.5.txt", "nic list", esxfmt.Layout55, verbatim},
		{"esxcli/vm-process-list_cactus-6.7.txt", "vm process list", esxfmt.Layout{}, verbatim},
		{"esxcli/vm-process-list_vc1-8.0u3.txt", "vm process list", esxfmt.Layout{}, verbatim},
		{"esxcli/network-vswitch-dvs-vmware-list_jp-blog-cswitch.txt", "dvs list", esxfmt.Layout{}, verbatim},
		{"esxcli/network-vswitch-dvs-vmware-list_onenote-paste.txt", "dvs list", esxfmt.Layout{}, doubled},
		{"esxcli/network-vswitch-dvs-vmware-list_virtuallyhyper-5.0.txt", "dvs list", esxfmt.Layout{}, indentAndTail},
		{"esxcli/network-vswitch-dvs-vmware-list_esxinitya-9.0.txt", "dvs list", esxfmt.Layout90, verbatim},
		{"esxcli/network-nic-list_esxinitya-9.0.txt", "nic list", esxfmt.Layout90, verbatim},
		{"esxcli/network-vm-port-list_homer-7.0.3.txt", "vm port list", esxfmt.Layout{}, trailingLost},
		{"esxcli/network-vm-list_homer-7.0.3.txt", "vm list", esxfmt.LayoutNewer, verbatim},
		{"esxcli/network-vswitch-standard-list_homer-7.0.3.txt", "vswitch list", esxfmt.Layout{}, trailingLost},
		{"esxcli/network-nic-list_homer-7.0.3.txt", "nic list", esxfmt.LayoutNewer, verbatim},
		{"esxcli/network-vm-list_notes-6.x.txt", "vm list", esxfmt.LayoutPadded, verbatim},
		{"esxcli/localcli-network-nic-list_fcy-mac01-6.7.txt", "nic list", esxfmt.LayoutLocalcli67, verbatim},
		{"esxcli/network-vm-port-list_notes-6.x.txt", "vm port list", esxfmt.Layout{}, trailingLost},
		{"net-stats/net-stats-l_esxi8-dvs.txt", "net-stats", esxfmt.Layout{}, verbatim},
		{"net-stats/net-stats-l_vswitch-bmc.txt", "net-stats", esxfmt.Layout{}, verbatim},
		{"net-stats/net-stats-l_nsxv-2015.txt", "net-stats", esxfmt.Layout{}, verbatim},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cmd, out := transcript(t, tt.file)
			// The parser also copes with the echoed command line in front.
			got := roundTrip(t, tt.kind, tt.layout, cmd+"\n"+out)
			compare(t, got, out, tt.fid)
		})
	}
	// Every transcript in the two areas is covered.
	for _, area := range []string{"esxcli", "net-stats"} {
		files, _ := filepath.Glob(filepath.Join(transcripts, area, "*.txt"))
		for _, f := range files {
			if rel := area + "/" + filepath.Base(f); !seen[rel] {
				t.Errorf("transcript %s is not cross-checked", rel)
			}
		}
	}
}

// TestLayoutsDiffer shows the build-dependent choices matter: writing a
// transcript's values with the other layout does not reproduce it.
func TestLayoutsDiffer(t *testing.T) {
	_, nine := transcript(t, "esxcli/network-vswitch-dvs-vmware-list_esxinitya-9.0.txt")
	if got := roundTrip(t, "dvs list", esxfmt.LayoutNewer, nine); got == nine || !strings.Contains(got, "   DVPort:\n") {
		t.Errorf("the 7.x/8.x layout of the 9.0 dvs list: got\n%s\nwant \"DVPort:\" without the 9.0 space", got)
	}
	_, out := transcript(t, "esxcli/network-nic-list_more-poodle.txt")
	if got := roundTrip(t, "nic list", esxfmt.Layout67, out); got == out {
		t.Error("6.7 layout reproduced the short-dashes transcript; want the dashes under Description to differ")
	}
	_, out = transcript(t, "esxcli/network-vm-list_notes-6.x.txt")
	if got := roundTrip(t, "vm list", esxfmt.Layout67, out); got == out || strings.Contains(got, "Networks ") {
		t.Errorf("6.7 layout of the padded vm list: got\n%s\nwant the last column unpadded", got)
	}
	_, out = transcript(t, "esxcli/network-vm-list_cactus-6.7.txt")
	if got := roundTrip(t, "vm list", esxfmt.LayoutPadded, out); got == out {
		t.Error("the padded layout reproduced the unpadded 6.7 vm list")
	}
	_, out = transcript(t, "esxcli/localcli-network-nic-list_fcy-mac01-6.7.txt")
	if got := roundTrip(t, "nic list", esxfmt.Layout67, out); got == out || !strings.Contains(got, "------  ------------") {
		t.Errorf("esxcli's 6.7 layout of the localcli nic list: got\n%s\nwant dashes per column", got)
	}
	_, out = transcript(t, "esxcli/network-nic-list_tg3-5.5.txt")
	if got := roundTrip(t, "nic list", esxfmt.Layout67, out); got == out || !strings.Contains(got, "Admin Status") {
		t.Errorf("6.7 layout of the 5.5 transcript: got\n%s\nwant the Admin Status column", got)
	}
}

func TestWriteEdgeCases(t *testing.T) {
	var buf bytes.Buffer
	// Empty tables still print header and dashes (seen on a 7.x host).
	if err := esxfmt.WriteNICList(&buf, esxfmt.LayoutNewer, nil); err != nil {
		t.Fatal(err)
	}
	want := "Name  PCI Device  Driver  Admin Status  Link Status  Speed  Duplex  MAC Address  MTU  Description\n" +
		"----  ----------  ------  ------------  -----------  -----  ------  -----------  ---  -----------\n"
	if buf.String() != want {
		t.Errorf("empty nic list:\ngot  %q\nwant %q", buf.String(), want)
	}
	// Empty block lists print nothing.
	buf.Reset()
	if err := esxfmt.WriteVMPortList(&buf, nil); err != nil || buf.Len() != 0 {
		t.Errorf("empty port list: got %q, %v; want no output", buf.String(), err)
	}
	// Void team uplink and the empty-value trailing space.
	buf.Reset()
	if err := esxfmt.WriteVMPortList(&buf, []esxfmt.VMPort{{PortID: 33554438, VSwitch: "vSwitch1", Portgroup: "PG", MAC: "00:50:56:00:00:01", IP: "0.0.0.0", TeamUplink: "void"}}); err != nil {
		t.Fatal(err)
	}
	want = "   Port ID: 33554438\n   vSwitch: vSwitch1\n   Portgroup: PG\n   DVPort ID: \n   MAC Address: 00:50:56:00:00:01\n" +
		"   IP Address: 0.0.0.0\n   Team Uplink: void\n   Uplink Port ID: 0\n   Active Filters: \n"
	if buf.String() != want {
		t.Errorf("void port:\ngot  %q\nwant %q", buf.String(), want)
	}
	// Port group failover policy (assumed layout, see WriteFailoverPolicy).
	buf.Reset()
	if err := esxfmt.WriteFailoverPolicy(&buf, esxfmt.FailoverPolicy{LoadBalancing: "srcport", NetworkFailureDetection: "link",
		NotifySwitches: true, Failback: true, ActiveAdapters: []string{"vmnic2", "vmnic3"}, Overrides: &esxfmt.FailoverOverrides{Uplinks: true}}); err != nil {
		t.Fatal(err)
	}
	want = "   Load Balancing: srcport\n   Network Failure Detection: link\n   Notify Switches: true\n   Failback: true\n" +
		"   Active Adapters: vmnic2, vmnic3\n   Standby Adapters: \n   Unused Adapters: \n" +
		"   Override Vswitch Load Balancing: false\n   Override Vswitch Network Failure Detection: false\n" +
		"   Override Vswitch Notify Switches: false\n   Override Vswitch Failback: false\n   Override Vswitch Uplinks: true\n"
	if buf.String() != want {
		t.Errorf("portgroup policy:\ngot  %q\nwant %q", buf.String(), want)
	}
	// Line breaks in values are refused rather than forging lines.
	for name, err := range map[string]error{
		"vm list":   esxfmt.WriteVMList(&buf, esxfmt.Layout67, []esxfmt.VM{{WorldID: 1, Name: "a\nb"}}),
		"port list": esxfmt.WriteVMPortList(&buf, []esxfmt.VMPort{{Portgroup: "a\r"}}),
		"vswitch":   esxfmt.WriteVSwitchList(&buf, []esxfmt.VSwitch{{Name: "x\ny"}}),
		"net-stats": esxfmt.WriteNetStatsPorts(&buf, []esxfmt.NetStatsPort{{ClientName: "a\nb"}}),
		"no name":   esxfmt.WriteVMProcessList(&buf, []esxfmt.VMProcess{{WorldID: 1}}),
	} {
		if err == nil {
			t.Errorf("%s: got nil error; want one", name)
		}
	}
}

func TestVMXUUID(t *testing.T) {
	got, err := esxfmt.VMXUUID("564D12F0-0111-999e-2451-75dcde5f4b10")
	if want := "56 4d 12 f0 01 11 99 9e-24 51 75 dc de 5f 4b 10"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	back, err := esxi.CanonicalUUID(got)
	if want := "564d12f0-0111-999e-2451-75dcde5f4b10"; err != nil || back != want {
		t.Errorf("esxi.CanonicalUUID(%q) = %q, %v; want %q", got, back, err, want)
	}
	for _, bad := range []string{"", "564d", "564d12f0-0111-999e-2451-75dcde5f4b1g"} {
		if _, err := esxfmt.VMXUUID(bad); err == nil {
			t.Errorf("VMXUUID(%q): got nil error; want one", bad)
		}
	}
}
