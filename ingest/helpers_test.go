package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// testFrame is an IPv4 frame of n bytes between two VMware MACs, told apart
// by its run and sequence number (bytes 20 and 21).
func testFrame(n, run, seq int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0, 0x50, 0x56, 1, 2, 3, 0, 0x50, 0x56, 4, 5, 6, 0x08, 0x00, 0x45})
	f[20], f[21] = byte(run+seq>>8), byte(seq)
	return f
}

// A chunk is frames from..to-1 of one interface, written one after the
// other: a layout of chunks says how a file interleaves its interfaces.
type chunk struct{ iface, from, to int }

// ngLayout describes a pcapng to build: one section whose interfaces are
// named names, frame i of interface k at t0 + i*step[k] + k µs.
type ngLayout struct {
	names  []string
	step   []time.Duration
	chunks []chunk
	stats  bool // write interface statistics (a trace that was stopped, not killed)
}

func (l ngLayout) build(t testing.TB) []byte {
	var ifaces []pktcap.NgInterface
	for _, n := range l.names {
		ifaces = append(ifaces, pktcap.NgInterface{Name: n})
	}
	var b bytes.Buffer
	w, err := pktcap.NewNgWriter(&b, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.chunks {
		for i := c.from; i < c.to; i++ {
			at := t0.Add(time.Duration(i)*l.step[c.iface] + time.Duration(c.iface)*time.Microsecond)
			if err := w.WritePacket(c.iface, at, testFrame(60, 0, i), 60); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l.stats {
		for i := range l.names {
			w.SetStats(i, pktcap.NgStats{Start: t0.Add(-time.Second), End: t0.Add(time.Hour)})
		}
		err = w.Close()
	} else {
		err = w.Flush() // killed: no statistics
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// memInput is an input held in memory; opens counts its passes.
func memInput(name string, data []byte, opens *atomic.Int32) Input {
	return Input{Name: name, Open: func() (io.ReadCloser, error) {
		if opens != nil {
			opens.Add(1)
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// writeFile writes data to a file of the test's temp dir.
func writeFile(t testing.TB, name string, data []byte) string {
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// reference correlates the frames of a one-pcapng set without ingest's
// readers: every frame up to the cut is read in one pass, sorted by time
// (ties in interface order, as the merge breaks them) and added to a
// correlator made from the set's Config. What Correlate gives must be the
// same.
func reference(t testing.TB, s *Set, data []byte, cfg correlate.Config) *correlate.Result {
	t.Helper()
	if len(s.sources) != 1 || s.sources[0].format != pktcap.FormatPcapNG {
		t.Fatalf("reference: want one pcapng source, have %+v", s.sources)
	}
	ifaces := s.sources[0].ifaces
	sc, err := pktcap.NewNgScanner(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		iface int
		o     pktcap.Observation
	}
	var frames []frame
	for {
		id, ns, d, origLen, err := sc.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame{id, pktcap.Observation{Point: ifaces[id], Time: time.Unix(0, ns), Data: bytes.Clone(d), OrigLen: origLen}})
	}
	slices.SortStableFunc(frames, func(a, b frame) int {
		if c := a.o.Time.Compare(b.o.Time); c != 0 {
			return c
		}
		return a.iface - b.iface
	})
	c, err := correlate.New(s.Config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		c.Add(f.o)
	}
	return c.Close()
}

// sameResult fails t unless got and want judged the same frames alike.
func sameResult(t testing.TB, got, want *correlate.Result) {
	t.Helper()
	if got.Totals != want.Totals {
		t.Errorf("totals %v; want %v", got.Totals, want.Totals)
	}
	if len(got.Points) != len(want.Points) {
		t.Fatalf("%d points; want %d", len(got.Points), len(want.Points))
	}
	for i, p := range got.Points {
		w := want.Points[i]
		if p.Observations != w.Observations || p.Duplicates != w.Duplicates || !p.First.Equal(w.First) || !p.Last.Equal(w.Last) {
			t.Errorf("point %s: %d frames (%d duplicates) %v to %v; want %d (%d) %v to %v", p.Name,
				p.Observations, p.Duplicates, p.First, p.Last, w.Observations, w.Duplicates, w.First, w.Last)
		}
	}
	if len(got.Flows) != len(want.Flows) {
		t.Errorf("%d flows; want %d", len(got.Flows), len(want.Flows))
	}
}

// slowMerge makes the correlating goroutine slower than the readers, as a
// loaded machine may: the readers then run ahead and the pcapng demux
// blocks on full pipes, where its hand-offs happen.
func slowMerge(cfg correlate.Config) correlate.Config {
	n := 0
	cfg.OnInstance = func(*correlate.Instance) {
		if n++; n%512 == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	return cfg
}

// noDrops says that the named points dropped nothing (Options.Drops), for
// tests of captures that did not record drops (pcap files, pcapngs of a
// killed capture) whose verdicts are what they check.
func noDrops(points ...string) map[string]uint64 {
	m := map[string]uint64{}
	for _, p := range points {
		m[p] = 0
	}
	return m
}

// correlateSet opens inputs and correlates them, failing t on an error.
func correlateSet(t testing.TB, inputs []Input, cfg correlate.Config) (*Set, *correlate.Result) {
	t.Helper()
	var drops map[string]uint64
	for _, in := range inputs {
		if in.Point != "" { // a pcap: its drops were not recorded; say none
			drops = noDrops(append(slices.Collect(maps.Keys(drops)), in.Point)...)
		}
	}
	s, err := Open(inputs, Options{Drops: drops})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Correlate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, res
}
