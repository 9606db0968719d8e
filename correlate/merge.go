package correlate

import (
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Reorder puts items from independent streams into time order. An item is
// released once an item at least Lateness newer has arrived from any
// stream, so memory is bounded by Lateness times the rate. Items that lag
// by more than Lateness are released late, behind newer ones (a Correlator
// counts them as happening at the time already reached). Items with equal
// times keep their arrival order.
type Reorder[T any] struct {
	lateness int64
	at       func(*T) int64
	out      func(T)
	h        []seqItem[T]
	seq      uint64
	newest   int64
}

type seqItem[T any] struct {
	at  int64
	seq uint64
	x   T
}

// NewReorder returns a Reorder that passes items to out in the order of
// at (nanoseconds).
func NewReorder[T any](lateness time.Duration, at func(*T) int64, out func(T)) *Reorder[T] {
	return &Reorder[T]{lateness: int64(lateness), at: at, out: out}
}

// Add takes an item.
func (r *Reorder[T]) Add(x T) {
	r.seq++
	t := r.at(&x)
	r.push(seqItem[T]{t, r.seq, x})
	r.Advance(t)
}

// Advance tells the Reorder that the streams have reached ns even if they
// carried nothing (e.g. a clock tick), releasing what is older than
// ns-Lateness.
func (r *Reorder[T]) Advance(ns int64) {
	r.newest = max(r.newest, ns)
	upTo := r.newest - r.lateness
	for len(r.h) > 0 && r.h[0].at <= upTo {
		r.out(r.pop())
	}
}

// Flush releases everything.
func (r *Reorder[T]) Flush() {
	for len(r.h) > 0 {
		r.out(r.pop())
	}
}

// Len is the number of items held.
func (r *Reorder[T]) Len() int { return len(r.h) }

func (r *Reorder[T]) less(i, j int) bool {
	a, b := &r.h[i], &r.h[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (r *Reorder[T]) push(it seqItem[T]) {
	r.h = append(r.h, it)
	for i := len(r.h) - 1; i > 0; {
		p := (i - 1) / 2
		if !r.less(i, p) {
			break
		}
		r.h[i], r.h[p] = r.h[p], r.h[i]
		i = p
	}
}

func (r *Reorder[T]) pop() T {
	x := r.h[0].x
	n := len(r.h) - 1
	r.h[0] = r.h[n]
	var zero seqItem[T]
	r.h[n] = zero // drop references held by the item
	r.h = r.h[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && r.less(l, m) {
			m = l
		}
		if l+1 < n && r.less(l+1, m) {
			m = l + 1
		}
		if m == i {
			break
		}
		r.h[i], r.h[m] = r.h[m], r.h[i]
		i = m
	}
	return x
}

// Merger is a Reorder of observations for live streams.
type Merger struct {
	r *Reorder[pktcap.Observation]
}

// NewMerger returns a Merger that passes ordered observations to out.
func NewMerger(lateness time.Duration, out func(pktcap.Observation)) *Merger {
	return &Merger{NewReorder(lateness, func(o *pktcap.Observation) int64 { return o.Time.UnixNano() }, out)}
}

// Add takes an observation; o.Data must stay untouched afterwards.
func (m *Merger) Add(o pktcap.Observation) { m.r.Add(o) }

// Advance tells the Merger that the streams have reached t even if they
// carried nothing, releasing what is older than t-Lateness.
func (m *Merger) Advance(t time.Time) { m.r.Advance(t.UnixNano()) }

// Flush releases everything.
func (m *Merger) Flush() { m.r.Flush() }

// Len is the number of observations held.
func (m *Merger) Len() int { return m.r.Len() }
