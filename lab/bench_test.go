package lab

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkForward measures the data plane: UDP frames from testvm1 to
// testvm2 across the article's topology (vSwitch, physical switch with a
// mirror, reverse teaming) with 4 capture points subscribed on esx02 and
// drained by readers. Run with -cpu 1 for the one-core figure; the
// frames/s metric counts generated frames.
func BenchmarkForward(b *testing.B) {
	cfg, err := LoadConfig("../configs/lab-article.yaml")
	if err != nil {
		b.Fatal(err)
	}
	n, err := NewNetwork(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	sels := []Selector{
		{Point: UplinkRcv, Uplink: "vmnic2"},
		{Point: UplinkRcv, Uplink: "vmnic3"},
		{Point: PortOutput, PortID: 50331657},
		{Point: VnicRx, PortID: 50331657},
	}
	var wg sync.WaitGroup
	var taps []*Tap
	var received [4]int
	done := make(chan struct{})
	for i, s := range sels {
		tp, err := n.Subscribe("esx02", s, nil, 1<<16)
		if err != nil {
			b.Fatal(err)
		}
		taps = append(taps, tp)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-tp.C:
					received[i]++
				case <-done:
					for {
						select {
						case <-tp.C:
							received[i]++
						default:
							return
						}
					}
				}
			}
		}()
	}
	b.ReportAllocs()
	b.ResetTimer()
	sent, err := n.Generate(context.Background(), GenSpec{From: "testvm1", To: "testvm2", Count: b.N, Size: 128})
	b.StopTimer()
	close(done)
	wg.Wait()
	if err != nil || sent != b.N {
		b.Fatalf("generated %d of %d: %v", sent, b.N, err)
	}
	var dropped uint64
	for _, tp := range taps {
		dropped += tp.Dropped()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(dropped), "tapdrops")
	_ = received
}
