package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/session"
	"github.com/capturectl/capturectl/trace"
)

// Result is one compared expectation: one verdict of one flow (or of all
// frames).
type Result struct {
	Scenario string
	// Flow is the expectation's flow ("" for all frames).
	Flow    string
	Verdict string
	Want    Range
	Got     int
	Pass    bool
	// Note says why it failed when the count alone does not (the flow
	// never appeared).
	Note string
}

// FlowName is the flow, or "(all frames)".
func (r Result) FlowName() string {
	if r.Flow == "" {
		return "(all frames)"
	}
	return r.Flow
}

// Options tunes Run.
type Options struct {
	// Logger receives the trace's warnings; default discards.
	Logger *slog.Logger
	// Poll is how often the trace re-reads the team uplink (default
	// 500ms, so a change of the scenario's is seen soon).
	Poll time.Duration
	// OnLab, when set, is called with the running lab before the trace
	// starts (e.g. to record its ground truth: lab.Network.RecordTruth).
	OnLab func(*lab.Lab)
	// OnInstance is the trace's (trace.Config.OnInstance).
	OnInstance func(*correlate.Instance)
	// Output, when set, receives the trace's multi-point pcapng
	// (session.Options.Output).
	Output io.Writer
	// OnPathFrame is the trace's (trace.Config.OnPathFrame; a scenario
	// with from:).
	OnPathFrame func(*correlate.PathFrame)
}

// Run starts topo as a lab with its vCenter, traces the scenario's VM with
// trace.Run through the lab's vCenter and SSH servers, sends the
// scenario's traffic and makes its changes once every capture point is
// live (times in actions count from then), and compares the verdicts with
// the expectations. An error means the check could not run (the lab, the
// trace or an action failed); a failed expectation is a Result with Pass
// false.
func Run(ctx context.Context, sc *Scenario, topo *lab.Config, opts Options) ([]Result, error) {
	res, err := Trace(ctx, sc, topo, opts)
	if err != nil {
		return nil, err
	}
	if sc.From != "" {
		if res.Path == nil {
			return nil, fmt.Errorf("%s: from %s: %s", sc.file, sc.From, res.FromNote)
		}
		return comparePath(sc, res.Path), nil
	}
	return compare(sc, res.Correlation), nil
}

// Trace is Run without the comparison: it runs the scenario and returns
// the trace's result.
func Trace(ctx context.Context, sc *Scenario, topo *lab.Config, opts Options) (*trace.Result, error) {
	if err := topo.ValidateTraffic(sc.file, "traffic", sc.Traffic); err != nil {
		return nil, err
	}
	if err := checkActions(sc, topo); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll == 0 {
		opts.Poll = 500 * time.Millisecond
	}
	state, err := os.MkdirTemp("", "capturectl-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	l, err := lab.Start(ctx, topo, lab.Options{StateDir: state, VCenter: true, NoTraffic: true})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if opts.OnLab != nil {
		opts.OnLab(l)
	}
	known := filepath.Join(state, "known_hosts")
	hosts := map[string]lab.HostInfo{}
	for _, h := range l.Hosts() {
		hosts[h.Name] = h
	}
	if err := os.WriteFile(known, l.KnownHosts(), 0o600); err != nil {
		return nil, err
	}
	vc := l.VCenter
	client, err := esxi.Connect(ctx, esxi.Config{URL: vc.URL().String(), Username: vc.Username(), Password: vc.Password(), CACerts: vc.CertificateFile()})
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		client.Close(cctx)
	}()
	targets, err := client.Discover(ctx, sc.VM, esxi.DiscoverOptions{})
	if err != nil {
		return nil, err
	}
	nic, err := trace.Select(targets, sc.VM, sc.NIC)
	if err != nil {
		return nil, err
	}
	t := targets[nic]
	base := session.Plan{Filter: sc.filter, Duration: sc.Duration}
	var from *trace.From
	var plan session.Plan
	if sc.From != "" {
		if from, err = trace.ResolveFrom(ctx, client, sc.From); err != nil {
			return nil, err
		}
		if from.Target != nil {
			from.TeamUplink = trace.Rediscover(client, sc.From, -1)
		}
	}
	if from != nil && from.Target != nil {
		plan, _, err = trace.PathPlan(t, *from.Target, base, 0)
	} else {
		plan, err = trace.DefaultPlan(t, base)
	}
	if err != nil {
		return nil, err
	}
	noEnv := func(string) string { return "" } // the user's keys and agent are not the lab's
	dial := func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		h, ok := hosts[host]
		if !ok {
			return nil, fmt.Errorf("scenario: host %s is not in the lab", host)
		}
		return esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: h.Addr, Password: h.Password, KnownHostsFile: known,
			NoAgent: true, Logger: opts.Logger, Getenv: noEnv})
	}

	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	var actErr error
	fail := func(err error) {
		mu.Lock()
		actErr = errors.Join(actErr, err)
		mu.Unlock()
	}
	live := func(*trace.Live) {
		started := time.Now()
		for _, tr := range sc.Traffic {
			if err := l.StartTraffic(tr); err != nil {
				fail(err)
			}
		}
		for i, a := range sc.Actions {
			wg.Go(func() {
				select {
				case <-actx.Done():
					return
				case <-time.After(a.At - time.Since(started)):
				}
				if err := apply(l, a); err != nil {
					fail(fmt.Errorf("%s: actions[%d]: %w", sc.file, i, err))
				}
			})
		}
	}
	res, err := trace.Run(ctx, trace.Config{Target: t, Plan: plan, Session: session.Options{Dial: dial, Logger: opts.Logger, Output: opts.Output},
		Poll: opts.Poll, TeamUplink: trace.Rediscover(client, sc.VM, nic), OnStart: live, OnInstance: opts.OnInstance, From: from, OnPathFrame: opts.OnPathFrame})
	cancel()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if actErr != nil {
		return nil, actErr
	}
	return res, nil
}

// checkActions checks that the actions name hosts and switch ports of the
// topology (before anything starts).
func checkActions(sc *Scenario, topo *lab.Config) error {
	hosts, ports := map[string]bool{}, map[string]bool{}
	for _, h := range topo.Hosts {
		hosts[h.Name] = true
	}
	for _, p := range topo.Switch.Ports {
		ports[p.Name] = true
	}
	var errs []error
	for i, a := range sc.Actions {
		host := ""
		switch {
		case a.SetLink != nil:
			host = a.SetLink.Host
		case a.SetClock != nil:
			host = a.SetClock.Host
		case a.SetManagementLink != nil:
			host = a.SetManagementLink.Host
			if err := a.SetManagementLink.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: actions[%d]: setManagementLink: %w", sc.file, i, err))
			}
		case a.DropBurst != nil:
			host = a.DropBurst.Host
		case a.SetLoss != nil && !ports[a.SetLoss.Port]:
			errs = append(errs, fmt.Errorf("%s: actions[%d]: setLoss: no switch port %q in the topology", sc.file, i, a.SetLoss.Port))
		}
		if host != "" && !hosts[host] {
			errs = append(errs, fmt.Errorf("%s: actions[%d]: no host %q in the topology", sc.file, i, host))
		}
	}
	return errors.Join(errs...)
}

func apply(l *lab.Lab, a Action) error {
	switch {
	case a.SetTeamUplink != nil:
		host, port, err := l.Net.FindPort(a.SetTeamUplink.VM, 0)
		if err != nil {
			return err
		}
		return l.Net.SetTeamUplink(host, port.PortID, a.SetTeamUplink.Uplink)
	case a.SetLink != nil:
		return l.Net.SetLink(a.SetLink.Host, a.SetLink.NIC, a.SetLink.Up)
	case a.SetClock != nil:
		var drift *float64
		if a.SetClock.Drift != nil {
			d := float64(*a.SetClock.Drift)
			drift = &d
		}
		return l.Net.SetHostClock(a.SetClock.Host, a.SetClock.Offset, drift)
	case a.SetManagementLink != nil:
		return l.SetManagementLink(a.SetManagementLink.Host, a.SetManagementLink.LinkConfig)
	case a.SetLoss != nil:
		return l.Net.SetPortLoss(a.SetLoss.Port, a.SetLoss.Loss)
	case a.DropBurst != nil:
		return l.Net.DropBurst(a.DropBurst.Host, a.DropBurst.Length)
	}
	return nil
}

// compare checks each expectation against the trace's counts. A flow
// expectation that matches no flow the trace saw fails: a check must be
// able to fail, and "0 filtered" of traffic that never came proves nothing.
func compare(sc *Scenario, r *correlate.Result) []Result {
	var out []Result
	for _, ex := range sc.Expect {
		var got [len(correlate.Result{}.Totals)]int
		seen := true
		if ex.Flow == "" {
			got = r.Totals
		} else {
			seen = false
			for _, f := range r.Flows {
				if strings.Contains(f.Key.String(), ex.Flow) {
					seen = true
					for v, n := range f.Counts {
						got[v] += n
					}
				}
			}
		}
		byID := correlate.CountsByID(got)
		ids := make([]string, 0, len(ex.Counts))
		for id := range ex.Counts {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			want := ex.Counts[id]
			res := Result{Scenario: sc.Name, Flow: ex.Flow, Verdict: id, Want: want, Got: byID[id], Pass: seen && want.Contains(byID[id])}
			if !seen {
				res.Note = "the trace saw no frame of this flow"
			}
			out = append(out, res)
		}
	}
	return out
}

// comparePath is compare for a whole-path scenario: the path's flows
// (both directions), by path verdict.
func comparePath(sc *Scenario, r *correlate.PathResult) []Result {
	var out []Result
	for _, ex := range sc.Expect {
		var got correlate.PathVerdictCounts
		seen := false
		for _, f := range r.Flows {
			if ex.Flow == "" || strings.Contains(f.Key.String(), ex.Flow) {
				seen = true
				for v, n := range f.Counts {
					got[v] += n
				}
			}
		}
		byID := got.ByID()
		ids := make([]string, 0, len(ex.Counts))
		for id := range ex.Counts {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			want := ex.Counts[id]
			res := Result{Scenario: sc.Name, Flow: ex.Flow, Verdict: id, Want: want, Got: byID[id], Pass: seen && want.Contains(byID[id])}
			if !seen {
				res.Note = "the trace saw no frame of this flow"
			}
			out = append(out, res)
		}
	}
	return out
}
