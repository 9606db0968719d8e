package report

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// articleResult correlates the article's pattern: three echo requests, each
// on vmnic2 and vmnic3 (mirror), twice at PortOutput, once at VnicRx; and one
// frame that arrived on vmnic3 only.
func articleResult(t *testing.T) *correlate.Result {
	t.Helper()
	mac, _ := net.ParseMAC("00:50:56:9d:fd:b1")
	c, err := correlate.New(correlate.Config{
		Points: []correlate.Point{
			{Name: "esx02/vmnic2/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic2"},
			{Name: "esx02/vmnic3/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic3"},
			{Name: "esx02/50331657/PortOutput", Stage: pktcap.StagePortOutput},
			{Name: "esx02/50331657/VnicRx", Stage: pktcap.StageVnicRx},
		},
		Port: correlate.Port{Name: "testvm2", MAC: mac, VLAN: 100, Policy: "srcport", TeamUplink: "vmnic2"},
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
	t0 := time.Date(2020, 5, 4, 16, 12, 40, 631403000, time.UTC)
	for i := 0; i < 3; i++ {
		at, f := t0.Add(time.Duration(i)*time.Second), frame(uint16(i))
		for _, s := range []struct {
			p  int
			us int
		}{{0, 0}, {2, 4}, {3, 10}, {1, 16}, {2, 20}} {
			c.Add(pktcap.Observation{Point: s.p, Time: at.Add(time.Duration(s.us) * time.Microsecond), Data: f, OrigLen: 98})
		}
	}
	at, f := t0.Add(4*time.Second), frame(99)
	c.Add(pktcap.Observation{Point: 1, Time: at, Data: f, OrigLen: 98})
	c.Add(pktcap.Observation{Point: 2, Time: at.Add(4 * time.Microsecond), Data: f, OrigLen: 98})
	return c.Close()
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, articleResult(t), Meta{Title: "trace of testvm2", Host: "esx02", PortID: 50331657}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Traced: testvm2 on esx02 (port 50331657, 00:50:56:9d:fd:b1, VLAN 100, route based on originating port ID, team uplink vmnic2)",
		"ICMP echo request 192.168.100.11 > 192.168.100.12\n      3 delivered, duplicates removed by reverse teaming; 1 filtered by reverse teaming",
		"filtered by reverse teaming: arrived on vmnic3, team uplink is vmnic2",
		"seen at: esx02/vmnic2/rx +0µs, esx02/50331657/PortOutput +4µs, esx02/50331657/VnicRx +10µs, esx02/vmnic3/rx +16µs",
		"Result: 1 frames were filtered by reverse teaming",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, articleResult(t), Meta{Host: "esx02", PortID: 50331657}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	var j jsonReport
	if err := dec.Decode(&j); err != nil {
		t.Fatal(err)
	}
	if j.Schema != SchemaVersion || !j.Filtered || j.Totals["delivered_dups_removed"] != 3 || j.Totals["filtered_reverse_teaming"] != 1 {
		t.Errorf("json: %+v", j)
	}
	if len(j.Totals) != len(correlate.Verdicts()) {
		t.Errorf("totals %v: want every verdict listed", j.Totals)
	}
	p := j.Flows[0].Path
	if len(p.Uplinks) != 2 || p.Uplinks[0] != (jsonEdge{"vmnic2", 3, 3, 0}) || p.Uplinks[1] != (jsonEdge{"vmnic3", 4, 0, 4}) || p.PortOutput != 7 || p.VnicRx != 3 {
		t.Errorf("path %+v", p)
	}
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, articleResult(t), Meta{Title: "trace of testvm2"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"<svg", "PortOutput", "VnicRx", "team uplink", "4 from vmnic3 dropped by reverse teaming", "3 delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// Frames that could not be judged are said apart in the conclusion, never
// folded into "every frame was delivered".
func TestConclusionInconclusive(t *testing.T) {
	var r correlate.Result
	r.Totals[correlate.DeliveredDupsRemoved], r.Totals[correlate.Inconclusive] = 3, 1
	want := "Result: every frame that could be judged was delivered; 3 arrived on more than one uplink and reverse teaming removed the extra copies. 1 could not be judged (inconclusive: see the examples)."
	if got := Conclusion(&r); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	r.Totals[correlate.Inconclusive] = 0
	if got := Conclusion(&r); !strings.HasPrefix(got, "Result: every frame was delivered;") {
		t.Errorf("all judged: %q", got)
	}
	r.Totals[correlate.DeliveredDupsRemoved], r.Totals[correlate.Inconclusive] = 0, 2
	if got := Conclusion(&r); got != "Result: inconclusive: 2 frames could not be judged (see the examples)." {
		t.Errorf("none judged: %q", got)
	}
}

// A host clock that is off is said, with the host's times being the
// report's; one within the threshold is not; the JSON has every clock.
func TestHostClocks(t *testing.T) {
	m := Meta{Host: "esx02", Clocks: []HostClock{{"esx02", -37*time.Second - 2*time.Millisecond, 3 * time.Millisecond}, {"esx03", 2 * time.Millisecond, time.Millisecond}}}
	var b bytes.Buffer
	if err := Text(&b, articleResult(t), m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Clock: esx02 is 37.002s behind capturectl (±3ms); times are the host's.") || strings.Contains(b.String(), "esx03 is") {
		t.Errorf("text:\n%s", b.String())
	}
	b.Reset()
	if err := JSON(&b, articleResult(t), m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"host_clocks": [`) || !strings.Contains(b.String(), `"offset_us": -37002000`) || !strings.Contains(b.String(), `"uncertainty_us": 1000`) {
		t.Errorf("json:\n%s", b.String())
	}
}
