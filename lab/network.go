package lab

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CapturePoint is a place in a host's data path where frames can be
// captured, in the vSwitch's own terms. pktcap-uw point names map onto
// these (EtherswitchDispath and UplinkRcvKernel are the uplink receive
// point; Vmxnet3Rx is VnicRx).
type CapturePoint int

const (
	UplinkRcv  CapturePoint = iota // frame received from the physical NIC
	UplinkSnd                      // frame handed to the physical NIC
	PortInput                      // frame entering the vSwitch from a port
	PortOutput                     // frame leaving the vSwitch to a port, before reverse teaming
	VnicRx                         // frame delivered to the vNIC (after reverse teaming)
	VnicTx                         // frame sent by the vNIC
	Drop                           // frame dropped by the host (host-wide)
	numPoints
)

var pointNames = [...]string{"UplinkRcv", "UplinkSnd", "PortInput", "PortOutput", "VnicRx", "VnicTx", "Drop"}

func (p CapturePoint) String() string {
	if p >= 0 && p < numPoints {
		return pointNames[p]
	}
	return fmt.Sprintf("CapturePoint(%d)", int(p))
}

// Captured is one frame seen at a capture point. Data is shared between
// subscribers and must not be modified.
type Captured struct {
	Time   time.Time
	Point  CapturePoint
	PortID uint32
	// VLAN is the 802.1Q VLAN the vSwitch associates with the frame at this
	// point (metadata, not in Data); -1 at points that carry none (VnicRx,
	// VnicTx).
	VLAN int
	Data []byte
	// Reason is set at the Drop point.
	Reason string
}

// Tap is a subscription to a capture point. Frames arrive on C; when the
// subscriber falls behind and the buffer is full, frames are dropped and
// counted, as pktcap-uw's kernel buffer does.
type Tap struct {
	C       <-chan Captured
	ch      chan Captured
	filter  func(frame []byte, vlan int) bool
	dropped atomic.Uint64
	matched atomic.Uint64
	close   func()
	once    sync.Once
}

// Dropped is the number of matching frames lost because the buffer was full.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Matched is the number of frames that matched the tap's filter.
func (t *Tap) Matched() uint64 { return t.matched.Load() }

// Close unsubscribes. Frames already queued stay readable; C is not closed.
func (t *Tap) Close() { t.once.Do(t.close) }

type tapList []*Tap

func (tl tapList) emit(c Captured) {
	for _, t := range tl {
		if t.filter != nil && !t.filter(c.Data, c.VLAN) {
			continue
		}
		t.matched.Add(1)
		select {
		case t.ch <- c:
		default:
			t.dropped.Add(1)
		}
	}
}

// Selector names a capture point on a host.
type Selector struct {
	Point CapturePoint
	// Uplink selects an uplink port by NIC name (vmnicN).
	Uplink string
	// PortID selects a vSwitch port by ID (VM ports and uplink ports).
	PortID uint32
}

// Network is the emulated data plane: hosts with vSwitches, the physical
// switch and the stations. All forwarding happens under one lock, frame by
// frame, so the model is deterministic; capture subscribers are fed through
// buffered channels and never slow forwarding down.
type Network struct {
	mu         sync.Mutex
	clock      func() time.Time
	hosts      []*host
	hostBy     map[string]*host
	psw        *pswitch
	stations   []*endpoint
	guests     map[string]*endpoint // VM nic (vm or vm#N) and station names
	nextDVPort map[string]int       // distributed switch -> next DVPort key
	queue      []func()
	busy       bool

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// Hop latencies of the model. The extra delay of a mirrored copy matches the
// ~16 µs between the two copies at PortOutput in the article's capture.
const (
	latPortInput  = 1 * time.Microsecond
	latToUplink   = 3 * time.Microsecond
	latWire       = 5 * time.Microsecond
	latMirror     = 16 * time.Microsecond
	latPortOutput = 4 * time.Microsecond
	latVnicRx     = 6 * time.Microsecond
	latGuest      = 60 * time.Microsecond
)

// NewNetwork builds the data plane of a validated topology.
func NewNetwork(cfg *Config) (*Network, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{clock: time.Now, hostBy: map[string]*host{}, guests: map[string]*endpoint{}, ctx: ctx, cancel: cancel,
		nextDVPort: map[string]int{}}
	for i := range cfg.Hosts {
		h, err := newHost(n, &cfg.Hosts[i], i)
		if err != nil {
			cancel()
			return nil, err
		}
		n.hosts = append(n.hosts, h)
		n.hostBy[h.name] = h
	}
	for _, sc := range cfg.Stations {
		m, _ := parseMAC(sc.MAC)
		ip, _ := netip.ParsePrefix(sc.IP)
		ep := newEndpoint(n, sc.Name, m, ip)
		ep.vlan = sc.VLAN
		n.stations = append(n.stations, ep)
		n.guests[sc.Name] = ep
	}
	psw, err := newPswitch(n, &cfg.Switch)
	if err != nil {
		cancel()
		return nil, err
	}
	n.psw = psw
	// Let the physical switch learn where each VM lives, as the RARP that
	// ESXi sends when a vNIC connects ("notify switches") does.
	n.mu.Lock()
	for _, h := range n.hosts {
		for _, vs := range h.vswitches {
			for _, p := range vs.ports {
				if p.team.notify {
					n.notifySwitch(p, n.clock())
				}
			}
		}
	}
	n.drainLocked()
	n.mu.Unlock()
	return n, nil
}

// SetClock replaces the time source (tests, offline generation).
func (n *Network) SetClock(f func() time.Time) {
	n.mu.Lock()
	n.clock = f
	n.mu.Unlock()
}

// Close stops background traffic and waits for it.
func (n *Network) Close() {
	n.cancel()
	n.wg.Wait()
}

// Subscribe taps a capture point of a host. filter (optional) selects
// frames; buf is the queue length before frames are dropped.
func (n *Network) Subscribe(hostName string, sel Selector, filter func(frame []byte, vlan int) bool, buf int) (*Tap, error) {
	if buf < 1 {
		buf = 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostBy[hostName]
	if h == nil {
		return nil, fmt.Errorf("lab: unknown host %q", hostName)
	}
	var list *tapList
	switch {
	case sel.Point == Drop:
		list = &h.dropTaps
	case sel.Uplink != "":
		u := h.uplink(sel.Uplink)
		if u == nil {
			return nil, fmt.Errorf("lab: host %s: no uplink %s on any vSwitch", hostName, sel.Uplink)
		}
		if sel.Point == VnicRx || sel.Point == VnicTx {
			return nil, fmt.Errorf("lab: host %s: %s is not a capture point of uplink %s", hostName, sel.Point, sel.Uplink)
		}
		list = &u.taps[sel.Point]
	default:
		p := h.port(sel.PortID)
		if p == nil {
			return nil, fmt.Errorf("lab: host %s: no switch port %d", hostName, sel.PortID)
		}
		list = p.tapsFor(sel.Point)
		if list == nil {
			return nil, fmt.Errorf("lab: host %s: %s is not a capture point of port %d", hostName, sel.Point, sel.PortID)
		}
	}
	ch := make(chan Captured, buf)
	t := &Tap{C: ch, ch: ch, filter: filter}
	*list = append(append(tapList(nil), *list...), t)
	t.close = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		var kept tapList
		for _, x := range *list {
			if x != t {
				kept = append(kept, x)
			}
		}
		*list = kept
	}
	return t, nil
}

// run executes f under the lock and then drains frames queued by guests
// (replies), so a ping's reply is forwarded before run returns.
func (n *Network) run(f func(now time.Time)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n.clock())
	n.drainLocked()
}

func (n *Network) drainLocked() {
	if n.busy {
		return
	}
	n.busy = true
	for len(n.queue) > 0 {
		f := n.queue[0]
		n.queue = n.queue[1:]
		f()
	}
	n.queue = nil
	n.busy = false
}

// ---------------------------------------------------------------------------
// Hosts and vSwitches

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
	taps [numPoints]tapList
}

type teaming struct {
	policy          string
	active, standby []string
	notify          bool
}

// reverseFilter reports whether the policy applies the teaming policy to
// inbound frames. IP hash needs a LAG, which sends one copy only; whether
// ESXi also filters there is not documented, so the lab does not.
func (t teaming) reverseFilter() bool { return t.policy != "iphash" }

type portgroup struct {
	name    string
	vlan    int
	promisc bool
	team    teaming
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
	team     teaming
	promisc  bool
	uplink   *uplinkPort // team uplink; nil = void
	pinned   bool
	since    time.Time
	guest    *endpoint
	taps     [numPoints]tapList
}

// VMInfo describes a VM of the lab as the host's inventory knows it.
type VMInfo struct {
	Name    string
	UUID    string
	WorldID int
	Running bool
	Host    string
}

func (p *vmPort) tapsFor(pt CapturePoint) *tapList {
	if pt == UplinkRcv || pt == UplinkSnd || pt == Drop {
		return nil
	}
	return &p.taps[pt]
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
	for si := range hc.VSwitches {
		sc := &hc.VSwitches[si]
		base := uint32(si + 2)
		if sc.Distributed != nil {
			// proxy switches are numbered from 0x04000000 (net-stats -l of
			// an ESXi 8 host with DvsPortset-0)
			base = max(base, uint32(4+sc.Distributed.Portset))
		}
		vs := &vswitch{h: h, name: sc.Name, dvs: sc.Distributed, base: base << 24, mtu: sc.MTU, cfg: sc, portgroups: map[string]*portgroup{}}
		for i, u := range sc.Uplinks {
			nic := addNIC(u)
			id := vs.base + 2 + uint32(i)
			if vs.dvs != nil {
				// a proxy switch numbers its uplink ports with the top bit
				// set (net-stats -l on ESXi 8: 2214592518 = 0x84000006)
				id = 1<<31 | vs.base + 6 + 2*uint32(i)
			}
			up := &uplinkPort{vs: vs, id: id, nic: nic}
			nic.port = up
			vs.uplinks = append(vs.uplinks, up)
		}
		top := teaming{policy: sc.Teaming.Policy, active: sc.Teaming.Active, standby: sc.Teaming.Standby, notify: true}
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
	for vi := range hc.VMs {
		vc := &hc.VMs[vi]
		uuid := vc.UUID
		if uuid == "" {
			uuid = vmUUID(hc.Name, vc.Name)
		}
		info := &VMInfo{Name: vc.Name, UUID: uuid, WorldID: world + vi*1000, Running: !vc.PoweredOff, Host: hc.Name}
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
			if id == 0 {
				if next[vs] == 0 {
					next[vs] = vs.base + 2 + uint32(len(vs.uplinks)) + 5
				}
				for vs.portByID(next[vs]) != nil {
					next[vs]++
				}
				id = next[vs]
				next[vs]++
			} else if vs.portByID(id) != nil || id>>24 != vs.base>>24 {
				return nil, fmt.Errorf("lab: host %s: VM %s: port ID %d is taken or not on %s (IDs there start at %d)", hc.Name, vc.Name, id, vs.name, vs.base)
			}
			p := &vmPort{vs: vs, id: id, vm: info, nicIndex: ni, mac: m, pg: pg, team: pg.team, promisc: pg.promisc, guest: ep}
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
	id = vs.base + 2 + 2*uint32(len(vs.uplinks))
	for vs.portByID(id) != nil {
		id++
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

// chooseUplink is the teaming decision for a port: among the active uplinks
// with link up (standby ones when none is up), srcport and loadbased pick by
// port ID, srcmac by the MAC's last byte, explicit and iphash the first in
// order (iphash spreads per frame at transmit time).
func (vs *vswitch) chooseUplink(p *vmPort) *uplinkPort {
	var cands []*uplinkPort
	for _, list := range [][]string{p.team.active, p.team.standby} {
		for _, name := range list {
			if u := vs.uplinkByName(name); u != nil && u.nic.up {
				cands = append(cands, u)
			}
		}
		if len(cands) > 0 {
			break
		}
	}
	if len(cands) == 0 {
		return nil
	}
	switch p.team.policy {
	case "srcport", "loadbased":
		return cands[int(p.id)%len(cands)]
	case "srcmac":
		return cands[int(p.mac[5])%len(cands)]
	default:
		return cands[0]
	}
}

// ---------------------------------------------------------------------------
// Forwarding inside a host

// uplinkReceive handles a frame arriving at a host NIC from the wire. vlan
// is the 802.1Q tag on the wire (0: untagged).
func (n *Network) uplinkReceive(nic *pnic, frame []byte, vlan int, at time.Time) {
	u := nic.port
	if u == nil || !nic.up {
		return
	}
	vs := u.vs
	u.taps[UplinkRcv].emit(Captured{Time: at, Point: UplinkRcv, PortID: u.id, VLAN: vlan, Data: frame})
	u.taps[PortInput].emit(Captured{Time: at, Point: PortInput, PortID: u.id, VLAN: vlan, Data: frame})
	dst, src := dstMAC(frame), srcMAC(frame)
	srcLocal := false
	for _, p := range vs.ports {
		if p.mac == src {
			srcLocal = true
			break
		}
	}
	at = at.Add(latPortOutput)
	for _, p := range vs.ports {
		if !p.inVLAN(vlan) || !(p.mac == dst || dst.isGroup() || p.promisc) {
			continue
		}
		if p.mac == src {
			continue // never loop a frame back to its sender
		}
		p.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: p.id, VLAN: vlan, Data: frame})
		if p.team.reverseFilter() && p.uplink != u {
			// Reverse teaming. Whether real ESXi shows these drops at the
			// Drop point is unknown (DESIGN.md §1a), so the lab does not:
			// nothing may rely on them.
			continue
		}
		if p.promisc && p.mac != dst && srcLocal && vs.h.rpfPromisc {
			n.hostDrop(vs.h, p.id, frame, vlan, at, "ReversePathFwdCheckPromisc")
			continue
		}
		p.taps[VnicRx].emit(Captured{Time: at.Add(latVnicRx), Point: VnicRx, PortID: p.id, VLAN: -1, Data: frame})
		p.guest.receive(frame, at.Add(latVnicRx))
	}
}

// hostDrop records a drop at the host's Drop point.
func (n *Network) hostDrop(h *host, portID uint32, frame []byte, vlan int, at time.Time, reason string) {
	h.dropTaps.emit(Captured{Time: at, Point: Drop, PortID: portID, VLAN: vlan, Data: frame, Reason: reason})
}

func (p *vmPort) inVLAN(vlan int) bool { return p.pg.vlan == 4095 || p.pg.vlan == vlan }

// vmTransmit handles a frame sent by a VM's vNIC.
func (n *Network) vmTransmit(p *vmPort, frame []byte, at time.Time) {
	vs := p.vs
	vlan := p.pg.vlan
	p.taps[VnicTx].emit(Captured{Time: at, Point: VnicTx, PortID: p.id, VLAN: -1, Data: frame})
	at = at.Add(latPortInput)
	p.taps[PortInput].emit(Captured{Time: at, Point: PortInput, PortID: p.id, VLAN: vlan, Data: frame})
	dst := dstMAC(frame)
	local := false
	out := at.Add(latPortOutput)
	for _, q := range vs.ports {
		if q == p || !q.inVLAN(vlan) {
			continue
		}
		if q.mac == dst {
			local = true
		} else if !dst.isGroup() && !q.promisc {
			continue
		}
		q.taps[PortOutput].emit(Captured{Time: out, Point: PortOutput, PortID: q.id, VLAN: vlan, Data: frame})
		q.taps[VnicRx].emit(Captured{Time: out.Add(latVnicRx), Point: VnicRx, PortID: q.id, VLAN: -1, Data: frame})
		q.guest.receive(frame, out.Add(latVnicRx))
	}
	if local {
		return
	}
	u := p.uplink
	if p.team.policy == "iphash" {
		u = vs.ipHashUplink(p, frame)
	}
	if u == nil || !u.nic.up {
		n.hostDrop(vs.h, p.id, frame, vlan, at, "no uplink")
		return
	}
	n.uplinkSend(u, frame, vlan, at.Add(latToUplink))
}

func (n *Network) uplinkSend(u *uplinkPort, frame []byte, vlan int, at time.Time) {
	u.taps[PortOutput].emit(Captured{Time: at, Point: PortOutput, PortID: u.id, VLAN: vlan, Data: frame})
	u.taps[UplinkSnd].emit(Captured{Time: at, Point: UplinkSnd, PortID: u.id, VLAN: vlan, Data: frame})
	if u.nic.wire != nil {
		n.psw.receive(u.nic.wire, frame, vlan, at.Add(latWire))
	}
}

// ipHashUplink picks the uplink of a frame under "route based on IP hash":
// (source IP xor destination IP) modulo the number of active uplinks that
// are up; non-IP frames use the port's team uplink.
func (vs *vswitch) ipHashUplink(p *vmPort, frame []byte) *uplinkPort {
	src, dst, _, _, ok := ipv4(frame)
	if !ok {
		return p.uplink
	}
	var up []*uplinkPort
	for _, name := range p.team.active {
		if u := vs.uplinkByName(name); u != nil && u.nic.up {
			up = append(up, u)
		}
	}
	if len(up) == 0 {
		return p.uplink
	}
	s, d := src.As4(), dst.As4()
	return up[int(s[3]^d[3])%len(up)]
}

// notifySwitch sends the RARP that ESXi emits from a port's team uplink so
// the physical switch learns (or relearns) where the vNIC's MAC lives.
func (n *Network) notifySwitch(p *vmPort, at time.Time) {
	if p.uplink == nil || !p.uplink.nic.up {
		return
	}
	f := arpFrame(etherTypeRARP, 3, broadcastMAC, p.mac, p.mac, netip.IPv4Unspecified(), p.mac, netip.IPv4Unspecified())
	n.uplinkSend(p.uplink, f, p.pg.vlan, at)
}

// ---------------------------------------------------------------------------
// Run-time changes

// SetTeamUplink pins a VM port's team uplink, as a power cycle, vMotion or
// failover would change it. With "notify switches" the host sends a RARP on
// the new uplink so the physical switch relearns the MAC.
func (n *Network) SetTeamUplink(hostName string, portID uint32, uplink string) error {
	var err error
	n.run(func(now time.Time) {
		h := n.hostBy[hostName]
		if h == nil {
			err = fmt.Errorf("lab: unknown host %q", hostName)
			return
		}
		p := h.port(portID)
		if p == nil {
			err = fmt.Errorf("lab: host %s: no VM port %d", hostName, portID)
			return
		}
		u := p.vs.uplinkByName(uplink)
		if u == nil {
			err = fmt.Errorf("lab: host %s: %s is not an uplink of %s", hostName, uplink, p.vs.name)
			return
		}
		p.uplink, p.pinned, p.since = u, true, now
		if p.team.notify {
			n.notifySwitch(p, now)
		}
	})
	return err
}

// SetLink sets a physical NIC's link state; unpinned ports move to another
// uplink as the teaming policy says.
func (n *Network) SetLink(hostName, nicName string, up bool) error {
	var err error
	n.run(func(now time.Time) {
		h := n.hostBy[hostName]
		nic := (*pnic)(nil)
		if h != nil {
			nic = h.nics[nicName]
		}
		if nic == nil {
			err = fmt.Errorf("lab: host %s: no NIC %s", hostName, nicName)
			return
		}
		nic.up = up
		if nic.port == nil {
			return
		}
		vs := nic.port.vs
		for _, p := range vs.ports {
			if p.pinned && p.uplink != nil && p.uplink.nic.up {
				continue
			}
			nu := vs.chooseUplink(p)
			if nu != p.uplink {
				p.uplink, p.since = nu, now
				if p.team.notify {
					n.notifySwitch(p, now)
				}
			}
		}
	})
	return err
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
	Promiscuous  bool
	Policy       string
	VM           VMInfo
	NIC          int
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
				Promiscuous: p.promisc, Policy: p.team.policy, VM: *p.vm, NIC: p.nicIndex}
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

// ---------------------------------------------------------------------------
// Guest stacks (VM vNICs and stations)

type endpoint struct {
	n     *Network
	name  string
	mac   mac
	ip    netip.Prefix
	vlan  int     // stations: 802.1Q tag they send (0: untagged)
	port  *vmPort // VM vNIC
	wire  *swPort // station
	arp   map[netip.Addr]mac
	ipID  uint16
	ident uint16
	// pending echo requests: key ident<<16|seq
	waiting map[uint32]chan time.Time
	rx      atomic.Uint64
}

func newEndpoint(n *Network, name string, m mac, ip netip.Prefix) *endpoint {
	f := fnv.New32a()
	f.Write([]byte(name))
	return &endpoint{n: n, name: name, mac: m, ip: ip, arp: map[netip.Addr]mac{}, ident: uint16(f.Sum32()),
		ipID: uint16(f.Sum32() >> 16), waiting: map[uint32]chan time.Time{}}
}

// send puts a frame on the endpoint's link at time at.
func (e *endpoint) send(frame []byte, at time.Time) {
	switch {
	case e.port != nil:
		e.n.vmTransmit(e.port, frame, at)
	case e.wire != nil:
		e.n.psw.receive(e.wire, frame, e.vlan, at)
	}
}

// receive is the guest's network stack: it answers ARP and ICMP echo for its
// own address and completes pings. Frames not addressed to it (seen in
// promiscuous mode) are only counted.
func (e *endpoint) receive(frame []byte, at time.Time) {
	e.rx.Add(1)
	dst := dstMAC(frame)
	if dst != e.mac && !dst.isGroup() {
		return
	}
	if !e.ip.IsValid() {
		return
	}
	me := e.ip.Addr()
	if op, sha, spa, tpa, ok := arpFields(frame); ok && etherType(frame) == etherTypeARP {
		if spa.IsValid() && !spa.IsUnspecified() && (tpa == me || e.arp[spa] != (mac{})) {
			e.arp[spa] = sha
		}
		if op == 1 && tpa == me {
			reply := arpFrame(etherTypeARP, 2, sha, e.mac, e.mac, me, sha, spa)
			e.later(reply, at)
		}
		return
	}
	src, dstIP, proto, l4, ok := ipv4(frame)
	if !ok || dstIP != me || proto != protoICMP || len(l4) < 8 {
		return
	}
	switch l4[0] {
	case 8: // echo request
		e.ipID++
		e.arp[src] = srcMAC(frame)
		reply := icmpEcho(0, srcMAC(frame), e.mac, me, src, e.ipID,
			uint16(l4[4])<<8|uint16(l4[5]), uint16(l4[6])<<8|uint16(l4[7]), l4[8:])
		e.later(reply, at)
	case 0: // echo reply
		key := uint32(l4[4])<<24 | uint32(l4[5])<<16 | uint32(l4[6])<<8 | uint32(l4[7])
		if ch := e.waiting[key]; ch != nil {
			select {
			case ch <- at:
			default:
			}
		}
	}
}

// later queues a frame the guest sends in response, after its processing
// delay; it is forwarded once the current frame is done.
func (e *endpoint) later(frame []byte, at time.Time) {
	e.n.queue = append(e.n.queue, func() { e.send(frame, at.Add(latGuest)) })
}

// resolve returns the MAC for ip, sending an ARP request when unknown.
func (e *endpoint) resolve(ip netip.Addr, at time.Time) (mac, bool) {
	if m, ok := e.arp[ip]; ok {
		return m, true
	}
	req := arpFrame(etherTypeARP, 1, broadcastMAC, e.mac, e.mac, e.ip.Addr(), mac{}, ip)
	e.send(req, at)
	e.n.drainLocked()
	m, ok := e.arp[ip]
	return m, ok
}

// ---------------------------------------------------------------------------
// Traffic

// PingResult summarises a ping run.
type PingResult struct {
	Sent, Received int
	RTTs           []time.Duration
}

// ErrUnknownStation is returned for names that are no VM or station.
var ErrUnknownStation = errors.New("no such VM or station")

func (n *Network) guest(name string) (*endpoint, error) {
	if e := n.guests[name]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("lab: %q: %w", name, ErrUnknownStation)
}

// target resolves a VM/station name or an IP address to an address.
func (n *Network) target(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, nil
	}
	e, err := n.guest(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if !e.ip.IsValid() {
		return netip.Addr{}, fmt.Errorf("lab: %s has no IP address", s)
	}
	return e.ip.Addr(), nil
}

// Ping sends count ICMP echo requests from one VM or station to another
// (name or IP), interval apart, ARPing first like a real stack.
func (n *Network) Ping(ctx context.Context, from, to string, count int, interval time.Duration) (PingResult, error) {
	var res PingResult
	n.mu.Lock()
	src, err := n.guest(from)
	var dst netip.Addr
	if err == nil {
		dst, err = n.target(to)
	}
	n.mu.Unlock()
	if err != nil {
		return res, err
	}
	if !src.ip.IsValid() {
		return res, fmt.Errorf("lab: %s has no IP address", from)
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(interval):
			}
		}
		reply := make(chan time.Time, 1)
		var sent time.Time
		ok := false
		n.run(func(now time.Time) {
			m, resolved := src.resolve(dst, now)
			if !resolved {
				return
			}
			src.ipID++
			seq := uint16(res.Sent + 1)
			key := uint32(src.ident)<<16 | uint32(seq)
			src.waiting[key] = reply
			sent = now.Add(latGuest)
			us := sent.UnixMicro()
			f := icmpEcho(8, m, src.mac, src.ip.Addr(), dst, src.ipID, src.ident, seq,
				pingPayload(uint32(us/1e6), uint32(us%1e6)))
			src.send(f, sent)
			ok = true
		})
		res.Sent++
		if !ok {
			continue
		}
		n.mu.Lock()
		key := uint32(src.ident)<<16 | uint32(res.Sent)
		delete(src.waiting, key)
		n.mu.Unlock()
		select {
		case t := <-reply:
			res.Received++
			res.RTTs = append(res.RTTs, t.Sub(sent))
		default:
		}
	}
	return res, nil
}

// Broadcast sends one broadcast ARP request from a VM or station for ip
// (who-has), which the physical switch floods to every port of the VLAN.
func (n *Network) Broadcast(from string, ip netip.Addr) error {
	var err error
	n.run(func(now time.Time) {
		var e *endpoint
		if e, err = n.guest(from); err != nil {
			return
		}
		e.send(arpFrame(etherTypeARP, 1, broadcastMAC, e.mac, e.mac, e.ip.Addr(), mac{}, ip), now)
	})
	return err
}

// SendUDP sends count UDP datagrams of size bytes (frame size) from one
// VM/station to another, resolving the destination by ARP first. It does
// not pace; see Generate for a rate.
func (n *Network) SendUDP(from, to string, count, size int) error {
	var err error
	n.run(func(now time.Time) {
		var src *endpoint
		if src, err = n.guest(from); err != nil {
			return
		}
		var dst netip.Addr
		if dst, err = n.target(to); err != nil {
			return
		}
		m, ok := src.resolve(dst, now)
		if !ok {
			err = fmt.Errorf("lab: %s: no ARP reply from %s", from, dst)
			return
		}
		for i := 0; i < count; i++ {
			src.ipID++
			src.send(udpFrame(m, src.mac, src.ip.Addr(), dst, src.ipID, 40000, 9, size, uint64(i)), now)
			n.drainLocked()
		}
	})
	return err
}

// SendRaw injects a raw untagged Ethernet frame from a VM or station.
func (n *Network) SendRaw(from string, frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("lab: frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	var err error
	n.run(func(now time.Time) {
		var e *endpoint
		if e, err = n.guest(from); err != nil {
			return
		}
		e.send(append([]byte(nil), frame...), now)
	})
	return err
}

// GenSpec describes generated UDP load.
type GenSpec struct {
	From, To string
	// Rate in frames per second; 0 sends as fast as possible.
	Rate int
	// Count frames in all; 0 runs until ctx ends.
	Count int
	// Size of each frame in bytes (min 60).
	Size int
}

// Generate sends UDP frames at a rate until Count frames are sent or ctx
// ends, and returns the number sent. Frames are paced in 1 ms batches.
func (n *Network) Generate(ctx context.Context, g GenSpec) (int, error) {
	n.mu.Lock()
	src, err := n.guest(g.From)
	var dst netip.Addr
	if err == nil {
		dst, err = n.target(g.To)
	}
	n.mu.Unlock()
	if err != nil {
		return 0, err
	}
	var dmac mac
	var ok bool
	n.run(func(now time.Time) { dmac, ok = src.resolve(dst, now) })
	if !ok {
		return 0, fmt.Errorf("lab: %s: no ARP reply from %s", g.From, dst)
	}
	start := time.Now()
	sent := 0
	const batchEvery = time.Millisecond
	for g.Count == 0 || sent < g.Count {
		if ctx.Err() != nil {
			return sent, nil
		}
		want := g.Count - sent
		if g.Count == 0 || want > 256 {
			want = 256
		}
		if g.Rate > 0 {
			due := int(time.Since(start).Seconds()*float64(g.Rate)) - sent
			if due <= 0 {
				select {
				case <-ctx.Done():
					return sent, nil
				case <-time.After(batchEvery):
				}
				continue
			}
			if due < want {
				want = due
			}
		}
		n.mu.Lock()
		now := n.clock()
		for i := 0; i < want; i++ {
			src.ipID++
			src.send(udpFrame(dmac, src.mac, src.ip.Addr(), dst, src.ipID, 40000, 9, g.Size, uint64(sent+i)), now)
		}
		n.drainLocked()
		n.mu.Unlock()
		sent += want
		runtime.Gosched() // let capture readers keep up on a busy core
	}
	return sent, nil
}

// Go runs f in the background until the network is closed.
func (n *Network) Go(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// Received reports how many frames a VM/station's stack has received.
func (n *Network) Received(name string) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, err := n.guest(name)
	if err != nil {
		return 0, err
	}
	return e.rx.Load(), nil
}

func splitHostNIC(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
