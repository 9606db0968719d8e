package lab

import (
	"context"
	"testing"
)

// The article's echo request, with the truth recorded: it is tagged (the
// tag read back from what PortOutput captured), arrived at esx02 on both
// uplinks, reached testvm2's PortOutput twice and its vNIC once, the
// vmnic3 copy stopped by reverse teaming.
func TestTruthArticle(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-article.yaml")
	n.RecordTruth()
	po := subscribe(t, n, "esx02", Selector{Point: PortOutput, PortID: 50331657}, isICMP)
	if _, err := n.Ping(context.Background(), "testvm1", "testvm2", 1, 0); err != nil {
		t.Fatal(err)
	}
	caps := drain(po)
	if len(caps) != 2 {
		t.Fatalf("%d copies at PortOutput; want 2", len(caps))
	}
	id, ok := FrameID(caps[0].Data)
	if id2, _ := FrameID(caps[1].Data); !ok || id2 != id {
		t.Fatalf("tags %d and %d (%v); want one frame's", id, id2, ok)
	}
	f, ok := n.PortFate(id, "esx02", 50331657)
	if !ok {
		t.Fatal("no fate recorded")
	}
	if len(f.Arrivals) != 2 || f.Arrivals[0] != "vmnic2" || f.Arrivals[1] != "vmnic3" || f.PortOutput != 2 || f.VnicRx != 1 ||
		f.Stops[ReverseTeaming] != 1 || f.SentByPort {
		t.Errorf("fate at testvm2: %+v; want arrived on vmnic2 and vmnic3, 2 at PortOutput, 1 at VnicRx, 1 stopped by reverse teaming", f)
	}
	if fate, _ := n.Fate(id); fate.From != "testvm1" {
		t.Errorf("sent by %q; want testvm1", fate.From)
	}
	// the echo reply is another frame, sent by testvm2's port
	if f, ok := n.PortFate(id+1, "esx02", 50331657); !ok || !f.SentByPort {
		t.Errorf("frame %d at testvm2: %+v, %v; want the reply it sent", id+1, f, ok)
	}
}
