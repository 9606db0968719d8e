package session

import (
	"container/heap"
	"math"
	"slices"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// The multi-point pcapng in time order. Each point's stream comes in its
// own time order (nearly: see push), but the streams reach capturectl each
// at its own pace and in bursts (pktcap-uw's output is buffered, and so is
// SSH), so frames written as they come are out of order across points
// (VnicRx before the uplink copy it belongs to, negative deltas in
// Wireshark). reorder holds each point's frames in a queue and writes the
// earliest head once every point still streaming has passed it — its
// latest frame is no earlier — so however far one stream lags the others,
// what it brings still fits. A point that brought nothing for
// reorderQuiet is not waited for (a quiet VnicRx under a flood on the
// uplinks), and no frame waits longer than reorderMaxWait, in frame time
// behind the latest frame or in wall time: what a kill -9 loses is what
// is held, at most that much (in a steady flow, the lag between the
// streams). Frames later than what was written already are written when
// they come and counted (Late). Memory is bounded: past reorderLimit
// bytes held, the earliest frame goes out at once.
//
// (A fixed window of 100 ms, the first design, wrote a third of a 5 kfps
// capture out of order on a loaded machine, whose streams came in bursts
// further apart than that.)
//
// With several hosts, frames are ordered on capturectl's clock (each
// host's offset taken off) and keep their hosts' timestamps: between
// frames of hosts whose clocks differ, Wireshark may show negative deltas.

const (
	// reorderMaxWait bounds how long a frame waits for slower streams.
	reorderMaxWait = time.Second
	// reorderTick is how often held frames are aged and written.
	reorderTick = 50 * time.Millisecond
	// reorderQuiet: a point that brought no frame for this long is not
	// waited for.
	reorderQuiet = 500 * time.Millisecond
	// disorderSlack is how much earlier than its latest frame a point's
	// next one may be (two uplinks' copies reaching PortOutput from two
	// threads: 16 µs apart in the lab): a point has passed only what is
	// that much older than its latest.
	disorderSlack = int64(time.Millisecond)
	// reorderLimit bounds the frame bytes held.
	reorderLimit = 32 << 20
)

const (
	maxWaitTicks = uint32(reorderMaxWait / reorderTick)
	quietTicks   = uint32(reorderQuiet / reorderTick)
)

type heldFrame struct {
	obs pktcap.Observation
	key int64  // time on the common clock, ns
	gen uint32 // the tick it came in
}

// pointQueue is one point's frames waiting, oldest first.
type pointQueue struct {
	q    []heldFrame // sorted by key from head on
	head int
	// latest is the key of the latest frame it brought, at tick seen
	// (before its first: MinInt64, and seen the tick of the first frame
	// of any point).
	latest int64
	seen   uint32
	// shift takes the host's clock offset off its frames' times (ns).
	shift int64
}

type reorder struct {
	write  func(pktcap.Observation) error
	points []pointQueue
	heads  headHeap // points with frames waiting, by their head's key
	free   [][]byte // frame buffers to reuse
	bytes  int
	maxKey int64
	out    int64 // key of the last frame written
	gen    uint32
	// started: a frame came (the points' quiet clocks run from then)
	started bool

	Late   uint64 // frames written after a later one (out of order)
	Forced uint64 // frames written early because reorderLimit was reached
}

func newReorder(points int, write func(pktcap.Observation) error) *reorder {
	r := &reorder{write: write, points: make([]pointQueue, points), gen: 1}
	r.heads.r = r
	return r
}

// setShift sets the offset taken off point p's frame times to order them
// (host clock minus capturectl's, ns).
func (r *reorder) setShift(p int, ns int64) { r.points[p].shift = ns }

// push takes a frame (its data is copied) and writes what may go.
func (r *reorder) push(o pktcap.Observation) error {
	pq := &r.points[o.Point]
	key := o.Time.UnixNano() - pq.shift
	if !r.started {
		// the points that have brought nothing yet are waited for from
		// the first frame on, until they count as quiet
		r.started = true
		for i := range r.points {
			r.points[i].seen = r.gen
			r.points[i].latest = math.MinInt64
		}
	}
	if key < r.out {
		// earlier than a frame already written: too late to be in order
		r.Late++
		return r.write(o)
	}
	buf := r.buffer(len(o.Data))
	copy(buf, o.Data)
	o.Data = buf
	r.bytes += len(buf)
	hf := heldFrame{obs: o, key: key, gen: r.gen}
	switch {
	case pq.head == len(pq.q):
		pq.q = append(pq.q, hf)
		heap.Push(&r.heads, o.Point)
	case key >= pq.q[len(pq.q)-1].key:
		pq.q = append(pq.q, hf)
	default:
		// A point's own stream a little out of order (two uplinks' copies
		// reaching PortOutput from two threads): put it in its place,
		// which is near the end.
		i := len(pq.q) - 1
		for i > pq.head && pq.q[i-1].key > key {
			i--
		}
		pq.q = slices.Insert(pq.q, i, hf)
		if i == pq.head {
			heap.Fix(&r.heads, slices.Index(r.heads.p, o.Point))
		}
	}
	r.maxKey = max(r.maxKey, key)
	pq.latest = max(pq.latest, key)
	pq.seen = r.gen
	return r.release()
}

// tick ages what is held and writes what may go.
func (r *reorder) tick() error {
	r.gen++
	return r.release()
}

// release writes the heads every streaming point has passed, and those
// that waited too long.
func (r *reorder) release() error {
	mark := int64(math.MaxInt64) // the earliest latest frame of a streaming point
	for i := range r.points {
		if p := &r.points[i]; r.started && p.seen+quietTicks > r.gen {
			passed := int64(math.MinInt64) // nothing yet
			if p.latest > math.MinInt64+disorderSlack {
				passed = p.latest - disorderSlack
			}
			mark = min(mark, passed)
		}
	}
	for r.heads.Len() > 0 {
		f := r.peek()
		switch {
		case f.key <= mark:
		case f.key <= r.maxKey-int64(reorderMaxWait), f.gen+maxWaitTicks <= r.gen:
		case r.bytes > reorderLimit:
			r.Forced++
		default:
			return nil
		}
		if err := r.pop(); err != nil {
			return err
		}
	}
	return nil
}

// flush writes every frame held.
func (r *reorder) flush() error {
	for r.heads.Len() > 0 {
		if err := r.pop(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reorder) peek() *heldFrame {
	pq := &r.points[r.heads.p[0]]
	return &pq.q[pq.head]
}

// pop writes the earliest head.
func (r *reorder) pop() error {
	p := r.heads.p[0]
	pq := &r.points[p]
	f := pq.q[pq.head]
	pq.q[pq.head] = heldFrame{}
	pq.head++
	if pq.head == len(pq.q) {
		pq.q, pq.head = pq.q[:0], 0
		heap.Pop(&r.heads)
	} else {
		if pq.head >= 1024 && 2*pq.head >= len(pq.q) {
			// a queue that never empties: move what waits to the front
			n := copy(pq.q, pq.q[pq.head:])
			clear(pq.q[n:])
			pq.q, pq.head = pq.q[:n], 0
		}
		heap.Fix(&r.heads, 0)
	}
	r.out = max(r.out, f.key)
	r.bytes -= len(f.obs.Data)
	err := r.write(f.obs)
	r.free = append(r.free, f.obs.Data)
	return err
}

// buffer returns a buffer of n bytes, reused where one is free.
func (r *reorder) buffer(n int) []byte {
	if k := len(r.free); k > 0 {
		b := r.free[k-1]
		if cap(b) >= n {
			r.free = r.free[:k-1]
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 2048))
}

// headHeap orders the points with frames waiting by their head's key
// (then by point, so equal times keep a fixed order).
type headHeap struct {
	r *reorder
	p []int
}

func (h *headHeap) Len() int { return len(h.p) }
func (h *headHeap) Less(i, j int) bool {
	a, b := h.p[i], h.p[j]
	ka := h.r.points[a].q[h.r.points[a].head].key
	kb := h.r.points[b].q[h.r.points[b].head].key
	return ka < kb || ka == kb && a < b
}
func (h *headHeap) Swap(i, j int) { h.p[i], h.p[j] = h.p[j], h.p[i] }
func (h *headHeap) Push(x any)    { h.p = append(h.p, x.(int)) }
func (h *headHeap) Pop() any {
	x := h.p[len(h.p)-1]
	h.p = h.p[:len(h.p)-1]
	return x
}
