package lab

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Each point's offline file is in time order, as pktcap-uw writes it:
// PortOutput gets both copies of a mirrored frame before the next frame.
func TestRecordOfflineTimeOrder(t *testing.T) {
	cfg, err := LoadConfig("../configs/lab-article.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sels := []Selector{
		{Point: UplinkRcv, Uplink: "vmnic2"},
		{Point: UplinkRcv, Uplink: "vmnic3"},
		{Point: PortOutput, PortID: 50331657},
		{Point: VnicRx, PortID: 50331657},
	}
	bufs := make([]*bytes.Buffer, len(sels))
	spec := OfflineSpec{Host: "esx02", From: "testvm1", To: "testvm2", Count: 1000, Size: 64, Points: sels}
	for i := range sels {
		bufs[i] = new(bytes.Buffer)
		spec.Out = append(spec.Out, bufs[i])
	}
	if err := RecordOffline(cfg, spec); err != nil {
		t.Fatal(err)
	}
	want := []int{1000, 1000, 2000, 1000} // the mirror copies into vmnic3; PortOutput sees both
	for i, b := range bufs {
		r, err := pktcap.NewPcapReader(b)
		if err != nil {
			t.Fatal(err)
		}
		var last time.Time
		n := 0
		for {
			ts, data, _, err := r.NextPacket()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ts.Before(last) {
				t.Fatalf("point %d: frame %d at %v before the previous one at %v", i, n, ts, last)
			}
			last = ts
			if data[12] == 0x08 && data[13] == 0x00 { // the UDP frames, not the ARP exchange before them
				n++
			}
		}
		if n != want[i] {
			t.Errorf("point %d: %d frames; want %d", i, n, want[i])
		}
	}
}
