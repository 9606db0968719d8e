package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

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
	dvsIDs     map[string]dvsIdent  // distributed switch -> the identities vCenter gave it
	queue      []func()
	busy       bool
	seed       uint64
	truth      *truth // nil unless RecordTruth

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
		nextDVPort: map[string]int{}, seed: max(cfg.Seed, 1)}
	for i := range cfg.Hosts {
		h, err := newHost(n, &cfg.Hosts[i], i)
		if err != nil {
			cancel()
			return nil, err
		}
		n.hosts = append(n.hosts, h)
		n.hostBy[h.name] = h
	}
	for _, h := range n.hosts {
		if c := h.cfg.Clock; c != (ClockConfig{}) {
			h.clock.set(c.Offset, float64(c.Drift)*1e-6, time.Now())
		}
		if err := n.SetDropBursts(h.name, h.cfg.DropBursts); err != nil {
			cancel()
			return nil, err
		}
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

// Go runs f in the background until the network is closed.
func (n *Network) Go(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// dvsIdent is what vCenter named a distributed switch and its portgroups:
// the switch's UUID and the portgroups' keys (dvportgroup-N), which a
// member host prints in "esxcli network vswitch dvs vmware list".
type dvsIdent struct {
	uuid     string
	uplinkPG string            // the uplink portgroup's key
	pg       map[string]string // portgroup name -> key
}

// setDVSIdentity records vCenter's identities of a distributed switch.
func (n *Network) setDVSIdentity(name string, id dvsIdent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dvsIDs == nil {
		n.dvsIDs = map[string]dvsIdent{}
	}
	n.dvsIDs[name] = id
}

// dvsIdentity returns the identities of a distributed switch (n.mu held).
// A lab without a vCenter has none: a UUID derived from the switch's name
// and keys numbered as a new vCenter numbers them (the uplink portgroup
// first) stand in.
func (n *Network) dvsIdentity(d *DVSConfig) dvsIdent {
	if id, ok := n.dvsIDs[d.Name]; ok {
		return id
	}
	id := dvsIdent{uuid: vmUUID("dvs", d.Name), uplinkPG: "dvportgroup-10", pg: map[string]string{}}
	for i, pc := range d.Portgroups {
		id.pg[pc.Name] = fmt.Sprintf("dvportgroup-%d", 11+i)
	}
	return id
}
