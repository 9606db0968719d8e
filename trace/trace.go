// Package trace is capturectl's main job as a library: from a discovered
// VM port (an esxi.Target) to the capture plan, the multi-point pktcap-uw
// session over SSH, the live merge of the points' streams, the correlator
// and the team-uplink poller, and back a correlate.Result that says where
// each frame stopped, with the session's per-point statistics.
//
// It does not parse flags, print or render: the caller renders the result
// (package report), and writes what it wants to keep (the session's pcapng
// goes to Config.Session.Output). The capture command, demo, check and
// audit --verify all run a trace through Run.
package trace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/teaming"
)

// DefaultWindow groups sightings of the same bytes into one frame.
const DefaultWindow = 5 * time.Millisecond

// Config is one trace.
type Config struct {
	// Target is the traced vNIC's port, as discovered.
	Target esxi.Target
	// Plan is what to capture (DefaultPlan builds the usual one).
	Plan session.Plan
	// Session says how to reach the hosts (Dial is required) and where
	// the pcapng goes; Run sets its Consumer (and with a Hold, Stopped:
	// the last frames are judged before the pcapng's last are written).
	Session session.Options
	// Window: sightings of the same bytes within it are one frame
	// instance (default DefaultWindow).
	Window time.Duration
	// TeamUplink, when set, is asked every Poll for the port's current
	// team uplink; a change is fed to the correlator bounded by the time
	// of the last answer and of this one. Errors are ignored (the next
	// poll tries again).
	TeamUplink func(ctx context.Context) (string, error)
	// Poll is the team-uplink poll interval (default 2s; negative: never).
	Poll time.Duration
	// OnInstance sees every judged frame instance as it is judged (e.g.
	// to keep verdict comments for the pcapng). It is called with the
	// trace's lock held, one call at a time: it must not block.
	OnInstance func(*correlate.Instance)
	// OnStart is called once every point streams, with a view of the
	// running trace (for a status display, or to start traffic in a lab).
	// It must return promptly.
	OnStart func(*Live)
	// Also are more vNICs traced in the same run and session (trace --vm
	// a --vm b): each is judged by a correlator of its own over the points
	// of its DefaultPlan, which must be in Plan (PlanFor builds a plan
	// that shares a host's uplink points between the vNICs on it); so is
	// Target then.
	// OnInstance sees Target's instances only.
	Also []Also
	// From is the sender of a whole-path trace (trace --vm B --from A):
	// with From.Target, Plan must hold PathPlan's points, and besides
	// Target's own receive-side correlation (Result.Correlation) a path
	// correlator follows each frame from A's vNIC to Target's and the
	// replies back (Result.Path). Then every time in the results is on
	// capturectl's clock, each host's clock offset removed (see
	// Result.Path.Clock), not the host's. Without From.Target (an address
	// outside the inventory) the trace is Target's receive side only, as
	// without From, and Result.FromNote says so.
	From *From
	// OnPathFrame sees every frame of the path as it is judged (From
	// with a Target), as OnInstance does Target's instances.
	OnPathFrame func(*correlate.PathFrame)
	// MaxTransit bounds a frame's time through the physical network
	// between two hosts (default 100 ms; see correlate.PathConfig).
	MaxTransit time.Duration
}

// Also is one more vNIC of a trace.
type Also struct {
	Target esxi.Target
	// TeamUplink is polled as Config.TeamUplink is, for this vNIC.
	TeamUplink func(ctx context.Context) (string, error)
}

// Result is a finished trace.
type Result struct {
	Target esxi.Target
	// Correlation says where each frame stopped.
	Correlation *correlate.Result
	// Session holds each point's statistics (frames, pktcap-uw's drops,
	// start and stop, the command run), the common live window, what
	// ended the capture, and what may still run on a host.
	Session *session.Result
	// Also holds the results of Config.Also, in order.
	Also []VMResult
	// Path is the whole path's correlation (Config.From with a Target).
	Path *correlate.PathResult
	// FromNote says what of Config.From could not be followed (a sender
	// outside the inventory).
	FromNote string
}

// VMResult is the result for one more vNIC of a trace.
type VMResult struct {
	Target      esxi.Target
	Correlation *correlate.Result
}

// Run traces cfg.Target until the plan's duration or count is reached,
// the session stops, or ctx is cancelled (then the result covers what was
// captured). When the capture could not start, Run returns a nil Result.
// When it ended early (a host went away, ctx was cancelled), Run returns
// the Result of what was captured together with the error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < 0 {
		return nil, fmt.Errorf("trace: window %v: want a positive duration", cfg.Window)
	}
	if cfg.Poll == 0 {
		cfg.Poll = 2 * time.Second
	}
	// one vNIC: its correlator sees the whole plan, whatever the caller
	// put in it; several: each sees its own DefaultPlan's points
	path := cfg.From != nil && cfg.From.Target != nil
	vms := []vmSpec{{target: cfg.Target, teamUplink: cfg.TeamUplink, all: len(cfg.Also) == 0 && !path, lenient: path}}
	for _, a := range cfg.Also {
		vms = append(vms, vmSpec{target: a.Target, teamUplink: a.TeamUplink})
	}
	lv, err := newLive(cfg.Plan, vms, cfg.Window, cfg.OnInstance)
	if err != nil {
		return nil, err
	}
	if path {
		if err := lv.setupPath(cfg.Plan, *cfg.From.Target, cfg.Target, cfg.Window, cfg.MaxTransit, cfg.OnPathFrame); err != nil {
			return nil, err
		}
	}
	opts := cfg.Session
	opts.Consumer = lv.add
	opts.Clocks = true // frames carry the hosts' times; put ours on them
	var results []*correlate.Result
	if opts.Hold != nil {
		// judge the last frames before the pcapng's last are written, so
		// that the Hold has their verdicts (OnInstance)
		opts.Stopped = func(st []session.PointStats) { results = lv.finish(st) }
	}
	s, err := session.Start(ctx, cfg.Plan, opts)
	if err != nil {
		return nil, err
	}
	lv.session, lv.clock = s, s.Clock
	lv.started(s.Stats())
	if cfg.OnStart != nil {
		cfg.OnStart(lv)
	}
	var stops []func()
	for i, v := range vms {
		end := -1
		if path && i == 0 {
			end = 1 // the path's receiver
		}
		stops = append(stops, lv.poll(ctx, i, end, v.teamUplink, cfg.Poll, v.target.Host, v.target.TeamUplink))
	}
	if path && cfg.From.TeamUplink != nil {
		stops = append(stops, lv.poll(ctx, -1, 0, cfg.From.TeamUplink, cfg.Poll, cfg.From.Target.Host, cfg.From.Target.TeamUplink))
	}
	res, werr := s.Wait()
	for _, stop := range stops {
		stop()
	}
	if res == nil {
		return nil, werr
	}
	if results == nil {
		results = lv.finish(res.Points)
	}
	out := &Result{Target: cfg.Target, Correlation: results[0], Session: res, Path: lv.pathResult}
	if cfg.From != nil && cfg.From.Target == nil {
		out.FromNote = fmt.Sprintf("the sender %s is not in the inventory: only %s's receive side was captured", cfg.From.Address, cfg.Target.VM)
	}
	for i, a := range cfg.Also {
		out.Also = append(out.Also, VMResult{Target: a.Target, Correlation: results[i+1]})
	}
	return out, werr
}

// PlanFor is DefaultPlan for several vNICs traced in one run: each one's
// points, a point two of them share (the uplinks of a vSwitch on one host)
// captured once, in the order first needed.
func PlanFor(targets []esxi.Target, base session.Plan) (session.Plan, error) {
	var points []session.Point
	seen := map[string]bool{}
	for _, t := range targets {
		p, err := DefaultPlan(t, base)
		if err != nil {
			return base, err
		}
		for _, pt := range p.Points {
			if !seen[pt.Name()] {
				seen[pt.Name()] = true
				points = append(points, pt)
			}
		}
	}
	base.Points = points
	if err := base.Validate(); err != nil {
		return base, fmt.Errorf("trace: %w: %w", ErrPlan, err)
	}
	return base, nil
}

// Errors of Select and DefaultPlan that callers branch on (errors.Is).
var (
	// ErrNIC: the VM has no vNIC at the index asked for.
	ErrNIC = errors.New("no such vNIC")
	// ErrNoPort: the vNIC has no switch port to capture on (disconnected,
	// or the host did not say).
	ErrNoPort = errors.New("no switch port to capture on")
	// ErrPlan: the plan is not valid (a bad filter, snap length or limit).
	ErrPlan = errors.New("bad capture plan")
)

// Select picks the traced vNIC among a discovery's targets and returns
// its index: nic, or with nic < 0 the one the query named by MAC or IP
// address (else the first).
func Select(targets []esxi.Target, query string, nic int) (int, error) {
	if nic < 0 {
		nic = max(0, slices.IndexFunc(targets, func(t esxi.Target) bool { return t.Selected }))
	}
	if nic >= len(targets) {
		return 0, fmt.Errorf("trace: --nic %d: %s has %d vNICs (0 to %d): %w", nic, query, len(targets), len(targets)-1, ErrNIC)
	}
	return nic, nil
}

// Rediscover is a Config.TeamUplink that re-reads the port's team uplink
// through the vSphere API, as discovery read it (the vNIC at index nic of
// the VM query names).
func Rediscover(client *esxi.Client, query string, nic int) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		targets, err := client.Discover(ctx, query, esxi.DiscoverOptions{})
		if err != nil {
			return "", err
		}
		i, err := Select(targets, query, nic)
		if err != nil {
			return "", err
		}
		return targets[i].TeamUplink, nil
	}
}

// DefaultPlan is the usual capture of t: every uplink of its vSwitch in the
// receive direction, PortOutput (before the reverse-teaming filter) and
// VnicRx (after it) of its port. base gives the filter, snap length and
// limits; its Points are replaced.
func DefaultPlan(t esxi.Target, base session.Plan) (session.Plan, error) {
	if t.PortID == 0 {
		return base, fmt.Errorf("trace: %s %s: %w: %s", t.VM, t.NIC, ErrNoPort, t.PortNote)
	}
	var uplinks []string
	for _, u := range t.Uplinks {
		if u.NIC != "" {
			uplinks = append(uplinks, u.NIC)
		} else if strings.HasPrefix(u.Name, "vmnic") {
			uplinks = append(uplinks, u.Name)
		}
	}
	base.Points = session.DefaultPoints(t.Host, t.PortID, uplinks)
	if err := base.Validate(); err != nil {
		return base, fmt.Errorf("trace: %w: %w", ErrPlan, err)
	}
	return base, nil
}

// PortOf is the correlator's view of a discovered port. A teaming policy
// the API names but teaming does not know is left empty (judged as the
// vSwitch default would be).
func PortOf(t esxi.Target) correlate.Port {
	mac, _ := net.ParseMAC(t.MAC)
	policy, _ := teaming.FromAPI(t.TeamingPolicy)
	return correlate.Port{Name: t.VM + " " + t.NIC, MAC: mac, VLAN: t.VLAN, Promiscuous: t.Promiscuous,
		Policy: policy, TeamUplink: t.TeamUplink}
}

// Live is a running trace's state, safe to read while it runs.
type Live struct {
	mu         sync.Mutex
	views      []*view
	fan        [][]fanTo // plan point -> the correlators that see it
	m          *correlate.Merger
	onInstance func(*correlate.Instance)
	session    *session.Session
	// clock is each host's clock (nil: capturectl's own, as for inputs
	// recorded offline)
	clock func(host string) session.Clock
	pathState
}

// view is one traced vNIC's correlator over its points of the plan.
type view struct {
	c        *correlate.Correlator
	points   []int // the plan index of each of the correlator's points
	verdicts map[correlate.Verdict]int
}

type fanTo struct{ view, point int }

// vmSpec is a traced vNIC; all: its correlator sees every point of the
// plan (the main target, whose plan the caller made), else the points of
// its DefaultPlan.
type vmSpec struct {
	target     esxi.Target
	teamUplink func(context.Context) (string, error)
	all        bool
	port       *correlate.Port // instead of PortOf(target) (tests)
	// lenient: a point of its DefaultPlan the plan does not have is left
	// out (a path plan without uplinks: both ends switched locally)
	lenient bool
}

// onHost puts local time t on host's clock: its latest bound when late
// (a point started then has surely been capturing since), else its
// earliest.
func (lv *Live) onHost(host string, t time.Time, late bool) time.Time {
	if lv.clock == nil || t.IsZero() {
		return t
	}
	c := lv.clock(host)
	switch {
	case !c.Known():
		return t
	case lv.aligned:
		// frames are on capturectl's clock: only the uncertainty
		if late {
			return t.Add(c.Bound(t))
		}
		return t.Add(-c.Bound(t))
	case late:
		return c.Latest(t)
	}
	return c.Earliest(t)
}

func newLive(plan session.Plan, vms []vmSpec, window time.Duration, onInstance func(*correlate.Instance)) (*Live, error) {
	index := map[string]int{}
	for i, p := range plan.Points {
		index[p.Name()] = i
	}
	lv := &Live{onInstance: onInstance, fan: make([][]fanTo, len(plan.Points))}
	for vi, vm := range vms {
		var idx []int
		if vm.all {
			for i := range plan.Points {
				idx = append(idx, i)
			}
		} else {
			own, err := DefaultPlan(vm.target, plan)
			if err != nil {
				return nil, err
			}
			for _, p := range own.Points {
				i, ok := index[p.Name()]
				if !ok && vm.lenient {
					continue
				}
				if !ok {
					return nil, fmt.Errorf("trace: %s %s: point %s is not in the plan: %w", vm.target.VM, vm.target.NIC, p.Name(), ErrPlan)
				}
				idx = append(idx, i)
			}
		}
		var points []correlate.Point
		for _, i := range idx {
			cp, err := correlate.PointFromName(plan.Points[i].Name())
			if err != nil {
				return nil, fmt.Errorf("trace: %w", err)
			}
			points = append(points, cp)
			lv.fan[i] = append(lv.fan[i], fanTo{vi, len(points) - 1})
		}
		v := &view{points: idx, verdicts: map[correlate.Verdict]int{}}
		judged := func(i *correlate.Instance) { v.verdicts[i.Verdict]++ }
		if vi == 0 {
			judged = func(i *correlate.Instance) {
				v.verdicts[i.Verdict]++
				if lv.onInstance != nil {
					lv.onInstance(i)
				}
			}
		}
		var err error
		port := PortOf(vm.target)
		if vm.port != nil {
			port = *vm.port
		}
		v.c, err = correlate.New(correlate.Config{Points: points, Port: port, Window: window, OnInstance: judged})
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		lv.views = append(lv.views, v)
	}
	// streams arrive independently: a second of lateness covers the
	// session's per-point buffering
	lv.m = correlate.NewMerger(time.Second, lv.dispatch)
	return lv, nil
}

// dispatch gives an ordered observation to each correlator that has its
// point.
func (lv *Live) dispatch(o pktcap.Observation) {
	if o.Point < 0 || o.Point >= len(lv.fan) {
		return
	}
	if lv.path != nil {
		lv.path.Add(o)
	}
	for _, f := range lv.fan[o.Point] {
		o.Point = f.point
		lv.views[f.view].c.Add(o)
	}
}

func (lv *Live) add(o pktcap.Observation) {
	lv.mu.Lock()
	if lv.aligned {
		lv.addAligned(o)
	} else {
		lv.m.Add(o)
	}
	lv.mu.Unlock()
}

// started sets each point's start as the session saw it.
func (lv *Live) started(stats []session.PointStats) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.pathStarted(stats)
	for _, v := range lv.views {
		for li, i := range v.points {
			if st := stats[i]; !st.Start.IsZero() {
				v.c.SetStart(li, lv.onHost(st.Point.Host, st.Start, true))
			}
		}
	}
}

// finish sets each point's stop and drops, flushes the merge and closes
// the correlators; the results are in the order of the vNICs.
func (lv *Live) finish(stats []session.PointStats) []*correlate.Result {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	for _, v := range lv.views {
		for li, i := range v.points {
			st := stats[i]
			if !st.Stop.IsZero() {
				v.c.SetStop(li, lv.onHost(st.Point.Host, st.Stop, false))
			}
			switch {
			case st.Dropped > 0:
				v.c.SetDropped(li, uint64(st.Dropped))
			case st.Dropped < 0:
				// the stream ended before pktcap-uw's summary (killed,
				// cut off): the point may have missed frames nobody
				// counted
				v.c.SetDropsUnknown(li)
			}
		}
	}
	lv.pathFinish(stats)
	lv.m.Flush()
	if lv.path != nil {
		lv.pathResult = lv.path.Close()
	}
	var out []*correlate.Result
	for _, v := range lv.views {
		out = append(out, v.c.Close())
	}
	return out
}

// Points is each point's statistics so far.
func (lv *Live) Points() []session.PointStats { return lv.session.Stats() }

// Verdicts counts the frame instances judged so far, by verdict as judged,
// over every traced vNIC: pktcap-uw's drop counts come only when a capture
// stops, so a verdict that rests on a point that turns out to have dropped
// frames is counted here as judged and in the Result as inconclusive.
func (lv *Live) Verdicts() map[correlate.Verdict]int {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	out := map[correlate.Verdict]int{}
	for _, v := range lv.views {
		for k, n := range v.verdicts {
			out[k] += n
		}
	}
	return out
}

// VMVerdicts is Verdicts for the vNIC at index i (0 the Config's Target,
// then its Also in order).
func (lv *Live) VMVerdicts(i int) map[correlate.Verdict]int {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if i < 0 || i >= len(lv.views) {
		return nil
	}
	return maps.Clone(lv.views[i].verdicts)
}

// Done is closed when the capture has ended.
func (lv *Live) Done() <-chan struct{} { return lv.session.Done() }

// poll re-reads the team uplink every interval until the session ends,
// and once more after it ended, for the correlator of vNIC vm and for the
// path's end (each when not negative). The correlator gets every answer:
// it confirms the uplink or records a change (correlate.TrackTeam), so a
// verdict that rests on the team uplink holds only once a poll after its
// frame saw the same uplink. The path gets the changes.
func (lv *Live) poll(ctx context.Context, vm, end int, get func(context.Context) (string, error), every time.Duration, host, initial string) (stop func()) {
	if get == nil || every < 0 {
		return func() {}
	}
	if vm >= 0 {
		lv.mu.Lock()
		// discovery read the uplink before the capture, at a time not
		// known here: nothing is confirmed before the first poll
		lv.views[vm].c.TrackTeam(time.Time{})
		lv.mu.Unlock()
	}
	last, lastUplink := time.Now(), initial
	ask := func() {
		asked := time.Now()
		pctx, cancel := context.WithTimeout(ctx, every)
		u, err := get(pctx)
		cancel()
		if err != nil || u == "" {
			return
		}
		lv.mu.Lock()
		// the host read it between the question and the answer: on the
		// port's host's clock, widened by its uncertainty
		from, until := lv.onHost(host, asked, false), lv.onHost(host, time.Now(), true)
		if vm >= 0 {
			lv.views[vm].c.ConfirmTeamUplink(from, until, u, "esxcli network vm port list")
		}
		if end >= 0 && lv.path != nil && u != lastUplink {
			lv.path.SetTeamUplinkBetween(end, lv.onHost(host, last, false), until, u, "esxcli network vm port list")
		}
		lv.mu.Unlock()
		lastUplink, last = u, asked
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-lv.session.Done():
				ask()
				return
			case <-tick.C:
			}
			ask()
		}
	})
	return func() { close(done); wg.Wait() }
}
