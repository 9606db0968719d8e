package oracle

import (
	"testing"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
)

// Classify reads the lab's record as the contract means it, and the
// contract forbids what it must.
func TestClassify(t *testing.T) {
	rt := map[lab.StopReason]int{lab.ReverseTeaming: 1}
	for _, c := range []struct {
		name string
		f    lab.PortFate
		want Truth
	}{
		{"the article", lab.PortFate{Arrivals: []string{"vmnic2", "vmnic3"}, PortOutput: 2, VnicRx: 1, Stops: rt}, TruthDeliveredDupsRemoved},
		{"one copy, delivered", lab.PortFate{Arrivals: []string{"vmnic2"}, PortOutput: 1, VnicRx: 1}, TruthDelivered},
		{"non-team uplink only", lab.PortFate{Arrivals: []string{"vmnic3"}, PortOutput: 1, Stops: rt}, TruthFiltered},
		{"another MAC", lab.PortFate{Arrivals: []string{"vmnic2"}, Stops: map[lab.StopReason]int{lab.NotForPort: 1}}, TruthNotForwarded},
		{"promiscuous, RPF", lab.PortFate{Arrivals: []string{"vmnic2"}, PortOutput: 1, Stops: map[lab.StopReason]int{lab.RPFPromisc: 1}}, TruthDroppedAfterPortOutput},
		{"from a neighbour", lab.PortFate{PortOutput: 1, VnicRx: 1, FromLocal: 1}, TruthLocal},
		{"a neighbour's broadcast back on vmnic3", lab.PortFate{Arrivals: []string{"vmnic3"}, PortOutput: 2, VnicRx: 1, FromLocal: 1, Stops: rt}, TruthDeliveredDupsRemoved},
		{"sent by the port, back on vmnic3", lab.PortFate{Arrivals: []string{"vmnic3"}, SentByPort: true, Stops: map[lab.StopReason]int{lab.NotForPort: 1}}, TruthTransmitted},
		{"a neighbour's broadcast back on the team uplink, RPF", lab.PortFate{Arrivals: []string{"vmnic3"}, PortOutput: 2, VnicRx: 1, FromLocal: 1,
			Stops: map[lab.StopReason]int{lab.RPFPromisc: 1}}, TruthDelivered},
		{"never here", lab.PortFate{}, TruthOther},
	} {
		if got := Classify(c.f); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
	for tr := range numTruths {
		if !Allows(tr, correlate.Inconclusive) {
			t.Errorf("%q does not allow inconclusive", tr)
		}
	}
	if Allows(TruthDeliveredDupsRemoved, correlate.Delivered) || Allows(TruthFiltered, correlate.NotForwarded) ||
		Allows(TruthDelivered, correlate.FilteredReverseTeaming) || Allows(TruthOther, correlate.Delivered) {
		t.Error("the contract allows a false verdict")
	}
}
