package session

import (
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

// chunkSize is the size of the arena chunks held frames are copied into:
// frames sit side by side, a chunk goes back to be reused once every
// frame in it was written (one buffer per frame, the first design, cost a
// 2 KiB allocation or a cold line per frame).
const chunkSize = 256 << 10

type heldFrame struct {
	key     int64  // time on the common clock, ns
	ns      int64  // the host's time, ns (what is written)
	chunk   uint32 // where its bytes are: arena chunk,
	off     uint32 // offset
	n       uint32 // and length
	origLen int32
	vlan    int32
	gen     uint32 // the tick it came in
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
	arena  arena
	bytes  int // arena bytes in use (chunks holding a frame not written)
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
	ns := o.Time.UnixNano()
	key := ns - pq.shift
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
	chunk, off := r.arena.put(o.Data)
	r.bytes = r.arena.inUse
	hf := heldFrame{key: key, ns: ns, chunk: chunk, off: off, n: uint32(len(o.Data)),
		origLen: int32(min(o.OrigLen, math.MaxInt32)), vlan: int32(max(min(o.VLAN, math.MaxInt32), -1)), gen: r.gen}
	switch {
	case pq.head == len(pq.q):
		pq.q = append(pq.q, hf)
		r.heads.push(int32(o.Point))
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
			r.heads.fix(slices.Index(r.heads.p, int32(o.Point)))
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
	if len(r.heads.p) == 0 {
		return nil
	}
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
	for len(r.heads.p) > 0 {
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
	for len(r.heads.p) > 0 {
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
	p := int(r.heads.p[0])
	pq := &r.points[p]
	f := pq.q[pq.head]
	pq.head++
	if pq.head == len(pq.q) {
		pq.q, pq.head = pq.q[:0], 0
		r.heads.pop()
	} else {
		if pq.head >= 1024 && 2*pq.head >= len(pq.q) {
			// a queue that never empties: move what waits to the front
			n := copy(pq.q, pq.q[pq.head:])
			pq.q, pq.head = pq.q[:n], 0
		}
		r.heads.fix(0)
	}
	r.out = max(r.out, f.key)
	err := r.write(pktcap.Observation{Point: p, Time: time.Unix(0, f.ns), Data: r.arena.bytes(f.chunk, f.off, f.n),
		OrigLen: int(f.origLen), VLAN: int(f.vlan)})
	r.arena.done(f.chunk)
	r.bytes = r.arena.inUse
	return err
}

// arena holds the bytes of the frames held, side by side in chunks.
type arena struct {
	chunks  [][]byte
	pending []int32  // frames not yet written, per chunk
	free    []uint32 // chunks with none, to reuse
	cur     uint32   // the chunk being filled
	used    int      // bytes of cur filled
	inUse   int      // bytes of the chunks holding a frame not written
	started bool
}

// put copies data in and says where it is.
func (a *arena) put(data []byte) (chunk, off uint32) {
	if !a.started || a.used+len(data) > len(a.chunks[a.cur]) {
		a.next(len(data))
	}
	c := a.chunks[a.cur]
	copy(c[a.used:], data)
	off = uint32(a.used)
	a.used += len(data)
	if a.pending[a.cur] == 0 {
		a.inUse += len(c)
	}
	a.pending[a.cur]++
	return a.cur, off
}

// next starts a chunk that holds at least n bytes.
func (a *arena) next(n int) {
	if a.started && a.pending[a.cur] == 0 {
		// the chunk being left holds nothing waiting
		a.free = append(a.free, a.cur)
	}
	a.started = true
	for i, c := range a.free {
		if len(a.chunks[c]) >= n {
			a.free = slices.Delete(a.free, i, i+1)
			a.cur, a.used = c, 0
			return
		}
	}
	a.chunks = append(a.chunks, make([]byte, max(n, chunkSize)))
	a.pending = append(a.pending, 0)
	a.cur, a.used = uint32(len(a.chunks)-1), 0
}

func (a *arena) bytes(chunk, off, n uint32) []byte { return a.chunks[chunk][off : off+n : off+n] }

// done: a frame of chunk was written.
func (a *arena) done(chunk uint32) {
	a.pending[chunk]--
	if a.pending[chunk] == 0 {
		a.inUse -= len(a.chunks[chunk])
		if chunk == a.cur {
			a.used = 0 // empty: fill it again from the start
		} else {
			a.free = append(a.free, chunk)
		}
	}
}

// headHeap orders the points with frames waiting by their head's key
// (then by point, so equal times keep a fixed order): a binary heap over
// the point numbers, without container/heap's interface calls.
type headHeap struct {
	r *reorder
	p []int32
}

func (h *headHeap) Len() int { return len(h.p) }

func (h *headHeap) less(i, j int) bool {
	a, b := h.p[i], h.p[j]
	qa, qb := &h.r.points[a], &h.r.points[b]
	ka, kb := qa.q[qa.head].key, qb.q[qb.head].key
	return ka < kb || ka == kb && a < b
}

func (h *headHeap) push(p int32) {
	h.p = append(h.p, p)
	h.up(len(h.p) - 1)
}

func (h *headHeap) pop() {
	n := len(h.p) - 1
	h.p[0] = h.p[n]
	h.p = h.p[:n]
	if n > 0 {
		h.down(0)
	}
}

// fix restores the order after the head of h.p[i] changed.
func (h *headHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *headHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.p[i], h.p[j] = h.p[j], h.p[i]
		j = i
	}
}

func (h *headHeap) down(i0 int) bool {
	i, n := i0, len(h.p)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && h.less(j2, j) {
			j = j2
		}
		if !h.less(j, i) {
			break
		}
		h.p[i], h.p[j] = h.p[j], h.p[i]
		i = j
	}
	return i > i0
}
