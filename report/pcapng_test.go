package report

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// commentRun correlates three frames on the article's points — one
// delivered on the team uplink alone, one mirrored (duplicates removed),
// one that arrived on vmnic3 only (filtered) — with VnicRx's drop count
// dropped, writes them to a pcapng and annotates it. It returns the live
// comments by frame and the annotated comments by packet.
func commentRun(t *testing.T, dropped uint64) (live map[uint16]string, annotated []string) {
	t.Helper()
	mac, _ := net.ParseMAC("00:50:56:9d:fd:b1")
	notes := NewPcapngNotes()
	live = map[uint16]string{}
	names := []string{"esx02/vmnic2/rx", "esx02/vmnic3/rx", "esx02/50331657/PortOutput", "esx02/50331657/VnicRx"}
	c, err := correlate.New(correlate.Config{
		Points: []correlate.Point{
			{Name: names[0], Stage: pktcap.StageUplinkRx, Uplink: "vmnic2"},
			{Name: names[1], Stage: pktcap.StageUplinkRx, Uplink: "vmnic3"},
			{Name: names[2], Stage: pktcap.StagePortOutput},
			{Name: names[3], Stage: pktcap.StageVnicRx},
		},
		Port: correlate.Port{Name: "testvm2", MAC: mac, VLAN: 100, Policy: "srcport", TeamUplink: "vmnic2"},
		OnInstance: func(i *correlate.Instance) {
			live[binary.BigEndian.Uint16(i.Head()[40:])] = LiveComment(i)
			notes.Add(i)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	frame := func(seq uint16) []byte {
		f := make([]byte, 98)
		copy(f, []byte{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0x00, 0x50, 0x56, 0x9d, 0x43, 0x42, 0x08, 0x00, 0x45})
		f[23] = 1
		copy(f[26:], []byte{192, 168, 100, 11, 192, 168, 100, 12})
		f[34] = 8
		binary.BigEndian.PutUint16(f[40:], seq)
		return f
	}
	t0 := time.Date(2020, 5, 4, 16, 12, 40, 0, time.UTC)
	var obs []pktcap.Observation
	for seq, sightings := range [][][2]int{
		{{0, 0}, {2, 4}, {3, 10}},                   // delivered on the team uplink
		{{0, 0}, {2, 4}, {3, 10}, {1, 16}, {2, 20}}, // mirrored: duplicates removed
		{{1, 0}, {2, 4}},                            // vmnic3 only: filtered
	} {
		at := t0.Add(time.Duration(seq) * time.Second)
		for _, s := range sightings {
			obs = append(obs, pktcap.Observation{Point: s[0], Time: at.Add(time.Duration(s[1]) * time.Microsecond), Data: frame(uint16(seq)), OrigLen: 98, VLAN: -1})
		}
	}
	for _, o := range obs {
		c.Add(o)
	}
	if dropped > 0 {
		c.SetDropped(3, dropped)
	}
	res := c.Close()
	var src bytes.Buffer
	var ifaces []pktcap.NgInterface
	for _, n := range names {
		ifaces = append(ifaces, pktcap.NgInterface{Name: n})
	}
	w, err := pktcap.NewNgWriter(&src, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if err := w.WriteObservation(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var dst bytes.Buffer
	if n, err := notes.Annotate(&dst, &src, res); err != nil || n != len(obs) {
		t.Fatalf("Annotate: %d packets, %v; want %d", n, err, len(obs))
	}
	r, err := pktcap.NewCaptureReader(&dst)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		annotated = append(annotated, strings.Join(p.Comments, "|"))
	}
	return live, annotated
}

// The live comments: a verdict that a point's drops or the next poll
// could still undo says it is provisional, in trace's words.
func TestLiveComment(t *testing.T) {
	live, _ := commentRun(t, 0)
	want := map[uint16]string{
		// even delivered rests on PortOutput's and vmnic3's captures
		// having missed no copy (then it had duplicates removed)
		0: "capturectl: delivered: arrived on vmnic2, delivered" + provisionalLive,
		1: "capturectl: delivered, duplicates removed by reverse teaming: arrived on vmnic2 and vmnic3; the copy from vmnic3 (not the team uplink vmnic2) was dropped by reverse teaming" + provisionalLive,
		2: "capturectl: filtered by reverse teaming: filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2" + provisionalLive,
	}
	for seq, w := range want {
		if live[seq] != w {
			t.Errorf("frame %d: live comment %q; want %q", seq, live[seq], w)
		}
	}
	if got := PendingComment(2 * time.Second); !strings.HasPrefix(got, "capturectl: verdict not known yet") || !strings.Contains(got, "at most 2s") {
		t.Errorf("PendingComment: %q", got)
	}
}

// trace.pcapng's comments settle each verdict: with no drops every packet
// has its verdict as judged; once VnicRx dropped frames, the verdicts
// that rest on it (the duplicates removed, the filtered frame) say
// inconclusive and what they were judged, and the delivered one, which
// rests on PortOutput and vmnic3, stays.
func TestAnnotateSettles(t *testing.T) {
	live, clean := commentRun(t, 0)
	delivered := "capturectl: delivered: arrived on vmnic2, delivered"
	for i, c := range clean {
		if !strings.HasPrefix(c, "capturectl: ") || strings.Contains(c, "inconclusive") || strings.Contains(c, "provisional") {
			t.Errorf("packet %d without drops: comment %q; want its verdict as judged", i, c)
		}
	}
	if len(clean) != 10 || clean[0] != delivered || clean[3] != strings.TrimSuffix(live[1], provisionalLive) {
		t.Errorf("comments without drops: %q", clean)
	}
	_, dropped := commentRun(t, 1)
	for i, c := range dropped {
		switch {
		case i < 3:
			if c != delivered {
				t.Errorf("packet %d: comment %q; want %q (seen at VnicRx: drops do not change it)", i, c, delivered)
			}
		case !strings.HasPrefix(c, "capturectl: inconclusive: judged as ") || !strings.Contains(c, "dropped frames"):
			t.Errorf("packet %d with VnicRx's drops: comment %q; want inconclusive, judged as ...", i, c)
		}
	}
}
