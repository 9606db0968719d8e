package oracle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/scenario"
)

// Matrix counts frame instances by truth (row) and final verdict
// (column).
type Matrix [numTruths][len(correlate.Result{}.Totals)]int

// Add adds another matrix's counts.
func (m *Matrix) Add(o *Matrix) {
	for t := range m {
		for v := range m[t] {
			m[t][v] += o[t][v]
		}
	}
}

// Total is the number of instances counted.
func (m *Matrix) Total() (n int) {
	for t := range m {
		for _, k := range m[t] {
			n += k
		}
	}
	return n
}

// Inconclusive is the number of inconclusive verdicts.
func (m *Matrix) Inconclusive() (n int) {
	for t := range m {
		n += m[t][correlate.Inconclusive]
	}
	return n
}

// False is the number of definite verdicts the truth does not allow.
func (m *Matrix) False() (n int) {
	for t := range m {
		for v, k := range m[t] {
			if !Allows(Truth(t), correlate.Verdict(v)) {
				n += k
			}
		}
	}
	return n
}

// FalseVerdict is a definite verdict the truth does not allow: which
// case, which frame, what capturectl said and what happened.
type FalseVerdict struct {
	Seed    uint64
	Frame   uint64
	At      time.Time // the instance's first sighting (host clock)
	Verdict correlate.Verdict
	Reason  string
	Truth   Truth
	Fate    lab.PortFate
}

func (f FalseVerdict) String() string {
	return fmt.Sprintf("seed %d frame %d at %s: verdict %q (%s) but the truth is %q: arrived on %v, %d at PortOutput (%d from local ports), %d at VnicRx, stops %v, sent by the port %v, capture drops %d",
		f.Seed, f.Frame, f.At.UTC().Format("15:04:05.000000"), f.Verdict, f.Reason, f.Truth, f.Fate.Arrivals, f.Fate.PortOutput,
		f.Fate.FromLocal, f.Fate.VnicRx, stops(f.Fate.Stops), f.Fate.SentByPort, len(f.Fate.CaptureDrops))
}

func stops(m map[lab.StopReason]int) string {
	var parts []string
	for r, n := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", r, n))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

// CaseResult is one case's comparison.
type CaseResult struct {
	Case   *Case
	Matrix Matrix
	False  []FalseVerdict
	// Untagged counts instances whose frame carries no lab tag (the RARP a
	// host sends for "notify switches"): no truth to compare with.
	Untagged int
	// TeamDisagree: the correlator said the team uplink disagreed with
	// discovery although the case never changed it.
	TeamDisagree string
	// ClockMiss says that capturectl's estimate of the traced host's
	// clock missed the lab's true offset by more than its uncertainty
	// (everything it put on that clock may be off by more than it allows).
	ClockMiss string
	Err       error
}

type judged struct {
	head    []byte
	first   time.Time
	verdict correlate.Verdict
	reason  string
	ev      correlate.Evidence
}

// RunCase runs one case through scenario.Trace (the real path) with the
// lab recording the truth, and compares.
func RunCase(ctx context.Context, c *Case, logger *slog.Logger) *CaseResult {
	out := &CaseResult{Case: c}
	var l *lab.Lab
	var mu sync.Mutex
	var insts []judged
	opts := scenario.Options{Logger: logger,
		OnLab: func(x *lab.Lab) { l = x; x.Net.RecordTruth() },
		OnInstance: func(i *correlate.Instance) {
			j := judged{head: i.Head(), first: i.First, verdict: i.Verdict, reason: i.Reason(), ev: i.Evidence()}
			mu.Lock()
			insts = append(insts, j)
			mu.Unlock()
		}}
	res, err := scenario.Trace(ctx, c.Scenario, c.Topology, opts)
	if err != nil {
		out.Err = fmt.Errorf("oracle: seed %d: %w", c.Seed, err)
		return out
	}
	host, port, err := l.Net.FindPort(c.Scenario.VM, c.Scenario.NIC)
	if err != nil {
		out.Err = err
		return out
	}
	r := res.Correlation
	mu.Lock()
	defer mu.Unlock()
	for _, j := range insts {
		id, ok := lab.FrameID(j.head)
		if !ok {
			out.Untagged++
			continue
		}
		pf, ok := l.Net.PortFate(id, host, port.PortID)
		if !ok {
			out.Untagged++
			continue
		}
		t := Classify(pf)
		v := r.Settle(j.verdict, j.ev)
		out.Matrix[t][v]++
		if !Allows(t, v) {
			out.False = append(out.False, FalseVerdict{Seed: c.Seed, Frame: id, At: j.first, Verdict: v, Reason: j.reason, Truth: t, Fate: pf})
		}
	}
	if tc := r.TeamUplinkCheck; tc.Disagree && !c.TeamChanges {
		out.TeamDisagree = tc.Detail
	}
	if ck, ok := res.Session.Clocks[host]; ok && ck.Known() {
		truth := l.Net.HostTime(host, ck.At).Sub(ck.At)
		if miss := (ck.Offset - truth).Abs(); miss > ck.Uncertainty {
			out.ClockMiss = fmt.Sprintf("%s read as %v ± %v (round trip %v); the lab's offset is %v: off by %v",
				host, ck.Offset, ck.Uncertainty, ck.RTT, truth, miss)
		}
	}
	return out
}

// Report is a sweep's outcome.
type Report struct {
	Cases    int
	Errors   []error
	Matrix   Matrix
	False    []FalseVerdict
	Untagged int
	// TeamDisagree lists the cases whose team-uplink check disagreed with
	// an unchanged team uplink.
	TeamDisagree []string
	// ClockMisses lists the cases whose host clock estimate missed the
	// truth by more than its uncertainty.
	ClockMisses []string
	// Retried lists the cases that could not run at first (run again
	// alone; an error then is in Errors).
	Retried []uint64
	Elapsed time.Duration
}

// Sweep runs the cases of seeds first..first+n-1, parallel at a time. A
// case whose trace could not run (on a loaded machine a start can time
// out: the host's clock loop, points that do not stream in time) is run
// again once, alone, after the others; Retried says which.
func Sweep(ctx context.Context, first uint64, n, parallel int, logger *slog.Logger) *Report {
	start := time.Now()
	rep := &Report{}
	var mu sync.Mutex
	rep.Retried = sweepSeeds(first, n, parallel, func(s uint64, last bool) bool {
		c, err := Generate(s)
		var cr *CaseResult
		if err == nil {
			cr = RunCase(ctx, c, logger)
			err = cr.Err
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil && cr != nil && !last && ctx.Err() == nil {
			return true
		}
		rep.Cases++
		if err != nil {
			rep.Errors = append(rep.Errors, err)
			return false
		}
		rep.add(s, cr)
		return false
	})
	sort.Slice(rep.False, func(i, j int) bool {
		if rep.False[i].Seed != rep.False[j].Seed {
			return rep.False[i].Seed < rep.False[j].Seed
		}
		return rep.False[i].Frame < rep.False[j].Frame
	})
	rep.Elapsed = time.Since(start)
	return rep
}

// sweepSeeds runs one for the seeds first..first+n-1, parallel at a time.
// A seed whose one asks to (its case could not run: on a loaded machine a
// start can time out) is run again once, alone, after the others, with
// last set; the seeds run again are returned, in order.
func sweepSeeds(first uint64, n, parallel int, one func(s uint64, last bool) (again bool)) []uint64 {
	var mu sync.Mutex
	var again []uint64
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for s := first; s < first+uint64(n); s++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if one(s, false) {
				mu.Lock()
				again = append(again, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(again)
	for _, s := range again {
		one(s, true)
	}
	return again
}

func (rep *Report) add(s uint64, cr *CaseResult) {
	rep.Matrix.Add(&cr.Matrix)
	rep.False = append(rep.False, cr.False...)
	rep.Untagged += cr.Untagged
	if cr.TeamDisagree != "" {
		rep.TeamDisagree = append(rep.TeamDisagree, fmt.Sprintf("seed %d: %s", s, cr.TeamDisagree))
	}
	if cr.ClockMiss != "" {
		rep.ClockMisses = append(rep.ClockMisses, fmt.Sprintf("seed %d: %s", s, cr.ClockMiss))
	}
}

// Print writes the confusion matrix (truth rows, verdict columns), the
// inconclusive share and the false verdicts.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "truth \\ verdict\t")
	for _, v := range correlate.Verdicts() {
		fmt.Fprintf(tw, "%s\t", v.ID())
	}
	fmt.Fprintln(tw)
	for t := range numTruths {
		fmt.Fprintf(tw, "%s\t", Truth(t))
		for v := range correlate.Verdicts() {
			n := r.Matrix[t][v]
			mark := ""
			if n > 0 && !Allows(Truth(t), correlate.Verdict(v)) {
				mark = "!"
			}
			fmt.Fprintf(tw, "%s%d\t", mark, n)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	total, inc := r.Matrix.Total(), r.Matrix.Inconclusive()
	share := 0.0
	if total > 0 {
		share = 100 * float64(inc) / float64(total)
	}
	fmt.Fprintf(w, "%d cases in %v, %d frame instances (%d untagged not compared), %d inconclusive (%.1f%%), %d false definite verdicts (!), %d errors\n",
		r.Cases, r.Elapsed.Round(time.Second), total, r.Untagged, inc, share, r.Matrix.False(), len(r.Errors))
	// the false verdicts by truth and verdict: the count, the seeds, and
	// the first three of each kind
	type kind struct {
		t Truth
		v correlate.Verdict
	}
	byKind := map[kind][]FalseVerdict{}
	var kinds []kind
	for _, f := range r.False {
		k := kind{f.Truth, f.Verdict}
		if byKind[k] == nil {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], f)
	}
	for _, k := range kinds {
		fs := byKind[k]
		seeds := map[uint64]bool{}
		var list []string
		for _, f := range fs {
			if !seeds[f.Seed] {
				seeds[f.Seed] = true
				list = append(list, fmt.Sprint(f.Seed))
			}
		}
		fmt.Fprintf(w, "%d false %q for truth %q, seeds %s\n", len(fs), k.v, k.t, strings.Join(list, " "))
		for _, f := range fs[:min(3, len(fs))] {
			fmt.Fprintln(w, "  FALSE:", f)
		}
	}
	for _, d := range r.TeamDisagree {
		fmt.Fprintln(w, "TEAM-UPLINK DISAGREEMENT:", d)
	}
	for _, m := range r.ClockMisses {
		fmt.Fprintln(w, "CLOCK ESTIMATE OUTSIDE ITS BOUND:", m)
	}
	if len(r.Retried) > 0 {
		fmt.Fprintf(w, "retried alone (could not run at first): %v\n", r.Retried)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "ERROR:", e)
	}
}
