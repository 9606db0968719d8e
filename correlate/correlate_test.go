package correlate

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

func articlePoints() []Point {
	return []Point{
		{Name: "esx02/vmnic2/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic2"},
		{Name: "esx02/vmnic3/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic3"},
		{Name: "esx02/50331657/PortOutput", Stage: pktcap.StagePortOutput},
		{Name: "esx02/50331657/VnicRx", Stage: pktcap.StageVnicRx},
	}
}

// synthFrame is a 98-byte ICMP echo request whose sequence number is seq.
func synthFrame(seq uint16) []byte {
	f := make([]byte, 98)
	copy(f, []byte{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0x00, 0x50, 0x56, 0x9d, 0x43, 0x42, 0x08, 0x00, 0x45})
	f[23] = 1
	copy(f[26:], []byte{192, 168, 100, 11, 192, 168, 100, 12})
	f[34] = 8
	binary.BigEndian.PutUint16(f[40:], seq)
	return f
}

// tagged inserts an 802.1Q tag, as a capture that keeps it would show.
func tagged(f []byte, vlan uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = append(out, 0x81, 0x00, byte(vlan>>8), byte(vlan))
	return append(out, f[12:]...)
}

// VLAN tags do not change the key; a tagged uplink copy matches an
// untagged VnicRx copy.
func TestKeyIgnoresVLANTag(t *testing.T) {
	c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	f := synthFrame(1)
	c.Add(pktcap.Observation{Point: 0, Time: t0, Data: tagged(f, 100), OrigLen: 102})
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(4 * time.Microsecond), Data: f, OrigLen: 98})
	c.Add(pktcap.Observation{Point: 3, Time: t0.Add(10 * time.Microsecond), Data: f, OrigLen: 98})
	// the same bytes a second later are a new instance
	c.Add(pktcap.Observation{Point: 0, Time: t0.Add(time.Second), Data: f, OrigLen: 98})
	c.Add(pktcap.Observation{Point: 2, Time: t0.Add(time.Second + 4*time.Microsecond), Data: f, OrigLen: 98})
	r := c.Close()
	if len(r.Flows) != 1 || r.Flows[0].Counts[Delivered] != 1 || r.Flows[0].Counts[DroppedAfterPortOutput] != 1 {
		t.Fatalf("flows %+v", r.Flows[0].Counts)
	}
}

// The article's console transcripts, correlated offline with only
// PortOutput and VnicRx: duplicates at PortOutput, none at VnicRx.
func TestNoUplinkCaptures(t *testing.T) {
	pts := articlePoints()[2:]
	c, _ := New(Config{Points: pts, Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
	t0 := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		f := synthFrame(uint16(i))
		at := t0.Add(time.Duration(i) * time.Second)
		c.Add(pktcap.Observation{Point: 0, Time: at, Data: f})
		c.Add(pktcap.Observation{Point: 0, Time: at.Add(16 * time.Microsecond), Data: f})
		c.Add(pktcap.Observation{Point: 1, Time: at.Add(20 * time.Microsecond), Data: f})
	}
	r := c.Close()
	if got := r.Flows[0].Counts[DeliveredDupsRemoved]; got != 3 {
		t.Errorf("got %d %q; want 3", got, DeliveredDupsRemoved)
	}
	if r.Points[0].Duplicates != 3 || r.Points[1].Duplicates != 0 {
		t.Errorf("duplicates: PortOutput %d, VnicRx %d; want 3 and 0", r.Points[0].Duplicates, r.Points[1].Duplicates)
	}
}

func TestMergerOrders(t *testing.T) {
	var got []int
	m := NewMerger(10*time.Millisecond, func(o pktcap.Observation) { got = append(got, o.Point) })
	t0 := time.Unix(0, 0)
	m.Add(pktcap.Observation{Point: 2, Time: t0.Add(2 * time.Millisecond)})
	m.Add(pktcap.Observation{Point: 1, Time: t0.Add(1 * time.Millisecond)})
	m.Add(pktcap.Observation{Point: 3, Time: t0.Add(3 * time.Millisecond)})
	if len(got) != 0 {
		t.Fatalf("released %v before the lateness passed", got)
	}
	m.Add(pktcap.Observation{Point: 12, Time: t0.Add(12 * time.Millisecond)})
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("got %v; want [1 2] released", got)
	}
	m.Flush()
	if len(got) != 4 || got[2] != 3 || got[3] != 12 || m.Len() != 0 {
		t.Fatalf("after flush %v", got)
	}
}

// Items that arrive at most Lateness out of order come out sorted, equal
// times in arrival order, whatever the interleaving.
func TestReorderSorts(t *testing.T) {
	type item struct{ at, seq int64 }
	rng := rand.New(rand.NewPCG(1, 2))
	var got []item
	r := NewReorder(time.Duration(100), func(x *item) int64 { return x.at }, func(x item) { got = append(got, x) })
	maxHeld := 0
	for i := range 10000 {
		r.Add(item{int64(i) + rng.Int64N(100) - int64(i%7), int64(i)})
		maxHeld = max(maxHeld, r.Len())
	}
	r.Flush()
	if len(got) != 10000 {
		t.Fatalf("released %d of 10000", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.at > b.at || (a.at == b.at && a.seq > b.seq) {
			t.Fatalf("out of order at %d: %v then %v", i, a, b)
		}
	}
	if maxHeld > 250 {
		t.Errorf("held up to %d items; the lateness bounds it near 100", maxHeld)
	}
}

func FuzzCorrelate(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, synthFrame(1))
	f.Fuzz(func(t *testing.T, order []byte, frame []byte) {
		c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Unix(0, 0)
		for i, b := range order {
			data := frame
			if b&0x80 != 0 && len(frame) > 14 {
				data = tagged(frame, uint16(b))
			}
			c.Add(pktcap.Observation{Point: int(b % 5), Time: t0.Add(time.Duration(i) * time.Duration(b) * time.Microsecond), Data: data, OrigLen: len(data)})
		}
		r := c.Close()
		total := 0
		for _, fl := range r.Flows {
			for _, n := range fl.Counts {
				total += n
			}
		}
		if total == 0 && len(order) > 0 && len(r.Flows) > 0 {
			t.Errorf("flows without instances")
		}
	})
}

// BenchmarkCorrelate feeds the article's pattern: each frame seen on two
// uplinks, twice at PortOutput and once at VnicRx (5 observations), 10 µs
// apart. The obs/s metric is observations correlated per second.
func BenchmarkCorrelate(b *testing.B) {
	frames := make([][]byte, 2048)
	for i := range frames {
		frames[i] = synthFrame(uint16(i))
	}
	c, _ := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
	t0 := time.Unix(1000, 0)
	pattern := [5]struct {
		pt int
		us time.Duration
	}{{0, 0}, {2, 4}, {3, 10}, {1, 16}, {2, 20}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst := i / 5
		p := pattern[i%5]
		c.Add(pktcap.Observation{Point: p.pt, Time: t0.Add(time.Duration(inst)*25*time.Microsecond + p.us*time.Microsecond),
			Data: frames[inst%len(frames)], OrigLen: 98})
	}
	r := c.Close()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	if b.N >= 5 && r.Totals[DeliveredDupsRemoved] == 0 {
		b.Fatalf("no verdicts: %v", r.Totals)
	}
}

// A frame inside a point's gap (between two joined captures of it) is
// inconclusive, never "not forwarded" or "filtered"; outside it, judged.
func TestPointGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pts := articlePoints()
	pts[3].Gaps = []Gap{{From: t0.Add(time.Second), To: t0.Add(2 * time.Second)}} // VnicRx
	c, err := New(Config{Points: pts, Port: Port{Policy: "srcport", TeamUplink: "vmnic2"}})
	if err != nil {
		t.Fatal(err)
	}
	for k, at := range []time.Duration{0, 1500 * time.Millisecond} {
		f := synthFrame(uint16(k))
		base := t0.Add(at)
		c.Add(pktcap.Observation{Point: 0, Time: base, Data: f}) // vmnic2
		c.Add(pktcap.Observation{Point: 2, Time: base.Add(4 * time.Microsecond), Data: f})
		if at == 0 {
			c.Add(pktcap.Observation{Point: 3, Time: base.Add(10 * time.Microsecond), Data: f})
		}
	}
	r := c.Close()
	if r.Totals[Delivered] != 1 || r.Totals[Inconclusive] != 1 || r.Totals[DroppedAfterPortOutput] != 0 || r.Totals[FilteredReverseTeaming] != 0 {
		t.Errorf("totals %v; want one delivered and one inconclusive (in VnicRx's gap)", r.Totals)
	}
	for _, e := range r.Flows[0].Examples {
		if e.Verdict == Inconclusive && !strings.Contains(e.Reason, "between two of its captures") {
			t.Errorf("reason %q", e.Reason)
		}
	}
}
