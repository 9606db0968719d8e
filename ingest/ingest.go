package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// Input is one saved capture: a pcap or pcapng file or pktcap-uw console
// text, gzip-compressed or not (the format is told from the content, not
// the name).
type Input struct {
	// Name is the file's path, or what Open opens. Errors name it, and so
	// do the points of console text ("pasted.txt#2 vmnic2/rx").
	Name string
	// Open, when set, opens the input instead of os.Open(Name). It is
	// called once per pass over the input (a pcapng is read two or three
	// times) and must give the same bytes every time.
	Open func() (io.ReadCloser, error)
	// Point names the capture point (e.g. "esx02/vmnic2/rx",
	// "esx02/50331657/VnicRx") of an input that holds one point and does
	// not name it: a pcap file, which must have it; a pcapng with one
	// interface (what pktcap-uw -P writes); console text of one session at
	// one point pasted without its banner.
	Point string
	// Interfaces names interfaces of a pcapng by index (from 0, as
	// Wireshark's frame.interface_id), for files whose interface names are
	// not capture point names (a mergecap of per-point pcaps). It wins over
	// Point and over the names in the file.
	Interfaces map[int]string
}

// Options tune how inputs are read. The zero value is ready to use.
type Options struct {
	// Day is the date of console text, which prints only the time of day
	// (zero: today, UTC). A run that crosses midnight goes on to the next
	// day.
	Day time.Time
	// Window is how far beyond its first and last frame a point whose
	// live interval was not recorded counts as capturing, and the grouping
	// window of Config and Correlate when the correlate.Config gives none
	// (zero: 5 ms, the correlator's default).
	Window time.Duration
	// Drops gives, by point name, the drop counts captures did not record
	// (pktcap-uw's "Dumped N packet to file ..., dropped M packets" of a
	// pcap written on the host, the summary of a transcript that lacks
	// it). A point without a recorded or given count has unknown drops,
	// and the correlator treats it as a point that may have missed frames.
	// The name "*" gives the count of every point without a recorded or
	// named one. Naming a point the inputs lack, or giving a count that
	// contradicts the recorded one, is an error.
	Drops map[string]uint64
}

// defaultWindow is correlate's default grouping window.
const defaultWindow = 5 * time.Millisecond

// Point is a capture point of a Set: what the correlator gets
// (correlate.Point: name, stage, uplink, live interval, gaps, drops) and
// what the inputs said about it.
type Point struct {
	correlate.Point
	// From names where the point's frames come from: the input's Name,
	// with "#N" for interface N of a pcapng (several for interfaces of
	// one name in joined sections).
	From []string
	// LiveFromFrames says that no live interval was recorded (a pcap
	// file, console text, a pcapng interface without statistics, as a
	// trace killed with -9 leaves it): the point counts as capturing from
	// its first to its last frame, widened by Options.Window. For a pcap
	// file Start and Stop are zero here, since its frames are read only by
	// Correlate; Result.Points has them.
	LiveFromFrames bool
	// DropsKnown says that the capture reported its drop count (a pcapng
	// interface statistics block, pktcap-uw's summary line): when false,
	// Dropped is 0 because nothing was reported, not because nothing was
	// lost.
	DropsKnown bool
	// SnapLen is the most bytes of a frame the capture kept (its snap
	// length; for console text the shortest truncated frame), 0 when
	// unlimited or unknown.
	SnapLen int
}

// Set is saved captures ready to be correlated: their points, and how to
// read their frames. It holds no open file; Correlate and Feed read the
// inputs anew each time, and may run concurrently.
type Set struct {
	points  []Point
	sources []source
	window  time.Duration
}

// A source is one input's frames: a pcap file or console text (one point),
// or a pcapng (a point per interface).
type source struct {
	in     Input
	format pktcap.Format // pcap, pcapng, or "" for console text
	point  int           // pcap and console: the point
	obs    []pktcap.Observation
	ifaces []int // pcapng: the point of each interface
}

// Open reads what it needs of the inputs (a pcap's header; a pcapng's
// interfaces, statistics and frame times, in one pass; console text
// whole) and names their points. An error naming an input is an
// *InputError (unreadable, corrupt, not a capture) or a *NameError (a point
// not named, or not named well).
func Open(inputs []Input, opts Options) (*Set, error) {
	if len(inputs) == 0 {
		return nil, errors.New("ingest: no inputs")
	}
	if opts.Window <= 0 {
		opts.Window = defaultWindow
	}
	if opts.Day.IsZero() {
		opts.Day = time.Now().UTC().Truncate(24 * time.Hour)
	}
	s := &Set{window: opts.Window}
	for _, in := range inputs {
		if err := s.add(in, opts); err != nil {
			return nil, err
		}
	}
	if err := s.setDrops(opts.Drops); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrDrops is the error of drop counts (Options.Drops) that do not fit the
// inputs.
var ErrDrops = errors.New("a drop count")

// setDrops applies Options.Drops.
func (s *Set) setDrops(drops map[string]uint64) error {
	names := make([]string, 0, len(drops))
	for name := range drops {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "*" {
			continue
		}
		i := slices.IndexFunc(s.points, func(p Point) bool { return p.Name == name })
		if i < 0 {
			have := make([]string, len(s.points))
			for j, p := range s.points {
				have[j] = p.Name
			}
			return fmt.Errorf("ingest: %w given for %s, which no input has (points: %s)", ErrDrops, name, strings.Join(have, ", "))
		}
		p := &s.points[i]
		if p.DropsKnown && p.Dropped != drops[name] {
			return fmt.Errorf("ingest: %w given for %s: %d, but the capture recorded %d", ErrDrops, name, drops[name], p.Dropped)
		}
		p.Dropped, p.DropsKnown = drops[name], true
	}
	if n, ok := drops["*"]; ok {
		for i := range s.points {
			if p := &s.points[i]; !p.DropsKnown {
				p.Dropped, p.DropsKnown = n, true
			}
		}
	}
	return nil
}

func (s *Set) add(in Input, opts Options) error {
	r, c, err := open(in)
	if err != nil {
		return err
	}
	defer c.Close()
	head, _ := r.Peek(4)
	switch pktcap.DetectFormat(head) {
	case pktcap.FormatPcapNG:
		return s.addPcapng(in, r, opts.Window)
	case pktcap.FormatPcap:
		return s.addPcap(in, r)
	}
	return s.addConsole(in, r, opts.Day, opts.Window)
}

// Points returns the capture points, in the order of the inputs; a point's
// index is its index in correlate.Config.Points and Result.Points.
func (s *Set) Points() []Point {
	out := slices.Clone(s.points)
	for i := range out {
		out[i].Gaps, out[i].From = slices.Clone(out[i].Gaps), slices.Clone(out[i].From)
	}
	return out
}

// Config returns cfg completed for the set: its points, the window if cfg
// has none, and a key length no longer than the shortest snap length (a
// point that kept 64 bytes of each frame is matched with the others on
// those 64 bytes).
func (s *Set) Config(cfg correlate.Config) correlate.Config {
	cfg.Points = make([]correlate.Point, len(s.points))
	for i, p := range s.points {
		cfg.Points[i] = p.Point
		cfg.Points[i].Gaps = slices.Clone(p.Gaps)
		cfg.Points[i].DropsUnknown = !p.DropsKnown
	}
	if cfg.Window <= 0 {
		cfg.Window = s.window
	}
	for _, p := range s.points {
		if n := p.SnapLen; n > 0 && n < correlate.DefaultKeyLen && (cfg.KeyLen <= 0 || n < cfg.KeyLen) {
			cfg.KeyLen = n
		}
	}
	return cfg
}

// Correlate reads every input and correlates the frames of all of them in
// time order: the whole job for files one has. cfg describes the traced
// port and tuning; its points, and the key length, come from the set (see
// Config).
func (s *Set) Correlate(ctx context.Context, cfg correlate.Config) (*correlate.Result, error) {
	c, err := correlate.New(s.Config(cfg))
	if err != nil {
		return nil, err
	}
	if err := s.Feed(ctx, c); err != nil {
		return nil, err
	}
	return c.Close(), nil
}
