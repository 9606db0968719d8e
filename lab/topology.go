package lab

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/teaming"
)

// Hosts and vSwitches: NICs, uplink and VM ports, portgroups, and how
// they are numbered and listed.

type host struct {
	n          *Network
	cfg        *HostConfig
	name       string
	index      int
	nics       map[string]*pnic
	nicOrder   []*pnic
	vswitches  []*vswitch
	rpfPromisc bool
	dropTaps   tapList
	traceTaps  tapList // pktcap-uw --trace sessions
	clock      hostClock
	burst      burst
}

type pnic struct {
	name   string
	mac    mac
	up     bool
	driver string
	speed  int
	port   *uplinkPort // nil when the NIC is not an uplink
	wire   *swPort     // physical switch port, nil when not cabled
}

type vswitch struct {
	h          *host
	name       string
	dvs        *DVSMember // set on a distributed switch's proxy switch
	base       uint32
	mtu        int
	vmk0ID     uint32 // vmk0's port on 7.0 and later hosts; 0: computed (vmk0)
	cfg        *VSwitchConfig
	uplinks    []*uplinkPort
	ports      []*vmPort
	portgroups map[string]*portgroup
	pgOrder    []*portgroup
}

type uplinkPort struct {
	vs   *vswitch
	id   uint32
	nic  *pnic
	taps [pktcap.NumStages]tapList
}

type portgroup struct {
	name    string
	vlan    int
	promisc bool
	team    team
	cfg     *PortgroupConfig
}

type vmPort struct {
	vs       *vswitch
	id       uint32
	dvPort   string // DVPort key on a distributed switch
	vm       *VMInfo
	nicIndex int
	mac      mac
	pg       *portgroup
	team     team
	promisc  bool
	uplink   *uplinkPort // team uplink; nil = void
	filters  []string    // dvfilters on the vNIC
	pinned   bool
	since    time.Time
	guest    *endpoint
	taps     [pktcap.NumStages]tapList
}

// VMInfo describes a VM of the lab as the host's inventory knows it.
type VMInfo struct {
	Name    string
	UUID    string
	WorldID int
	Running bool
	Host    string
}

func newHost(n *Network, hc *HostConfig, index int) (*host, error) {
	h := &host{n: n, cfg: hc, name: hc.Name, index: index, nics: map[string]*pnic{}, rpfPromisc: hc.ReversePathFwdCheckPromisc}
	addNIC := func(name string) *pnic {
		if p := h.nics[name]; p != nil {
			return p
		}
		var num int
		fmt.Sscanf(name, "vmnic%d", &num)
		p := &pnic{name: name, up: true, driver: "ixgben", speed: 10000,
			mac: mac{0x00, 0x50, 0x56, 0x01, byte(index + 1), byte(num)}}
		h.nics[name] = p
		h.nicOrder = append(h.nicOrder, p)
		return p
	}
	for _, nc := range hc.NICs {
		p := addNIC(nc.Name)
		if nc.MAC != "" {
			p.mac, _ = parseMAC(nc.MAC)
		}
		if nc.Driver != "" {
			p.driver = nc.Driver
		}
		if nc.Speed != 0 {
			p.speed = nc.Speed
		}
		p.up = !nc.Down
	}
	world := 2099871 + index*100000
	// 7.0 and later number ports differently from 6.7 (portNumbering7).
	modern := hc.Version >= "7.0"
	var pn portNumbering7
	if modern {
		pn = newPortNumbering7(hc)
	}
	for si := range hc.VSwitches {
		sc := &hc.VSwitches[si]
		// before 7.0 a portset per byte from 0x02000000, standard and
		// proxy switches alike (a 5.5-6.5 host's esxtop: DvsPortset-0 at
		// 33554433)
		base := uint32(si + 2)
		if modern {
			base = pn.portset(si)
		}
		vs := &vswitch{h: h, name: sc.Name, dvs: sc.Distributed, base: base << 24, mtu: sc.MTU, cfg: sc, portgroups: map[string]*portgroup{}}
		for i, u := range sc.Uplinks {
			nic := addNIC(u)
			// before 7.0 an uplink's port is followed by its shadow port
			// (esxtop of a 5.5-6.5 host: vmnic0 33554436, "Shadow of
			// vmnic0" 33554437, vmnic1 33554438) and the first is the
			// switch's third (33554434 on a host whose build is not stated)
			id := vs.base + 2 + 2*uint32(i)
			if modern {
				id = 1<<31 | vs.base | pn.uplink()
			}
			up := &uplinkPort{vs: vs, id: id, nic: nic}
			nic.port = up
			vs.uplinks = append(vs.uplinks, up)
		}
		if modern && sc.Distributed == nil {
			if hasPortgroup(sc, "Management Network") && hc.Management != "" {
				vs.vmk0ID = vs.base | pn.next()
			}
		}
		top := team{policy: sc.Teaming.Policy, active: sc.Teaming.Active, standby: sc.Teaming.Standby, notify: true}
		if sc.Teaming.NotifySwitches != nil {
			top.notify = *sc.Teaming.NotifySwitches
		}
		for pi := range sc.Portgroups {
			pc := &sc.Portgroups[pi]
			pg := &portgroup{name: pc.Name, vlan: pc.VLAN, promisc: sc.Promiscuous, team: top, cfg: pc}
			if pc.Promiscuous != nil {
				pg.promisc = *pc.Promiscuous
			}
			if pc.Teaming.Policy != "" {
				pg.team.policy = pc.Teaming.Policy
			}
			if len(pc.Teaming.Active) > 0 || len(pc.Teaming.Standby) > 0 {
				pg.team.active, pg.team.standby = pc.Teaming.Active, pc.Teaming.Standby
			}
			if pc.Teaming.NotifySwitches != nil {
				pg.team.notify = *pc.Teaming.NotifySwitches
			}
			vs.portgroups[pg.name] = pg
			vs.pgOrder = append(vs.pgOrder, pg)
		}
		h.vswitches = append(h.vswitches, vs)
	}
	next := map[*vswitch]uint32{}
	if modern {
		pn.startVMs()
	}
	for vi := range hc.VMs {
		vc := &hc.VMs[vi]
		uuid := vc.UUID
		if uuid == "" {
			uuid = vmUUID(hc.Name, vc.Name)
		}
		info := &VMInfo{Name: vc.Name, UUID: uuid, WorldID: world + vi*1000, Running: !vc.PoweredOff, Host: hc.Name}
		var lows []uint32
		if modern && info.Running {
			lows = pn.vm(vc)
		}
		for ni := range vc.NICs {
			nc := &vc.NICs[ni]
			vs, pg := h.portgroup(nc.Portgroup)
			m, _ := parseMAC(nc.MAC)
			ip, _ := netip.ParsePrefix(nc.IP)
			name := vc.Name
			if ni > 0 {
				name = fmt.Sprintf("%s#%d", vc.Name, ni)
			}
			ep := newEndpoint(n, name, m, ip)
			n.guests[name] = ep
			if !info.Running {
				continue
			}
			id := nc.PortID
			switch {
			case id == 0 && modern:
				id = vs.base | lows[ni]
			case id == 0:
				if next[vs] == 0 {
					// after the uplinks and their shadow ports
					next[vs] = vs.base + 2 + max(uint32(len(vs.uplinks))+5, 2*uint32(len(vs.uplinks)))
				}
				for vs.portByID(next[vs]) != nil {
					next[vs]++
				}
				id = next[vs]
				next[vs]++
			case vs.portByID(id) != nil || id>>24 != vs.base>>24:
				return nil, fmt.Errorf("lab: host %s: VM %s: port ID %d is taken or not on %s (IDs there start at %d)", hc.Name, vc.Name, id, vs.name, vs.base)
			}
			p := &vmPort{vs: vs, id: id, vm: info, nicIndex: ni, mac: m, pg: pg, team: pg.team, promisc: pg.promisc, guest: ep, filters: nc.DVFilters}
			if vs.dvs != nil {
				p.dvPort = strconv.Itoa(n.nextDVPort[vs.dvs.Switch.Name])
				n.nextDVPort[vs.dvs.Switch.Name]++
			}
			ep.port = p
			if nc.TeamUplink != "" {
				p.uplink = h.uplink(nc.TeamUplink)
				p.pinned = true
			}
			vs.ports = append(vs.ports, p)
		}
	}
	for _, vs := range h.vswitches {
		for _, p := range vs.ports {
			if !p.pinned {
				p.uplink = vs.chooseUplink(p)
			}
		}
	}
	return h, nil
}

// vmUUID derives a stable BIOS UUID from host and VM name.
func vmUUID(hostName, vm string) string {
	f := fnv.New128a()
	f.Write([]byte(hostName + "/" + vm))
	b := f.Sum(nil)
	return fmt.Sprintf("42%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
}

func (h *host) portgroup(name string) (*vswitch, *portgroup) {
	for _, vs := range h.vswitches {
		if pg := vs.portgroups[name]; pg != nil {
			return vs, pg
		}
	}
	return nil, nil
}

func (h *host) uplink(name string) *uplinkPort {
	if nic := h.nics[name]; nic != nil {
		return nic.port
	}
	return nil
}

func (h *host) port(id uint32) *vmPort {
	for _, vs := range h.vswitches {
		if p := vs.portByID(id); p != nil {
			return p
		}
	}
	return nil
}

// vmk0 is the management vmknic when the vSwitch has the "Management
// Network" portgroup and the host a management address: its port ID
// (numbered after the uplinks and their shadow ports, 33554436 with one
// uplink) and MAC (the first uplink's, as ESXi gives vmk0).
func (vs *vswitch) vmk0() (id uint32, mac string, ok bool) {
	if vs.portgroups["Management Network"] == nil || vs.h.cfg.Management == "" {
		return 0, "", false
	}
	id = vs.vmk0ID
	if id == 0 {
		id = vs.base + 2 + 2*uint32(len(vs.uplinks))
		for vs.portByID(id) != nil {
			id++
		}
	}
	switch {
	case len(vs.uplinks) > 0:
		mac = vs.uplinks[0].nic.mac.String()
	case len(vs.h.nicOrder) > 0:
		mac = vs.h.nicOrder[0].mac.String()
	}
	return id, mac, true
}

func (vs *vswitch) portByID(id uint32) *vmPort {
	for _, p := range vs.ports {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (vs *vswitch) uplinkByName(name string) *uplinkPort {
	for _, u := range vs.uplinks {
		if u.nic.name == name {
			return u
		}
	}
	return nil
}

// PortInfo is the live state of a VM port, as esxcli network vm port list
// reports it.
type PortInfo struct {
	PortID       uint32
	VSwitch      string // the distributed switch's name on one
	DVPortID     string // "" on a standard vSwitch
	Portgroup    string
	VLAN         int
	MAC          string
	IP           string
	TeamUplink   string // "" when none (esxcli prints void)
	UplinkPortID uint32
	// ActiveFilters are the dvfilters on the vNIC.
	ActiveFilters []string
	Promiscuous   bool
	Policy        teaming.Policy
	VM            VMInfo
	NIC           int
}

// Ports lists the VM ports of a host in port ID order.
func (n *Network) Ports(hostName string) ([]PortInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostBy[hostName]
	if h == nil {
		return nil, fmt.Errorf("lab: unknown host %q", hostName)
	}
	var out []PortInfo
	for _, vs := range h.vswitches {
		for _, p := range vs.ports {
			pi := PortInfo{PortID: p.id, VSwitch: vs.name, DVPortID: p.dvPort, Portgroup: p.pg.name, VLAN: p.pg.vlan, MAC: p.mac.String(),
				Promiscuous: p.promisc, Policy: p.team.policy, VM: *p.vm, NIC: p.nicIndex, ActiveFilters: slices.Clone(p.filters)}
			if p.guest.ip.IsValid() {
				pi.IP = p.guest.ip.Addr().String()
			}
			if p.uplink != nil {
				pi.TeamUplink, pi.UplinkPortID = p.uplink.nic.name, p.uplink.id
			}
			out = append(out, pi)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PortID < out[j].PortID })
	return out, nil
}

// FindPort finds a VM's port on any host; nic counts vNICs from 0.
func (n *Network) FindPort(vm string, nic int) (host string, info PortInfo, err error) {
	for _, h := range n.hosts {
		ports, _ := n.Ports(h.name)
		for _, p := range ports {
			if p.VM.Name == vm && p.NIC == nic {
				return h.name, p, nil
			}
		}
	}
	return "", PortInfo{}, fmt.Errorf("lab: no running VM %q with vNIC %d", vm, nic)
}

// HostNames lists the hosts in topology order.
func (n *Network) HostNames() []string {
	var out []string
	for _, h := range n.hosts {
		out = append(out, h.name)
	}
	return out
}

func hasPortgroup(sc *VSwitchConfig, name string) bool {
	for _, pc := range sc.Portgroups {
		if pc.Name == name {
			return true
		}
	}
	return false
}

// portNumbering7 numbers the ports of a 7.0 or later host as real 7.x/8.x
// hosts do (testdata/transcripts/README.md, "Port numbering"):
//
//   - a port ID is the portset's number in the top byte and a host-wide
//     index in the low 24 bits: portsets are 0x04, 0x06, 0x08, ... in the
//     order the switches were made (vSwitch0 0x04000000 and vSwitch1
//     0x06000000 on a 7.0.3 host; DvsPortset-0 0x04000000 when it is the
//     only switch of an 8.x host), uplink ports have the top bit set as
//     well (2214592517 = 0x84000005);
//   - the index is unique across portsets (a vSwitch0 port and a
//     DvsPortset-0 port of one VM are 0x..27 and 0x..26), and each uplink
//     takes two, its port and its shadow port (uplinks 0x84000006 and
//     0x84000008, vmk0 0x0400000A on the 8.x host);
//   - the indexes start at 6 (the 8.x host's first uplink); vmk0 follows
//     its switch's uplinks; VM ports follow six indexes after the last
//     vmknic (where the 8.x host had vmk1, vmk10, vmk11, vmk50, its VDR port
//     and infravisor: its first VM port was 67108881 = 0x04000011);
//   - a VM's vNICs are numbered last first (.eth1 one below .eth0 on two
//     hosts).
//
// Indexes pinned in the topology (portID) are never handed out again.
type portNumbering7 struct {
	idx    uint32
	pinned map[uint32]bool
}

func newPortNumbering7(hc *HostConfig) portNumbering7 {
	pn := portNumbering7{idx: 6, pinned: map[uint32]bool{}}
	for _, vm := range hc.VMs {
		for _, nc := range vm.NICs {
			if nc.PortID != 0 {
				pn.pinned[nc.PortID&0xffffff] = true
			}
		}
	}
	return pn
}

// portset is the top byte of the si-th switch's port IDs.
func (pn *portNumbering7) portset(si int) uint32 { return uint32(4 + 2*si) }

// next hands out the next free index.
func (pn *portNumbering7) next() uint32 {
	for pn.pinned[pn.idx] {
		pn.idx++
	}
	pn.idx++
	return pn.idx - 1
}

// uplink hands out an uplink's index and skips its shadow port's.
func (pn *portNumbering7) uplink() uint32 {
	i := pn.next()
	pn.next()
	return i
}

// startVMs leaves the indexes of the vmknics and service ports a real host
// has before its VM ports.
func (pn *portNumbering7) startVMs() { pn.idx += 6 }

// vm returns the indexes of a VM's vNICs by NIC index (0 for pinned ones).
func (pn *portNumbering7) vm(vc *VMConfig) []uint32 {
	out := make([]uint32, len(vc.NICs))
	for ni := len(vc.NICs) - 1; ni >= 0; ni-- {
		if vc.NICs[ni].PortID == 0 {
			out[ni] = pn.next()
		}
	}
	return out
}
