package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/capturectl/capturectl/internal/testenv"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// The panic "index out of range [0] with length 0" in the merge (a trace
// killed with -9 left a large pcapng without statistics, its points written
// in bursts): the demux sent an interface's batch while that interface was
// stuck (its full batch held back while the merge waited on another) and
// left it marked stuck, so the next scan step sent its new, empty batch,
// which the merge then read a frame from. It takes a stuck interface whose
// pipe the merge empties while the scanner waits on another interface: a
// burst of one point (A) longer than its pipe holds, then a burst of a
// sparser point (B) whose pipe fills while the merge drains A's. A slow
// merge makes that schedule the usual one; every run panicked before the
// fix.
func TestPcapngKilledInBurstsSlowMerge(t *testing.T) {
	testenv.CheckGoroutines(t)
	us := time.Microsecond
	for _, l := range []ngLayout{
		{names: []string{"esx01/7/PortOutput", "esx01/7/VnicRx"}, step: []time.Duration{10 * us, 100 * us},
			chunks: []chunk{{0, 0, 10000}, {1, 0, 9000}, {0, 10000, 16000}, {1, 9000, 10000}}},
		{names: []string{"esx01/vmnic2/rx", "esx01/7/PortOutput", "esx01/7/VnicRx"}, step: []time.Duration{10 * us, 10 * us, 100 * us},
			chunks: []chunk{{0, 0, 9000}, {1, 0, 9000}, {2, 0, 9000}, {0, 9000, 15000}, {1, 9000, 15000}, {2, 9000, 10000}}},
	} {
		whole := l.build(t)
		data := whole[:len(whole)-37] // cut in the middle of the last block
		for run := range 2 {
			s, err := Open([]Input{memInput("killed.pcapng", data, nil)}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := correlate.Config{Port: correlate.Port{TeamUplink: "vmnic2", Policy: "srcport"}}
			got, err := s.Correlate(context.Background(), slowMerge(cfg))
			if err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("%d-points/run-%d", len(l.names), run), func(t *testing.T) {
				sameResult(t, got, reference(t, s, data, cfg))
			})
		}
	}
}

// A pcapng whose interfaces are not interleaved (all of one, then all of
// the other, as mergecap -a writes) gives what the interleaved file gives,
// though each interface holds more frames than the pipes and the slack:
// PortOutput is handed to a reader of its own (the file is opened once
// more), and memory does not grow with the file.
func TestPcapngNotInterleaved(t *testing.T) {
	testenv.CheckGoroutines(t)
	const n = 100_000
	names := []string{"esx01/7/PortOutput", "esx01/7/VnicRx"}
	step := []time.Duration{100 * time.Microsecond, 100 * time.Microsecond}
	interleaved := ngLayout{names: names, step: step}
	for i := 0; i < n; i += 1000 {
		interleaved.chunks = append(interleaved.chunks, chunk{0, i, i + 1000}, chunk{1, i, i + 1000})
	}
	apart := ngLayout{names: names, step: step, chunks: []chunk{{0, 0, n}, {1, 0, n}}}
	cfg := correlate.Config{Port: correlate.Port{Policy: "srcport"}}
	var want correlate.Result
	for _, tc := range []struct {
		name string
		l    ngLayout
	}{{"interleaved", interleaved}, {"not interleaved", apart}} {
		data := tc.l.build(t)
		var opens atomic.Int32
		s, err := Open([]Input{memInput("c.pcapng", data, &opens)}, Options{Drops: noDrops(tc.l.names...)})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := s.Correlate(context.Background(), cfg)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		// the pipes, batches and scanners take about 2 MiB, 5 with a
		// reader of its own, whatever the file's length; holding back the
		// frames of one interface would take n x (32 + 60) bytes, 9 MiB,
		// allocated twice over as the slices grow
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: read %d times (Open's pass included), allocated %d KiB", tc.name, opens.Load(), alloc>>10)
		if alloc > 8<<20 {
			t.Errorf("%s: allocated %d KiB: memory is not bounded by the pipes", tc.name, alloc>>10)
		}
		if tc.name == "interleaved" {
			want = *got
			if got.Totals[correlate.Delivered] != n {
				t.Fatalf("interleaved: %v; want %d delivered", got.Totals, n)
			}
			continue
		}
		// Open's pass, the scanner's, and PortOutput's own reader
		if opens.Load() < 3 {
			t.Errorf("not interleaved: read %d times; want PortOutput handed to a reader of its own", opens.Load())
		}
		if got.Totals != want.Totals {
			t.Errorf("not interleaved: %v; want %v", got.Totals, want.Totals)
		}
	}
}

// Three points concatenated (each interface's frames after the previous
// one's) read as the interleaved file does; a copy cut in the middle of a
// block reads up to the cut; a corrupt block is an error naming the file.
func TestPcapngThreePoints(t *testing.T) {
	testenv.CheckGoroutines(t)
	const n = 9000
	us := 50 * time.Microsecond
	l := ngLayout{names: []string{"esx01/vmnic2/rx", "esx01/7/PortOutput", "esx01/7/VnicRx"}, step: []time.Duration{us, us, us}, stats: true}
	inter, concat := l, l
	for i := range n {
		for k := range 3 {
			inter.chunks = append(inter.chunks, chunk{k, i, i + 1})
		}
	}
	for k := range 3 {
		concat.chunks = append(concat.chunks, chunk{k, 0, n})
	}
	cfg := correlate.Config{Port: correlate.Port{TeamUplink: "vmnic2", Policy: "srcport"}}
	analyze := func(data []byte) (*Set, *correlate.Result, error) {
		s, err := Open([]Input{memInput("c.pcapng", data, nil)}, Options{Drops: noDrops(inter.names...)})
		if err != nil {
			return nil, nil, err
		}
		res, err := s.Correlate(context.Background(), cfg)
		return s, res, err
	}
	whole := inter.build(t)
	_, ri, err := analyze(whole)
	if err != nil || ri.Totals[correlate.Delivered] != n {
		t.Fatalf("interleaved: %v %v; want %d delivered", err, ri.Totals, n)
	}
	if _, rc, err := analyze(concat.build(t)); err != nil || rc.Totals != ri.Totals {
		t.Errorf("concatenated: %v %v; want %v", err, rc.Totals, ri.Totals)
	}
	cut := whole[:len(whole)*2/3+5]
	s, rc, err := analyze(cut)
	if err != nil || rc.Totals[correlate.Delivered] == 0 {
		t.Errorf("cut: %v %v", err, rc.Totals)
	} else {
		sameResult(t, rc, reference(t, s, cut, cfg))
	}
	bad := bytes.Clone(whole)
	binary.LittleEndian.PutUint32(bad[len(bad)/2/4*4:], 0xffffffff) // a block's length, or its body: corrupt either way
	_, _, err = analyze(bad)
	var ie *InputError
	if err == nil || !errors.As(err, &ie) || ie.Input != "c.pcapng" || !strings.Contains(err.Error(), "ingest: c.pcapng: pcapng: ") {
		t.Errorf("corrupt: %v; want an *InputError naming c.pcapng", err)
	}
}

// Two captures of the same points joined with cat (a pcapng of two
// sections, and a third): each interface name is one point across the
// sections, live during each capture with gaps between, and the frames of
// all are judged.
func TestPcapngSections(t *testing.T) {
	capture := func(from int, at time.Time, poOnly bool) []byte {
		ifaces := []pktcap.NgInterface{{Name: "esx01/7/PortOutput"}, {Name: "esx01/7/VnicRx"}}
		if poOnly {
			ifaces = ifaces[:1]
		}
		var b bytes.Buffer
		w, err := pktcap.NewNgWriter(&b, ifaces)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			f := testFrame(60, from, i)
			ti := at.Add(time.Duration(i) * time.Millisecond)
			w.WritePacket(0, ti, f, 60)
			if !poOnly {
				w.WritePacket(1, ti.Add(6*time.Microsecond), f, 60)
			}
			w.WritePacket(0, ti.Add(16*time.Microsecond), f, 60)
		}
		for i := range ifaces {
			w.SetStats(i, pktcap.NgStats{Start: at.Add(-time.Second), End: at.Add(time.Second)})
		}
		w.Close()
		return b.Bytes()
	}
	joined := bytes.Join([][]byte{capture(1, t0, false), capture(2, t0.Add(time.Hour), true), capture(3, t0.Add(2*time.Hour), false)}, nil)
	s, res := correlateSet(t, []Input{memInput("joined.pcapng", joined, nil)}, correlate.Config{})
	pts := s.Points()
	if len(pts) != 2 || pts[0].Name != "esx01/7/PortOutput" || len(pts[0].From) != 3 || len(pts[1].From) != 2 {
		t.Fatalf("points %+v; want PortOutput from 3 interfaces, VnicRx from 2", pts)
	}
	rx := pts[1]
	if len(rx.Gaps) != 1 || !rx.Gaps[0].From.Equal(t0.Add(time.Second)) || !rx.Gaps[0].To.Equal(t0.Add(2*time.Hour-time.Second)) ||
		!rx.Start.Equal(t0.Add(-time.Second)) || !rx.Stop.Equal(t0.Add(2*time.Hour+time.Second)) {
		t.Errorf("VnicRx live %v to %v, gaps %v; want one gap between the first and the third capture", rx.Start, rx.Stop, rx.Gaps)
	}
	if len(pts[0].Gaps) != 2 {
		t.Errorf("PortOutput gaps %v; want 2", pts[0].Gaps)
	}
	// the middle capture has no VnicRx: its frames fall in VnicRx's gap and
	// are inconclusive, never "dropped after PortOutput"
	if res.Totals[correlate.DeliveredDupsRemoved] != 200 || res.Totals[correlate.Inconclusive] != 100 || res.Totals[correlate.DroppedAfterPortOutput] != 0 {
		t.Errorf("totals %v; want 200 delivered (duplicates removed), 100 inconclusive", res.Totals)
	}
	found := false
	for _, f := range res.Flows {
		for _, e := range f.Examples {
			found = found || e.Verdict == correlate.Inconclusive && strings.Contains(e.Reason, "between two of its captures")
		}
	}
	if !found {
		t.Errorf("no inconclusive example says the frame fell between two captures")
	}
}

// FuzzIngestPcapng drives the pcapng demux with files whose interfaces are
// interleaved as the input says (bursts of any length, one to three points,
// one or two sections), with or without statistics, cut or whole, and with
// a slow merge or not: Correlate must judge what one plain pass over the
// file sorted by time gives, never panic and never hang.
//
// The input: [0] points-1, [1] flags (1 statistics, 2 cut, 4 slow merge, 8
// two sections), [2] how much to cut, [3:6] each point's time step in 10 µs,
// then pairs (point, burst length in 256 frames).
func FuzzIngestPcapng(f *testing.F) {
	f.Add([]byte{1, 2 | 4, 37, 1, 10, 1, 0, 39, 1, 35, 0, 78, 1, 12}) // TestPcapngKilledInBurstsSlowMerge's
	f.Add([]byte{2, 2, 3, 1, 1, 1, 0, 8, 1, 8, 2, 8, 0, 8, 1, 8, 2, 8})
	f.Add([]byte{2, 1 | 8, 0, 1, 2, 3, 0, 40, 1, 40, 2, 40})
	f.Add([]byte{0, 2, 1, 1, 1, 1, 0, 1})
	f.Add([]byte{1, 4, 0, 1, 1, 1, 0, 50, 1, 50})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 6 {
			return
		}
		nIf, flags := 1+int(in[0])%3, in[1]
		l := ngLayout{names: []string{"esx01/vmnic2/rx", "esx01/7/PortOutput", "esx01/7/VnicRx"}[:nIf], stats: flags&1 != 0}
		for k := range nIf {
			l.step = append(l.step, time.Duration(1+int(in[3+k])%16)*10*time.Microsecond)
		}
		next := make([]int, nIf) // the next frame of each point
		total := 0
		for p := in[6:]; len(p) >= 2 && total < 60_000; p = p[2:] {
			k, n := int(p[0])%nIf, (1+int(p[1])%64)*256
			l.chunks = append(l.chunks, chunk{k, next[k], next[k] + n})
			next[k] += n
			total += n
		}
		if total == 0 {
			return
		}
		var data []byte
		if flags&8 != 0 { // two captures joined: the second section goes on where the first stopped
			a, b := l, l
			a.chunks, b.chunks = l.chunks[:len(l.chunks)/2], l.chunks[len(l.chunks)/2:]
			data = append(a.build(t), b.build(t)...)
		} else {
			data = l.build(t)
		}
		if flags&2 != 0 {
			data = data[:max(len(data)-1-int(in[2])*7, len(data)/2)]
		}
		s, err := Open([]Input{memInput("fuzz.pcapng", data, nil)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := correlate.Config{Port: correlate.Port{TeamUplink: "vmnic2", Policy: "srcport"}}
		run := cfg
		if flags&4 != 0 {
			run = slowMerge(cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, err := s.Correlate(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		sameResult(t, got, reference(t, s, data, cfg))
	})
}
