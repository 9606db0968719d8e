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

// Streams are the callbacks of MergeSorted: Next returns stream i's next
// observation (ok=false at its end); Started and Ended, when set, learn the
// time of each stream's first and last observation as soon as it is known
// (a correlator uses them as the points' live intervals).
type Streams struct {
	Next    []func() (o pktcap.Observation, ok bool, err error)
	Started func(stream int, first time.Time)
	Ended   func(stream int, last time.Time)
}

// MergeSorted merges streams that are each in time order (e.g. capture
// files) into one ordered sequence passed to out. It stops at the first
// error.
func MergeSorted(s Streams, out func(pktcap.Observation)) error {
	heads := make([]pktcap.Observation, len(s.Next))
	times := make([]int64, len(s.Next)) // UnixNano of each head; the sort key
	live := make([]int, 0, len(s.Next)) // streams with a head
	for i, f := range s.Next {
		o, ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			heads[i], times[i] = o, o.Time.UnixNano()
			live = append(live, i)
			if s.Started != nil {
				s.Started(i, o.Time)
			}
		}
	}
	for len(live) > 0 {
		bi := 0
		for k := 1; k < len(live); k++ {
			if times[live[k]] < times[live[bi]] {
				bi = k
			}
		}
		best := live[bi]
		last := heads[best].Time
		out(heads[best])
		o, ok, err := s.Next[best]()
		if err != nil {
			return err
		}
		if ok {
			heads[best], times[best] = o, o.Time.UnixNano()
			continue
		}
		live = append(live[:bi], live[bi+1:]...)
		if s.Ended != nil {
			s.Ended(best, last)
		}
	}
	return nil
}
