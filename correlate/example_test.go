package correlate_test

import (
	"fmt"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// The article's capture: an echo request arrives on both uplinks (one is a
// mirror), reaches PortOutput twice and VnicRx once.
func Example() {
	c, err := correlate.New(correlate.Config{
		Points: []correlate.Point{
			{Name: "esx02/vmnic2/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic2"},
			{Name: "esx02/vmnic3/rx", Stage: pktcap.StageUplinkRx, Uplink: "vmnic3"},
			{Name: "esx02/50331657/PortOutput", Stage: pktcap.StagePortOutput},
			{Name: "esx02/50331657/VnicRx", Stage: pktcap.StageVnicRx},
		},
		Port: correlate.Port{Policy: "srcport", TeamUplink: "vmnic2"},
	})
	if err != nil {
		panic(err)
	}
	frame := make([]byte, 98) // an IPv4 ICMP echo request, abridged
	copy(frame, []byte{0x00, 0x50, 0x56, 0x9d, 0xfd, 0xb1, 0x00, 0x50, 0x56, 0x9d, 0x43, 0x42, 0x08, 0x00, 0x45})
	frame[23], frame[34] = 1, 8
	copy(frame[26:], []byte{192, 168, 100, 11, 192, 168, 100, 12})
	t0 := time.Date(2020, 5, 4, 16, 13, 16, 0, time.UTC)
	for _, s := range []struct {
		point int
		us    time.Duration
	}{{0, 0}, {2, 4}, {3, 10}, {1, 16}, {2, 20}} { // in time order
		c.Add(pktcap.Observation{Point: s.point, Time: t0.Add(s.us * time.Microsecond), Data: frame, OrigLen: len(frame)})
	}
	r := c.Close()
	for _, f := range r.Flows {
		fmt.Println(f.Key)
		fmt.Println(f.Examples[0].Verdict, "-", f.Examples[0].Reason)
	}
	// Output:
	// ICMP echo request 192.168.100.11 > 192.168.100.12
	// delivered, duplicates removed by reverse teaming - arrived on vmnic2 and vmnic3; the copy from vmnic3 (not the team uplink vmnic2) was dropped by reverse teaming
}

// Frames can be keyed where they are read, in parallel, and added in time
// order with AddKeyed: the correlator's goroutine then only matches them.
func ExampleCorrelator_AddKeyed() {
	c, _ := correlate.New(correlate.Config{
		Points: []correlate.Point{{Name: "PortOutput", Stage: pktcap.StagePortOutput}, {Name: "VnicRx", Stage: pktcap.StageVnicRx}},
	})
	key := c.Keyer() // safe for concurrent use
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x06 // ARP
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano()
	k := key(frame, len(frame))
	c.AddKeyed(0, t0, k, frame[:min(len(frame), correlate.HeadLen)])
	c.AddKeyed(1, t0+6000, k, frame[:min(len(frame), correlate.HeadLen)])
	fmt.Println(c.Close().Totals[correlate.Delivered], "delivered")
	// Output: 1 delivered
}
