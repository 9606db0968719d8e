package correlate

import (
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Frames seen only at points off the uplink -> PortOutput -> VnicRx path
// of the port (PktFree, PreDVFilter, Drop, a --trace path's hops), or only
// leaving on an uplink: the reason names where they were seen and never
// says "seen only on uplinks"; none of them is "transmitted by this port"
// when the port's own transmit point saw nothing.
func TestReasonsForOtherPoints(t *testing.T) {
	other := []Point{
		{Name: "esx02/drop", Stage: pktcap.StageDrop},
		{Name: "t.txt#1 trace/PktFree", Stage: pktcap.StageOther},
		{Name: "t.txt#1 trace/PreDVFilter", Stage: pktcap.StageOther},
		{Name: "esx02/vmnic2/tx", Stage: pktcap.StageUplinkTx, Uplink: "vmnic2"},
	}
	const drop, pktFree, preDV, upTx = 0, 1, 2, 3
	for _, tc := range []struct {
		name    string
		points  []Point // after the four above
		seen    []int
		verdict Verdict
		reason  []string // all in the reason
	}{
		{"drop only, no PortOutput", nil, []int{drop}, Inconclusive,
			[]string{"seen only at esx02/drop", "PortOutput was not captured"}},
		{"trace hops only", nil, []int{preDV, pktFree}, Inconclusive,
			[]string{"seen only at t.txt#1 trace/PktFree, t.txt#1 trace/PreDVFilter", "do not say whether it was for this port"}},
		{"drop only, PortOutput captured", []Point{{Name: "esx02/7/PortOutput", Stage: pktcap.StagePortOutput}, {Name: "esx02/7/VnicRx", Stage: pktcap.StageVnicRx}},
			[]int{drop}, NotForwarded, []string{"seen only at esx02/drop (no uplink saw it come in), never at PortOutput"}},
		{"leaving on an uplink, the port's VnicTx saw nothing", []Point{{Name: "esx02/7/VnicTx", Stage: pktcap.StageVnicTx}},
			[]int{upTx}, Inconclusive, []string{"seen only at esx02/vmnic2/tx", "esx02/7/VnicTx did not see it"}},
		{"leaving on an uplink after the port's VnicTx", []Point{{Name: "esx02/7/VnicTx", Stage: pktcap.StageVnicTx}},
			[]int{4, upTx}, Transmitted, []string{"sent by this port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			points := append(append([]Point(nil), other...), tc.points...)
			t0 := time.Unix(1000, 0)
			var got []*Instance
			c, err := New(Config{Points: points, Port: Port{Policy: "srcport", TeamUplink: "vmnic2"},
				OnInstance: func(i *Instance) { cp := *i; cp.why = i.Reason(); got = append(got, &cp) }})
			if err != nil {
				t.Fatal(err)
			}
			// every point sees a frame of its own first and last, so that
			// every point is live while the frame is judged
			for p := range points {
				c.Add(pktcap.Observation{Point: p, Time: t0, Data: synthFrame(uint16(100 + p))})
			}
			for k, p := range tc.seen {
				c.Add(pktcap.Observation{Point: p, Time: t0.Add(time.Second + time.Duration(k)*time.Microsecond), Data: synthFrame(1)})
			}
			for p := range points {
				c.Add(pktcap.Observation{Point: p, Time: t0.Add(2 * time.Second), Data: synthFrame(uint16(200 + p))})
			}
			c.Close()
			var inst *Instance
			for _, i := range got {
				if i.First.Equal(t0.Add(time.Second)) {
					inst = i
				}
			}
			if inst == nil {
				t.Fatalf("the frame was not judged")
			}
			if inst.Verdict != tc.verdict {
				t.Errorf("verdict %v (%s); want %v", inst.Verdict, inst.why, tc.verdict)
			}
			for _, w := range tc.reason {
				if !strings.Contains(inst.why, w) {
					t.Errorf("reason %q lacks %q", inst.why, w)
				}
			}
			if strings.Contains(inst.why, "seen only on uplinks") {
				t.Errorf("reason %q: it was seen on no uplink", inst.why)
			}
		})
	}
}

// A frame whose bytes were not captured (shorter than an Ethernet header:
// a pasted --trace header without its hex) is inconclusive wherever it was
// seen: it cannot be matched with what the other points saw, so "not
// forwarded" or "filtered" could be false.
func TestFrameWithoutBytesInconclusive(t *testing.T) {
	var got []*Instance
	c, err := New(Config{Points: articlePoints(), Port: Port{Policy: "srcport", TeamUplink: "vmnic2"},
		OnInstance: func(i *Instance) { cp := *i; got = append(got, &cp) }})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	stub := []byte{0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	c.Add(pktcap.Observation{Point: up3, Time: t0, Data: stub, OrigLen: 98})
	c.Add(pktcap.Observation{Point: po, Time: t0.Add(4 * us), Data: stub, OrigLen: 98})
	c.Close()
	if len(got) != 1 || got[0].Verdict != Inconclusive || !strings.Contains(got[0].Reason(), "its bytes were not captured") {
		t.Fatalf("%d instances %+v; want one, inconclusive: its bytes were not captured", len(got), got)
	}
}
