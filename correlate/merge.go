package correlate

import (
	"container/heap"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Merger puts observations from independent live streams into time order.
// An observation is released once an observation at least Lateness newer
// has arrived from any stream, so memory is bounded by Lateness times the
// rate. Streams that lag by more than Lateness are released late: their
// observations count as happening at the time already released.
type Merger struct {
	lateness time.Duration
	out      func(pktcap.Observation)
	h        obsHeap
	seq      uint64
	newest   time.Time
}

// NewMerger returns a Merger that passes ordered observations to out.
func NewMerger(lateness time.Duration, out func(pktcap.Observation)) *Merger {
	return &Merger{lateness: lateness, out: out}
}

// Add takes an observation; o.Data must stay untouched afterwards.
func (m *Merger) Add(o pktcap.Observation) {
	m.seq++
	heap.Push(&m.h, seqObs{o, m.seq})
	if o.Time.After(m.newest) {
		m.newest = o.Time
	}
	m.release(m.newest.Add(-m.lateness))
}

// Advance tells the Merger that the streams have reached t even if they
// carried nothing (e.g. a clock tick), releasing what is older than
// t-Lateness.
func (m *Merger) Advance(t time.Time) {
	if t.After(m.newest) {
		m.newest = t
	}
	m.release(m.newest.Add(-m.lateness))
}

// Flush releases everything.
func (m *Merger) Flush() {
	for m.h.Len() > 0 {
		m.out(heap.Pop(&m.h).(seqObs).Observation)
	}
}

// Len is the number of observations held.
func (m *Merger) Len() int { return m.h.Len() }

func (m *Merger) release(upTo time.Time) {
	for m.h.Len() > 0 && !m.h[0].Time.After(upTo) {
		m.out(heap.Pop(&m.h).(seqObs).Observation)
	}
}

type seqObs struct {
	pktcap.Observation
	seq uint64
}

type obsHeap []seqObs

func (h obsHeap) Len() int { return len(h) }
func (h obsHeap) Less(i, j int) bool {
	if h[i].Time.Equal(h[j].Time) {
		return h[i].seq < h[j].seq
	}
	return h[i].Time.Before(h[j].Time)
}
func (h obsHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *obsHeap) Push(x any)   { *h = append(*h, x.(seqObs)) }
func (h *obsHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// MergeSorted merges streams that are each in time order (e.g. capture
// files) into one ordered sequence: next[i] returns stream i's next
// observation, or ok=false at its end. It stops at the first error.
func MergeSorted(next []func() (o pktcap.Observation, ok bool, err error), out func(pktcap.Observation)) error {
	type head struct {
		o   pktcap.Observation
		src int
	}
	heads := make([]*head, len(next))
	for i, f := range next {
		o, ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			heads[i] = &head{o, i}
		}
	}
	for {
		best := -1
		for i, h := range heads {
			if h != nil && (best < 0 || h.o.Time.Before(heads[best].o.Time)) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		out(heads[best].o)
		o, ok, err := next[best]()
		if err != nil {
			return err
		}
		if ok {
			heads[best].o = o
		} else {
			heads[best] = nil
		}
	}
}
