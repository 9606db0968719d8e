package ingest

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

var (
	uplinkBanner = regexp.MustCompile(`The name of the uplink is (vmnic\d+)`)
	portBanner   = regexp.MustCompile(`The switch port id is 0x([0-9a-fA-F]+)`)
	pointBanner  = regexp.MustCompile(`The session capture point is ([A-Za-z0-9,]+)`)
)

// A consoleRun is one pktcap-uw session of a console transcript: a banner
// starts one. Since 7.0 one session may capture at several points
// (--capture PortOutput,VnicRx), each frame saying which, so a run has one
// stream per point label, in order of appearance.
type consoleRun struct {
	uplink  string
	port    uint32
	streams []*consoleStream
	dropped uint64
	summary bool // the summary line ("Dumped N packet to console, dropped M packets.") was read
}

type consoleStream struct {
	label string // the point as pktcap-uw prints it, or (points) its name
	obs   []pktcap.Observation
}

func (rn *consoleRun) stream(label string) *consoleStream {
	k := slices.IndexFunc(rn.streams, func(s *consoleStream) bool { return s.label == label })
	if k < 0 {
		k = len(rn.streams)
		rn.streams = append(rn.streams, &consoleStream{label: label})
	}
	return rn.streams[k]
}

// readConsoleRuns splits pktcap-uw console text into runs. Times of day
// are placed on day (the next day after a run crosses midnight).
func readConsoleRuns(name string, r io.Reader, day time.Time) ([]*consoleRun, error) {
	cr := pktcap.NewConsoleReader(r)
	var runs []*consoleRun
	var cur *consoleRun
	var prev time.Duration
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return runs, nil
		}
		if err != nil {
			return nil, inputErr(name, err)
		}
		switch rec := rec.(type) {
		case *pktcap.TextLine:
			msg := rec.Message()
			if m := uplinkBanner.FindStringSubmatch(msg); m != nil {
				cur = &consoleRun{uplink: m[1]}
				runs = append(runs, cur)
			} else if m := portBanner.FindStringSubmatch(msg); m != nil {
				id, _ := strconv.ParseUint(m[1], 16, 32)
				cur = &consoleRun{port: uint32(id)}
				runs = append(runs, cur)
			} else if m := pointBanner.FindStringSubmatch(msg); m != nil && cur != nil {
				// the points the session captures at, frames or not
				for _, label := range strings.Split(m[1], ",") {
					cur.stream(label)
				}
			} else if s, ok := pktcap.ParseSummary(msg); ok && cur != nil {
				cur.dropped, cur.summary = uint64(s.Dropped), true
			}
		case *pktcap.ConsoleFrame:
			if cur == nil {
				cur = &consoleRun{}
				runs = append(runs, cur)
			}
			if rec.TimeOfDay < prev-12*time.Hour {
				day = day.Add(24 * time.Hour) // the run crossed midnight
			}
			prev = rec.TimeOfDay
			st := cur.stream(rec.Point)
			st.obs = append(st.obs, pktcap.Observation{Time: day.Add(rec.TimeOfDay), Data: rec.Data, OrigLen: rec.Length, VLAN: rec.VLAN})
		}
	}
}

// pointName is the capture point name of a stream of the run.
func (rn *consoleRun) pointName(label string) string {
	switch {
	case rn.uplink != "":
		dir := "rx"
		if pt, _ := pktcap.ParsePoint(label); pt.Stage() == pktcap.StageUplinkTx {
			dir = "tx"
		}
		return rn.uplink + "/" + dir
	case rn.port != 0:
		return fmt.Sprintf("%d/%s", rn.port, label)
	}
	return label
}

// points merges the run's streams by point name: the banner names the
// points as --capture does and frames may name one otherwise (UplinkRcv,
// UplinkRcvKernel), so a stream without frames whose name another stream
// has is that point.
func (rn *consoleRun) points() []*consoleStream {
	withFrames := map[string]bool{}
	for _, st := range rn.streams {
		if len(st.obs) > 0 {
			withFrames[rn.pointName(st.label)] = true
		}
	}
	var merged []*consoleStream
	for _, st := range rn.streams {
		name := rn.pointName(st.label)
		if len(st.obs) == 0 && withFrames[name] {
			continue
		}
		k := slices.IndexFunc(merged, func(m *consoleStream) bool { return m.label == name })
		if k < 0 {
			merged = append(merged, &consoleStream{label: name, obs: st.obs})
			continue
		}
		m := merged[k]
		m.obs = append(m.obs, st.obs...)
		slices.SortStableFunc(m.obs, func(a, b pktcap.Observation) int { return a.Time.Compare(b.Time) })
	}
	return merged
}

// span is the time of the run's first and last frame: its points are one
// session and share it.
func (rn *consoleRun) span() (first, last time.Time) {
	for _, st := range rn.streams {
		if len(st.obs) == 0 {
			continue
		}
		if first.IsZero() || st.obs[0].Time.Before(first) {
			first = st.obs[0].Time
		}
		if l := st.obs[len(st.obs)-1].Time; l.After(last) {
			last = l
		}
	}
	return first, last
}

// addConsole makes each point of each run of pktcap-uw console text a
// point of the set, live from the run's first to its last frame (widened
// by the window) and with the run's drop count, which covers every point of
// the session. Input.Point names the point of a transcript of one session
// at one point (frames pasted without the banner, say).
func (s *Set) addConsole(in Input, r io.Reader, day time.Time, window time.Duration) error {
	runs, err := readConsoleRuns(in.Name, r, day)
	if err != nil {
		return err
	}
	n := 0
	for i, rn := range runs {
		first, last := rn.span()
		if first.IsZero() {
			continue // no frames at all
		}
		points := rn.points()
		for _, st := range points {
			name, given := st.label, false
			if in.Point != "" {
				if len(runs) != 1 || len(points) != 1 {
					return &NameError{Input: in.Name, Problem: TooManySessions, Iface: -1, Count: len(runs), Name: in.Point}
				}
				name, given = in.Point, true
			}
			cp, err := correlate.PointFromName(name)
			switch {
			case err != nil && given:
				return &NameError{Input: in.Name, Problem: BadName, Iface: -1, Name: name, Err: err}
			case err != nil:
				return &NameError{Input: in.Name, Problem: NotAPoint, Iface: -1, Run: i + 1, Count: len(runs), Name: name, Err: err}
			}
			cp.Name = fmt.Sprintf("%s#%d %s", filepath.Base(in.Name), i+1, name)
			cp.Start, cp.Stop, cp.Dropped = first.Add(-window), last.Add(window), rn.dropped
			p := Point{Point: cp, From: []string{in.Name}, LiveFromFrames: true, DropsKnown: rn.summary}
			for _, o := range st.obs {
				if len(o.Data) < o.OrigLen {
					p.SnapLen = minSnap(p.SnapLen, len(o.Data)) // a snap length (-s) or a trace's capture length
				}
			}
			s.sources = append(s.sources, source{in: in, point: len(s.points), obs: st.obs})
			s.points = append(s.points, p)
			n++
		}
	}
	if n == 0 {
		return inputErr(in.Name, ErrNotCapture)
	}
	return noInterfaces(in)
}
