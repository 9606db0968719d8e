package ingest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// addPcapng scans a pcapng once for its interfaces (the capture points),
// their statistics and the times of their first and last frames, and makes
// the file one source of a point per interface, read in one more pass
// (ngGroup). A point's live interval is the start and end in its statistics
// block (capturectl writes them with the drop count); without one, it is
// the first to the last frame, widened by the window.
//
// Interfaces of the same name are one point: the sections of captures
// joined with cat, say. It is live during theirs, with gaps between.
func (s *Set) addPcapng(in Input, r io.Reader, window time.Duration) error {
	sc, err := pktcap.NewNgScanner(r)
	if err != nil {
		return inputErr(in.Name, err)
	}
	type span struct {
		first, last int64
		n           int
	}
	var spans []span
	for {
		id, ns, _, _, err := sc.Next()
		if err != nil {
			if err := readEnd(in.Name, err); err != nil {
				return err
			}
			break
		}
		for len(spans) <= id {
			spans = append(spans, span{})
		}
		if sp := &spans[id]; sp.n == 0 {
			sp.first, sp.last, sp.n = ns, ns, 1
		} else {
			sp.last, sp.n = ns, sp.n+1
		}
	}
	ifaces := sc.Interfaces()
	app := ""
	for _, a := range sc.Applications() {
		if app == "" || strings.HasPrefix(a, "Mergecap") {
			app = a
		}
	}
	if in.Point != "" && len(ifaces) != 1 {
		return &NameError{Input: in.Name, Problem: TooManyInterfaces, Iface: -1, Count: len(ifaces), Name: in.Point, Application: app}
	}
	for _, i := range sortedKeys(in.Interfaces) {
		if i < 0 || i >= len(ifaces) {
			return &NameError{Input: in.Name, Problem: NoSuchInterface, Iface: i, Count: len(ifaces), Name: in.Interfaces[i],
				Named: len(in.Interfaces), Application: app}
		}
	}
	src := source{in: in, format: pktcap.FormatPcapNG}
	pointOf := map[string]int{}
	spansOf := map[int][]correlate.Gap{} // the live intervals of each point's interfaces
	for i, intf := range ifaces {
		name, given := in.Interfaces[i]
		if !given && len(ifaces) == 1 && in.Point != "" {
			name, given = in.Point, true
		}
		if !given {
			name = intf.Name
		}
		cp, err := correlate.PointFromName(name)
		switch {
		case err != nil && given:
			return &NameError{Input: in.Name, Problem: BadName, Iface: i, Count: len(ifaces), Name: name, Err: err}
		case err != nil:
			return &NameError{Input: in.Name, Problem: NotAPoint, Iface: i, Count: len(ifaces), Name: name, Err: err, Application: app}
		}
		p := Point{Point: cp, From: []string{fmt.Sprintf("%s#%d", in.Name, i)}, SnapLen: int(intf.Snaplen)}
		switch st := intf.Stats; {
		case st != nil && !st.Start.IsZero() && !st.End.IsZero():
			p.Start, p.Stop = st.Start, st.End
		case i < len(spans) && spans[i].n > 0:
			p.Start, p.Stop = time.Unix(0, spans[i].first).Add(-window), time.Unix(0, spans[i].last).Add(window)
			p.LiveFromFrames = true
		default:
			p.LiveFromFrames = true // no frame, no interval
		}
		if intf.Stats != nil {
			p.Dropped, p.DropsKnown = intf.Stats.Dropped, !intf.Stats.DropsUnknown
		}
		idx, seen := pointOf[p.Name]
		if seen {
			q := &s.points[idx]
			q.Dropped += p.Dropped
			q.DropsKnown = q.DropsKnown && p.DropsKnown
			q.LiveFromFrames = q.LiveFromFrames || p.LiveFromFrames
			q.SnapLen = minSnap(q.SnapLen, p.SnapLen)
			q.From = append(q.From, p.From...)
		} else {
			idx = len(s.points)
			pointOf[p.Name] = idx
			s.points = append(s.points, p)
		}
		if !p.Start.IsZero() && !p.Stop.IsZero() {
			spansOf[idx] = append(spansOf[idx], correlate.Gap{From: p.Start, To: p.Stop})
		}
		src.ifaces = append(src.ifaces, idx)
	}
	for idx, spans := range spansOf {
		if len(spans) < 2 {
			continue
		}
		q := &s.points[idx]
		q.Start, q.Stop, q.Gaps = joinSpans(spans)
	}
	s.sources = append(s.sources, src)
	return nil
}

// joinSpans is the union of live intervals: its first start, last stop
// and the gaps between.
func joinSpans(spans []correlate.Gap) (start, stop time.Time, gaps []correlate.Gap) {
	spans = slices.SortedFunc(slices.Values(spans), func(a, b correlate.Gap) int { return a.From.Compare(b.From) })
	start, stop = spans[0].From, spans[0].To
	for _, s := range spans[1:] {
		if s.From.After(stop) {
			gaps = append(gaps, correlate.Gap{From: stop, To: s.From})
		}
		if s.To.After(stop) {
			stop = s.To
		}
	}
	return start, stop, gaps
}

// minSnap is the shorter of two snap lengths, 0 being unlimited.
func minSnap(a, b int) int {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

func sortedKeys(m map[int]string) []int { return slices.Sorted(maps.Keys(m)) }

// errStopped ends a reader whose merge stopped.
var errStopped = errors.New("ingest: stopped")
