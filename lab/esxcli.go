package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/capturectl/capturectl/lab/internal/esxfmt"
	"github.com/capturectl/capturectl/lab/internal/shell"
)

// The lab's esxcli and net-stats: the namespaces capturectl and operators
// use to map a VM to its port and team uplink, printed in the layout of the
// real commands (lab/internal/esxfmt, checked against real transcripts).
//
// Choices where real hosts differ and the samples do not settle it:
//   - vSwitch "Class" is etherswitch before 6.7 and cswitch from 6.7 on (a
//     6.7 GA host printed cswitch; an undated host printed etherswitch), and
//     "Num Ports" 4352 before 6.7, 4736 from 6.7 on, likewise;
//   - "Uplinks" and "Portgroups" list the newest first, as both samples do
//     (Management Network, created at install, comes last);
//   - "esxcli network vm list" and "vm process list" list running VMs only.

const esxcliUsage = `Usage: esxcli [options] {namespace}+ {cmd} [cmd options]

Available Namespaces:
  network               Operations that pertain to the maintenance of networking on the host.
  vm                    A small number of operations that allow a user to Control Virtual Machine operations.
`

// esxcliError prints an esxcli error the way esxcli does and returns its
// exit status.
func esxcliError(p *shell.Proc, format string, args ...any) int {
	fmt.Fprintf(p.Stderr(), "Error: "+format+"\n", args...)
	return 1
}

func (h *labHost) esxcli(ctx context.Context, p *shell.Proc, args []string) int {
	args = args[1:]
	var words, opts []string
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			opts = args[i:]
			break
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		io.WriteString(p.Stdout(), esxcliUsage)
		return 0
	}
	cmd := strings.Join(words, " ")
	flags, err := parseEsxcliOpts(opts)
	if err != nil {
		return esxcliError(p, "%v", err)
	}
	out := p.Stdout()
	snap := h.snapshot()
	layout := esxcliLayout(h.version)
	var werr error
	switch cmd {
	case "network vm list":
		var vms []esxfmt.VM
		for _, vm := range snap.vms {
			vms = append(vms, esxfmt.VM{WorldID: uint64(vm.info.WorldID), Name: vm.info.Name, NumPorts: len(vm.ports), Networks: vm.networks()})
		}
		werr = esxfmt.WriteVMList(out, layout, vms)
	case "network vm port list":
		w, ok := flags.get("w", "world-id")
		if !ok {
			return esxcliError(p, "Missing required parameter -w|--world-id")
		}
		wid, err := strconv.Atoi(w)
		if err != nil {
			return esxcliError(p, "Invalid data constraint for parameter 'world-id'. Expected value of type integer")
		}
		var ports []esxfmt.VMPort
		for _, vm := range snap.vms {
			if vm.info.WorldID != wid {
				continue
			}
			for _, pi := range vm.ports {
				ip := pi.IP
				if ip == "" {
					ip = "0.0.0.0"
				}
				team := pi.TeamUplink
				if team == "" {
					team = "void"
				}
				ports = append(ports, esxfmt.VMPort{PortID: pi.PortID, VSwitch: pi.VSwitch, Portgroup: pi.Portgroup, DVPortID: pi.DVPortID, MAC: pi.MAC,
					IP: ip, TeamUplink: team, UplinkPortID: pi.UplinkPortID, ActiveFilters: strings.Join(pi.ActiveFilters, ", ")})
			}
		}
		werr = esxfmt.WriteVMPortList(out, ports)
	case "network vswitch standard list":
		name, _ := flags.get("v", "vswitch-name")
		var list []esxfmt.VSwitch
		for _, vs := range snap.vswitches {
			if name != "" && vs.Name != name {
				continue
			}
			list = append(list, vs)
		}
		if name != "" && len(list) == 0 {
			return esxcliError(p, "Unable to find vswitch %s", name)
		}
		werr = esxfmt.WriteVSwitchList(out, list)
	case "network vswitch standard portgroup list":
		werr = esxfmt.WritePortgroupList(out, layout, snap.portgroups)
	case "network vswitch standard policy failover get":
		name, ok := flags.get("v", "vswitch-name")
		if !ok {
			return esxcliError(p, "Missing required parameter -v|--vswitch-name")
		}
		pol, ok := snap.vsPolicy[name]
		if !ok {
			return esxcliError(p, "Unable to find vswitch %s", name)
		}
		werr = esxfmt.WriteFailoverPolicy(out, pol)
	case "network vswitch standard portgroup policy failover get":
		name, ok := flags.get("p", "portgroup-name")
		if !ok {
			return esxcliError(p, "Missing required parameter -p|--portgroup-name")
		}
		pol, ok := snap.pgPolicy[name]
		if !ok {
			return esxcliError(p, "Invalid portgroup %s", name)
		}
		werr = esxfmt.WriteFailoverPolicy(out, pol)
	case "network nic list":
		werr = esxfmt.WriteNICList(out, layout, snap.nics)
	case "network vswitch dvs vmware list":
		name, _ := flags.get("v", "vds-name")
		var list []esxfmt.DVS
		for _, d := range snap.dvs {
			if name == "" || d.Name == name {
				list = append(list, d)
			}
		}
		if name != "" && len(list) == 0 {
			return esxcliError(p, "Unable to find VDS %s", name)
		}
		werr = esxfmt.WriteDVSList(out, layout, list)
	case "vm process list":
		var procs []esxfmt.VMProcess
		for _, vm := range snap.vms {
			uuid, err := esxfmt.VMXUUID(vm.info.UUID)
			if err != nil {
				uuid = vm.info.UUID
			}
			procs = append(procs, esxfmt.VMProcess{DisplayName: vm.info.Name, WorldID: uint64(vm.info.WorldID),
				VMXCartelID: uint64(vm.info.WorldID - 1), UUID: uuid,
				ConfigFile: "/vmfs/volumes/datastore1/" + vm.info.Name + "/" + vm.info.Name + ".vmx"})
		}
		werr = esxfmt.WriteVMProcessList(out, procs)
	default:
		if realEsxcli[cmd] {
			// real hosts answer these; saying "unknown" would mislead
			return esxcliError(p, "the lab does not emulate esxcli %s (a real host answers it; see the capturectl README for what the lab answers)", cmd)
		}
		return esxcliError(p, "Unknown command or namespace %s", cmd)
	}
	if werr != nil {
		return 141
	}
	return 0
}

type esxcliFlags map[string]string

func (f esxcliFlags) get(short, long string) (string, bool) {
	if v, ok := f[short]; ok {
		return v, true
	}
	v, ok := f[long]
	return v, ok
}

// parseEsxcliOpts reads "-w 123", "--world-id=123" and "--world-id 123".
func parseEsxcliOpts(args []string) (esxcliFlags, error) {
	f := esxcliFlags{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		if name == "" || !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("Unknown parameter %s", a)
		}
		if k, v, ok := strings.Cut(name, "="); ok {
			f[k] = v
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("Missing value for parameter %s", a)
		}
		f[name] = args[i+1]
		i++
	}
	return f, nil
}

// netStats answers "net-stats -l": one row per port of every vSwitch.
func (h *labHost) netStats(ctx context.Context, p *shell.Proc, args []string) int {
	if len(args) < 2 || args[1] != "-l" {
		fmt.Fprintln(p.Stderr(), "net-stats: the lab implements only net-stats -l")
		return 1
	}
	if err := esxfmt.WriteNetStatsPorts(p.Stdout(), h.snapshot().netstats); err != nil {
		return 141
	}
	return 0
}

// vsish answers the one node people read for reverse teaming:
// `vsish -e get /net/portsets/PORTSET/ports/PORTID/teamUplink` (or cat)
// prints the port's team uplink; PORTSET is vSwitchN or DvsPortset-N.
func (h *labHost) vsish(_ context.Context, p *shell.Proc, args []string) int {
	const usage = "vsish: the lab answers only vsish -e get|cat /net/portsets/PORTSET/ports/PORTID/teamUplink"
	if len(args) != 4 || args[1] != "-e" || (args[2] != "get" && args[2] != "cat") {
		fmt.Fprintln(p.Stderr(), usage)
		return 1
	}
	parts := strings.Split(strings.Trim(args[3], "/"), "/")
	if len(parts) != 6 || parts[0] != "net" || parts[1] != "portsets" || parts[3] != "ports" || parts[5] != "teamUplink" {
		fmt.Fprintln(p.Stderr(), usage)
		return 1
	}
	id, err := strconv.ParseUint(parts[4], 10, 32)
	n := h.n
	n.mu.Lock()
	team, found := "", false
	for _, vs := range n.hostBy[h.name].vswitches {
		portset := vs.name
		if vs.dvs != nil {
			portset = fmt.Sprintf("DvsPortset-%d", vs.dvs.Portset)
		}
		if pt := vs.portByID(uint32(id)); err == nil && portset == parts[2] && pt != nil {
			found, team = true, "void"
			if pt.uplink != nil {
				team = pt.uplink.nic.name
			}
		}
	}
	n.mu.Unlock()
	if !found {
		fmt.Fprintf(p.Stderr(), "vsish: no port %s on portset %s here (net-stats -l lists the ports)\n", parts[4], parts[2])
		return 1
	}
	if _, err := fmt.Fprintln(p.Stdout(), team); err != nil {
		return 141
	}
	return 0
}

// hostSnapshot is a consistent copy of what the esxcli commands print.
type hostSnapshot struct {
	vms        []vmSnap
	vswitches  []esxfmt.VSwitch
	portgroups []esxfmt.Portgroup
	vsPolicy   map[string]esxfmt.FailoverPolicy
	pgPolicy   map[string]esxfmt.FailoverPolicy
	nics       []esxfmt.NIC
	netstats   []esxfmt.NetStatsPort
	dvs        []esxfmt.DVS
}

// esxcliLayout is the esxcli text layout of an ESXi release.
func esxcliLayout(version string) esxfmt.Layout {
	switch {
	case version < "6.0":
		return esxfmt.Layout55
	case version >= "9.0":
		return esxfmt.Layout90
	case version >= "7.0":
		return esxfmt.LayoutNewer
	}
	return esxfmt.Layout67
}

type vmSnap struct {
	info  VMInfo
	ports []PortInfo
}

func (v vmSnap) networks() []string {
	var out []string
	for _, p := range v.ports {
		out = append(out, p.Portgroup)
	}
	return out
}

func (h *labHost) snapshot() hostSnapshot {
	ports, _ := h.n.Ports(h.name)
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	hh := n.hostBy[h.name]
	s := hostSnapshot{vsPolicy: map[string]esxfmt.FailoverPolicy{}, pgPolicy: map[string]esxfmt.FailoverPolicy{}}
	byWorld := map[int]int{}
	for _, p := range ports {
		i, ok := byWorld[p.VM.WorldID]
		if !ok {
			i = len(s.vms)
			byWorld[p.VM.WorldID] = i
			s.vms = append(s.vms, vmSnap{info: p.VM})
		}
		s.vms[i].ports = append(s.vms[i].ports, p)
	}
	class, numPorts := "etherswitch", 4352
	if h.version >= "6.7" {
		class, numPorts = "cswitch", 4736
	}
	for _, vs := range hh.vswitches {
		if vs.dvs != nil {
			// a proxy switch: not a standard vSwitch; net-stats shows
			// its ports under the portset's name
			portset := fmt.Sprintf("DvsPortset-%d", vs.dvs.Portset)
			s.netstats = append(s.netstats, netStatsPorts(vs, portset)...)
			s.dvs = append(s.dvs, n.dvsList(vs, h.version, class, numPorts))
			continue
		}
		var uplinks, pgs []string
		for _, u := range vs.uplinks {
			uplinks = append(uplinks, u.nic.name)
		}
		_, _, hasVmk0 := vs.vmk0()
		clients := len(vs.ports)
		if hasVmk0 {
			clients++
		}
		for _, pg := range vs.pgOrder {
			pgs = append(pgs, pg.name)
			active := 0
			for _, p := range vs.ports {
				if p.pg == pg {
					active++
				}
			}
			if hasVmk0 && pg.name == "Management Network" {
				active++ // vmk0 is a client of its portgroup
			}
			s.portgroups = append(s.portgroups, esxfmt.Portgroup{Name: pg.name, VSwitch: vs.name, ActiveClients: active, VLANID: pg.vlan})
			pol := failoverPolicy(pg.team, vs.uplinks)
			pol.Overrides = &esxfmt.FailoverOverrides{
				LoadBalancing:  pg.cfg.Teaming.Policy != "",
				NotifySwitches: pg.cfg.Teaming.NotifySwitches != nil,
				Uplinks:        len(pg.cfg.Teaming.Active)+len(pg.cfg.Teaming.Standby) > 0,
			}
			s.pgPolicy[pg.name] = pol
		}
		slices.Reverse(uplinks)
		slices.Reverse(pgs)
		s.vswitches = append(s.vswitches, esxfmt.VSwitch{Name: vs.name, Class: class, NumPorts: numPorts,
			UsedPorts: usedPorts(len(vs.uplinks), clients), ConfiguredPorts: 128, MTU: vs.mtu, CDPStatus: "listen",
			BeaconInterval: 1, BeaconThreshold: 3, Uplinks: uplinks, Portgroups: pgs})
		top := team{policy: vs.cfg.Teaming.Policy, active: vs.cfg.Teaming.Active, standby: vs.cfg.Teaming.Standby, notify: true}
		if vs.cfg.Teaming.NotifySwitches != nil {
			top.notify = *vs.cfg.Teaming.NotifySwitches
		}
		s.vsPolicy[vs.name] = failoverPolicy(top, vs.uplinks)
		s.netstats = append(s.netstats, netStatsPorts(vs, vs.name)...)
	}
	for i, nic := range hh.nicOrder {
		link, speed, duplex := "Up", nic.speed, "Full"
		if !nic.up {
			link, speed, duplex = "Down", 0, "Half"
		}
		pci := fmt.Sprintf("0000:%02x:00.%d", 3+i/2, i%2)
		if h.version < "6.0" {
			pci = fmt.Sprintf("0000:%03x:00.%d", 3+i/2, i%2) // 5.5 prints three digits of bus: 0000:001:00.0
		}
		s.nics = append(s.nics, esxfmt.NIC{Name: nic.name, PCIDevice: pci, Driver: nic.driver,
			AdminStatus: "Up", LinkStatus: link, Speed: speed, Duplex: duplex, MAC: nic.mac.String(), MTU: 1500,
			Description: "Intel(R) Ethernet Controller X550"})
	}
	return s
}

// usedPorts is a standard vSwitch's "Used Ports": one of its own, two per
// uplink (the uplink's port and its shadow port) and one per client
// (vmknic or vNIC). This fits every real transcript in testdata (6.7 and
// 7.x/8.x hosts: 4 with one uplink and vmk0, 10 with three uplinks and
// three clients, 5 with one uplink and two clients); earlier builds are
// assumed to count the same.
func usedPorts(uplinks, clients int) int { return 1 + 2*uplinks + clients }

// netStatsPorts are the lines of net-stats -l for a vSwitch's ports:
// uplinks (type 4), vmk0 (type 3) and VM vNICs (type 5, subtype 9).
func netStatsPorts(vs *vswitch, switchName string) []esxfmt.NetStatsPort {
	var out []esxfmt.NetStatsPort
	for _, u := range vs.uplinks {
		out = append(out, esxfmt.NetStatsPort{PortNum: u.id, Type: 4, SwitchName: switchName, MAC: u.nic.mac.String(), ClientName: u.nic.name})
	}
	if id, mac, ok := vs.vmk0(); ok {
		out = append(out, esxfmt.NetStatsPort{PortNum: id, Type: 3, SwitchName: switchName, MAC: mac, ClientName: "vmk0"})
	}
	for _, p := range vs.ports {
		client := fmt.Sprintf("%s.eth%d", p.vm.Name, p.nicIndex)
		out = append(out, esxfmt.NetStatsPort{PortNum: p.id, Type: 5, SubType: 9, SwitchName: switchName, MAC: p.mac.String(), ClientName: client})
	}
	return out
}

// realEsxcli lists esxcli commands of real hosts near the ones the lab
// emulates, which it does not answer.
var realEsxcli = map[string]bool{
	"network vswitch dvs vmware lacp config get":             true,
	"network vswitch standard portgroup policy security get": true, "network vswitch standard policy security get": true,
	"network vswitch standard portgroup policy shaping get": true, "network vswitch standard policy shaping get": true,
	"network ip interface list": true, "network ip interface ipv4 get": true, "network nic get": true, "network nic stats get": true,
	"system version get": true, "system hostname get": true,
}

// failoverPolicy is the esxcli view of a teaming policy: uplinks of the
// vSwitch in neither list are unused.
func failoverPolicy(t team, uplinks []*uplinkPort) esxfmt.FailoverPolicy {
	pol := esxfmt.FailoverPolicy{LoadBalancing: string(t.policy), NetworkFailureDetection: "link",
		NotifySwitches: t.notify, Failback: true, ActiveAdapters: t.active, StandbyAdapters: t.standby}
	for _, u := range uplinks {
		if !contains(t.active, u.nic.name) && !contains(t.standby, u.nic.name) {
			pol.UnusedAdapters = append(pol.UnusedAdapters, u.nic.name)
		}
	}
	return pol
}

// dvsList is a proxy switch as "esxcli network vswitch dvs vmware list"
// prints it, with the identities vCenter gave the switch (n.mu held).
//
// Choices the transcripts do not settle: the DVPort list holds the host's
// uplink ports (Client vmnicN, as every sample) and then its VM ports (the
// Client named as net-stats names it, vm.ethN, an assumption: no sample
// shows a VM's port); free ports are not listed. Used Ports counts as a
// standard vSwitch does (it fits the 9.0 sample's 1 with no uplink and no
// client); Configured Ports is 512 (every cswitch sample) and 256 before
// 6.0 (the 5.0 sample); Num Ports is what vCenter reports for the proxy
// switch.
func (n *Network) dvsList(vs *vswitch, version, class string, numPorts int) esxfmt.DVS {
	id := n.dvsIdentity(vs.dvs.Switch)
	configured := 512
	if version < "6.0" {
		configured = 256
	}
	d := esxfmt.DVS{Name: vs.name, UUID: id.uuid, Class: class, NumPorts: numPorts,
		UsedPorts: usedPorts(len(vs.uplinks), len(vs.ports)), ConfiguredPorts: configured, MTU: vs.mtu,
		CDPStatus: "listen", BeaconTimeout: -1, VMwareBranded: true}
	for i, u := range vs.uplinks {
		d.Uplinks = append(d.Uplinks, u.nic.name)
		d.Ports = append(d.Ports, esxfmt.DVSPort{Client: u.nic.name, PortgroupID: id.uplinkPG, InUse: true, PortID: uplinkDVPortKey(vs, i)})
	}
	slices.Reverse(d.Uplinks) // newest first, as "Uplinks" of a standard vSwitch
	for _, p := range vs.ports {
		d.Ports = append(d.Ports, esxfmt.DVSPort{Client: fmt.Sprintf("%s.eth%d", p.vm.Name, p.nicIndex),
			PortgroupID: id.pg[p.pg.name], InUse: true, PortID: p.dvPort})
	}
	return d
}

// uplinkDVPortKey is the DVPort key of a proxy switch's i-th uplink port;
// uplink ports are DVPorts too, their keys after the VM ports'.
func uplinkDVPortKey(vs *vswitch, i int) string {
	return strconv.Itoa(1000 + vs.h.index*100 + i)
}
