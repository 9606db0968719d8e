// Package oracle is the ground-truth harness of issue 11: it generates
// randomized lab scenarios (seeded), runs each through the real path — the
// lab's SSH servers and pktcap-uw, discovery through its vCenter, the
// session, the correlator, all by scenario.Trace and trace.Run — with the
// lab recording every frame's fate, and compares each frame instance's
// verdict with that truth. A definite verdict (anything but inconclusive)
// that the truth does not allow is a false verdict: a capturectl bug.
//
// The contract — which truth allows which verdict — is the table Allowed.
// The sweep prints the confusion matrix (truth × verdict) and the share
// of inconclusive verdicts.
//
// It does not judge anything itself: it only classifies what the lab
// recorded (Classify) and counts.
package oracle

import (
	"fmt"
	"slices"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/lab"
)

// Truth is what really happened to a frame, for the traced port.
type Truth int

// Truths.
const (
	// TruthDelivered: a copy that came in on an uplink reached the vNIC,
	// and no copy was stopped by reverse teaming (others may have been,
	// for another reason).
	TruthDelivered Truth = iota
	// TruthDeliveredDupsRemoved: a copy reached the vNIC and another,
	// from another uplink, was stopped by reverse teaming.
	TruthDeliveredDupsRemoved
	// TruthFiltered: copies reached PortOutput, none the vNIC, and every
	// one was stopped by reverse teaming.
	TruthFiltered
	// TruthNotForwarded: it arrived on an uplink of the port's vSwitch
	// and no copy reached the port's PortOutput (another destination
	// MAC, another VLAN).
	TruthNotForwarded
	// TruthDroppedAfterPortOutput: a copy reached PortOutput, none the
	// vNIC, and at least one stopped for a reason other than reverse
	// teaming (ReversePathFwdCheckPromisc).
	TruthDroppedAfterPortOutput
	// TruthLocal: it came from another port of the vSwitch (no uplink
	// arrival) and reached the vNIC.
	TruthLocal
	// TruthTransmitted: the traced port sent it.
	TruthTransmitted
	// TruthOther: none of these (e.g. a local frame not for the port).
	TruthOther
	numTruths
)

var truthNames = [...]string{"delivered", "delivered, dups removed", "filtered by reverse teaming", "not forwarded",
	"dropped after PortOutput", "local", "transmitted", "other"}

func (t Truth) String() string {
	if t >= 0 && t < numTruths {
		return truthNames[t]
	}
	return fmt.Sprintf("Truth(%d)", int(t))
}

// Allowed is the oracle's contract: the definite verdicts each truth
// allows. Inconclusive is allowed for every truth (it is never false, only
// unhelpful) and counted apart.
var Allowed = map[Truth][]correlate.Verdict{
	TruthDelivered:              {correlate.Delivered},
	TruthDeliveredDupsRemoved:   {correlate.DeliveredDupsRemoved},
	TruthFiltered:               {correlate.FilteredReverseTeaming},
	TruthNotForwarded:           {correlate.NotForwarded},
	TruthDroppedAfterPortOutput: {correlate.DroppedAfterPortOutput},
	TruthLocal:                  {correlate.Local},
	// a frame the port sent that came back in on an uplink (flooded, or
	// mirrored back by a SPAN of both directions) was, as it says, not
	// forwarded to the port: the vSwitch does not loop a frame back
	TruthTransmitted: {correlate.Transmitted, correlate.NotForwarded},
	TruthOther:       nil,
}

// Allows reports whether truth t allows verdict v.
func Allows(t Truth, v correlate.Verdict) bool {
	return v == correlate.Inconclusive || slices.Contains(Allowed[t], v)
}

// Classify reads a frame's truth at the traced port from what the lab
// recorded (lab.Network.PortFate).
func Classify(f lab.PortFate) Truth {
	rt := f.Stops[lab.ReverseTeaming]
	other := f.Stops[lab.RPFPromisc]
	switch {
	case f.SentByPort:
		return TruthTransmitted
	case f.VnicRx > 0 && len(f.Arrivals) == 0 && f.FromLocal == f.PortOutput:
		return TruthLocal
	case f.VnicRx > 0 && rt > 0:
		return TruthDeliveredDupsRemoved
	case f.VnicRx > 0 && (f.VnicRx == f.PortOutput || other > 0):
		// every copy delivered, or the others stopped for another reason
		// than reverse teaming (ReversePathFwdCheckPromisc)
		return TruthDelivered
	case f.VnicRx > 0:
		return TruthOther
	case f.PortOutput > 0 && other == 0 && rt == f.PortOutput:
		return TruthFiltered
	case f.PortOutput > 0 && other > 0:
		return TruthDroppedAfterPortOutput
	case f.PortOutput == 0 && len(f.Arrivals) > 0:
		return TruthNotForwarded
	}
	return TruthOther
}
