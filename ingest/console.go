package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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
// starts one, or names the frames before it when stderr was merged after
// stdout (2>&1 with stdout flushed first prints the banner after the
// frames). Since 7.0 one session may capture at several points (--capture
// PortOutput,VnicRx), each frame saying which, so a run has one stream per
// point label, in order of appearance; a --trace run has a stream per
// point of the frames' PATHs.
type consoleRun struct {
	uplink string
	port   uint32
	named  bool // a banner named the uplink or port
	late   bool // that banner came after frames of the run
	// ambiguous: a banner after the run's frames and before another
	// session's could name either; it was taken to name the later one
	ambiguous bool
	streams   []*consoleStream
	lastSeq   map[string]int // the [N] of the last frame at each point label
	dropped   uint64
	summary   bool // the summary line ("Dumped N packet to console, dropped M packets.") was read
}

type consoleStream struct {
	label string // the point as pktcap-uw prints it, or (points) its name
	trace bool   // the hops of --trace PATHs at point label
	obs   []pktcap.Observation
	snap  int // the shortest truncated frame (a snap length, a trace's capture length)
}

// tcpdumpLabel is the stream of frames tcpdump-uw printed (pktcap-uw -o - |
// tcpdump-uw -r - -xx): they do not say their point; the banner does.
const tcpdumpLabel = "tcpdump"

func (rn *consoleRun) stream(label string, trace bool) *consoleStream {
	k := slices.IndexFunc(rn.streams, func(s *consoleStream) bool { return s.label == label && s.trace == trace })
	if k < 0 {
		k = len(rn.streams)
		rn.streams = append(rn.streams, &consoleStream{label: label, trace: trace})
	}
	return rn.streams[k]
}

func (rn *consoleRun) frames() (n int) {
	for _, st := range rn.streams {
		n += len(st.obs)
	}
	return n
}

// restarts says whether a frame numbered seq at label starts a session of
// its own: pktcap-uw numbers each session's frames from 1.
func (rn *consoleRun) restarts(label string, seq int) bool {
	last, ok := rn.lastSeq[label]
	return ok && seq > 0 && seq <= last
}

// continues says whether a frame numbered seq at label goes on with the
// run's numbering at that label.
func (rn *consoleRun) continues(label string, seq int) bool {
	last, ok := rn.lastSeq[label]
	return ok && (seq == 0 || seq > last)
}

// ErrNoBytes is the Err of an InputError for tcpdump text that does not
// hold the frames' bytes (tcpdump-uw without -xx or -XX): frames are
// matched across points by their bytes.
var ErrNoBytes = errors.New("tcpdump text without the frames' bytes: run tcpdump-uw with -xx (or -XX), which prints them link header included, " +
	"e.g. pktcap-uw --uplink vmnic2 -o - | tcpdump-uw -r - -nne -xx, or save the capture with pktcap-uw -o FILE.pcap and analyze the file")

// ErrNoLinkHeader is the Err of an InputError for tcpdump text whose hex
// lacks the Ethernet header (tcpdump -x or -X).
var ErrNoLinkHeader = errors.New("tcpdump text whose bytes lack the Ethernet header (tcpdump -x or -X): run tcpdump-uw with -xx or -XX")

// readConsoleRuns splits pktcap-uw console text into runs. Times of day
// are placed on day (the next day after a run crosses midnight). Frames
// tcpdump printed (pktcap-uw -o - | tcpdump-uw -r - -xx) read as frames of
// the run whose banner names the point; those without bytes are an error
// (ErrNoBytes). A frame printed without its bytes (a pasted --trace
// header, say) gets 12 bytes of its own that match no other frame; the
// correlator judges a frame that short inconclusive.
func readConsoleRuns(name string, r io.Reader, day time.Time) ([]*consoleRun, error) {
	cr := pktcap.NewConsoleReader(r)
	var runs []*consoleRun
	var cur *consoleRun
	var prev time.Duration
	newRun := func() *consoleRun {
		cur = &consoleRun{lastSeq: map[string]int{}}
		runs = append(runs, cur)
		return cur
	}
	banner := func(set func(*consoleRun)) {
		if cur != nil && !cur.named && !cur.summary && cur.frames() > 0 {
			// printed after the run's frames: stderr merged after stdout
			cur.named, cur.late = true, true
			set(cur)
			return
		}
		newRun().named = true
		set(cur)
	}
	// runFor is the run a frame at label numbered seq belongs to.
	runFor := func(label string, seq int) *consoleRun {
		switch {
		case cur == nil:
			newRun()
		case cur.late && !cur.summary && (cur.restarts(label, seq) || seq == 1 && !cur.continues(label, seq)):
			// a frame numbered anew (or a [1] at a point the run has not
			// printed) after a late banner: the banner is between two
			// sessions' frames and could name either; it names the frames
			// after it, as a banner does, and the run before it is
			// ambiguous (an error, never a guess)
			moved := &consoleRun{uplink: cur.uplink, port: cur.port, named: true, lastSeq: map[string]int{}}
			cur.uplink, cur.port, cur.named, cur.late, cur.ambiguous = "", 0, false, false, true
			cur = moved
			runs = append(runs, cur)
		case cur.summary && !cur.continues(label, seq):
			// the session ended with its summary: frames after it are
			// another's, unless they go on with its numbering (stdout
			// flushed after stderr's last line)
			newRun()
		}
		if seq > 0 {
			cur.lastSeq[label] = seq
		}
		return cur
	}
	at := func(tod time.Duration) time.Time {
		if tod < prev-12*time.Hour {
			day = day.Add(24 * time.Hour) // the run crossed midnight
		}
		prev = tod
		return day.Add(tod)
	}
	var synth uint64 // frames given bytes of their own
	bytesOf := func(data []byte) []byte {
		if len(data) > 0 {
			return data
		}
		synth++
		return noBytes(name, synth)
	}
	var td *tcpdumpFrame
	tcpdumps, withBytes := 0, 0
	flushTcpdump := func() error {
		if td == nil {
			return nil
		}
		f := td
		td = nil
		tcpdumps++
		if len(f.data) == 0 {
			return nil
		}
		withBytes++
		if !pktcap.HasLinkHeader(f.data) {
			return inputErr(name, ErrNoLinkHeader)
		}
		t := f.at
		if t.IsZero() {
			t = at(f.h.TimeOfDay)
		}
		origLen := max(f.h.Length, len(f.data))
		st := runFor(tcpdumpLabel, 0).stream(tcpdumpLabel, false)
		st.obs = append(st.obs, pktcap.Observation{Time: t, Data: f.data, OrigLen: origLen, VLAN: -1})
		return nil
	}
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, inputErr(name, err)
		}
		if tl, ok := rec.(*pktcap.TextLine); ok && td != nil {
			if off, data, ok := pktcap.TcpdumpHex(tl.Text); ok && off == len(td.data) {
				td.data = append(td.data, data...)
				continue
			}
		}
		if err := flushTcpdump(); err != nil {
			return nil, err
		}
		switch rec := rec.(type) {
		case *pktcap.TextLine:
			msg := rec.Message()
			if m := uplinkBanner.FindStringSubmatch(msg); m != nil {
				banner(func(rn *consoleRun) { rn.uplink = m[1] })
			} else if m := portBanner.FindStringSubmatch(msg); m != nil {
				id, _ := strconv.ParseUint(m[1], 16, 32)
				banner(func(rn *consoleRun) { rn.port = uint32(id) })
			} else if m := pointBanner.FindStringSubmatch(msg); m != nil && cur != nil {
				// the points the session captures at, frames or not
				for _, label := range strings.Split(m[1], ",") {
					cur.stream(label, false)
				}
			} else if s, ok := pktcap.ParseSummary(msg); ok && cur != nil {
				cur.dropped, cur.summary = uint64(s.Dropped), true
			} else if h, ok := pktcap.ParseTcpdumpHeader(rec.Text); ok {
				td = &tcpdumpFrame{h: h}
				td.at = h.At
			}
		case *pktcap.ConsoleFrame:
			rn := runFor(rec.Point, rec.Seq)
			data := bytesOf(rec.Data)
			snap := 0
			if len(rec.Data) > 0 && len(rec.Data) < rec.Length {
				snap = len(rec.Data) // a snap length (-s) or a trace's capture length
			}
			if len(rec.Trace) == 0 {
				st := rn.stream(rec.Point, false)
				st.obs = append(st.obs, pktcap.Observation{Time: at(rec.TimeOfDay), Data: data, OrigLen: rec.Length, VLAN: rec.VLAN})
				st.snap = minSnap(st.snap, snap)
				continue
			}
			// --trace: each point of the PATH is a sighting of the frame
			// (the header's point, where it was printed, is one of them)
			hops := rec.Trace
			if !slices.ContainsFunc(hops, func(h pktcap.TraceHop) bool { return h.Point == rec.Point }) {
				hops = append(slices.Clone(hops), pktcap.TraceHop{TimeOfDay: rec.TimeOfDay, Point: rec.Point})
			}
			for _, h := range hops {
				st := rn.stream(h.Point, true)
				st.obs = append(st.obs, pktcap.Observation{Time: at(h.TimeOfDay), Data: data, OrigLen: rec.Length, VLAN: rec.VLAN})
				st.snap = minSnap(st.snap, snap)
			}
		}
	}
	if err := flushTcpdump(); err != nil {
		return nil, err
	}
	if tcpdumps > 0 && withBytes < tcpdumps {
		return nil, inputErr(name, fmt.Errorf("%w (%d of its %d frames have none)", ErrNoBytes, tcpdumps-withBytes, tcpdumps))
	}
	for _, rn := range runs {
		for _, st := range rn.streams {
			// trace paths are printed when a frame is freed, not in the
			// order frames passed a point
			slices.SortStableFunc(st.obs, func(a, b pktcap.Observation) int { return a.Time.Compare(b.Time) })
		}
	}
	return runs, nil
}

// tcpdumpFrame is a frame of tcpdump text being read: its header line and
// the bytes of the hex lines so far.
type tcpdumpFrame struct {
	h    pktcap.TcpdumpHeader
	at   time.Time // from the header's date or epoch time (-tttt, -tt), else zero
	data []byte
}

// noBytes is the stand-in for the bytes of the n-th frame of input name
// printed without them: 12 bytes that no other frame has (too short for
// addresses, so the frame's flow is unknown).
func noBytes(name string, n uint64) []byte {
	h := fnv.New32a()
	h.Write([]byte(name))
	b := []byte{0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], h.Sum32())
	binary.BigEndian.PutUint32(b[6:], uint32(n))
	binary.BigEndian.PutUint16(b[10:], uint16(n>>32))
	return b
}

// pointName is the capture point name of a stream of the run.
func (rn *consoleRun) pointName(st *consoleStream) string {
	label := st.label
	switch {
	case st.trace:
		// a PATH does not say which port or uplink a point was at
		return "trace/" + label
	case rn.uplink != "":
		pt, err := pktcap.ParsePoint(label)
		switch {
		case err != nil || pt.Stage() == pktcap.StageUplinkRx: // tcpdump's frames: the --uplink default
			return rn.uplink + "/rx"
		case pt.Stage() == pktcap.StageUplinkTx:
			return rn.uplink + "/tx"
		}
		return rn.uplink + "/" + label // the uplink's PortOutput, say: not a VM port's
	case rn.port != 0:
		return fmt.Sprintf("%d/%s", rn.port, label)
	}
	return label
}

// points merges the run's streams by point name: the banner names the
// points as --capture does and frames may name one otherwise (UplinkRcv,
// UplinkRcvKernel), so a stream without frames whose name another stream
// has is that point. Frames tcpdump printed are at the one point the
// banner names, if it names one.
func (rn *consoleRun) points() []*consoleStream {
	var declared []string
	for _, st := range rn.streams {
		if len(st.obs) == 0 && !st.trace {
			declared = append(declared, st.label)
		}
	}
	withFrames := map[string]bool{}
	for _, st := range rn.streams {
		if st.label == tcpdumpLabel && !st.trace && len(declared) == 1 {
			st.label = declared[0]
		}
		if len(st.obs) > 0 {
			withFrames[rn.pointName(st)] = true
		}
	}
	var merged []*consoleStream
	for _, st := range rn.streams {
		name := rn.pointName(st)
		if len(st.obs) == 0 && (withFrames[name] || st.trace) {
			continue
		}
		k := slices.IndexFunc(merged, func(m *consoleStream) bool { return m.label == name })
		if k < 0 {
			merged = append(merged, &consoleStream{label: name, trace: st.trace, obs: st.obs, snap: st.snap})
			continue
		}
		m := merged[k]
		m.obs = append(m.obs, st.obs...)
		m.snap = minSnap(m.snap, st.snap)
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

// displayName is how points of an input are named: its file's base name,
// "stdin" for standard input.
func displayName(in Input) string {
	if in.Name == StdinName {
		return "stdin"
	}
	return filepath.Base(in.Name)
}

// addConsole makes each point of each run of pktcap-uw console text a
// point of the set, live from the run's first to its last frame (widened
// by the window) and with the run's drop count, which covers every point of
// the session. Input.Point names the point of a transcript of one session
// at one point (frames pasted without the banner, say). The points of a
// --trace PATH are named trace/POINT: the path does not say at which port
// or uplink, so they place a frame on no port's path.
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
			var cp correlate.Point
			if st.trace && !given {
				stage := pktcap.StageOther
				if pktcap.Point(strings.TrimPrefix(name, "trace/")) == pktcap.Drop {
					stage = pktcap.StageDrop
				}
				cp = correlate.Point{Name: name, Stage: stage}
			} else {
				cp, err = correlate.PointFromName(name)
				switch {
				case rn.ambiguous && !given:
					return &NameError{Input: in.Name, Problem: AmbiguousBanner, Iface: -1, Run: i + 1, Count: len(runs), Name: name}
				case err != nil && given:
					return &NameError{Input: in.Name, Problem: BadName, Iface: -1, Name: name, Err: err}
				case err != nil:
					return &NameError{Input: in.Name, Problem: NotAPoint, Iface: -1, Run: i + 1, Count: len(runs), Name: name, Err: err}
				}
			}
			cp.Name = fmt.Sprintf("%s#%d %s", displayName(in), i+1, name)
			cp.Start, cp.Stop, cp.Dropped = first.Add(-window), last.Add(window), rn.dropped
			p := Point{Point: cp, From: []string{in.Name}, LiveFromFrames: true, DropsKnown: rn.summary, SnapLen: st.snap}
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
