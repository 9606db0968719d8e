package esxi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// ---------------------------------------------------------------------------
// Helpers

// callLog wraps a client's RoundTripper after login: it records each API
// call by method and can add latency to each, like a WAN link.
type callLog struct {
	rt    soap.RoundTripper
	delay time.Duration

	mu    sync.Mutex
	calls []string
	spans [][2]time.Time // each call's start and end
}

func (l *callLog) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	name := fmt.Sprintf("%T", req)
	name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "Body")
	l.mu.Lock()
	l.calls = append(l.calls, name)
	l.mu.Unlock()
	start := time.Now()
	if l.delay > 0 {
		time.Sleep(l.delay)
	}
	err := l.rt.RoundTrip(ctx, req, res)
	l.mu.Lock()
	l.spans = append(l.spans, [2]time.Time{start, time.Now()})
	l.mu.Unlock()
	return err
}

// RoundTrips is how many calls a client waited for one after another:
// the longest chain of calls each started after the one before ended.
func (l *callLog) RoundTrips() int {
	l.mu.Lock()
	spans := slices.Clone(l.spans)
	l.mu.Unlock()
	slices.SortFunc(spans, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	depth := make([]int, len(spans))
	most := 0
	for i, s := range spans {
		depth[i] = 1
		for j := range i {
			if !spans[j][1].After(s[0]) {
				depth[i] = max(depth[i], depth[j]+1)
			}
		}
		most = max(most, depth[i])
	}
	return most
}

func (l *callLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func logCalls(c *Client, delay time.Duration) *callLog {
	l := &callLog{rt: c.Vim().RoundTripper, delay: delay}
	c.Vim().RoundTripper = l
	return l
}

// connectSim logs in to a vcsim server through Connect, pinning its
// certificate.
func connectSim(t *testing.T, s *simulator.Server) *Client {
	t.Helper()
	ctx := context.Background()
	c, err := Connect(ctx, Config{URL: simURL(s), Username: simUser, Password: simPass, Thumbprint: s.CertificateInfo().ThumbprintSHA256})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// startVCLab serves a topology over SSH and through the lab's vCenter.
func startVCLab(t *testing.T, cfgPath string) (*lab.Lab, *Client) {
	t.Helper()
	l := labtest.Start(t, cfgPath, lab.Options{VCenter: true, NoTraffic: true})
	vc := l.VCenter
	c, err := Connect(context.Background(), Config{URL: vc.URL().String(), Username: vc.Username(), Password: vc.Password(), Thumbprint: vc.Thumbprint()})
	if err != nil {
		t.Fatalf("connect to the lab's vCenter: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return l, c
}

// labSSH is a CommandRunner over the lab's SSH servers, logging in as on
// ESXi (keyboard-interactive, host key pinned).
type labSSH struct {
	l *lab.Lab

	mu   sync.Mutex
	cmds []string
}

func (r *labSSH) Run(ctx context.Context, host, cmd string) (string, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, host+": "+cmd)
	r.mu.Unlock()
	h, err := r.l.Host(host)
	if err != nil {
		return "", err
	}
	_, _, pub, _, _, err := ssh.ParseKnownHosts([]byte(h.KnownHostsLine))
	if err != nil {
		return "", err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.Addr)
	if err != nil {
		return "", err
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr, &ssh.ClientConfig{
		User: h.User,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			ans := make([]string, len(qs))
			for i := range ans {
				ans[i] = h.Password
			}
			return ans, nil
		})},
		HostKeyCallback: ssh.FixedHostKey(pub),
	})
	if err != nil {
		conn.Close()
		return "", err
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.Output(cmd)
	return string(out), err
}

// cannedRunner answers commands with fixed output, as a host would.
type cannedRunner struct {
	host string
	out  map[string]string
	ran  []string
}

func (r *cannedRunner) Run(_ context.Context, host, cmd string) (string, error) {
	r.ran = append(r.ran, cmd)
	if host != r.host {
		return "", fmt.Errorf("unexpected host %q", host)
	}
	out, ok := r.out[cmd]
	if !ok {
		return "", fmt.Errorf("sh: %s: not found", cmd)
	}
	return out, nil
}

// esxiUUID prints a dashed UUID as esxcli vm process list does.
func esxiUUID(u string) string {
	h := strings.ReplaceAll(u, "-", "")
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		switch {
		case i == 16:
			b.WriteByte('-')
		case i > 0:
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// transcript reads a real transcript, dropping its provenance line, and
// applies the replacements (old, new, ...).
func transcript(t *testing.T, name string, repl ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../testdata/transcripts", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if strings.HasPrefix(s, "# source:") {
		_, s, _ = strings.Cut(s, "\n")
	}
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("%s: no %q to replace", name, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	return s
}

// checkTarget compares selected fields.
func checkTarget(t *testing.T, what string, got Target, want map[string]any) {
	t.Helper()
	v := reflect.ValueOf(got)
	for k, w := range want {
		f := v.FieldByName(k)
		if !f.IsValid() {
			t.Fatalf("%s: no field %s", what, k)
		}
		if g := f.Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %#v; want %#v", what, k, g, w)
		}
	}
}

// ---------------------------------------------------------------------------
// Against the lab's vCenter (configs/lab-article.yaml)

func TestDiscoverLabArticle(t *testing.T) {
	l, c := startVCLab(t, "../configs/lab-article.yaml")
	ctx := context.Background()
	for _, tc := range []struct {
		vm, host, addr, mac string
	}{
		{"testvm1", "esx01", "192.0.2.11", "00:50:56:9d:43:42"},
		{"testvm2", "esx02", "192.0.2.12", "00:50:56:9d:fd:b1"},
	} {
		start := time.Now()
		ts, err := c.Discover(ctx, tc.vm, DiscoverOptions{})
		if err != nil {
			t.Fatalf("discover %s: %v", tc.vm, err)
		}
		t.Logf("discover %s: %v", tc.vm, time.Since(start))
		if len(ts) != 1 {
			t.Fatalf("discover %s: got %d targets; want 1: %+v", tc.vm, len(ts), ts)
		}
		checkTarget(t, tc.vm, ts[0], map[string]any{
			"VM": tc.vm, "VMPath": "/DC0/vm/" + tc.vm, "PowerState": "poweredOn",
			"Host": tc.host, "HostAddress": tc.addr, "MAC": tc.mac, "Connected": true,
			"Portgroup": "VLAN100", "VLAN": 100, "SwitchType": SwitchStandard, "VSwitch": "vSwitch1",
			"Uplinks":       []Uplink{{Name: "vmnic2", NIC: "vmnic2"}, {Name: "vmnic3", NIC: "vmnic3"}},
			"TeamingPolicy": "loadbalance_srcid", "ActiveUplinks": []string{"vmnic2", "vmnic3"}, "StandbyUplinks": []string{},
			"Promiscuous": false, "BlindSpot": true,
			"PortID": uint32(50331657), "TeamUplink": "vmnic2", "PortSource": PortSourceAPI, "PortNote": "",
		})
		if !strings.HasPrefix(ts[0].VMRef, "vm-") || !strings.HasPrefix(ts[0].HostRef, "host-") {
			t.Errorf("%s: morefs %q %q", tc.vm, ts[0].VMRef, ts[0].HostRef)
		}
		// The same VM by inventory path and by reference.
		for _, spec := range []string{"/DC0/vm/" + tc.vm, "DC0/vm/" + tc.vm + "/", "VirtualMachine:" + ts[0].VMRef} {
			again, err := c.Discover(ctx, spec, DiscoverOptions{})
			if err != nil || len(again) != 1 || again[0].VMRef != ts[0].VMRef {
				t.Errorf("discover %q: got %+v, %v; want %s", spec, again, err, ts[0].VMRef)
			}
		}
	}

	// The team uplink follows a change in the lab.
	if err := l.Net.SetTeamUplink("esx02", 50331657, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	ts, err := c.Discover(ctx, "testvm2", DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].TeamUplink != "vmnic3" || ts[0].PortID != 50331657 {
		t.Errorf("after SetTeamUplink: port %d team uplink %q; want 50331657 vmnic3", ts[0].PortID, ts[0].TeamUplink)
	}
}

// Discovery of one VM takes 5 API calls after login, two of them
// concurrently, so it waits for 4 round trips. Counted from when the calls
// ran (the longest chain of calls each started after the one before
// ended), not from how long it took: with 200ms added to every call the
// two concurrent ones overlap whatever the machine's load.
func TestDiscoverRoundTrips(t *testing.T) {
	_, c := startVCLab(t, "../configs/lab-article.yaml")
	ctx := context.Background()

	log := logCalls(c, 0)
	start := time.Now()
	if _, err := c.Discover(ctx, "testvm2", DiscoverOptions{}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	calls := log.Calls()
	slices.Sort(calls)
	want := []string{"RetrievePropertiesEx", "RetrievePropertiesEx", "executeSoap", "executeSoap", "retrieveMME"}
	if !slices.Equal(calls, want) {
		t.Errorf("API calls after login: %q; want %q", calls, want)
	}
	t.Logf("one discovery against the lab: %d API calls, %v", len(calls), elapsed)

	const delay = 200 * time.Millisecond
	log = logCalls(c, delay)
	start = time.Now()
	if _, err := c.Discover(ctx, "testvm2", DiscoverOptions{}); err != nil {
		t.Fatal(err)
	}
	elapsed = time.Since(start)
	rts := log.RoundTrips()
	t.Logf("with %v per call: %v (%.2f times the delay), %d round trips", delay, elapsed, float64(elapsed)/float64(delay), rts)
	if rts != 4 {
		t.Errorf("with %v per call, discovery waited for %d round trips; want 4", delay, rts)
	}
}

// The SSH path gives the same port data, and says so.
func TestDiscoverLabSSH(t *testing.T) {
	l, c := startVCLab(t, "../configs/lab-article.yaml")
	ctx := context.Background()
	r := &labSSH{l: l}
	log := logCalls(c, 0)
	ts, err := c.Discover(ctx, "testvm2", DiscoverOptions{Ports: PortsSSH, SSH: r})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "testvm2 over ssh", ts[0], map[string]any{
		"PortID": uint32(50331657), "TeamUplink": "vmnic2", "PortSource": PortSourceSSH, "PortNote": "", "VLAN": 100,
	})
	if calls := log.Calls(); len(calls) != 2 {
		t.Errorf("API calls with --ports ssh: %q; want the 2 inventory reads only", calls)
	}
	wantCmds := []string{"esx02: esxcli vm process list", "esx02: esxcli network vm port list -w "}
	if len(r.cmds) != 2 || r.cmds[0] != wantCmds[0] || !strings.HasPrefix(r.cmds[1], wantCmds[1]) {
		t.Errorf("ssh commands %q; want %q<world>", r.cmds, wantCmds)
	}
	if err := l.Net.SetTeamUplink("esx02", 50331657, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	if ts, err = c.Discover(ctx, "testvm2", DiscoverOptions{Ports: PortsSSH, SSH: r}); err != nil || ts[0].TeamUplink != "vmnic3" {
		t.Errorf("after SetTeamUplink over ssh: %+v, %v; want vmnic3", ts, err)
	}
	// No port data wanted: two calls, and the note says so.
	ts, err = c.Discover(ctx, "testvm1", DiscoverOptions{Ports: PortsNone})
	if err != nil || ts[0].PortID != 0 || ts[0].PortSource != "" || !strings.Contains(ts[0].PortNote, "not asked for") {
		t.Errorf("--ports none: %+v, %v", ts, err)
	}
}

// On a distributed switch the SSH path also reads the host's own view of
// the switch (esxcli network vswitch dvs vmware list) and says where it
// disagrees with vCenter.
func TestDiscoverLabSSHDistributed(t *testing.T) {
	l, c := startVCLab(t, "../configs/lab-dvs.yaml")
	ctx := context.Background()
	r := &labSSH{l: l}
	ts, err := c.Discover(ctx, "dvsvm2", DiscoverOptions{Ports: PortsSSH, SSH: r})
	if err != nil {
		t.Fatal(err)
	}
	// the lab's 8.0 host: DvsPortset-0 is the second portset (0x06)
	checkTarget(t, "dvsvm2 over ssh", ts[0], map[string]any{
		"PortID": uint32(0x06000013), "TeamUplink": "vmnic2", "PortSource": PortSourceSSH, "PortNote": "", "DVPort": "1", "VSwitch": "DSwitch",
	})
	if len(r.cmds) != 3 || r.cmds[2] != "esx02: esxcli network vswitch dvs vmware list" {
		t.Errorf("ssh commands %q; want the dvs list third", r.cmds)
	}
	// A host whose proxy switch is not the one vCenter names (a real 9.0
	// host's list, VDS-Prod): the port data stay, the note says so.
	other := &cannedDVS{labSSH: &labSSH{l: l}, out: fixture(t, "esxcli/network-vswitch-dvs-vmware-list_esxinitya-9.0.txt")}
	ts, err = c.Discover(ctx, "dvsvm2", DiscoverOptions{Ports: PortsSSH, SSH: other})
	if err != nil || ts[0].PortID != 0x06000013 || !strings.Contains(ts[0].PortNote, "lists no distributed switch DSwitch") {
		t.Errorf("against another host's dvs list: %+v, %v; want a note that DSwitch is missing", ts, err)
	}
}

// cannedDVS answers the dvs list with out and everything else from the lab.
type cannedDVS struct {
	*labSSH
	out string
}

func (r *cannedDVS) Run(ctx context.Context, host, cmd string) (string, error) {
	if cmd == "esxcli network vswitch dvs vmware list" {
		return r.out, nil
	}
	return r.labSSH.Run(ctx, host, cmd)
}

func TestDiscoverLabErrors(t *testing.T) {
	dir := t.TempDir()
	// Two VMs named "dup", one per host: the configs have none.
	topo := `name: dup
hosts:
  - name: esx01
    version: "6.7"
    management: 192.0.2.11
    vswitches:
      - {name: vSwitch1, uplinks: [vmnic2, vmnic3], teaming: {policy: srcport, active: [vmnic2, vmnic3]}, portgroups: [{name: VLAN100, vlan: 100}]}
    vms:
      - {name: dup, nics: [{portgroup: VLAN100, mac: "00:50:56:9d:43:42", ip: 192.168.100.11/24}]}
  - name: esx02
    version: "6.7"
    management: 192.0.2.12
    vswitches:
      - {name: vSwitch1, uplinks: [vmnic2, vmnic3], teaming: {policy: srcport, active: [vmnic2, vmnic3]}, portgroups: [{name: VLAN100, vlan: 100}]}
    vms:
      - {name: dup, nics: [{portgroup: VLAN100, mac: "00:50:56:9d:fd:b1", ip: 192.168.100.12/24}]}
      - {name: Testvm2, nics: [{portgroup: VLAN100, mac: "00:50:56:9d:fd:b2", ip: 192.168.100.13/24}]}
`
	path := filepath.Join(dir, "dup.yaml")
	if err := os.WriteFile(path, []byte(topo), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c := startVCLab(t, path)
	ctx := context.Background()

	_, err := c.Discover(ctx, "dup", DiscoverOptions{})
	var e *Error
	if !errors.Is(err, ErrVMAmbiguous) || !errors.As(err, &e) || len(e.Candidates) != 2 {
		t.Fatalf("ambiguous: got %v; want ErrVMAmbiguous with 2 candidates", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "/DC0/vm/dup (VirtualMachine:vm-") || !strings.Contains(msg, "pass one of these references") {
		t.Errorf("ambiguous: message %q", msg)
	}
	// A candidate's reference resolves it.
	ref := e.Candidates[0][strings.Index(e.Candidates[0], "(")+1 : len(e.Candidates[0])-1]
	if ts, err := c.Discover(ctx, ref, DiscoverOptions{}); err != nil || len(ts) != 1 || ts[0].Host != "esx01" {
		t.Errorf("discover %s: %+v, %v; want dup on esx01", ref, ts, err)
	}

	for _, tc := range []struct{ spec, want string }{
		{"nope", `vm "nope" not found among the 3 VMs visible`},
		{"testvm2", "did you mean /DC0/vm/Testvm2?"},
		{"/DC0/vm/folder/dup", "inventory paths look like"},
		{"VirtualMachine:vm-99999", "not found"},
	} {
		_, err := c.Discover(ctx, tc.spec, DiscoverOptions{})
		if !errors.Is(err, ErrVMNotFound) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("discover %q: got %v; want ErrVMNotFound saying %q", tc.spec, err, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Against plain vcsim, seeded

// seedStandard gives DC0_H0 a vSwitch with two uplinks and explicit
// failover, and "VM Network" a VLAN and a promiscuous override, without a
// computed policy (so the layers are merged here).
func seedStandard(t *testing.T, m *simulator.Model, host types.ManagedObjectReference) {
	t.Helper()
	sctx := m.Service.Context
	h := sctx.Map.Get(host).(*simulator.HostSystem)
	pol := &types.HostNetworkPolicy{
		Security: &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(false)},
		NicTeaming: &types.HostNicTeamingPolicy{Policy: "failover_explicit",
			NicOrder: &types.HostNicOrderPolicy{ActiveNic: []string{"vmnic1"}, StandbyNic: []string{"vmnic2"}}},
	}
	sctx.WithLock(h, func() {
		h.Config.Network = &types.HostNetworkInfo{
			Pnic: []types.PhysicalNic{
				{Key: "key-vim.host.PhysicalNic-vmnic1", Device: "vmnic1"},
				{Key: "key-vim.host.PhysicalNic-vmnic2", Device: "vmnic2"},
			},
			Vswitch: []types.HostVirtualSwitch{{
				Name: "vSwitch7", Key: "key-vim.host.VirtualSwitch-vSwitch7",
				Pnic: []string{"key-vim.host.PhysicalNic-vmnic1", "key-vim.host.PhysicalNic-vmnic2"},
				Spec: types.HostVirtualSwitchSpec{NumPorts: 128, Policy: pol},
			}},
			Portgroup: []types.HostPortGroup{{
				Key: "key-vim.host.PortGroup-VM Network", Vswitch: "key-vim.host.VirtualSwitch-vSwitch7",
				Spec: types.HostPortGroupSpec{Name: "VM Network", VlanId: 100, VswitchName: "vSwitch7",
					Policy: types.HostNetworkPolicy{Security: &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(true)}}},
			}},
			Vnic: []types.HostVirtualNic{{Device: "vmk0", Portgroup: "Management Network",
				Spec: types.HostVirtualNicSpec{Ip: &types.HostIpConfig{IpAddress: "198.51.100.7"}}}},
		}
	})
}

func simVM(t *testing.T, c *Client, name string) (*object.VirtualMachine, mo.VirtualMachine) {
	t.Helper()
	ctx := context.Background()
	vm, err := find.NewFinder(c.Vim()).VirtualMachine(ctx, "/DC0/vm/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var o mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.uuid", "config.hardware.device", "runtime.host"}, &o); err != nil {
		t.Fatal(err)
	}
	return vm, o
}

func firstMAC(o mo.VirtualMachine) string {
	for _, d := range o.Config.Hardware.Device {
		if n, ok := d.(types.BaseVirtualEthernetCard); ok {
			return n.GetVirtualEthernetCard().MacAddress
		}
	}
	return ""
}

func TestDiscoverSimStandard(t *testing.T) {
	m := simulator.VPX()
	m.Portgroup = 0 // VMs on the standard "VM Network"
	s, m := startSim(t, m)
	c := connectSim(t, s)
	ctx := context.Background()
	_, o := simVM(t, c, "DC0_H0_VM0")
	seedStandard(t, m, *o.Runtime.Host)
	mac := firstMAC(o)

	// vcsim answers vm process list but not network vm port list: without
	// SSH the targets say why the port is unknown.
	ts, err := c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "no ssh", ts[0], map[string]any{
		"VM": "DC0_H0_VM0", "Host": "DC0_H0", "HostAddress": "198.51.100.7", "MAC": mac,
		"Portgroup": "VM Network", "VLAN": 100, "SwitchType": SwitchStandard, "VSwitch": "vSwitch7",
		"Uplinks":       []Uplink{{Name: "vmnic1", NIC: "vmnic1"}, {Name: "vmnic2", NIC: "vmnic2"}},
		"TeamingPolicy": "failover_explicit", "ActiveUplinks": []string{"vmnic1"}, "StandbyUplinks": []string{"vmnic2"},
		"Promiscuous": true, "BlindSpot": false, "PortID": uint32(0), "PortSource": "",
	})
	if n := ts[0].PortNote; !strings.Contains(n, "esxcli via vSphere API: esxcli network vm port list -w") || !strings.Contains(n, "no SSH fallback configured") {
		t.Errorf("PortNote %q: want the API failure and no SSH fallback", n)
	}

	// With SSH: the canned output of real hosts, for this VM.
	world := "603996"
	r := &cannedRunner{host: "DC0_H0", out: map[string]string{
		"esxcli vm process list": transcript(t, "esxcli/vm-process-list_vc1-8.0u3.txt",
			"56 4d be 1b 45 52 d6 bc-1b 4d 4b 5f 56 53 4d b6", esxiUUID(o.Config.Uuid)),
		"esxcli network vm port list -w " + world: transcript(t, "esxcli/network-vm-port-list_rayd62.txt",
			"00:0c:29:47:03:dc", mac),
	}}
	ts, err = c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{SSH: r})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "ssh fallback", ts[0], map[string]any{
		"PortID": uint32(33554578), "TeamUplink": "vmnic0", "PortSource": PortSourceSSH, "PortNote": "",
	})

	// Not in the process list: net-stats -l maps the MAC to the port.
	r = &cannedRunner{host: "DC0_H0", out: map[string]string{
		"esxcli vm process list": transcript(t, "esxcli/vm-process-list_vc1-8.0u3.txt"),
		"net-stats -l":           transcript(t, "net-stats/net-stats-l_vswitch-bmc.txt", "00:50:56:99:db:d6", mac),
	}}
	ts, err = c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{SSH: r})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "net-stats fallback", ts[0], map[string]any{
		"PortID": uint32(100663335), "TeamUplink": "", "PortSource": PortSourceSSH,
	})
	if !strings.Contains(ts[0].PortNote, "team uplink unknown") {
		t.Errorf("net-stats fallback: PortNote %q", ts[0].PortNote)
	}

	// SSH failing too: both reasons in the note.
	r = &cannedRunner{host: "DC0_H0", out: map[string]string{}}
	ts, err = c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{SSH: r})
	if err != nil {
		t.Fatal(err)
	}
	if n := ts[0].PortNote; ts[0].PortSource != "" || !strings.Contains(n, "esxcli via vSphere API") || !strings.Contains(n, "ssh: host DC0_H0: esxcli vm process list: sh:") {
		t.Errorf("both paths failing: PortSource %q PortNote %q", ts[0].PortSource, n)
	}
}

func TestDiscoverSimPoweredOff(t *testing.T) {
	m := simulator.VPX()
	m.Portgroup = 0
	s, _ := startSim(t, m)
	c := connectSim(t, s)
	ctx := context.Background()
	vm, _ := simVM(t, c, "DC0_H0_VM1")
	task, err := vm.PowerOff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	log := logCalls(c, 0)
	ts, err := c.Discover(ctx, "DC0_H0_VM1", DiscoverOptions{SSH: &cannedRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].PowerState != "poweredOff" || ts[0].PortID != 0 || ts[0].PortNote != "the VM is powered off: it has no switchport" {
		t.Errorf("powered off: %+v", ts)
	}
	if calls := log.Calls(); len(calls) != 2 {
		t.Errorf("powered off: API calls %q; want 2 (no esxcli)", calls)
	}
}

func TestDiscoverSimDistributed(t *testing.T) {
	s, m := startSim(t, simulator.VPX())
	c := connectSim(t, s)
	ctx := context.Background()
	_, o := simVM(t, c, "DC0_H0_VM0")
	var backing *types.VirtualEthernetCardDistributedVirtualPortBackingInfo
	for _, d := range o.Config.Hardware.Device {
		if n, ok := d.(types.BaseVirtualEthernetCard); ok {
			backing, _ = n.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		}
	}
	if backing == nil {
		t.Fatal("DC0_H0_VM0 has no distributed port backing")
	}
	sctx := m.Service.Context
	pg := sctx.Map.Get(types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: backing.Port.PortgroupKey}).(*simulator.DistributedVirtualPortgroup)
	sctx.WithLock(pg, func() {
		pg.Config.DefaultPortConfig = &types.VMwareDVSPortSetting{
			Vlan: &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{VlanId: []types.NumericRange{{Start: 100, End: 200}, {Start: 300, End: 300}}},
			UplinkTeamingPolicy: &types.VmwareUplinkPortTeamingPolicy{
				Policy:          &types.StringPolicy{Value: "loadbalance_srcmac"},
				UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{ActiveUplinkPort: []string{"Uplink 1", "Uplink 2"}, StandbyUplinkPort: []string{"Uplink 3"}},
			},
			SecurityPolicy: &types.DVSSecurityPolicy{AllowPromiscuous: &types.BoolPolicy{Value: types.NewBool(true)}},
		}
	})
	h := sctx.Map.Get(*o.Runtime.Host).(*simulator.HostSystem)
	sctx.WithLock(h, func() {
		n := *h.Config.Network
		n.ProxySwitch = []types.HostProxySwitch{{
			DvsUuid: backing.Port.SwitchUuid, DvsName: "DSwitch-Prod",
			UplinkPort: []types.KeyValue{{Key: "16", Value: "Uplink 1"}, {Key: "17", Value: "Uplink 2"}, {Key: "18", Value: "Uplink 3"}},
			Spec: types.HostProxySwitchSpec{Backing: &types.DistributedVirtualSwitchHostMemberPnicBacking{
				PnicSpec: []types.DistributedVirtualSwitchHostMemberPnicSpec{{PnicDevice: "vmnic4", UplinkPortKey: "16"}, {PnicDevice: "vmnic5", UplinkPortKey: "17"}},
			}},
		}}
		h.Config.Network = &n
	})
	ts, err := c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{Ports: PortsNone})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "distributed", ts[0], map[string]any{
		"SwitchType": SwitchDistributed, "VSwitch": "DSwitch-Prod", "Portgroup": "DC0_DVPG0",
		"DVSUUID": backing.Port.SwitchUuid, "DVPortgroupKey": backing.Port.PortgroupKey,
		"VLAN": 4095, "VLANTrunk": "100-200,300",
		"Uplinks":       []Uplink{{Name: "Uplink 1", NIC: "vmnic4"}, {Name: "Uplink 2", NIC: "vmnic5"}, {Name: "Uplink 3"}},
		"TeamingPolicy": "loadbalance_srcmac", "ActiveUplinks": []string{"Uplink 1", "Uplink 2"}, "StandbyUplinks": []string{"Uplink 3"},
		"Promiscuous": true, "BlindSpot": true,
	})
}

func TestDiscoverSimAmbiguousPaths(t *testing.T) {
	m := simulator.VPX()
	m.Portgroup = 0
	s, _ := startSim(t, m)
	c := connectSim(t, s)
	ctx := context.Background()
	f := find.NewFinder(c.Vim())
	root, err := f.Folder(ctx, "/DC0/vm")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := root.CreateFolder(ctx, "lab")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := simVM(t, c, "DC0_C0_RP0_VM0")
	task, err := sub.MoveInto(ctx, []types.ManagedObjectReference{other.Reference()})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if task, err = other.Rename(ctx, "DC0_H0_VM0"); err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Discover(ctx, "DC0_H0_VM0", DiscoverOptions{Ports: PortsNone})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrVMAmbiguous) {
		t.Fatalf("got %v; want ErrVMAmbiguous", err)
	}
	if len(e.Candidates) != 2 || !strings.HasPrefix(e.Candidates[0], "/DC0/vm/DC0_H0_VM0 (") || !strings.HasPrefix(e.Candidates[1], "/DC0/vm/lab/DC0_H0_VM0 (") {
		t.Errorf("candidates %q", e.Candidates)
	}
	if !strings.Contains(err.Error(), "pass one of these inventory paths to --vm") {
		t.Errorf("message %q", err)
	}
	ts, err := c.Discover(ctx, "/DC0/vm/lab/DC0_H0_VM0", DiscoverOptions{Ports: PortsNone})
	if err != nil || len(ts) != 1 || ts[0].VMRef != other.Reference().Value || ts[0].VMPath != "/DC0/vm/lab/DC0_H0_VM0" {
		t.Errorf("by path: %+v, %v", ts, err)
	}
}

// A standalone ESXi host serves the same API: discovery works against it.
func TestDiscoverSimESX(t *testing.T) {
	s, _ := startSim(t, simulator.ESX())
	c := connectSim(t, s)
	var names []string
	vms, err := find.NewFinder(c.Vim()).VirtualMachineList(context.Background(), "*")
	if err != nil || len(vms) == 0 {
		t.Fatalf("list VMs: %v", err)
	}
	for _, vm := range vms {
		names = append(names, vm.Name())
	}
	ts, err := c.Discover(context.Background(), names[0], DiscoverOptions{Ports: PortsAPI})
	if err != nil {
		t.Fatal(err)
	}
	checkTarget(t, "esx", ts[0], map[string]any{
		"VM": names[0], "VMPath": "/ha-datacenter/vm/" + names[0], "Portgroup": "VM Network",
		"VSwitch": "vSwitch0", "TeamingPolicy": "loadbalance_srcid", "ActiveUplinks": []string{"vmnic0"}, "BlindSpot": false,
	})
	if !strings.Contains(ts[0].PortNote, "esxcli network vm port list") || strings.Contains(ts[0].PortNote, "SSH") {
		t.Errorf("--ports api: PortNote %q", ts[0].PortNote)
	}
}

func TestDiscoverBadMode(t *testing.T) {
	c := &Client{}
	if _, err := c.Discover(context.Background(), "x", DiscoverOptions{Ports: "telepathy"}); err == nil || !strings.Contains(err.Error(), `"telepathy"`) {
		t.Errorf("got %v; want an unknown mode error", err)
	}
}

// ---------------------------------------------------------------------------
// Pure parts

func TestReverseTeamingBlindSpot(t *testing.T) {
	cases := []struct {
		name string
		t    Target
		want bool
	}{
		{"srcid two active", Target{TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"vmnic2", "vmnic3"}}, true},
		{"srcmac two active", Target{TeamingPolicy: "loadbalance_srcmac", ActiveUplinks: []string{"a", "b"}}, true},
		{"load based", Target{TeamingPolicy: "loadbalance_loadbased", ActiveUplinks: []string{"a", "b"}}, true},
		{"explicit two active", Target{TeamingPolicy: "failover_explicit", ActiveUplinks: []string{"a", "b"}}, true},
		{"one active, one standby", Target{TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"a"}, StandbyUplinks: []string{"b"}}, false},
		{"ip hash (needs a LAG)", Target{TeamingPolicy: "loadbalance_ip", ActiveUplinks: []string{"a", "b"}}, false},
		{"LAG among active", Target{TeamingPolicy: "loadbalance_srcid", ActiveUplinks: []string{"lag1", "Uplink 1"},
			Uplinks: []Uplink{{Name: "lag1", LAG: true}, {Name: "Uplink 1"}}}, false},
		{"policy unknown", Target{ActiveUplinks: []string{"a", "b"}}, false},
	}
	for _, c := range cases {
		if got := c.t.ReverseTeamingBlindSpot(); got != c.want {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
		}
	}
}

func TestEffectivePolicy(t *testing.T) {
	vs := &types.HostNetworkPolicy{
		Security:   &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(false)},
		NicTeaming: &types.HostNicTeamingPolicy{Policy: "loadbalance_srcid", NicOrder: &types.HostNicOrderPolicy{ActiveNic: []string{"vmnic2", "vmnic3"}}},
	}
	override := &types.HostNetworkPolicy{
		Security:   &types.HostNetworkSecurityPolicy{AllowPromiscuous: types.NewBool(true)},
		NicTeaming: &types.HostNicTeamingPolicy{NicOrder: &types.HostNicOrderPolicy{ActiveNic: []string{"vmnic3"}, StandbyNic: []string{"vmnic2"}}},
	}
	cases := []struct {
		name   string
		layers []*types.HostNetworkPolicy
		want   policy
	}{
		{"vswitch only", []*types.HostNetworkPolicy{nil, {}, vs}, policy{"loadbalance_srcid", []string{"vmnic2", "vmnic3"}, nil, false}},
		{"override order and promiscuous", []*types.HostNetworkPolicy{{}, override, vs}, policy{"loadbalance_srcid", []string{"vmnic3"}, []string{"vmnic2"}, true}},
		{"computed wins", []*types.HostNetworkPolicy{vs, override, nil}, policy{"loadbalance_srcid", []string{"vmnic2", "vmnic3"}, nil, false}},
		{"nothing", nil, policy{}},
	}
	for _, c := range cases {
		if got := effectivePolicy(c.layers...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v; want %+v", c.name, got, c.want)
		}
	}
}

func TestManagementAddress(t *testing.T) {
	vnic := func(dev, pg, ip string) types.HostVirtualNic {
		return types.HostVirtualNic{Device: dev, Portgroup: pg, Spec: types.HostVirtualNicSpec{Ip: &types.HostIpConfig{IpAddress: ip}}}
	}
	cases := []struct {
		name string
		host string
		net  *types.HostNetworkInfo
		want string
	}{
		{"management portgroup", "esx", &types.HostNetworkInfo{Vnic: []types.HostVirtualNic{vnic("vmk0", "vMotion", "10.0.0.1"), vnic("vmk1", "Management Network", "10.0.0.2")}}, "10.0.0.2"},
		{"vmk0", "esx", &types.HostNetworkInfo{Vnic: []types.HostVirtualNic{vnic("vmk1", "a", "10.0.0.3"), vnic("vmk0", "b", "10.0.0.4")}}, "10.0.0.4"},
		{"name is an address", "192.0.2.9", &types.HostNetworkInfo{}, "192.0.2.9"},
		{"nothing", "esx.example.com", nil, ""},
	}
	for _, c := range cases {
		if got := managementAddress(c.host, c.net); got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
}

func TestSameUUIDAndUnescape(t *testing.T) {
	if !sameUUID("56 4d be 1b 45 52 d6 bc-1b 4d 4b 5f 56 53 4d b6", "564DBE1B-4552-D6BC-1B4D-4B5F56534DB6") {
		t.Error("sameUUID: esxcli and API forms of one UUID differ")
	}
	if sameUUID("", "") || sameUUID("56 4d", "564e") {
		t.Error("sameUUID: matched different or empty UUIDs")
	}
	if got := unescapeName("a%2fb%5cc%25d"); got != `a/b\c%d` {
		t.Errorf("unescapeName: got %q", got)
	}
	if got := esxiUUID("564dbe1b-4552-d6bc-1b4d-4b5f56534db6"); got != "56 4d be 1b 45 52 d6 bc-1b 4d 4b 5f 56 53 4d b6" {
		t.Errorf("esxiUUID: got %q", got)
	}
}

func TestTeamingPolicyDescription(t *testing.T) {
	for in, want := range map[string]string{
		"loadbalance_srcid": "route based on originating port ID",
		"failover_explicit": "use explicit failover order",
		"something_new":     "something_new",
	} {
		if got := TeamingPolicyDescription(in); got != want {
			t.Errorf("TeamingPolicyDescription(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzNormThumbprint: accepted thumbprints are 40 or 64 uppercase hex
// digits, and normalising is idempotent.
func FuzzNormThumbprint(f *testing.F) {
	f.Add("4C:3D:58:C2:80:EA:08:A0:67:53:79:A8:D5:3B:7C:77:6A:8A:40:EE:D1:80:4E:17:26:39:5B:D7:07:23:D4:D8")
	f.Add("ab:cd")
	f.Add(strings.Repeat("0", 40))
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normThumbprint(s)
		if err != nil {
			return
		}
		if len(n) != 40 && len(n) != 64 || strings.ToUpper(n) != n || strings.ContainsAny(n, ": ") {
			t.Fatalf("normThumbprint(%q) = %q", s, n)
		}
		if again, err := normThumbprint(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q, %v", n, again, err)
		}
	})
}

func TestApplyPorts(t *testing.T) {
	targets := []Target{
		{MAC: "00:50:56:9d:fd:b1", Connected: true},
		{MAC: "00:50:56:9d:fd:b2", Connected: true},
		{MAC: "00:50:56:9d:fd:b3", Connected: false},
		{MAC: "00:50:56:9d:fd:b4", Connected: true, SwitchType: SwitchDistributed},
	}
	ports := []VMPort{
		{PortID: 50331657, MAC: "00:50:56:9D:FD:B1", TeamUplink: "vmnic2"},
		{PortID: 50331658, MAC: "00:50:56:9d:fd:b2", TeamUplinkVoid: true},
		{PortID: 67108874, MAC: "00:50:56:9d:fd:b4", TeamUplink: "vmnic5", DVPortID: "12"},
	}
	applyPorts(targets, ports, PortSourceSSH)
	want := []struct {
		port         uint32
		team, source string
		note, dvport string
	}{
		{50331657, "vmnic2", PortSourceSSH, "", ""},
		{50331658, "", PortSourceSSH, "team uplink is void: the port has no uplink to send on", ""},
		{0, "", "", "the vNIC is not connected: it has no switchport", ""},
		{67108874, "vmnic5", PortSourceSSH, "", "12"},
	}
	for i, w := range want {
		g := targets[i]
		if g.PortID != w.port || g.TeamUplink != w.team || g.PortSource != w.source || g.PortNote != w.note || g.DVPort != w.dvport {
			t.Errorf("target %d: got port %d team %q source %q note %q dvport %q; want %+v", i, g.PortID, g.TeamUplink, g.PortSource, g.PortNote, g.DVPort, w)
		}
	}
}

func TestEsxcliArg(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"worldid", "2178744", "<worldid>2178744</worldid>"},
		{"x", `a<b&"c"`, "<x>a&lt;b&amp;&#34;c&#34;</x>"},
	}
	for _, c := range cases {
		if got := esxcliArg(c.name, c.value); got.Name != c.name || got.Val != c.want {
			t.Errorf("esxcliArg(%q, %q) = %+v; want val %q", c.name, c.value, got, c.want)
		}
	}
}

// esxcli may name a distributed switch's uplink as the team uplink; the
// target carries the vmnic behind it (capture points are vmnics).
func TestApplyPortsDistributedTeamUplink(t *testing.T) {
	targets := []Target{{MAC: "00:50:56:aa:bb:cc", Connected: true,
		Uplinks: []Uplink{{Name: "Uplink 1", NIC: "vmnic4"}, {Name: "Uplink 2", NIC: "vmnic5"}}}}
	applyPorts(targets, []VMPort{{PortID: 67108881, MAC: "00:50:56:AA:BB:CC", TeamUplink: "Uplink 2", DVPortID: "12"}}, PortSourceSSH)
	if got := targets[0]; got.TeamUplink != "vmnic5" || got.PortID != 67108881 || got.DVPort != "12" {
		t.Errorf("got team uplink %q port %d dvport %q; want vmnic5 67108881 12", got.TeamUplink, got.PortID, got.DVPort)
	}
	targets[0].TeamUplink = ""
	applyPorts(targets, []VMPort{{PortID: 1, MAC: "00:50:56:aa:bb:cc", TeamUplink: "vmnic4"}}, PortSourceSSH)
	if targets[0].TeamUplink != "vmnic4" {
		t.Errorf("a vmnic team uplink became %q", targets[0].TeamUplink)
	}
}

// A VM on the lab's distributed switch (configs/lab-dvs.yaml): the switch,
// the distributed portgroup's VLAN and teaming in uplink names, the vmnic
// behind each uplink on the VM's host, the DVPort, and the team uplink.
func TestDiscoverLabDistributed(t *testing.T) {
	l, c := startVCLab(t, "../configs/lab-dvs.yaml")
	_, port, err := l.Net.FindPort("dvsvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Discover(context.Background(), "dvsvm2", DiscoverOptions{})
	if err != nil || len(ts) != 1 {
		t.Fatalf("discover: %+v %v", ts, err)
	}
	checkTarget(t, "dvsvm2", ts[0], map[string]any{
		"VM": "dvsvm2", "Host": "esx02", "MAC": "00:50:56:a2:10:02", "Connected": true,
		"Portgroup": "dvPG-VLAN100", "VLAN": 100, "SwitchType": SwitchDistributed, "VSwitch": "DSwitch", "DVPort": "1",
		"Uplinks":       []Uplink{{Name: "Uplink 1", NIC: "vmnic2"}, {Name: "Uplink 2", NIC: "vmnic3"}},
		"TeamingPolicy": "loadbalance_srcid", "ActiveUplinks": []string{"Uplink 1", "Uplink 2"}, "StandbyUplinks": []string{},
		"Promiscuous": false, "BlindSpot": true,
		"PortID": port.PortID, "TeamUplink": "vmnic2", "PortSource": PortSourceAPI, "PortNote": "",
	})
	if ts[0].DVSUUID == "" || ts[0].DVPortgroupKey == "" {
		t.Errorf("DVS UUID %q, portgroup key %q", ts[0].DVSUUID, ts[0].DVPortgroupKey)
	}
}

// --vm may name the VM by a vNIC's MAC address or a guest IP address; the
// vNIC is marked Selected. An address nobody has says so.
func TestDiscoverByAddress(t *testing.T) {
	_, c := startVCLab(t, "../configs/lab-article.yaml")
	ctx := context.Background()
	for _, spec := range []string{"00:50:56:9d:fd:b1", "00-50-56-9D-FD-B1", "192.168.100.12"} {
		ts, err := c.Discover(ctx, spec, DiscoverOptions{Ports: PortsNone})
		if err != nil || len(ts) != 1 || ts[0].VM != "testvm2" || !ts[0].Selected {
			t.Errorf("discover %s: %+v %v", spec, ts, err)
		}
	}
	for spec, hint := range map[string]string{"00:50:56:00:00:99": "no VM has a vNIC with this MAC", "192.0.2.99": "no VM reports this IP address"} {
		_, err := c.Discover(ctx, spec, DiscoverOptions{})
		var e *Error
		if !errors.As(err, &e) || e.Kind != ErrVMNotFound || !strings.Contains(e.Hint, hint) {
			t.Errorf("discover %s: %v; want not found with hint %q", spec, err, hint)
		}
	}
	// by name, no vNIC is singled out
	ts, err := c.Discover(ctx, "testvm2", DiscoverOptions{Ports: PortsNone})
	if err != nil || ts[0].Selected {
		t.Errorf("by name: %+v %v", ts, err)
	}
}
