package correlate

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/teaming"
)

// Point is one capture point of a capture.
type Point struct {
	// Name identifies the point, e.g. "esx02/vmnic2/rx".
	Name string
	// Stage is where the point sits on the frame's path.
	Stage pktcap.Stage
	// Uplink names the physical NIC of an uplink point (vmnicN).
	Uplink string
	// Start and Stop bound the time the point was capturing. A zero Start
	// means from its first observation; a zero Stop means until Close.
	Start, Stop time.Time
	// Dropped is the number of frames pktcap-uw reported dropped.
	Dropped uint64
	// DropsUnknown says that the point's drop count was never reported (a
	// pcapng without interface statistics, as a capture killed with -9
	// leaves it; a pcap file; a console transcript without pktcap-uw's
	// summary; a capture whose stream ended before its summary): the point
	// may have missed frames, so it is treated as a point that dropped.
	DropsUnknown bool
	// Gaps are times between Start and Stop when the point was not
	// capturing (between two captures of it that were joined): frames
	// then are inconclusive, as outside Start and Stop.
	Gaps []Gap
}

// Gap is a time a point was not capturing.
type Gap struct{ From, To time.Time }

// Port is the traced VM port.
type Port struct {
	Name        string
	MAC         net.HardwareAddr
	VLAN        int
	Promiscuous bool
	// Policy is the effective teaming policy: srcport, srcmac, explicit,
	// loadbased (reverse teaming applies) or iphash (it is not assumed).
	Policy teaming.Policy
	// TeamUplink is the port's team uplink at the start (as discovered).
	TeamUplink string
}

// Config configures a Correlator.
type Config struct {
	Points []Point
	Port   Port
	// Window groups sightings of the same bytes into one frame instance
	// (default 5 ms); the same bytes later are a new instance.
	Window time.Duration
	// KeyLen bytes of each untagged frame form its key (DefaultKeyLen).
	KeyLen int
	// Examples kept per flow and verdict (default 3).
	Examples int
	// OnInstance, when set, is called with every judged instance as soon as
	// it is judged (verdicts that depend on a point's drop count may still
	// turn inconclusive at Close, when drop counts are known). The Instance
	// is reused once the call returns: copy what is to be kept.
	OnInstance func(*Instance)
}

// Correlator matches observations across capture points and judges each
// frame instance. Feed it observations in time order (Merger does that for
// live streams); it keeps only the instances of the last window in memory.
type Correlator struct {
	cfg      Config
	seed     maphash.Seed
	pending  instTable
	queue    []*Instance // pending, by first sighting
	qhead    int
	free     []*Instance
	now      int64 // ns; the time of the newest observation
	flows    map[flowID]*Flow
	order    []*Flow
	stats    []PointStats
	timeline []TeamUplinkChange
	egress   map[string]int
	ingress  map[string]int
	closed   bool

	// team uplink confirmations (teamconfirm.go)
	teamTracked bool
	confirmedNS int64
	epochs      []epochState
	epoch       int32 // the open epoch, 0 when none
	polls       []teamPoll
	epochMax    int64
	byStage     map[pktcap.Stage][]int
	uplinkOf    map[string]int
	// the points of each stage on the receive path, and their masks
	up, po, rx, tx         []int
	portTx                 []int // the port's own transmit points (VnicTx, PortInput of the port)
	upMask, poMask, rxMask uint64
	first, last            []int64 // ns of each point's first and last observation
	// the common live window in ns, recomputed when a point's interval
	// changes (to 0: open)
	liveFrom, liveTo int64
	liveDirty        bool
	gaps             bool // some point has gaps

	lastFlow   *Flow
	lastFlowID flowID
}

// TeamUplinkChange records the traced port's team uplink from a time on.
type TeamUplinkChange struct {
	At     time.Time
	Uplink string
	Source string // "discovery", "esxcli", ...
	// After, when set, is the last time the previous uplink was known to
	// be in use: the change happened somewhere in (After, At], and frames
	// from the network in that interval cannot be judged.
	After time.Time
}

// New validates cfg and returns a Correlator.
func New(cfg Config) (*Correlator, error) {
	if len(cfg.Points) == 0 {
		return nil, errors.New("correlate: no capture points")
	}
	if p := cfg.Port.Policy; p != "" && !p.Valid() {
		return nil, fmt.Errorf("correlate: port %s: unknown teaming policy %q", cfg.Port.Name, p)
	}
	if len(cfg.Points) > 64 {
		return nil, fmt.Errorf("correlate: %d capture points; at most 64", len(cfg.Points))
	}
	cfg.Points = slices.Clone(cfg.Points) // SetStart & co. must not write the caller's slice
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Millisecond
	}
	if cfg.KeyLen <= 0 {
		cfg.KeyLen = DefaultKeyLen
	}
	if cfg.Examples <= 0 {
		cfg.Examples = 3
	}
	c := &Correlator{cfg: cfg, seed: maphash.MakeSeed(), flows: map[flowID]*Flow{},
		first: make([]int64, len(cfg.Points)), last: make([]int64, len(cfg.Points)),
		stats: make([]PointStats, len(cfg.Points)), egress: map[string]int{}, ingress: map[string]int{},
		byStage: map[pktcap.Stage][]int{}, uplinkOf: map[string]int{}, liveDirty: true}
	for i, p := range cfg.Points {
		if p.Name == "" {
			return nil, fmt.Errorf("correlate: point %d has no name", i)
		}
		c.gaps = c.gaps || len(p.Gaps) > 0
		c.stats[i] = PointStats{Name: p.Name, Stage: p.Stage, Uplink: p.Uplink}
		c.byStage[p.Stage] = append(c.byStage[p.Stage], i)
		if p.Stage == pktcap.StageUplinkRx {
			if p.Uplink == "" {
				return nil, fmt.Errorf("correlate: uplink point %s names no uplink", p.Name)
			}
			c.uplinkOf[p.Uplink] = i
		}
	}
	c.up, c.po, c.rx = c.byStage[pktcap.StageUplinkRx], c.byStage[pktcap.StagePortOutput], c.byStage[pktcap.StageVnicRx]
	c.upMask, c.poMask, c.rxMask = c.stageMask(pktcap.StageUplinkRx), c.stageMask(pktcap.StagePortOutput), c.stageMask(pktcap.StageVnicRx)
	for _, s := range []pktcap.Stage{pktcap.StageVnicTx, pktcap.StagePortInput, pktcap.StageUplinkTx} {
		c.tx = append(c.tx, c.byStage[s]...)
	}
	for _, s := range []pktcap.Stage{pktcap.StageVnicTx, pktcap.StagePortInput} {
		for _, i := range c.byStage[s] {
			if cfg.Points[i].Uplink == "" {
				c.portTx = append(c.portTx, i)
			}
		}
	}
	if cfg.Port.TeamUplink != "" {
		c.timeline = []TeamUplinkChange{{Uplink: cfg.Port.TeamUplink, Source: "discovery"}}
	}
	return c, nil
}

// SetTeamUplink records that the traced port's team uplink is uplink from
// time at on (a later discovery, or a change the lab made).
func (c *Correlator) SetTeamUplink(at time.Time, uplink, source string) {
	c.SetTeamUplinkBetween(time.Time{}, at, uplink, source)
}

// SetTeamUplinkBetween records a team uplink change noticed by polling: the
// previous uplink was seen in use at after, the new one at at.
func (c *Correlator) SetTeamUplinkBetween(after, at time.Time, uplink, source string) {
	if n := len(c.timeline); n > 0 && c.timeline[n-1].Uplink == uplink {
		return
	}
	c.timeline = append(c.timeline, TeamUplinkChange{At: at, After: after, Uplink: uplink, Source: source})
}

// uncertainTeam reports a team uplink change around t whose exact time is
// unknown.
func (c *Correlator) uncertainTeam(t time.Time) (TeamUplinkChange, bool) {
	if len(c.timeline) < 2 {
		return TeamUplinkChange{}, false
	}
	for i, ch := range c.timeline {
		if i > 0 && !ch.After.IsZero() && t.After(ch.After) && !t.After(ch.At) {
			return ch, true
		}
	}
	return TeamUplinkChange{}, false
}

// SetStart and SetStop record a point's live interval; SetDropped its drop
// count. Call SetStop as soon as a point stops (early stops included).
func (c *Correlator) SetStart(point int, t time.Time) {
	c.cfg.Points[point].Start, c.liveDirty = t, true
}

func (c *Correlator) SetStop(point int, t time.Time) {
	c.cfg.Points[point].Stop, c.liveDirty = t, true
}
func (c *Correlator) SetDropped(point int, n uint64) {
	c.cfg.Points[point].Dropped, c.cfg.Points[point].DropsUnknown = n, false
}

// SetDropsUnknown records that the point's drop count was never reported.
func (c *Correlator) SetDropsUnknown(point int) { c.cfg.Points[point].DropsUnknown = true }

func (c *Correlator) teamUplinkAt(t time.Time) string {
	if len(c.timeline) == 1 && !c.timeline[0].At.After(t) {
		return c.timeline[0].Uplink
	}
	team := ""
	for _, ch := range c.timeline {
		if ch.At.After(t) {
			break
		}
		team = ch.Uplink
	}
	return team
}

// Add takes one observation. Observations must come in time order; one
// older than the last is treated as happening at the last time.
func (c *Correlator) Add(o pktcap.Observation) {
	c.AddKeyed(o.Point, o.Time.UnixNano(), keyOf(c.seed, o.Data, o.OrigLen, c.cfg.KeyLen), o.Data)
}

// Keyer returns the function that keys frames for this Correlator (data:
// the captured bytes, origLen: the length on the wire). It is safe for
// concurrent use: readers can key frames in parallel for AddKeyed.
func (c *Correlator) Keyer() func(data []byte, origLen int) Key {
	seed, keyLen := c.seed, c.cfg.KeyLen
	return func(data []byte, origLen int) Key { return keyOf(seed, data, origLen, keyLen) }
}

// HeadLen is how many leading bytes of a frame AddKeyed needs (for the
// flow's addresses, protocol and ports).
const HeadLen = 96

// AddKeyed is Add for a frame keyed with Keyer: point, time in nanoseconds
// since the Unix epoch, key, and the frame's first HeadLen bytes (or all of
// them, if shorter), which it does not keep.
func (c *Correlator) AddKeyed(point int, ns int64, k Key, head []byte) {
	if point < 0 || point >= len(c.stats) || c.closed {
		return
	}
	late := false
	if ns < c.now {
		// Out of order: the point's stream fell further behind than the
		// merge waits (trace's Merger, a second). The instances of its
		// time may have been judged without this sighting: such a point
		// is treated as one that dropped, and a sighting that starts an
		// instance of its own is not judged.
		late = c.now-ns > int64(c.cfg.Window) || c.pending.get(k) == nil
		ns = c.now
	}
	c.now = ns
	if c.qhead < len(c.queue) && c.queue[c.qhead].firstNS < ns-int64(c.cfg.Window) {
		c.expire(ns)
	}
	st := &c.stats[point]
	st.Observations++
	if late {
		st.Late++
	}
	if st.Observations == 1 {
		c.first[point] = ns
	}
	c.last[point] = ns
	inst := c.pending.get(k)
	if inst == nil {
		inst = c.newInstance(k, ns, head)
		inst.late = late
		c.pending.put(k, inst)
		c.queue = append(c.queue, inst)
	} else if inst.counts[point] > 0 {
		st.Duplicates++
	}
	inst.counts[point]++
	inst.lastNS = ns
	if inst.nSight < maxSightings {
		inst.sights[inst.nSight] = sight{int32(point), ns}
		inst.nSight++
	}
}

const maxSightings = 16

func (c *Correlator) newInstance(k Key, ns int64, data []byte) *Instance {
	var inst *Instance
	if n := len(c.free); n > 0 {
		inst = c.free[n-1]
		c.free = c.free[:n-1]
		clear(inst.counts)
		inst.Sightings, inst.Arrivals = inst.Sightings[:0], inst.Arrivals[:0]
		inst.Team, inst.PortOutput, inst.VnicRx, inst.Verdict = "", 0, 0, 0
		inst.why, inst.mask, inst.nSight, inst.late = "", 0, 0, false
		inst.epoch, inst.teamDep = 0, false
	} else {
		inst = &Instance{counts: make([]uint16, len(c.cfg.Points))}
	}
	inst.key, inst.firstNS, inst.lastNS = k, ns, ns
	inst.hdrLen = copy(inst.hdr[:], data)
	return inst
}

// expire judges the instances whose window ended before ns.
func (c *Correlator) expire(ns int64) {
	limit := ns - int64(c.cfg.Window)
	for c.qhead < len(c.queue) {
		inst := c.queue[c.qhead]
		if inst.firstNS >= limit {
			break
		}
		c.queue[c.qhead] = nil
		c.qhead++
		c.finish(inst)
	}
	if c.qhead > 1024 && c.qhead*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.qhead:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		c.qhead = 0
	}
}

func (c *Correlator) finish(inst *Instance) {
	c.pending.del(inst.key)
	inst.First, inst.Last = time.Unix(0, inst.firstNS).UTC(), time.Unix(0, inst.lastNS).UTC()
	if len(c.polls) > 0 {
		c.applyPolls(inst.firstNS)
	}
	c.judge(inst)
	fk := flowOf(inst.hdr[:inst.hdrLen])
	f := c.lastFlow
	if f == nil || fk != c.lastFlowID {
		f = c.flows[fk]
		if f == nil {
			f = &Flow{Key: fk.key(), First: inst.First}
			c.flows[fk] = f
			c.order = append(c.order, f)
		}
		c.lastFlow, c.lastFlowID = f, fk
	}
	f.Last = inst.Last
	f.add(inst, c)
	if c.cfg.OnInstance != nil {
		inst.fillSightings()
		c.cfg.OnInstance(inst)
	}
	c.free = append(c.free, inst)
}

// Close judges what is pending, applies the points' drop counts, and
// returns the result. The Correlator cannot be used afterwards.
func (c *Correlator) Close() *Result {
	if !c.closed {
		for c.qhead < len(c.queue) {
			inst := c.queue[c.qhead]
			c.qhead++
			c.finish(inst)
		}
		c.closeEpochs()
		c.closed = true
	}
	var dropMask uint64
	for i, p := range c.cfg.Points {
		c.stats[i].Start, c.stats[i].Stop, c.stats[i].Dropped, c.stats[i].DropsUnknown = p.Start, p.Stop, p.Dropped, p.DropsUnknown
		if c.stats[i].Observations > 0 {
			c.stats[i].First, c.stats[i].Last = time.Unix(0, c.first[i]).UTC(), time.Unix(0, c.last[i]).UTC()
		}
		if p.Dropped > 0 || p.DropsUnknown || c.stats[i].Late > 0 {
			dropMask |= 1 << i
		}
	}
	r := &Result{Port: c.cfg.Port, Points: c.stats, TeamUplinks: c.timeline, Window: c.cfg.Window, epochs: c.epochs}
	for _, i := range c.byStage[pktcap.StageUplinkRx] {
		r.Uplinks = append(r.Uplinks, c.cfg.Points[i].Uplink)
	}
	r.CommonStart, r.CommonStop = c.commonWindow()
	for _, f := range c.order {
		f.settle(dropMask, c)
		for v, n := range f.Counts {
			r.Totals[v] += n
		}
		r.Flows = append(r.Flows, f)
	}
	r.TeamUplinkCheck = c.teamCheck(dropMask)
	return r
}

func (c *Correlator) commonWindow() (start, stop time.Time) {
	for _, p := range c.cfg.Points {
		if p.Start.After(start) {
			start = p.Start
		}
		if !p.Stop.IsZero() && (stop.IsZero() || p.Stop.Before(stop)) {
			stop = p.Stop
		}
	}
	return start, stop
}

// teamCheck compares the reported team uplink with what the frames show.
// The evidence is which uplinks the port's frames left by and which ones
// frames delivered to it came in on alone: a point that dropped frames (or
// whose drops are unknown) may have missed the copy that would tell
// otherwise, so then nothing is inferred.
func (c *Correlator) teamCheck(dropped uint64) TeamUplinkCheck {
	evidence := c.upMask | c.poMask | c.rxMask | c.stageMask(pktcap.StageUplinkTx)
	if m := dropped & evidence; m != 0 && (len(c.egress) > 0 || len(c.ingress) > 0) {
		tc := TeamUplinkCheck{Insufficient: true, Detail: "not enough evidence to check the team uplink: " + c.dropText(m)}
		if len(c.timeline) > 0 {
			tc.Reported = c.timeline[len(c.timeline)-1].Uplink
		}
		return tc
	}
	return teamCheck(c.timeline, c.egress, c.ingress)
}

func teamCheck(timeline []TeamUplinkChange, egress, ingress map[string]int) TeamUplinkCheck {
	tc := TeamUplinkCheck{Egress: egress, IngressOnlyDelivered: ingress}
	if len(timeline) > 0 {
		tc.Reported = timeline[len(timeline)-1].Uplink
	}
	best, n := "", 0
	for u, k := range egress {
		if k > n || (k == n && u < best) {
			best, n = u, k
		}
	}
	tc.Inferred = best
	if best != "" && tc.Reported != "" && best != tc.Reported && len(timeline) == 1 {
		tc.Disagree = true
		tc.Detail = fmt.Sprintf("the port transmits on %s but discovery reported team uplink %s", best, tc.Reported)
	}
	for u := range ingress {
		if u != tc.Reported && tc.Reported != "" {
			tc.Disagree = true
			if tc.Detail == "" {
				tc.Detail = fmt.Sprintf("frames that arrived only on %s were delivered, so %s acted as the team uplink, not %s", u, u, tc.Reported)
			}
		}
	}
	return tc
}

// arrivedMask is the uplink points that saw an instance.
func (c *Correlator) arrivedMask(inst *Instance) (m uint64) {
	for _, i := range c.up {
		if inst.counts[i] > 0 {
			m |= 1 << i
		}
	}
	return m
}

// arrivals lists the uplinks that saw an instance, in point order.
func (c *Correlator) arrivals(inst *Instance) []string {
	out := inst.Arrivals[:0]
	for _, i := range c.up {
		if inst.counts[i] > 0 {
			out = append(out, c.cfg.Points[i].Uplink)
		}
	}
	return out
}

func sum(inst *Instance, points []int) (n int) {
	for _, i := range points {
		n += int(inst.counts[i])
	}
	return n
}

func (c *Correlator) stageMask(s pktcap.Stage) (m uint64) {
	for _, i := range c.byStage[s] {
		m |= 1 << i
	}
	return m
}

// notLive names a point that was not capturing during the instance.
func (c *Correlator) notLive(inst *Instance) string {
	if c.liveDirty {
		from, to := c.commonWindow()
		c.liveFrom, c.liveTo = 0, 0
		if !from.IsZero() {
			c.liveFrom = from.UnixNano()
		}
		if !to.IsZero() {
			c.liveTo = to.UnixNano()
		}
		c.liveDirty = false
	}
	if inst.firstNS >= c.liveFrom && (c.liveTo == 0 || inst.lastNS <= c.liveTo) && !c.gaps {
		return ""
	}
	for _, p := range c.cfg.Points {
		switch {
		case !p.Start.IsZero() && inst.First.Before(p.Start):
			return fmt.Sprintf("%s was not capturing yet (it started %v later)", p.Name, p.Start.Sub(inst.First).Round(time.Microsecond))
		case !p.Stop.IsZero() && inst.Last.After(p.Stop):
			return fmt.Sprintf("%s had stopped capturing (%v earlier)", p.Name, inst.Last.Sub(p.Stop).Round(time.Microsecond))
		}
		for _, g := range p.Gaps {
			if !inst.Last.Before(g.From) && !inst.First.After(g.To) {
				return fmt.Sprintf("%s was not capturing (between two of its captures, %s to %s)", p.Name,
					g.From.UTC().Format("15:04:05.000000"), g.To.UTC().Format("15:04:05.000000"))
			}
		}
	}
	return ""
}

// seenAt names the points that saw an instance, with how often when more
// than once: "esx02/drop", "pasted.txt#1 trace/PktFree and 3 more".
func (c *Correlator) seenAt(inst *Instance) string {
	var names []string
	for i, n := range inst.counts {
		if n == 0 {
			continue
		}
		name := c.cfg.Points[i].Name
		if n > 1 {
			name += fmt.Sprintf(" (%d copies)", n)
		}
		names = append(names, name)
	}
	if len(names) > 4 {
		names = append(names[:3], fmt.Sprintf("%d more points", len(names)-3))
	}
	return strings.Join(names, ", ")
}

// names lists the names of points.
func (c *Correlator) names(points []int) string {
	names := make([]string, len(points))
	for k, i := range points {
		names[k] = c.cfg.Points[i].Name
	}
	return strings.Join(names, " and ")
}

// judge gives an instance its verdict; see DESIGN.md §6.
func (c *Correlator) judge(inst *Instance) {
	inst.Team = c.teamUplinkAt(inst.First)
	inst.PortOutput = sum(inst, c.po)
	inst.VnicRx = sum(inst, c.rx)
	inst.Arrivals = c.arrivals(inst)
	tx := sum(inst, c.tx)
	if inst.late {
		inst.Verdict, inst.why = Inconclusive, "its first sighting came late, out of order (a capture point's stream fell behind): the others may have been judged already"
		return
	}
	if why := c.notLive(inst); why != "" {
		inst.Verdict, inst.why = Inconclusive, why
		return
	}
	if inst.hdrLen < 14 {
		// no Ethernet header: the frame's bytes were not captured (a
		// pasted --trace header without its hex), so it cannot be told
		// apart from, or matched with, frames at other points
		inst.Verdict, inst.why = Inconclusive, fmt.Sprintf("its bytes were not captured, so it cannot be matched with what other points saw; seen at %s", c.seenAt(inst))
		return
	}
	if ch, ok := c.uncertainTeam(inst.First); ok && len(inst.Arrivals) > 0 {
		inst.Verdict = Inconclusive
		after := ch.After
		if after.UnixNano() <= 1 {
			after = time.Time{} // never confirmed before the change
		}
		inst.why = fmt.Sprintf("the team uplink changed to %s %s", ch.Uplink, since(after, ch.At))
		return
	}
	uplinkPoints := len(c.up) > 0
	havePO := len(c.po) > 0
	haveRx := len(c.rx) > 0
	allUplinks, rxMask := c.upMask, c.rxMask
	// a port whose policy is not known is judged as the vSwitch's default
	// (srcport) would be
	reverse := c.cfg.Port.Policy == "" || c.cfg.Port.Policy.ReverseFilter()
	P, R := inst.PortOutput, inst.VnicRx
	fromTeam := 0
	if i, ok := c.uplinkOf[inst.Team]; ok {
		fromTeam = int(inst.counts[i])
	}
	switch {
	case P == 0 && R == 0 && tx > 0 && len(c.portTx) > 0 && sum(inst, c.portTx) == 0:
		// leaving the host, but the port's own transmit points did not
		// see it: another port sent it, or they missed it
		inst.Verdict, inst.why = Inconclusive, fmt.Sprintf("seen only at %s; %s did not see it, so this port did not send it (or that capture missed it)",
			c.seenAt(inst), c.names(c.portTx))
	case P == 0 && R == 0 && tx > 0:
		// a frame sent to this port would have been at PortOutput too
		inst.Verdict, inst.mask = Transmitted, c.poMask|rxMask
		for _, i := range c.byStage[pktcap.StageUplinkTx] {
			if inst.counts[i] > 0 && c.cfg.Points[i].Uplink != "" {
				c.egress[c.cfg.Points[i].Uplink]++
			}
		}
	case P == 0 && R == 0 && len(inst.Arrivals) == 0:
		// seen only at points off this port's path (PktFree, PreDVFilter,
		// Drop, the hops of a --trace path): no uplink saw it come in
		if !havePO {
			inst.Verdict, inst.why = Inconclusive, fmt.Sprintf("seen only at %s, which do not say whether it was for this port, and PortOutput was not captured", c.seenAt(inst))
			return
		}
		inst.Verdict, inst.mask = NotForwarded, c.poMask
		inst.why = fmt.Sprintf("seen only at %s (no uplink saw it come in), never at PortOutput: not forwarded to this port", c.seenAt(inst))
	case P == 0 && R == 0:
		if !havePO {
			inst.Verdict, inst.why = Inconclusive, "seen only on uplinks, and PortOutput was not captured"
			return
		}
		inst.Verdict, inst.mask = NotForwarded, c.poMask
	case R > 0 && P == 0 && havePO:
		inst.Verdict, inst.why = Inconclusive, "seen at VnicRx but not at PortOutput"
	case R > P && havePO:
		inst.Verdict, inst.why = Inconclusive, fmt.Sprintf("%d copies at VnicRx but %d at PortOutput", R, P)
	case !haveRx:
		inst.Verdict, inst.why = Inconclusive, "VnicRx was not captured"
	case len(inst.Arrivals) == 0 && uplinkPoints:
		// Not from the physical network: another port of the vSwitch sent it.
		if R == 0 {
			inst.Verdict, inst.mask = DroppedAfterPortOutput, rxMask|allUplinks
		} else {
			inst.Verdict, inst.mask = Local, allUplinks
		}
	case len(inst.Arrivals) == 0:
		// No uplink captures: the arrival uplink is unknown.
		switch {
		case R == 0:
			inst.Verdict, inst.why = Inconclusive, "not delivered; without uplink captures reverse teaming cannot be told from other drops"
		case R < P:
			inst.Verdict, inst.mask = DeliveredDupsRemoved, rxMask
		default:
			// a copy PortOutput's capture missed would mean duplicates
			inst.Verdict, inst.mask = Delivered, c.poMask
		}
	case R == 0:
		switch {
		case reverse && inst.Team == "":
			inst.Verdict, inst.why = Inconclusive, "not delivered; the port's team uplink is not known, so reverse teaming cannot be told from other drops"
		case reverse && fromTeam == 0:
			inst.Verdict, inst.mask, inst.teamDep = FilteredReverseTeaming, rxMask|allUplinks, true
		default:
			inst.Verdict, inst.mask, inst.teamDep = DroppedAfterPortOutput, rxMask, reverse
		}
	case R < P:
		switch arrived := sum(inst, c.up); {
		case reverse && fromTeam > 0 && len(inst.Arrivals) > 1:
			inst.Verdict, inst.mask = DeliveredDupsRemoved, rxMask
		case reverse && inst.Team != "" && fromTeam == 0 && P-arrived == R:
			// PortOutput saw more copies than the uplinks: the others
			// came from a port of this vSwitch (a local VM's broadcast,
			// flooded back by the physical switch onto another uplink),
			// were delivered, and the copies from non-team uplinks were
			// removed (an uplink's capture that missed a copy would make
			// it look local)
			inst.Verdict, inst.mask, inst.teamDep = DeliveredDupsRemoved, rxMask|allUplinks, true
		default:
			// an arrival an uplink's capture missed could make these
			// duplicates removed by reverse teaming
			inst.Verdict, inst.mask = Delivered, rxMask|allUplinks
			inst.why = fmt.Sprintf("%d of %d copies at PortOutput reached VnicRx; the others were dropped, not by reverse teaming", R, P)
			// "not by reverse teaming" rests on which uplink was the team
			// uplink: had it been another, the copies from this one would
			// have been removed by it
			inst.teamDep = reverse && inst.Team != ""
			if reverse && inst.Team != "" && fromTeam == 0 && len(inst.Arrivals) > 0 {
				// delivered, yet no copy came from the team uplink: one of
				// these uplinks acted as the team uplink, and then the
				// others were removed by reverse teaming after all
				c.teamContradicted(inst)
			}
		}
	default:
		inst.Verdict = Delivered
		if len(inst.Arrivals) > P {
			// PortOutput saw fewer copies than came in: if its capture
			// missed one, these were duplicates removed
			inst.mask = c.poMask
		} else {
			// a copy that came in on another uplink too would show at
			// PortOutput: both captures would have to have missed it
			inst.pair = [2]uint64{c.poMask, allUplinks &^ c.arrivedMask(inst)}
			if reverse && len(inst.Arrivals) > 1 {
				// copies from two uplinks all delivered: reverse teaming
				// removes all but the team uplink's, so PortOutput held
				// another copy (a local port's, flooded back) that its
				// capture missed, and one of these was removed
				inst.mask |= c.poMask
			}
		}
		if reverse && inst.Team != "" && fromTeam == 0 && len(inst.Arrivals) == 1 {
			// and the team uplink's capture may have missed its copy
			inst.mask |= allUplinks
			c.ingress[inst.Arrivals[0]]++
			inst.why = fmt.Sprintf("arrived only on %s, not on the reported team uplink %s: the port's team uplink is %s at this time",
				inst.Arrivals[0], inst.Team, inst.Arrivals[0])
			c.teamContradicted(inst)
		}
	}
	if inst.teamDep {
		c.teamEpoch(inst)
	}
}

// Instance is one frame instance: the sightings of the same bytes within
// the window, and the verdict for the traced port.
type Instance struct {
	First, Last time.Time
	Sightings   []Sighting // at most 16, in time order (filled for OnInstance)
	Arrivals    []string   // uplinks it arrived on
	Team        string     // the port's team uplink at First
	PortOutput  int        // copies at PortOutput
	VnicRx      int        // copies at VnicRx
	Verdict     Verdict

	why             string
	late            bool      // its first sighting came out of order (Late)
	mask            uint64    // points whose drops make this verdict inconclusive
	pair            [2]uint64 // so do drops at a point of each of these together
	epoch           int32     // the team-uplink epoch it rests on (teamconfirm.go), 0 none
	teamDep         bool      // the verdict rests on which uplink was the team uplink
	key             Key
	firstNS, lastNS int64
	counts          []uint16
	hdr             [HeadLen]byte
	hdrLen          int
	sights          [maxSightings]sight
	nSight          int
}

// sight is a Sighting as the hot path keeps it.
type sight struct {
	point int32
	ns    int64
}

func (i *Instance) cloneSightings() []Sighting {
	i.fillSightings()
	return slices.Clone(i.Sightings)
}

// fillSightings makes Sightings from the recorded sights (done only when
// they are looked at: for OnInstance and for examples).
func (i *Instance) fillSightings() {
	if len(i.Sightings) == i.nSight {
		return
	}
	s := i.Sightings[:0]
	for _, x := range i.sights[:i.nSight] {
		s = append(s, Sighting{Point: int(x.point), Time: time.Unix(0, x.ns).UTC()})
	}
	i.Sightings = s
}

// Sighting is one observation of an instance.
type Sighting struct {
	Point int
	Time  time.Time
}

// Flow returns the instance's flow key.
func (i *Instance) Flow() FlowKey { return flowOf(i.hdr[:i.hdrLen]).key() }

// Reason explains the verdict in one line.
func (i *Instance) Reason() string {
	if i.why != "" && (i.Verdict == Inconclusive || i.Verdict == Delivered || i.Verdict == NotForwarded) {
		return i.why
	}
	arr := strings.Join(i.Arrivals, " and ")
	switch i.Verdict {
	case Delivered:
		if arr == "" {
			return "delivered"
		}
		return "arrived on " + arr + ", delivered"
	case DeliveredDupsRemoved:
		var others []string
		for _, a := range i.Arrivals {
			if a != i.Team {
				others = append(others, a)
			}
		}
		if len(others) == 0 {
			return fmt.Sprintf("%d copies at PortOutput, %d at VnicRx (uplinks not captured)", i.PortOutput, i.VnicRx)
		}
		return fmt.Sprintf("arrived on %s; the copy from %s (not the team uplink %s) was dropped by reverse teaming", arr, strings.Join(others, " and "), i.Team)
	case FilteredReverseTeaming:
		return fmt.Sprintf("filtered by reverse teaming: arrived on %s, team uplink is %s", arr, i.Team)
	case NotForwarded:
		return "arrived on " + arr + "; not forwarded to this port"
	case DroppedAfterPortOutput:
		if arr == "" {
			return "from a local port; reached PortOutput but not VnicRx"
		}
		return fmt.Sprintf("arrived on %s (team uplink %s); reached PortOutput but not VnicRx", arr, i.Team)
	case Local:
		return "from another port on this vSwitch (no uplink saw it)"
	case Transmitted:
		return "sent by this port"
	}
	return i.why
}

// Verdict says where a frame instance stopped for the traced port.
type Verdict int

// Verdicts (DESIGN.md §6).
const (
	Delivered Verdict = iota
	DeliveredDupsRemoved
	FilteredReverseTeaming
	NotForwarded
	DroppedAfterPortOutput
	Local
	Transmitted
	Inconclusive
	numVerdicts
)

var verdictNames = [...]string{
	"delivered", "delivered, duplicates removed by reverse teaming", "filtered by reverse teaming",
	"not forwarded to this port", "dropped after PortOutput (not reverse teaming)", "local", "transmitted by this port", "inconclusive",
}

var verdictIDs = [...]string{"delivered", "delivered_dups_removed", "filtered_reverse_teaming", "not_forwarded",
	"dropped_after_portoutput", "local", "transmitted", "inconclusive"}

func (v Verdict) String() string {
	if v >= 0 && v < numVerdicts {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// ID is the verdict's stable machine name (JSON).
func (v Verdict) ID() string {
	if v >= 0 && v < numVerdicts {
		return verdictIDs[v]
	}
	return "unknown"
}

// Verdicts lists every verdict in order.
func Verdicts() []Verdict {
	out := make([]Verdict, numVerdicts)
	for i := range out {
		out[i] = Verdict(i)
	}
	return out
}

// Example is a judged instance kept for the report.
type Example struct {
	First     time.Time
	Verdict   Verdict
	Reason    string
	Sightings []Sighting
	mask      uint64
	pair      [2]uint64
	epoch     int32
}

// Flow is the frames of one flow key and their verdict counts.
type Flow struct {
	Key         FlowKey
	First, Last time.Time
	Counts      [numVerdicts]int
	Examples    []Example
	// Path counts copies along the receive path, for pictures.
	Path PathCounts

	masked map[maskedKey]int
	// pathOf holds, per drop-dependent verdict, the copies it would
	// count as delivered and as filtered (per uplink), folded into Path
	// by settle if the verdict stands.
	pathOf map[maskedKey]*[2][]int
}

type maskedKey struct {
	v     Verdict
	mask  uint64
	pair  [2]uint64
	epoch int32
}

// missed is the points among dropped whose drops leave a verdict resting
// on mask and pair unproven (0: it stands).
func missed(dropped, mask uint64, pair [2]uint64) uint64 {
	m := mask & dropped
	if pair[0]&dropped != 0 && pair[1]&dropped != 0 {
		m |= (pair[0] | pair[1]) & dropped
	}
	return m
}

func (f *Flow) add(inst *Instance, c *Correlator) {
	up := c.up
	if f.Path.Arrived == nil && len(up) > 0 {
		f.Path.Arrived, f.Path.Delivered, f.Path.Filtered = make([]int, len(up)), make([]int, len(up)), make([]int, len(up))
	}
	f.Path.PortOutput += inst.PortOutput
	f.Path.VnicRx += inst.VnicRx
	key := maskedKey{inst.Verdict, inst.mask, inst.pair, inst.epoch}
	provisional := inst.mask != 0 || inst.pair[0] != 0 || inst.epoch != 0
	delivered, filtered := f.Path.Delivered, f.Path.Filtered
	if provisional && len(up) > 0 {
		// what the copies are said to have met holds only if the verdict
		// does (settle)
		if f.pathOf == nil {
			f.pathOf = map[maskedKey]*[2][]int{}
		}
		pc := f.pathOf[key]
		if pc == nil {
			pc = &[2][]int{make([]int, len(up)), make([]int, len(up))}
			f.pathOf[key] = pc
		}
		delivered, filtered = pc[0], pc[1]
	}
	for j, i := range up {
		n := int(inst.counts[i])
		if n == 0 {
			continue
		}
		f.Path.Arrived[j] += n
		team := c.cfg.Points[i].Uplink == inst.Team
		switch inst.Verdict {
		case FilteredReverseTeaming:
			filtered[j] += n
		case DeliveredDupsRemoved:
			if team {
				delivered[j] += n
			} else {
				filtered[j] += n
			}
		case Delivered, Local:
			delivered[j] += n
		}
	}
	if provisional {
		if f.masked == nil {
			f.masked = map[maskedKey]int{}
		}
		f.masked[key]++
	} else {
		f.Counts[inst.Verdict]++
	}
	n := 0
	for _, e := range f.Examples {
		if e.Verdict == inst.Verdict {
			n++
		}
	}
	if n < c.cfg.Examples {
		f.Examples = append(f.Examples, Example{First: inst.First, Verdict: inst.Verdict, Reason: inst.Reason(),
			Sightings: inst.cloneSightings(), mask: inst.mask, pair: inst.pair, epoch: inst.epoch})
	}
}

// settle folds the drop-dependent counts in: a verdict that relies on a
// point that dropped frames becomes inconclusive.
func (f *Flow) settle(dropped uint64, c *Correlator) {
	for k, n := range f.masked {
		if _, no := unconfirmed(c.epochs, k.epoch); no || missed(dropped, k.mask, k.pair) != 0 {
			f.Counts[Inconclusive] += n
			continue
		}
		f.Counts[k.v] += n
		if pc := f.pathOf[k]; pc != nil {
			for j := range pc[0] {
				f.Path.Delivered[j] += pc[0][j]
				f.Path.Filtered[j] += pc[1][j]
			}
		}
	}
	f.masked, f.pathOf = nil, nil
	for i := range f.Examples {
		e := &f.Examples[i]
		if m := missed(dropped, e.mask, e.pair); m != 0 {
			e.Reason = fmt.Sprintf("would be %q, but %s", e.Verdict, c.dropText(m))
			e.Verdict = Inconclusive
		} else if why, no := unconfirmed(c.epochs, e.epoch); no {
			e.Reason = fmt.Sprintf("would be %q, but %s", e.Verdict, why)
			e.Verdict = Inconclusive
		}
	}
}

func (c *Correlator) dropText(mask uint64) string {
	var dropped, unknown []string
	for i, p := range c.cfg.Points {
		if mask&(1<<i) == 0 {
			continue
		}
		switch {
		case p.Dropped > 0:
			dropped = append(dropped, fmt.Sprintf("%s dropped %d frames", p.Name, p.Dropped))
		case c.stats[i].Late > 0:
			dropped = append(dropped, fmt.Sprintf("%s's stream fell behind (%d sightings came too late to be matched)", p.Name, c.stats[i].Late))
		case p.DropsUnknown:
			unknown = append(unknown, p.Name)
		}
	}
	switch len(unknown) {
	case 0:
	case 1:
		dropped = append(dropped, unknown[0]+"'s drops are unknown (it reported no drop count)")
	default:
		dropped = append(dropped, "the drops of "+strings.Join(unknown[:len(unknown)-1], ", ")+" and "+unknown[len(unknown)-1]+
			" are unknown (they reported no drop count)")
	}
	return "a capture point may have missed copies: " + strings.Join(dropped, "; ")
}

// PathCounts counts a flow's copies on the receive path: per uplink (in
// the order of Result.Uplinks) how many arrived, how many of those were
// delivered and how many reverse teaming dropped; and the copies at
// PortOutput and VnicRx. Arrivals and copies are what the points saw;
// delivered and filtered count only copies of frames whose verdict says so
// (not those of frames that turned inconclusive).
type PathCounts struct {
	Arrived, Delivered, Filtered []int
	PortOutput, VnicRx           int
}

// PointStats is what one capture point saw.
type PointStats struct {
	Name         string
	Stage        pktcap.Stage
	Uplink       string
	Observations int
	// Duplicates counts observations whose bytes this point had already
	// seen within the window (the extra copies at PortOutput).
	Duplicates  int
	First, Last time.Time
	Start, Stop time.Time
	Dropped     uint64
	// DropsUnknown: the point reported no drop count (Point.DropsUnknown).
	DropsUnknown bool
	// Late counts sightings that came out of order, after instances of
	// their time may have been judged (the point's stream fell behind
	// more than the merge waits): the point is treated as one that
	// dropped.
	Late int
}

// TeamUplinkCheck compares the reported team uplink with the frames.
type TeamUplinkCheck struct {
	Reported string
	// Inferred is the uplink the port's own frames left by (UplinkSnd).
	Inferred string
	Egress   map[string]int
	// IngressOnlyDelivered counts delivered frames that arrived only on a
	// non-team uplink, per uplink.
	IngressOnlyDelivered map[string]int
	Disagree             bool
	// Insufficient says that points the check rests on dropped frames (or
	// their drops are unknown): nothing is inferred, Detail says why.
	Insufficient bool
	Detail       string
}

// Result is the outcome of a correlation.
type Result struct {
	Port Port
	// Uplinks names the uplink receive points, in point order (the index
	// of Flow.Path's slices).
	Uplinks                 []string
	Points                  []PointStats
	Flows                   []*Flow
	Totals                  [numVerdicts]int
	TeamUplinks             []TeamUplinkChange
	TeamUplinkCheck         TeamUplinkCheck
	CommonStart, CommonStop time.Time
	Window                  time.Duration

	epochs []epochState // the team-uplink epochs (teamconfirm.go)
}

// Filtered reports whether any frame was filtered by reverse teaming.
func (r *Result) Filtered() bool { return r.Totals[FilteredReverseTeaming] > 0 }

// CountsByID maps verdict counts (Result.Totals, Flow.Counts) to the
// verdicts' IDs, every verdict present.
func CountsByID(c [numVerdicts]int) map[string]int {
	m := make(map[string]int, numVerdicts)
	for v, n := range c {
		m[Verdict(v).ID()] = n
	}
	return m
}
