package trace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/session"
)

// From is the sender of a whole-path trace (trace --vm B --from A).
type From struct {
	// Target is the sender's vNIC as discovered; nil when the sender is
	// an address outside the inventory (Address): then only the
	// receiver's side is captured, as without From, and Result.FromNote
	// says so.
	Target *esxi.Target
	// Address is what the user named the sender by (a VM name, MAC or IP
	// address).
	Address string
	// TeamUplink, when set, is polled as Config.TeamUplink is, for the
	// sender's port (Rediscover): its team uplink says which frames left
	// on another uplink.
	TeamUplink func(ctx context.Context) (string, error)
}

// PathNote says what the path trace could not do as asked.
type PathNote = string

// uplinksOf are the vmnics behind a target's vSwitch uplinks.
func uplinksOf(t esxi.Target) []string {
	var uplinks []string
	for _, u := range t.Uplinks {
		if u.NIC != "" {
			uplinks = append(uplinks, u.NIC)
		} else if strings.HasPrefix(u.Name, "vmnic") {
			uplinks = append(uplinks, u.Name)
		}
	}
	return uplinks
}

// DefaultMaxPointsPerHost is session's default limit of points per host
// (one SSH connection per host, a channel per point: OpenSSH's
// MaxSessions is 10 and a channel is kept for control commands).
const DefaultMaxPointsPerHost = 8

// PathPlan is the capture of the whole path between from (A, the sender)
// and to (B): on each end's host its port's transmit side (VnicTx,
// PortInput), UplinkSnd on every uplink of its vSwitch, every uplink's
// receive side, and its port's PortOutput and VnicRx — A's transmit and
// B's receive side for A's frames, B's transmit and A's receive side for
// the replies. With two uplinks that is 8 points a host, session's limit
// (perHost, 0 for DefaultMaxPointsPerHost). On a host that needs more
// (three or more uplinks) PortInput is left out first (VnicTx sees the
// frame a hop earlier; a frame lost between them is then not_sent at
// VnicTx instead of at PortInput); when that is not enough the plan is
// refused with ErrPlan saying why (a caller that passes a higher perHost
// must give the session the same, session.Options.MaxPointsPerHost, and
// only where the hosts' sshd allows that many sessions). When A and B share a host, a vSwitch
// and a VLAN their frames are switched locally and the uplinks are not
// captured. The notes say what was left out.
func PathPlan(to, from esxi.Target, base session.Plan, perHost int) (session.Plan, []PathNote, error) {
	if perHost <= 0 {
		perHost = DefaultMaxPointsPerHost
	}
	for _, t := range []esxi.Target{to, from} {
		if t.PortID == 0 {
			return base, nil, fmt.Errorf("trace: %s %s: %w: %s", t.VM, t.NIC, ErrNoPort, t.PortNote)
		}
	}
	if to.Host == from.Host && to.PortID == from.PortID {
		return base, nil, fmt.Errorf("trace: --from %s is the traced vNIC itself (%s port %d): %w", from.VM, to.Host, to.PortID, ErrPlan)
	}
	var notes []PathNote
	local := to.Host == from.Host && to.VSwitch == from.VSwitch && to.VLAN == from.VLAN
	if local {
		notes = append(notes, fmt.Sprintf("%s and %s share %s and VLAN %d on %s: their frames are switched locally, so the uplinks are not captured",
			from.VM, to.VM, to.VSwitch, to.VLAN, to.Host))
	}
	build := func(portInput map[string]bool) []session.Point {
		var pts []session.Point
		seen := map[string]bool{}
		add := func(p session.Point) {
			if !seen[p.Name()] {
				seen[p.Name()] = true
				pts = append(pts, p)
			}
		}
		for _, t := range []esxi.Target{from, to} {
			add(session.PortPoint(t.Host, t.PortID, pktcap.VnicTx))
			if portInput[t.Host] {
				add(session.PortPoint(t.Host, t.PortID, pktcap.PortInput))
			}
			if !local {
				for _, u := range uplinksOf(t) {
					add(session.UplinkTx(t.Host, u))
				}
				for _, u := range uplinksOf(t) {
					add(session.UplinkRx(t.Host, u))
				}
			}
			add(session.PortPoint(t.Host, t.PortID, pktcap.PortOutput))
			add(session.PortPoint(t.Host, t.PortID, pktcap.VnicRx))
		}
		return pts
	}
	perHostCount := func(pts []session.Point) map[string]int {
		n := map[string]int{}
		for _, p := range pts {
			n[p.Host]++
		}
		return n
	}
	portInput := map[string]bool{from.Host: true, to.Host: true}
	pts := build(portInput)
	for host, n := range perHostCount(pts) {
		if n > perHost {
			portInput[host] = false
			notes = append(notes, fmt.Sprintf("%s: %d points are more than the %d a host takes, so PortInput is not captured there (VnicTx sees each frame a hop earlier)", host, n, perHost))
		}
	}
	pts = build(portInput)
	for host, n := range perHostCount(pts) {
		if n > perHost {
			return base, notes, fmt.Errorf("trace: the path needs %d capture points on %s, more than the %d a host takes "+
				"(one SSH connection per host, one channel per point: OpenSSH's MaxSessions is 10 by default and a channel is kept for control commands; "+
				"raise session.Options.MaxPointsPerHost only where the host's sshd allows more): %w", n, host, perHost, ErrPlan)
		}
	}
	base.Points = pts
	if err := base.Validate(); err != nil {
		return base, notes, fmt.Errorf("trace: %w: %w", ErrPlan, err)
	}
	return base, notes, nil
}

// pathPoint is the path correlator's view of a plan point.
func pathPoint(p session.Point, a, b esxi.Target) (correlate.PathPoint, error) {
	cp, err := correlate.PointFromName(p.Name())
	if err != nil {
		return correlate.PathPoint{}, fmt.Errorf("trace: %w", err)
	}
	end := -1
	var switches uint8
	for e, t := range []esxi.Target{a, b} {
		if p.PortID == 0 && p.Host == t.Host && slices.Contains(uplinksOf(t), p.Uplink) {
			switches |= 1 << e
		}
	}
	switch {
	case p.PortID == 0:
	case p.Host == a.Host && p.PortID == a.PortID:
		end = 0
	case p.Host == b.Host && p.PortID == b.PortID:
		end = 1
	default:
		return correlate.PathPoint{}, fmt.Errorf("trace: point %s is on neither end's port: %w", p.Name(), ErrPlan)
	}
	return correlate.PathPoint{Name: cp.Name, Host: p.Host, Stage: cp.Stage, Uplink: cp.Uplink, End: end, Switches: switches}, nil
}

// pathState is a Live's whole-path part (Config.From).
type pathState struct {
	path       *correlate.PathCorrelator
	pathResult *correlate.PathResult
	pathHosts  []string // each plan point's host
	// aligned: observations are put on capturectl's clock (each host's
	// offset removed) before the merge; shift is each plan point's
	// offset (ns), ready once the clocks are known, and early holds what
	// came before
	aligned    bool
	shiftReady bool
	shift      []int64
	early      []pktcap.Observation
	pathCfg    correlate.PathConfig
	pathLive   [2]correlate.PathVerdictCounts
}

func (lv *Live) setupPath(plan session.Plan, a, b esxi.Target, window, maxTransit time.Duration, onFrame func(*correlate.PathFrame)) error {
	var pts []correlate.PathPoint
	for _, p := range plan.Points {
		pp, err := pathPoint(p, a, b)
		if err != nil {
			return err
		}
		pts = append(pts, pp)
		lv.pathHosts = append(lv.pathHosts, p.Host)
	}
	pa, pb := PortOf(a), PortOf(b)
	if len(pa.MAC) != 6 {
		return fmt.Errorf("trace: --from %s %s: discovery gave no MAC address (%q): its frames cannot be told apart: %w", a.VM, a.NIC, a.MAC, ErrPlan)
	}
	lv.pathCfg = correlate.PathConfig{Points: pts, A: correlate.End{Host: a.Host, Port: pa}, B: correlate.End{Host: b.Host, Port: pb},
		Window: window, MaxTransit: maxTransit,
		OnFrame: func(f *correlate.PathFrame) {
			lv.pathLive[f.Direction][f.Verdict]++
			if onFrame != nil {
				onFrame(f)
			}
		}}
	// the correlator is made once the clocks' uncertainties are known
	// (pathStarted); check the configuration now
	if _, err := correlate.NewPath(lv.pathCfg); err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	lv.aligned = true
	return nil
}

// pathStarted makes the path correlator once the hosts' clocks are known,
// sets each point's start and replays what came before.
func (lv *Live) pathStarted(stats []session.PointStats) {
	if !lv.aligned {
		return
	}
	lv.shift = make([]int64, len(lv.pathHosts))
	clocks := map[string]time.Duration{}
	for i, h := range lv.pathHosts {
		if lv.clock == nil {
			continue
		}
		c := lv.clock(h)
		if !c.Known() {
			continue // not in clocks: frames are not matched across it
		}
		lv.shift[i] = int64(c.Offset)
		at := time.Now()
		if i < len(stats) && !stats[i].Start.IsZero() {
			at = stats[i].Start
		}
		clocks[h] = max(clocks[h], c.Bound(at))
	}
	cfg := lv.pathCfg
	cfg.Clock = clocks
	pc, err := correlate.NewPath(cfg)
	if err != nil {
		// setupPath checked the same configuration
		panic(err)
	}
	lv.path = pc
	for i, st := range stats {
		if i < len(lv.pathHosts) && !st.Start.IsZero() {
			pc.SetStart(i, lv.onHost(st.Point.Host, st.Start, true))
		}
	}
	lv.shiftReady = true
	for _, o := range lv.early {
		lv.addAligned(o)
	}
	lv.early = nil
}

// addAligned puts an observation on capturectl's clock and merges it
// (held until the clocks are known).
func (lv *Live) addAligned(o pktcap.Observation) {
	if !lv.shiftReady {
		lv.early = append(lv.early, o)
		return
	}
	if o.Point >= 0 && o.Point < len(lv.shift) {
		o.Time = o.Time.Add(-time.Duration(lv.shift[o.Point]))
	}
	lv.m.Add(o)
}

// pathFinish sets the path correlator's stops, drops and the clocks'
// final uncertainties.
func (lv *Live) pathFinish(stats []session.PointStats) {
	if !lv.aligned {
		return
	}
	if lv.path == nil {
		// never started: what came is judged without clocks
		lv.pathStarted(stats)
	}
	now := time.Now()
	for i, st := range stats {
		if i >= len(lv.pathHosts) {
			break
		}
		if !st.Stop.IsZero() {
			lv.path.SetStop(i, lv.onHost(st.Point.Host, st.Stop, false))
		}
		switch {
		case st.Dropped > 0:
			lv.path.SetDropped(i, uint64(st.Dropped))
		case st.Dropped < 0:
			lv.path.SetDropsUnknown(i)
		}
	}
	if lv.clock != nil {
		for _, h := range lv.pathHosts {
			if c := lv.clock(h); c.Known() {
				lv.path.SetClock(h, c.Bound(now))
			}
		}
	}
}

// PathVerdicts counts the path's frames judged so far, per direction (as
// judged: see Verdicts).
func (lv *Live) PathVerdicts() [2]correlate.PathVerdictCounts {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.pathLive
}

// ResolveFrom finds the sender of a whole-path trace: a VM (name, MAC or
// guest IP address, as --vm takes; the vNIC the query names by address,
// else the first) or, when no VM has it, an IP or MAC address outside the
// inventory (From.Target nil: only the receiver's side is traced). A name
// that matches no VM is an error (esxi.ErrVMNotFound), not an address.
func ResolveFrom(ctx context.Context, client *esxi.Client, query string) (*From, error) {
	targets, err := client.Discover(ctx, query, esxi.DiscoverOptions{})
	if err != nil {
		if errors.Is(err, esxi.ErrVMNotFound) && isAddress(query) {
			return &From{Address: query}, nil
		}
		return nil, fmt.Errorf("trace: --from %s: %w", query, err)
	}
	i, err := Select(targets, query, -1)
	if err != nil {
		return nil, err
	}
	t := targets[i]
	return &From{Target: &t, Address: query}, nil
}

func isAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := net.ParseMAC(s)
	return err == nil
}
