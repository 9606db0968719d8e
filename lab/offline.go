package lab

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// OfflineSpec describes an offline recording: UDP frames from one VM or
// station to another, forwarded by the model on a virtual clock, and what
// each capture point of Host sees written as a pcap file.
type OfflineSpec struct {
	Host   string
	Points []Selector
	// Out receives one pcap stream per point.
	Out []io.Writer
	// From, To, Count and Size describe the frames; Gap is the virtual
	// time between them (default 10µs); Start the virtual time of the
	// first (default 2024-01-01 UTC).
	From, To string
	Count    int
	Size     int
	Gap      time.Duration
	Start    time.Time
}

// RecordOffline generates spec's traffic on a virtual clock as fast as the
// machine allows and writes each point's captures (benchmarks and tests
// that need large, realistic per-point captures). Nothing is dropped: the
// generator waits for the writers.
func RecordOffline(cfg *Config, spec OfflineSpec) error {
	if len(spec.Points) != len(spec.Out) {
		return fmt.Errorf("lab: offline: %d points but %d outputs", len(spec.Points), len(spec.Out))
	}
	if spec.Gap <= 0 {
		spec.Gap = 10 * time.Microsecond
	}
	if spec.Start.IsZero() {
		spec.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	n, err := NewNetwork(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	now := spec.Start
	n.SetClock(func() time.Time { return now })
	var taps []*Tap
	for _, sel := range spec.Points {
		tp, err := n.Subscribe(spec.Host, sel, nil, 1<<14)
		if err != nil {
			return err
		}
		defer tp.Close()
		taps = append(taps, tp)
	}
	n.mu.Lock()
	src, err := n.guest(spec.From)
	var dst netip.Addr
	if err == nil {
		dst, err = n.target(spec.To)
	}
	n.mu.Unlock()
	if err != nil {
		return err
	}
	var dmac mac
	var ok bool
	n.run(func(t time.Time) { dmac, ok = src.resolve(dst, t) })
	if !ok {
		return fmt.Errorf("lab: offline: %s: no ARP reply from %s", spec.From, dst)
	}
	// one writer goroutine per point; a nil Captured ends it
	errs := make([]error, len(taps))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, tp := range taps {
		bw := bufio.NewWriterSize(spec.Out[i], 1<<16)
		pw, err := pktcap.NewPcapWriter(bw, 0)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The model forwards frame by frame, so a copy that takes
			// the longer way (the mirror's 16 µs) reaches a point after
			// the next frame's shorter-way copy although its timestamp
			// is earlier. pktcap-uw writes in time order: hold each frame
			// until the horizon has passed it, then write in order.
			var held capturedHeap
			put := func(c Captured) {
				if errs[i] != nil {
					return
				}
				heap.Push(&held, c)
				for held.Len() > 0 && held[0].Time.Add(offlineHorizon).Before(c.Time) {
					h := heap.Pop(&held).(Captured)
					errs[i] = pw.WritePacket(h.Time, h.Data, len(h.Data))
				}
			}
			flush := func() {
				for held.Len() > 0 && errs[i] == nil {
					h := heap.Pop(&held).(Captured)
					errs[i] = pw.WritePacket(h.Time, h.Data, len(h.Data))
				}
			}
			for {
				select {
				case c := <-tp.C:
					put(c)
				case <-stop:
					for {
						select {
						case c := <-tp.C:
							put(c)
						default:
							flush()
							if errs[i] == nil {
								errs[i] = pw.Flush()
							}
							if errs[i] == nil {
								errs[i] = bw.Flush()
							}
							return
						}
					}
				}
			}
		}()
	}
	const batch = 256
	for sent := 0; sent < spec.Count; {
		k := min(batch, spec.Count-sent)
		// wait while a writer is behind, so that nothing is dropped
		for {
			full := false
			for _, tp := range taps {
				full = full || len(tp.ch) > cap(tp.ch)-4*batch
			}
			if !full {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		n.mu.Lock()
		for i := 0; i < k; i++ {
			src.ipID++
			src.send(udpFrame(dmac, src.mac, src.ip.Addr(), dst, src.ipID, 40000, 9, spec.Size, uint64(sent+i)), now)
			now = now.Add(spec.Gap)
		}
		n.drainLocked()
		n.mu.Unlock()
		sent += k
	}
	close(stop)
	wg.Wait()
	var dropped uint64
	for _, tp := range taps {
		dropped += tp.Dropped()
	}
	if dropped > 0 {
		return fmt.Errorf("lab: offline: %d frames dropped", dropped)
	}
	return errors.Join(errs...)
}

// offlineHorizon bounds how much later than a frame's timestamp a copy of
// an earlier frame can reach the same point in the model (the sum of the
// hop latencies, well under a millisecond).
const offlineHorizon = time.Millisecond

// capturedHeap orders held frames by time (a min-heap).
type capturedHeap []Captured

func (h capturedHeap) Len() int           { return len(h) }
func (h capturedHeap) Less(a, b int) bool { return h[a].Time.Before(h[b].Time) }
func (h capturedHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *capturedHeap) Push(x any)        { *h = append(*h, x.(Captured)) }
func (h *capturedHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
