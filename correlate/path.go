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
)

// The whole path (trace --vm B --from A): a PathCorrelator follows each
// frame between two VM ports, possibly on two hosts, over the points of
// both hosts — the sender's transmit side (VnicTx, PortInput, UplinkSnd
// on every uplink) and the receiver's receive side (every uplink,
// PortOutput, VnicRx) — in both directions at once: A to B, and B's
// replies back to A.
//
// Times: the observations must all be on one timeline (capturectl's: each
// host's estimated clock offset removed), in time order. The offsets are
// known only to within an uncertainty per host (PathConfig.Clock), so a
// frame's sightings on two hosts are grouped within Window + MaxTransit +
// both uncertainties, and the remaining offset between the hosts is
// estimated from the frames that crossed in both directions, as NTP does
// from its four timestamps (PathResult.Clock).

// Direction is a frame's direction on the path.
type Direction int

const (
	// AtoB: sent by the path's sender (A) toward the receiver (B).
	AtoB Direction = iota
	// BtoA: sent by B (the replies).
	BtoA
)

func (d Direction) String() string {
	if d == AtoB {
		return "A to B"
	}
	return "B to A"
}

// PathVerdict says where a frame stopped on its way from one end of the
// path to the other.
type PathVerdict int

// Path verdicts. Their IDs share the words of Verdict where they mean the
// same (delivered, filtered_reverse_teaming, not_forwarded,
// dropped_after_portoutput, inconclusive).
const (
	// PathDelivered: seen at the receiving end's VnicRx.
	PathDelivered PathVerdict = iota
	// PathFiltered: reached the receiving port's PortOutput only from
	// uplinks other than its team uplink, and not its VnicRx.
	PathFiltered
	// PathNotForwarded: reached the receiving host's uplinks, never the
	// receiving port's PortOutput.
	PathNotForwarded
	// PathDroppedAtPort: reached PortOutput (from the team uplink, or
	// from a local port), not VnicRx: not reverse teaming.
	PathDroppedAtPort
	// PathLostInNetwork: left the sending host on an uplink, reached no
	// uplink of the receiving host.
	PathLostInNetwork
	// PathNotSent: seen at the sending port (VnicTx or PortInput), never
	// left the sending host and never reached the receiving port.
	PathNotSent
	// PathInconclusive: the captures cannot tell (the reason says why).
	PathInconclusive
	numPathVerdicts
)

var pathVerdictNames = [...]string{"delivered", "filtered by reverse teaming", "not forwarded to the receiving port",
	"dropped after PortOutput (not reverse teaming)", "lost in the network", "not sent", "inconclusive"}

var pathVerdictIDs = [...]string{Delivered.ID(), FilteredReverseTeaming.ID(), NotForwarded.ID(),
	DroppedAfterPortOutput.ID(), "lost_in_network", "not_sent", Inconclusive.ID()}

func (v PathVerdict) String() string {
	if v >= 0 && v < numPathVerdicts {
		return pathVerdictNames[v]
	}
	return fmt.Sprintf("PathVerdict(%d)", int(v))
}

// ID is the verdict's stable machine name (JSON).
func (v PathVerdict) ID() string {
	if v >= 0 && v < numPathVerdicts {
		return pathVerdictIDs[v]
	}
	return "unknown"
}

// PathVerdicts lists every path verdict in order.
func PathVerdicts() []PathVerdict {
	out := make([]PathVerdict, numPathVerdicts)
	for i := range out {
		out[i] = PathVerdict(i)
	}
	return out
}

// PathVerdictCounts counts by path verdict.
type PathVerdictCounts [numPathVerdicts]int

// ByID maps the counts to the verdicts' IDs, every verdict present.
func (c PathVerdictCounts) ByID() map[string]int {
	m := make(map[string]int, numPathVerdicts)
	for v, n := range c {
		m[PathVerdict(v).ID()] = n
	}
	return m
}

// End is one end of the path: a VM port on a host.
type End struct {
	Host string
	Port Port
}

// PathPoint is one capture point of a path trace.
type PathPoint struct {
	// Name as the session names it ("esx01/vmnic2/UplinkSnd").
	Name   string
	Host   string
	Stage  pktcap.Stage
	Uplink string
	// End is the end whose port the point is on (0: A, 1: B); -1 for an
	// uplink point.
	End int
	// Switches, for an uplink point, says whose vSwitch it is an uplink
	// of (bit 0: A's, bit 1: B's; 0: either end's on its host): frames
	// are followed out of the sender's vSwitch and into the receiver's
	// only (two vSwitches on one host have uplinks of their own).
	Switches uint8
	// Start and Stop bound the time the point was capturing, on the
	// observations' timeline (zero: from the first observation, until
	// Close).
	Start, Stop time.Time
}

// PathConfig configures a PathCorrelator.
type PathConfig struct {
	Points []PathPoint
	// A sends, B receives (and replies).
	A, B End
	// Window groups the sightings of the same bytes on one host (default
	// 5 ms).
	Window time.Duration
	// MaxTransit bounds how long a frame takes between the hosts' uplinks
	// through the physical network (default 100 ms): a sighting on the
	// other host later than that is another frame.
	MaxTransit time.Duration
	// Clock is the uncertainty of each host's clock offset at the start
	// (the observations' times are the host's minus the estimated offset,
	// so a host's frames are placed within this of the truth). A host
	// missing here has an unknown clock: no frame is matched across it
	// and another host. SetClock updates it at the end (the bound grows
	// with drift).
	Clock map[string]time.Duration
	// MaxClockUncertainty: beyond it (the two hosts' uncertainties
	// together, at the end) frames are not matched across hosts (default
	// 250 ms).
	MaxClockUncertainty time.Duration
	// Drift bounds how fast the two hosts' clocks drift apart (default
	// 200e-6: each within 100 ppm of true time).
	Drift float64
	// KeyLen as Config's.
	KeyLen int
	// Examples kept per flow and verdict (default 3).
	Examples int
	// OnFrame, when set, sees every frame as judged (a verdict resting on
	// a point that turns out to have dropped may still turn inconclusive
	// at Close). The PathFrame is reused once the call returns.
	OnFrame func(*PathFrame)
}

// PathCorrelator follows frames between the two ends of a path.
type PathCorrelator struct {
	cfg     PathConfig
	seed    maphash.Seed
	group   int64 // ns: the grouping window across hosts
	pending map[Key]*pathInst
	queue   []*pathInst
	qhead   int
	free    []*pathInst
	now     int64
	closed  bool
	stats   []PointStats
	dropped []uint64
	unknown []bool
	flows   map[pathFlowID]*PathFlow
	order   []*PathFlow
	// per direction: the point sets of the path
	sets [2]pathSets
	// clock evidence: bounds on the residual offset of B's clock against
	// A's (ns; as fed), from frames that crossed each way
	ref            int64
	upper, lower   int64
	nUpper, nLower int
	orphans        [2]int
	other          int
	mac            [2]net.HardwareAddr
	sameHost       bool
	// each end's team uplink over time (from its Port's, at the start)
	teams [2][]TeamUplinkChange
	frame PathFrame // reused by finish

	lastFlow   *PathFlow
	lastFlowID pathFlowID
	// the keys of frames judged lost in the network, and of frames seen
	// arriving at the other end's host without a sighting on their
	// sender's: a key in both is a frame that did arrive, at a time the
	// grouping did not expect (a host's clock stepped): then no frame of
	// that direction is called lost
	lostKeys, arrivedKeys [2]map[Key]struct{}
	keysFull              bool
}

// maxKeys bounds each key set (beyond it no frame is called lost: the
// check could not be made).
const maxKeys = 1 << 20

func (c *PathCorrelator) remember(m *map[Key]struct{}, k Key) {
	if *m == nil {
		*m = map[Key]struct{}{}
	}
	if len(*m) >= maxKeys {
		c.keysFull = true
		return
	}
	(*m)[k] = struct{}{}
}

// misplaced counts the frames of direction d judged lost that were seen
// arriving at another time.
func (c *PathCorrelator) misplaced(d Direction) int {
	n := 0
	for k := range c.lostKeys[d] {
		if _, ok := c.arrivedKeys[d][k]; ok {
			n++
		}
	}
	return n
}

type pathFlowID struct {
	f   flowID
	dir Direction
}

// pathSets are the points a frame of one direction passes: the sending
// port's transmit points, the sending host's UplinkSnd points, the
// receiving host's uplink receive points, the receiving port's PortOutput
// and VnicRx.
type pathSets struct {
	tx, snd, up, po, rx      []int
	txM, sndM, upM, poM, rxM uint64
	from, to                 End
	stages                   []hopPoint // the path's stages in order
	sendPts, recvPts         []int      // on the sending host; on the receiving
}

type hopPoint struct {
	name   string
	points []int
	host   string
}

type pathInst struct {
	key             Key
	firstNS, lastNS int64
	counts          []uint16
	first           []int64 // per point: first sighting (ns), 0 none
	hdr             [HeadLen]byte
	hdrLen          int
}

// PathFrame is one judged frame.
type PathFrame struct {
	First     time.Time
	Direction Direction
	Verdict   PathVerdict
	Reason    string
	// Uplink is the uplink it left the sending host by ("" none seen);
	// OffTeam says it is not the sending port's team uplink.
	Uplink  string
	OffTeam bool
	// Arrivals are the receiving host's uplinks it came in on.
	Arrivals []string
	// Sightings: the first sighting at each point that saw it.
	Sightings []Sighting
	flow      FlowKey
	head      []byte
	// mask: points whose drops would make the verdict unproven; cross:
	// it rests on matching the frame across the hosts' clocks
	mask  uint64
	cross bool
}

// Flow is the frame's flow.
func (f *PathFrame) Flow() FlowKey { return f.flow }

// Head is the frame's first HeadLen bytes (valid during OnFrame only).
func (f *PathFrame) Head() []byte { return f.head }

// PathFlow is the frames of one flow in one direction.
type PathFlow struct {
	Key       FlowKey
	Direction Direction
	// From and To name the ends ("testvm1 eth0 on esx01").
	From, To    string
	First, Last time.Time
	Counts      PathVerdictCounts
	// OffTeam counts, per uplink, frames that left the sending host on an
	// uplink other than the sending port's team uplink (an annotation on
	// their verdicts, not a verdict).
	OffTeam map[string]int
	// Hops are the edges of the path, in order, with how many frames
	// crossed each and their latencies.
	Hops     []Hop
	Examples []PathFrameExample

	masked   map[pathMasked]int
	hops     [maxStages][maxStages]*hopAcc
	examples [numPathVerdicts]int
}

type pathMasked struct {
	v     PathVerdict
	mask  uint64
	cross bool
}

// PathFrameExample is a judged frame kept for the report.
type PathFrameExample struct {
	First    time.Time
	Verdict  PathVerdict
	Reason   string
	Uplink   string
	OffTeam  bool
	Arrivals []string
	mask     uint64
	cross    bool
}

// Hop is one edge of the path: between two capture stages that saw the
// same frame, the next stage on its way.
type Hop struct {
	From, To string // "esx01 VnicTx", "esx02 vmnic2 (rx)"
	// CrossHost: From and To are on different hosts; the latencies then
	// carry the clock alignment's uncertainty.
	CrossHost bool
	Frames    int
	Latency   Latency
}

// Latency summarises a hop's latencies (of at most a few thousand frames
// sampled evenly over the trace).
type Latency struct {
	N                  int
	Min, P50, P90, P99 time.Duration
	Max                time.Duration
	// Uncertainty bounds each figure's error either way (cross-host hops:
	// the clock alignment's; 0 on one host).
	Uncertainty time.Duration
	// Unknown: a cross-host hop whose clocks could not be aligned (the
	// figures are left zero; Reason says why).
	Unknown bool
	Reason  string
}

const hopSamples = 4096

// maxStages: VnicTx, PortInput, UplinkSnd, the uplinks, PortOutput, VnicRx.
const maxStages = 6

type hopAcc struct {
	from, to int // stage index
	n        int
	samples  []int64
	seen     int
	rng      uint64
}

func (h *hopAcc) add(d int64) {
	h.n++
	h.seen++
	if len(h.samples) < hopSamples {
		h.samples = append(h.samples, d)
		return
	}
	// reservoir sampling (xorshift, deterministic)
	h.rng ^= h.rng << 13
	h.rng ^= h.rng >> 7
	h.rng ^= h.rng << 17
	if j := h.rng % uint64(h.seen); j < hopSamples {
		h.samples[j] = d
	}
}

// ClockAlignment is the offset between the two hosts' clocks left after
// the offsets capturectl read over SSH were removed, as the frames that
// crossed between the hosts show it.
//
// A frame from A seen leaving A at t1 (A's clock) and reaching B at t2
// (B's) says the offset θ of B's clock against A's is at most t2-t1; a
// reply leaving B at t3 and reaching A at t4 says it is at least t3-t4.
// One request/reply pair gives NTP's θ = ((t2-t1)+(t3-t4))/2 within ±δ/2,
// δ = (t4-t1)-(t3-t2); every crossing frame is such a bound, so the
// tightest of each side over the trace (each widened by Drift for its
// distance in time) is taken, as NTP's clock filter keeps the pair with
// the least delay. The result is also held inside the SSH readings'
// bounds.
type ClockAlignment struct {
	// HostA, HostB are the hosts (the same: nothing to align).
	HostA, HostB string
	// Residual is B's clock against A's after the SSH readings were
	// removed, ± Uncertainty.
	Residual, Uncertainty time.Duration
	// Requests and Replies count the crossing frames each way the
	// estimate rests on.
	Requests, Replies int
	// FromFrames: both directions crossed, so the estimate is the frames'
	// (else it is the SSH readings' alone).
	FromFrames bool
	// Inconsistent: the frames' bounds contradict each other or the SSH
	// readings (a clock stepped, or frames were matched wrongly): no
	// frame's verdict rests on matching across the hosts, and cross-host
	// latencies are unknown.
	Inconsistent bool
	Reason       string
}

// PathResult is the outcome of a path correlation.
type PathResult struct {
	A, B   End
	Points []PointStats
	Flows  []*PathFlow
	// Totals per direction.
	Totals [2]PathVerdictCounts
	// Orphans counts frames from an end seen arriving at the other but
	// never at their sender's points while those captured (a sign that
	// the streams do not line up).
	Orphans [2]int
	// Other counts frames not between the ends (not judged): from
	// neither, or from an end to a third station's unicast address.
	Other int
	// Misplaced counts, per direction, frames that would be lost in the
	// network but were seen arriving at the other end's host at a time
	// the grouping did not expect (crossWhy then holds).
	Misplaced [2]int
	Clock     ClockAlignment
	// Window is the grouping window across hosts.
	Window time.Duration

	dropMask uint64
	crossWhy string
}

// PathEvidence is what a frame's verdict as judged rests on
// (PathFrame.Evidence), for PathResult.Settle.
type PathEvidence struct {
	mask  uint64
	cross bool
	dir   Direction
}

// Evidence is what the frame's verdict rests on.
func (f *PathFrame) Evidence() PathEvidence {
	return PathEvidence{f.mask, f.cross, f.Direction}
}

// Settle is the final verdict of a frame judged v with evidence e (as
// OnFrame saw it): inconclusive when a point it rests on dropped, or it
// rests on matching across clocks that turned out not to line up.
func (r *PathResult) Settle(v PathVerdict, e PathEvidence) PathVerdict {
	switch {
	case e.mask&r.dropMask != 0:
		return PathInconclusive
	case e.cross && (r.crossWhy != "" || r.Orphans[e.dir] > 0):
		return PathInconclusive
	}
	return v
}

// NewPath validates cfg and returns a PathCorrelator.
func NewPath(cfg PathConfig) (*PathCorrelator, error) {
	if len(cfg.Points) == 0 {
		return nil, errors.New("correlate: path: no capture points")
	}
	if len(cfg.Points) > 64 {
		return nil, fmt.Errorf("correlate: path: %d capture points; at most 64", len(cfg.Points))
	}
	for _, e := range []End{cfg.A, cfg.B} {
		if len(e.Port.MAC) != 6 {
			return nil, fmt.Errorf("correlate: path: port %s has no MAC address: its frames cannot be told apart", e.Port.Name)
		}
		if e.Host == "" {
			return nil, fmt.Errorf("correlate: path: port %s names no host", e.Port.Name)
		}
		if p := e.Port.Policy; p != "" && !p.Valid() {
			return nil, fmt.Errorf("correlate: path: port %s: unknown teaming policy %q", e.Port.Name, p)
		}
	}
	if string(cfg.A.Port.MAC) == string(cfg.B.Port.MAC) {
		return nil, fmt.Errorf("correlate: path: both ends have MAC %s", cfg.A.Port.MAC)
	}
	cfg.Points = slices.Clone(cfg.Points)
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Millisecond
	}
	if cfg.MaxTransit <= 0 {
		cfg.MaxTransit = 100 * time.Millisecond
	}
	if cfg.MaxClockUncertainty <= 0 {
		cfg.MaxClockUncertainty = 250 * time.Millisecond
	}
	if cfg.Drift <= 0 {
		cfg.Drift = 200e-6
	}
	if cfg.KeyLen <= 0 {
		cfg.KeyLen = DefaultKeyLen
	}
	if cfg.Examples <= 0 {
		cfg.Examples = 3
	}
	cl := map[string]time.Duration{}
	for h, u := range cfg.Clock {
		cl[h] = u
	}
	cfg.Clock = cl
	c := &PathCorrelator{cfg: cfg, seed: maphash.MakeSeed(), pending: map[Key]*pathInst{},
		stats: make([]PointStats, len(cfg.Points)), dropped: make([]uint64, len(cfg.Points)), unknown: make([]bool, len(cfg.Points)),
		flows: map[pathFlowID]*PathFlow{}, upper: 1<<63 - 1, lower: -1 << 63,
		mac: [2]net.HardwareAddr{cfg.A.Port.MAC, cfg.B.Port.MAC}, sameHost: cfg.A.Host == cfg.B.Host}
	for i, p := range cfg.Points {
		if p.Name == "" {
			return nil, fmt.Errorf("correlate: path: point %d has no name", i)
		}
		if p.Host != cfg.A.Host && p.Host != cfg.B.Host {
			return nil, fmt.Errorf("correlate: path: point %s is on host %s, neither end's", p.Name, p.Host)
		}
		if p.End > 1 || p.End < -1 {
			return nil, fmt.Errorf("correlate: path: point %s: end %d", p.Name, p.End)
		}
		if (p.Stage == pktcap.StageUplinkRx || p.Stage == pktcap.StageUplinkTx) && p.Uplink == "" {
			return nil, fmt.Errorf("correlate: path: uplink point %s names no uplink", p.Name)
		}
		c.stats[i] = PointStats{Name: p.Name, Stage: p.Stage, Uplink: p.Uplink}
	}
	ends := [2]End{cfg.A, cfg.B}
	for d := range 2 {
		s := &c.sets[d]
		from, to := d, 1-d
		s.from, s.to = ends[from], ends[to]
		for i, p := range cfg.Points {
			bit := uint64(1) << i
			switch {
			case p.End == from && (p.Stage == pktcap.StageVnicTx || p.Stage == pktcap.StagePortInput):
				s.tx, s.txM = append(s.tx, i), s.txM|bit
			case p.End == -1 && p.Stage == pktcap.StageUplinkTx && p.Host == s.from.Host && (p.Switches == 0 || p.Switches&(1<<from) != 0):
				s.snd, s.sndM = append(s.snd, i), s.sndM|bit
			case p.End == -1 && p.Stage == pktcap.StageUplinkRx && p.Host == s.to.Host && (p.Switches == 0 || p.Switches&(1<<to) != 0):
				s.up, s.upM = append(s.up, i), s.upM|bit
			case p.End == to && p.Stage == pktcap.StagePortOutput:
				s.po, s.poM = append(s.po, i), s.poM|bit
			case p.End == to && p.Stage == pktcap.StageVnicRx:
				s.rx, s.rxM = append(s.rx, i), s.rxM|bit
			}
		}
		s.sendPts = append(slices.Clone(s.tx), s.snd...)
		s.recvPts = append(append(slices.Clone(s.up), s.po...), s.rx...)
		stage := func(name string, host string, pts []int) {
			if len(pts) > 0 {
				s.stages = append(s.stages, hopPoint{name: name, points: pts, host: host})
			}
		}
		for _, st := range []pktcap.Stage{pktcap.StageVnicTx, pktcap.StagePortInput} {
			var pts []int
			for _, i := range s.tx {
				if cfg.Points[i].Stage == st {
					pts = append(pts, i)
				}
			}
			stage(s.from.Host+" "+stageWord(st), s.from.Host, pts)
		}
		stage(s.from.Host+" UplinkSnd", s.from.Host, s.snd)
		stage(s.to.Host+" uplinks (rx)", s.to.Host, s.up)
		stage(s.to.Host+" PortOutput", s.to.Host, s.po)
		stage(s.to.Host+" VnicRx", s.to.Host, s.rx)
	}
	for e, end := range ends {
		if end.Port.TeamUplink != "" {
			c.teams[e] = []TeamUplinkChange{{Uplink: end.Port.TeamUplink, Source: "discovery"}}
		}
	}
	ua, ub := c.clockOf(cfg.A.Host), c.clockOf(cfg.B.Host)
	c.group = int64(cfg.Window)
	if !c.sameHost {
		c.group += int64(cfg.MaxTransit + ua + ub)
	}
	return c, nil
}

func stageWord(s pktcap.Stage) string {
	switch s {
	case pktcap.StageVnicTx:
		return "VnicTx"
	case pktcap.StagePortInput:
		return "PortInput"
	}
	return s.String()
}

// clockOf is a host's clock uncertainty (an unknown clock counts as the
// largest taken).
func (c *PathCorrelator) clockOf(host string) time.Duration {
	if u, ok := c.cfg.Clock[host]; ok {
		return u
	}
	return c.cfg.MaxClockUncertainty
}

// Keyer returns the function that keys frames for AddKeyed (safe for
// concurrent use).
func (c *PathCorrelator) Keyer() func(data []byte, origLen int) Key {
	seed, keyLen := c.seed, c.cfg.KeyLen
	return func(data []byte, origLen int) Key { return keyOf(seed, data, origLen, keyLen) }
}

// SetStart and SetStop record a point's live interval on the
// observations' timeline; SetDropped its drop count, SetDropsUnknown that
// it never reported one.
func (c *PathCorrelator) SetStart(point int, t time.Time) { c.cfg.Points[point].Start = t }
func (c *PathCorrelator) SetStop(point int, t time.Time)  { c.cfg.Points[point].Stop = t }
func (c *PathCorrelator) SetDropped(point int, n uint64) {
	c.dropped[point], c.unknown[point] = n, false
}
func (c *PathCorrelator) SetDropsUnknown(point int) { c.unknown[point] = true }

// SetTeamUplinkBetween records that end's (0: A, 1: B) team uplink
// changed to uplink somewhere in (after, at] (times on the observations'
// timeline): frames whose verdict rests on the team uplink in that
// interval are inconclusive.
func (c *PathCorrelator) SetTeamUplinkBetween(end int, after, at time.Time, uplink, source string) {
	if end < 0 || end > 1 {
		return
	}
	tl := c.teams[end]
	if n := len(tl); n > 0 && tl[n-1].Uplink == uplink {
		return
	}
	c.teams[end] = append(tl, TeamUplinkChange{At: at, After: after, Uplink: uplink, Source: source})
}

// teamAt is end's team uplink at ns, and whether a change of it around ns
// has no known time.
func (c *PathCorrelator) teamAt(end int, ns int64) (team string, uncertain bool) {
	for i, ch := range c.teams[end] {
		if i > 0 && !ch.After.IsZero() && ns > ch.After.UnixNano() && ns <= ch.At.UnixNano() {
			uncertain = true
		}
		if i == 0 || ns >= ch.At.UnixNano() {
			team = ch.Uplink
		}
	}
	return team, uncertain
}

// SetClock updates a host's clock uncertainty (at the end of the trace,
// grown by drift since it was read).
func (c *PathCorrelator) SetClock(host string, u time.Duration) { c.cfg.Clock[host] = u }

// Add takes one observation (in time order).
func (c *PathCorrelator) Add(o pktcap.Observation) {
	c.AddKeyed(o.Point, o.Time.UnixNano(), keyOf(c.seed, o.Data, o.OrigLen, c.cfg.KeyLen), o.Data)
}

// AddKeyed is Add for a frame keyed with Keyer: point, time in ns, key and
// the frame's first HeadLen bytes.
func (c *PathCorrelator) AddKeyed(point int, ns int64, k Key, head []byte) {
	if point < 0 || point >= len(c.stats) || c.closed {
		return
	}
	st := &c.stats[point]
	if ns < c.now {
		// out of order beyond the merge's wait: the point is treated as
		// one that dropped (its sighting may belong to a judged frame)
		st.Late++
		ns = c.now
	}
	c.now = ns
	if c.ref == 0 {
		c.ref = ns
	}
	if c.qhead < len(c.queue) && c.queue[c.qhead].firstNS < ns-c.group {
		c.expire(ns)
	}
	st.Observations++
	if st.Observations == 1 {
		st.First = time.Unix(0, ns).UTC()
	}
	st.Last = time.Unix(0, ns).UTC()
	inst := c.pending[k]
	if inst == nil {
		inst = c.newInst(k, ns, head)
		c.pending[k] = inst
		c.queue = append(c.queue, inst)
	} else if inst.counts[point] > 0 {
		st.Duplicates++
	}
	if inst.counts[point] == 0 {
		inst.first[point] = ns
	}
	inst.counts[point]++
	inst.lastNS = ns
}

func (c *PathCorrelator) newInst(k Key, ns int64, head []byte) *pathInst {
	var inst *pathInst
	if n := len(c.free); n > 0 {
		inst = c.free[n-1]
		c.free = c.free[:n-1]
		clear(inst.counts)
		clear(inst.first)
	} else {
		inst = &pathInst{counts: make([]uint16, len(c.stats)), first: make([]int64, len(c.stats))}
	}
	inst.key, inst.firstNS, inst.lastNS = k, ns, ns
	inst.hdrLen = copy(inst.hdr[:], head)
	return inst
}

func (c *PathCorrelator) expire(ns int64) {
	limit := ns - c.group
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

// direction tells a frame's direction by its MAC addresses: from one end
// to the other, or from one end to a group address (broadcast,
// multicast). A frame from an end to a third station (another VM, a
// router: a routed path, whose frames change addresses on the way and
// cannot be matched by their bytes) is not on the path.
func (c *PathCorrelator) direction(hdr []byte) (Direction, bool) {
	if len(hdr) < 12 {
		return 0, false
	}
	dst, src := hdr[0:6], hdr[6:12]
	group := dst[0]&1 == 1
	switch {
	case string(src) == string(c.mac[0]) && (group || string(dst) == string(c.mac[1])):
		return AtoB, true
	case string(src) == string(c.mac[1]) && (group || string(dst) == string(c.mac[0])):
		return BtoA, true
	}
	return 0, false
}

func (c *PathCorrelator) finish(inst *pathInst) {
	delete(c.pending, inst.key)
	defer func() { c.free = append(c.free, inst) }()
	dir, ok := c.direction(inst.hdr[:inst.hdrLen])
	if !ok {
		c.other++
		return
	}
	s := &c.sets[dir]
	nTx, nSnd, nRecv := countIn(inst, s.tx), countIn(inst, s.snd), countIn(inst, s.up)+countIn(inst, s.po)+countIn(inst, s.rx)
	if nTx+nSnd == 0 && nRecv > 0 && len(s.tx) > 0 {
		if c.notLive(s.txM, inst.firstNS-c.group, inst.lastNS) == "" {
			c.orphans[dir]++
		}
		c.remember(&c.arrivedKeys[dir], inst.key)
	}
	if nTx+nSnd > 0 && nRecv > 0 && !c.sameHost {
		c.clockEvidence(inst, dir, s)
	}
	fr := &c.frame
	c.judge(inst, dir, fr, c.cfg.OnFrame != nil)
	fid := pathFlowID{flowOf(inst.hdr[:inst.hdrLen]), dir}
	f := c.lastFlow
	if f == nil || fid != c.lastFlowID {
		f = c.flows[fid]
		c.lastFlowID = fid
	}
	if f == nil {
		f = &PathFlow{Key: fid.f.key(), Direction: dir, First: fr.First, From: endName(s.from), To: endName(s.to)}
		c.flows[fid] = f
		c.order = append(c.order, f)
	}
	c.lastFlow = f
	if c.cfg.OnFrame == nil && f.examples[fr.Verdict] < c.cfg.Examples {
		// kept as an example: judged again with the words
		c.judge(inst, dir, fr, true)
	}
	fr.flow, fr.head = f.Key, inst.hdr[:inst.hdrLen]
	f.Last = fr.First
	if fr.Verdict == PathLostInNetwork {
		c.remember(&c.lostKeys[dir], inst.key)
	}
	c.addToFlow(f, inst, fr)
	if c.cfg.OnFrame != nil {
		c.cfg.OnFrame(fr)
	}
}

func endName(e End) string { return e.Port.Name + " on " + e.Host }

func countIn(inst *pathInst, pts []int) (n int) {
	for _, i := range pts {
		n += int(inst.counts[i])
	}
	return n
}

func (c *PathCorrelator) names(pts []int) string {
	var out []string
	for _, i := range pts {
		out = append(out, c.cfg.Points[i].Name)
	}
	return strings.Join(out, ", ")
}

// notLive names a point of mask that was not capturing over [from, to].
func (c *PathCorrelator) notLive(mask uint64, from, to int64) string {
	for i, p := range c.cfg.Points {
		if mask&(1<<i) == 0 {
			continue
		}
		if !p.Start.IsZero() && from < p.Start.UnixNano() {
			return fmt.Sprintf("%s was not capturing yet", p.Name)
		}
		if !p.Stop.IsZero() && to > p.Stop.UnixNano() {
			return fmt.Sprintf("%s had stopped capturing", p.Name)
		}
	}
	return ""
}

// judge gives a frame its path verdict.
// With explain it says why (Reason, Sightings in time order), else only
// the verdict and what it rests on (the hot path).
func (c *PathCorrelator) judge(inst *pathInst, dir Direction, fr *PathFrame, explain bool) {
	s := &c.sets[dir]
	*fr = PathFrame{First: time.Unix(0, inst.firstNS).UTC(), Direction: dir, Sightings: fr.Sightings[:0], Arrivals: fr.Arrivals[:0]}
	for i, n := range inst.counts {
		if n > 0 {
			fr.Sightings = append(fr.Sightings, Sighting{Point: i, Time: time.Unix(0, inst.first[i]).UTC()})
		}
	}
	if explain {
		slices.SortFunc(fr.Sightings, func(a, b Sighting) int { return a.Time.Compare(b.Time) })
	}
	nTx, nSnd, nUp, nPO, nRx := countIn(inst, s.tx), countIn(inst, s.snd), countIn(inst, s.up), countIn(inst, s.po), countIn(inst, s.rx)
	for _, i := range s.snd {
		if inst.counts[i] > 0 && fr.Uplink == "" {
			fr.Uplink = c.cfg.Points[i].Uplink
		}
	}
	from0, to0 := int(dir), 1-int(dir)
	fromTeam, fromUncertain := c.teamAt(from0, inst.firstNS)
	toTeam, toUncertain := c.teamAt(to0, inst.firstNS)
	if team := fromTeam; fr.Uplink != "" && team != "" && !fromUncertain {
		for _, i := range s.snd {
			if inst.counts[i] > 0 && c.cfg.Points[i].Uplink != team {
				fr.OffTeam = true
			}
		}
	}
	teamIn := false
	for _, i := range s.up {
		if inst.counts[i] > 0 {
			fr.Arrivals = append(fr.Arrivals, c.cfg.Points[i].Uplink)
			if c.cfg.Points[i].Uplink == toTeam {
				teamIn = true
			}
		}
	}
	end := inst.firstNS + c.group
	reverse := s.to.Port.Policy == "" || s.to.Port.Policy.ReverseFilter()
	to, from := s.to.Host, s.from.Host
	switch {
	case nRx > 0:
		fr.Verdict = PathDelivered
		if !explain {
			break
		}
		fr.Reason = fmt.Sprintf("delivered to %s", endName(s.to))
		if fr.Uplink != "" {
			fr.Reason = fmt.Sprintf("left %s on %s, delivered to %s", from, fr.Uplink, endName(s.to))
		}
	case nPO > 0 && len(s.rx) == 0:
		fr.Verdict, fr.Reason = PathInconclusive, "reached PortOutput; VnicRx was not captured"
	case nPO > 0 && len(fr.Arrivals) > 0 && toUncertain:
		fr.Verdict, fr.Reason = PathInconclusive, fmt.Sprintf("reached PortOutput, not VnicRx, while %s's team uplink changed", s.to.Port.Name)
	case nPO > 0 && len(fr.Arrivals) > 0 && reverse && toTeam != "" && !teamIn:
		fr.Verdict, fr.mask = PathFiltered, s.rxM|s.upM
		fr.Reason = fmt.Sprintf("filtered by reverse teaming at %s: arrived on %s, %s's team uplink is %s", to,
			strings.Join(fr.Arrivals, " and "), s.to.Port.Name, toTeam)
	case nPO > 0 && len(fr.Arrivals) > 0 && reverse && toTeam == "":
		fr.Verdict, fr.Reason = PathInconclusive, "reached PortOutput, not VnicRx; the receiving port's team uplink is not known"
	case nPO > 0 && len(fr.Arrivals) == 0 && len(s.up) > 0 && !c.sameHost:
		fr.Verdict, fr.Reason = PathInconclusive, fmt.Sprintf("reached PortOutput on %s, but no uplink of %s saw it come in", to, to)
	case nPO > 0:
		fr.Verdict, fr.mask = PathDroppedAtPort, s.rxM|s.upM
		fr.Reason = fmt.Sprintf("reached PortOutput of %s, not its VnicRx (not reverse teaming)", s.to.Port.Name)
	case nUp > 0 && len(s.po) == 0:
		fr.Verdict, fr.Reason = PathInconclusive, "reached the receiving host; PortOutput was not captured"
	case nUp > 0:
		fr.Verdict, fr.mask = PathNotForwarded, s.poM|s.rxM
		fr.Reason = fmt.Sprintf("arrived at %s on %s, never reached PortOutput of %s", to, strings.Join(fr.Arrivals, " and "), s.to.Port.Name)
	case nSnd > 0 && (len(s.up) == 0 || len(s.po) == 0 || len(s.rx) == 0):
		fr.Verdict, fr.Reason = PathInconclusive, fmt.Sprintf("left %s on %s; the receiving host's uplinks, PortOutput and VnicRx were not all captured", from, fr.Uplink)
	case nSnd > 0:
		fr.Verdict, fr.mask, fr.cross = PathLostInNetwork, s.upM|s.poM|s.rxM, !c.sameHost
		fr.Reason = fmt.Sprintf("left %s on %s at %s, reached no uplink of %s", from, fr.Uplink,
			time.Unix(0, inst.first[firstOf(inst, s.snd)]).UTC().Format("15:04:05.000000"), to)
	case nTx > 0 && len(s.snd) == 0:
		fr.Verdict, fr.Reason = PathInconclusive, "seen at the sending port; the sending host's uplinks (UplinkSnd) were not captured"
	case nTx > 0:
		slices.SortFunc(fr.Sightings, func(a, b Sighting) int { return a.Time.Compare(b.Time) })
		last := fr.Sightings[len(fr.Sightings)-1]
		fr.Verdict, fr.mask = PathNotSent, s.sndM|s.upM|s.poM|s.rxM
		// the receiving side's points are in the mask only for their
		// drops: leaving the host is seen on the sender's own clock
		fr.Reason = fmt.Sprintf("seen at %s, never left %s (last seen at %s)", c.names(seenIn(inst, s.tx)), from, c.cfg.Points[last.Point].Name)
	default:
		fr.Verdict, fr.Reason = PathInconclusive, "seen only at points off its path"
		if len(fr.Sightings) > 0 {
			fr.Reason = "seen only at " + c.cfg.Points[fr.Sightings[0].Point].Name + ", off its path"
		}
	}
	if fr.Verdict != PathDelivered && fr.Verdict != PathInconclusive {
		// a verdict that rests on a point not seeing the frame needs that
		// point live from the frame's first sighting until the group
		// window ends
		if why := c.notLive(fr.mask, inst.firstNS, end); why != "" {
			fr.Verdict, fr.Reason, fr.mask, fr.cross = PathInconclusive, why, 0, false
		}
	}
	if fr.OffTeam && explain {
		fr.Reason += fmt.Sprintf(" (sent on %s, not %s's team uplink %s)", fr.Uplink, s.from.Port.Name, fromTeam)
	}
}

func firstOf(inst *pathInst, pts []int) int {
	best := -1
	for _, i := range pts {
		if inst.counts[i] > 0 && (best < 0 || inst.first[i] < inst.first[best]) {
			best = i
		}
	}
	return best
}

func lastOf(inst *pathInst, pts []int) int {
	best := -1
	for _, i := range pts {
		if inst.counts[i] > 0 && (best < 0 || inst.first[i] > inst.first[best]) {
			best = i
		}
	}
	return best
}

func seenIn(inst *pathInst, pts []int) []int {
	var out []int
	for _, i := range pts {
		if inst.counts[i] > 0 {
			out = append(out, i)
		}
	}
	return out
}

// clockEvidence takes the bound a crossing frame gives on B's clock
// against A's: its last sighting on the sending host and its first on
// the receiving host, each seen once (a copy repeated within the window
// could pair the wrong sightings).
func (c *PathCorrelator) clockEvidence(inst *pathInst, dir Direction, s *pathSets) {
	sendPts, recvPts := s.sendPts, s.recvPts
	for _, i := range sendPts {
		if inst.counts[i] > 1 {
			return
		}
	}
	for _, i := range recvPts {
		if inst.counts[i] > 1 {
			return
		}
	}
	ts, tr := inst.first[lastOf(inst, sendPts)], inst.first[firstOf(inst, recvPts)]
	slack := int64(c.cfg.Drift * float64(abs64(ts-c.ref)))
	if dir == AtoB {
		// θ ≤ t_B - t_A
		if b := tr - ts + slack; b < c.upper {
			c.upper = b
		}
		c.nUpper++
	} else {
		// θ ≥ t_B - t_A (the reply left B at ts, reached A at tr)
		if b := ts - tr - slack; b > c.lower {
			c.lower = b
		}
		c.nLower++
	}
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// addToFlow counts a judged frame and its hops.
func (c *PathCorrelator) addToFlow(f *PathFlow, inst *pathInst, fr *PathFrame) {
	if fr.mask != 0 || fr.cross {
		if f.masked == nil {
			f.masked = map[pathMasked]int{}
		}
		f.masked[pathMasked{fr.Verdict, fr.mask, fr.cross}]++
	} else {
		f.Counts[fr.Verdict]++
	}
	if fr.OffTeam {
		if f.OffTeam == nil {
			f.OffTeam = map[string]int{}
		}
		f.OffTeam[fr.Uplink]++
	}
	// hops: between consecutive stages that saw the frame
	s := &c.sets[fr.Direction]
	prev, prevT := -1, int64(0)
	for si, st := range s.stages {
		i := firstOf(inst, st.points)
		if i < 0 {
			continue
		}
		t := inst.first[i]
		if prev >= 0 {
			h := f.hops[prev][si]
			if h == nil {
				h = &hopAcc{from: prev, to: si, rng: 0x9e3779b97f4a7c15}
				f.hops[prev][si] = h
			}
			h.add(t - prevT)
		}
		prev, prevT = si, t
	}
	if f.examples[fr.Verdict] < c.cfg.Examples {
		f.examples[fr.Verdict]++
		f.Examples = append(f.Examples, PathFrameExample{First: fr.First, Verdict: fr.Verdict, Reason: fr.Reason,
			Uplink: fr.Uplink, OffTeam: fr.OffTeam, Arrivals: slices.Clone(fr.Arrivals), mask: fr.mask, cross: fr.cross})
	}
}

// Close judges what is pending, settles the verdicts that rest on drop
// counts and on the clock alignment, and returns the result.
func (c *PathCorrelator) Close() *PathResult {
	if !c.closed {
		for c.qhead < len(c.queue) {
			inst := c.queue[c.qhead]
			c.qhead++
			c.finish(inst)
		}
		c.closed = true
	}
	var dropMask uint64
	for i, p := range c.cfg.Points {
		st := &c.stats[i]
		st.Start, st.Stop, st.Dropped, st.DropsUnknown = p.Start, p.Stop, c.dropped[i], c.unknown[i]
		if st.Dropped > 0 || st.DropsUnknown || st.Late > 0 {
			dropMask |= 1 << i
		}
	}
	r := &PathResult{A: c.cfg.A, B: c.cfg.B, Points: c.stats, Orphans: c.orphans, Other: c.other,
		Window: time.Duration(c.group)}
	r.Clock = c.alignment()
	crossWhy := ""
	switch {
	case c.sameHost:
	case r.Clock.Inconsistent:
		crossWhy = r.Clock.Reason
	case c.clockOf(c.cfg.A.Host)+c.clockOf(c.cfg.B.Host) > c.cfg.MaxClockUncertainty:
		crossWhy = fmt.Sprintf("the clocks of %s and %s are known only to within %v together (more than %v): frames cannot be matched across them",
			c.cfg.A.Host, c.cfg.B.Host, c.clockOf(c.cfg.A.Host)+c.clockOf(c.cfg.B.Host), c.cfg.MaxClockUncertainty)
	case time.Duration(c.group)-c.cfg.Window-c.clockOf(c.cfg.A.Host)-c.clockOf(c.cfg.B.Host) < c.cfg.MaxTransit/2:
		crossWhy = "the clocks' uncertainty grew during the trace beyond what frames were grouped with"
	case c.keysFull:
		crossWhy = "too many frames to check that none called lost arrived at another time"
	}
	for d := range 2 {
		r.Misplaced[d] = c.misplaced(Direction(d))
	}
	if crossWhy == "" && r.Misplaced[0]+r.Misplaced[1] > 0 {
		crossWhy = fmt.Sprintf("%d frames that left one host and were not seen at the other in time did reach it, stamped at another time (a host's clock stepped during the trace?): no frame is called lost in the network",
			r.Misplaced[0]+r.Misplaced[1])
	}
	r.dropMask, r.crossWhy = dropMask, crossWhy
	for _, f := range c.order {
		orphans := c.orphans[f.Direction]
		for k, n := range f.masked {
			switch {
			case k.mask&dropMask != 0:
				f.Counts[PathInconclusive] += n
			case k.cross && crossWhy != "":
				f.Counts[PathInconclusive] += n
			case k.cross && orphans > 0:
				f.Counts[PathInconclusive] += n
			default:
				f.Counts[k.v] += n
			}
		}
		f.masked = nil
		for i := range f.Examples {
			e := &f.Examples[i]
			var why string
			switch {
			case e.mask&dropMask != 0:
				why = c.dropText(e.mask & dropMask)
			case e.cross && crossWhy != "":
				why = crossWhy
			case e.cross && orphans > 0:
				why = fmt.Sprintf("%d frames from %s reached the other end without being seen leaving it: the hosts' streams may not line up", orphans, f.From)
			}
			if why != "" {
				e.Reason = fmt.Sprintf("would be %q, but %s", e.Verdict, why)
				e.Verdict = PathInconclusive
			}
		}
		f.Hops = c.hops(f, r.Clock)
		r.Totals[f.Direction] = addCounts(r.Totals[f.Direction], f.Counts)
		r.Flows = append(r.Flows, f)
	}
	return r
}

func addCounts(a, b PathVerdictCounts) PathVerdictCounts {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

func (c *PathCorrelator) dropText(mask uint64) string {
	var out []string
	for i, p := range c.cfg.Points {
		if mask&(1<<i) == 0 {
			continue
		}
		switch st := c.stats[i]; {
		case st.Dropped > 0:
			out = append(out, fmt.Sprintf("%s dropped %d frames", p.Name, st.Dropped))
		case st.Late > 0:
			out = append(out, fmt.Sprintf("%s's stream fell behind", p.Name))
		default:
			out = append(out, p.Name+"'s drops are unknown")
		}
	}
	return "a capture point may have missed it: " + strings.Join(out, "; ")
}

// alignment is the clock estimate from the crossing frames.
func (c *PathCorrelator) alignment() ClockAlignment {
	a := ClockAlignment{HostA: c.cfg.A.Host, HostB: c.cfg.B.Host, Requests: c.nUpper, Replies: c.nLower}
	if c.sameHost {
		return a
	}
	u := int64(c.clockOf(c.cfg.A.Host) + c.clockOf(c.cfg.B.Host))
	if _, ok := c.cfg.Clock[c.cfg.A.Host]; !ok {
		a.Inconsistent, a.Reason = true, c.cfg.A.Host+"'s clock was not read"
		return a
	}
	if _, ok := c.cfg.Clock[c.cfg.B.Host]; !ok {
		a.Inconsistent, a.Reason = true, c.cfg.B.Host+"'s clock was not read"
		return a
	}
	// the SSH readings put the residual within ±u; the frames within
	// [lower, upper]
	lo, hi := -u, u
	lo, hi = max(lo, c.lower), min(hi, c.upper)
	if c.nUpper > 0 && c.nLower > 0 && c.lower > c.upper {
		a.Inconsistent = true
		a.Reason = fmt.Sprintf("the frames that crossed contradict each other about the clocks of %s and %s (a clock stepped during the trace, or frames were matched wrongly)", c.cfg.A.Host, c.cfg.B.Host)
		return a
	}
	if lo > hi {
		a.Inconsistent = true
		a.Reason = fmt.Sprintf("the frames that crossed put the clocks of %s and %s %v apart from what was read over SSH (±%v)",
			c.cfg.A.Host, c.cfg.B.Host, time.Duration(min(c.upper, max(c.lower, 0))).Round(time.Microsecond), time.Duration(u))
		return a
	}
	a.Residual, a.Uncertainty = time.Duration((lo+hi)/2), time.Duration((hi-lo)/2)
	a.FromFrames = c.nUpper > 0 && c.nLower > 0
	// the bound holds at the reference time; it widens by drift from it
	if c.now > c.ref {
		a.Uncertainty += time.Duration(c.cfg.Drift * float64(c.now-c.ref))
	}
	return a
}

// hops turns a flow's hop samples into latencies.
func (c *PathCorrelator) hops(f *PathFlow, ck ClockAlignment) []Hop {
	s := &c.sets[f.Direction]
	var keys [][2]int
	for i := range f.hops {
		for j := range f.hops[i] {
			if f.hops[i][j] != nil {
				keys = append(keys, [2]int{i, j})
			}
		}
	}
	var out []Hop
	for _, k := range keys {
		h := f.hops[k[0]][k[1]]
		from, to := s.stages[k[0]], s.stages[k[1]]
		hop := Hop{From: from.name, To: to.name, CrossHost: from.host != to.host, Frames: h.n}
		samples := slices.Clone(h.samples)
		if hop.CrossHost {
			if ck.Inconsistent {
				hop.Latency = Latency{N: len(samples), Unknown: true, Reason: ck.Reason}
				out = append(out, hop)
				continue
			}
			// fed times differ by transit + residual (B against A) for a
			// frame from A, transit - residual for one from B
			adj := int64(ck.Residual)
			if f.Direction == BtoA {
				adj = -adj
			}
			for i := range samples {
				samples[i] -= adj
			}
			hop.Latency.Uncertainty = ck.Uncertainty
		}
		slices.Sort(samples)
		pct := func(p float64) time.Duration {
			i := int(p * float64(len(samples)-1))
			return time.Duration(samples[i])
		}
		hop.Latency.N = len(samples)
		hop.Latency.Min, hop.Latency.P50, hop.Latency.P90, hop.Latency.P99 = pct(0), pct(0.5), pct(0.9), pct(0.99)
		hop.Latency.Max = time.Duration(samples[len(samples)-1])
		out = append(out, hop)
	}
	f.hops = [maxStages][maxStages]*hopAcc{}
	return out
}
