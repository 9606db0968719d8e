package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/internal/testenv"
)

// pathResult is a path like the path lab's: requests lost in the network
// between the hosts, replies delivered.
func pathResult() *correlate.PathResult {
	hops := func(a, b string) []correlate.Hop {
		lat := correlate.Latency{N: 2, Min: time.Microsecond, P50: time.Microsecond, P90: time.Microsecond, P99: time.Microsecond, Max: time.Microsecond}
		cross := lat
		cross.P50, cross.Uncertainty = 15*time.Microsecond, 1220*time.Microsecond
		return []correlate.Hop{
			{From: a + " VnicTx", To: a + " PortInput", Frames: 5, Latency: lat},
			{From: a + " PortInput", To: a + " UplinkSnd", Frames: 4, Latency: lat},
			{From: a + " UplinkSnd", To: b + " uplinks (rx)", CrossHost: true, Frames: 2, Latency: cross},
			{From: b + " uplinks (rx)", To: b + " PortOutput", Frames: 2, Latency: lat},
			{From: b + " PortOutput", To: b + " VnicRx", Frames: 2, Latency: lat},
		}
	}
	var req, rep correlate.PathVerdictCounts
	req[correlate.PathDelivered], req[correlate.PathLostInNetwork], req[correlate.PathInconclusive] = 2, 2, 1
	rep[correlate.PathDelivered] = 2
	at := time.Date(2026, 12, 3, 12, 56, 27, 58114000, time.UTC)
	return &correlate.PathResult{
		A: correlate.End{Host: "esx01", Port: correlate.Port{Name: "testvm1 Network adapter 1"}},
		B: correlate.End{Host: "esx02", Port: correlate.Port{Name: "testvm2 Network adapter 1"}},
		Flows: []*correlate.PathFlow{
			{Direction: correlate.AtoB, From: "testvm1 on esx01", To: "testvm2 on esx02", Counts: req, Hops: hops("esx01", "esx02"),
				Examples: []correlate.PathFrameExample{{First: at, Verdict: correlate.PathLostInNetwork, Reason: "left esx01 on vmnic2 at 12:56:27.058118, reached no uplink of esx02"}}},
			{Direction: correlate.BtoA, From: "testvm2 on esx02", To: "testvm1 on esx01", Counts: rep, Hops: hops("esx02", "esx01")},
		},
		Totals: [2]correlate.PathVerdictCounts{req, rep},
		Clock:  correlate.ClockAlignment{HostA: "esx01", HostB: "esx02", Residual: 70 * time.Microsecond, Uncertainty: 1220 * time.Microsecond, Requests: 2, Replies: 2, FromFrames: true},
	}
}

// The path in the three reports: the terminal's section, JSON v2's
// "path" (valid against the schema), and the HTML's picture with each
// loss drawn where it happened.
func TestPathReports(t *testing.T) {
	r := articleResult(t)
	vms := []VMTrace{{VM: "testvm2", Host: "esx02", PortID: 50331657, Result: r}}
	m := Meta{Title: "trace", Path: pathResult(), Files: []string{"trace.json"}}
	var text bytes.Buffer
	if err := TextVMs(&text, vms, m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n== Path testvm1 Network adapter 1 on esx01 -> testvm2 Network adapter 1 on esx02\n",
		"Clocks: esx02 against esx01 +70µs ± 1.22ms after the SSH readings (2 frames each way).\n",
		"A to B: 2 delivered, 2 lost in the network, 1 inconclusive\n",
		"B to A: 2 delivered\n",
		"e.g. 12:56:27.058114 lost in the network: left esx01 on vmnic2",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in:\n%s", want, text.String())
		}
	}
	if i, j := strings.Index(text.String(), "== Path"), strings.Index(text.String(), "Wrote trace.json"); j < i {
		t.Errorf("files before the path:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := JSONV2(&js, vms, m); err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, schemaV2, js.Bytes())
	if !strings.Contains(js.String(), `"lost_in_network": 2`) {
		t.Errorf("JSON path:\n%s", js.String())
	}
	var html bytes.Buffer
	if err := HTMLVMs(&html, vms, m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Whole path: testvm1 Network adapter 1 on esx01 → testvm2 Network adapter 1 on esx02",
		`aria-label="whole path of`, ">2 lost in the network</text>", ">UplinkSnd</text>"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("no %q in the HTML", want)
		}
	}
}
