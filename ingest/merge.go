package ingest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// emitFunc takes one frame of a source: its point, time (ns since the
// epoch), captured bytes (valid only during the call) and wire length. It
// returns false when the reader is to stop.
type emitFunc func(point int, ns int64, data []byte, origLen int) bool

// A batch holds keyed frames of one source: their heads are in heads.
type batch struct {
	recs  []keyedRec
	heads []byte
}

type keyedRec struct {
	ns    int64
	key   correlate.Key
	off   uint32
	point int32
	n     uint8
}

const batchLen = 2048

// pipe carries one source's keyed frames, in batches, to its cursor. A
// batch sent is never empty: a cursor takes every batch it receives to
// hold a frame.
type pipe struct {
	ch   chan *batch
	free chan *batch
	errc chan error
	b    *batch
	key  func([]byte, int) correlate.Key
	// for an interface of a pcapng (ngGroup): the group's starve channel
	// and this interface's index, and whether it is now read alone (its
	// cursor then stops signalling the group)
	starve chan<- int
	idx    int
	alone  atomic.Bool
}

func newPipe(key func([]byte, int) correlate.Key) *pipe {
	p := &pipe{ch: make(chan *batch, 2), free: make(chan *batch, 4), errc: make(chan error, 1), key: key}
	p.b = p.newBatch()
	return p
}

func (p *pipe) newBatch() *batch {
	select {
	case b := <-p.free:
		b.recs, b.heads = b.recs[:0], b.heads[:0]
		return b
	default:
		return &batch{recs: make([]keyedRec, 0, batchLen), heads: make([]byte, 0, batchLen*64)}
	}
}

// add keys a frame into the current batch and reports whether it is full.
func (p *pipe) add(point int, ns int64, data []byte, origLen int) (full bool) {
	head := data[:min(len(data), correlate.HeadLen)]
	b := p.b
	b.recs = append(b.recs, keyedRec{ns: ns, key: p.key(data, origLen), off: uint32(len(b.heads)), point: int32(point), n: uint8(len(head))})
	b.heads = append(b.heads, head...)
	return len(b.recs) >= batchLen
}

// send hands the current batch (not empty) to the cursor, waiting for
// room; false when done closes first.
func (p *pipe) send(done <-chan struct{}) bool {
	select {
	case p.ch <- p.b:
		p.b = p.newBatch()
		return true
	case <-done:
		return false
	}
}

// finish sends what is left and ends the pipe with err.
func (p *pipe) finish(done <-chan struct{}, err error) {
	if err == nil && len(p.b.recs) > 0 {
		p.send(done)
	}
	p.errc <- err
	close(p.ch)
}

// startSource runs read in a goroutine (on wg), keying its frames, until it
// ends or done is closed.
func startSource(wg *sync.WaitGroup, done <-chan struct{}, key func([]byte, int) correlate.Key, read func(emitFunc) error) *cursor {
	p := newPipe(key)
	wg.Go(func() {
		err := read(func(point int, ns int64, data []byte, origLen int) bool {
			return !p.add(point, ns, data, origLen) || p.send(done)
		})
		p.finish(done, err)
	})
	return &cursor{p: p, i: -1, done: done}
}

// cursor reads the batches of one source.
type cursor struct {
	p    *pipe
	b    *batch
	i    int
	err  error
	done <-chan struct{}
}

// next moves to the next frame; at the end it returns false with err set
// if the source failed (or errStopped, if the merge was stopped).
func (c *cursor) next() bool {
	c.i++
	if c.b != nil && c.i < len(c.b.recs) {
		return true
	}
	if c.b != nil {
		select {
		case c.p.free <- c.b:
		default:
		}
		c.b = nil
	}
	b, ok := c.receive()
	if !ok {
		return false
	}
	c.b, c.i = b, 0
	return true
}

// receive waits for the next batch; a member of a pcapng group tells the
// group's scanner that it waits (see ngGroup).
func (c *cursor) receive() (*batch, bool) {
	for {
		var starve chan<- int
		if c.p.starve != nil && !c.p.alone.Load() {
			starve = c.p.starve
		}
		select {
		case b, ok := <-c.p.ch:
			if !ok {
				c.err = <-c.p.errc
			}
			return b, ok
		case starve <- c.p.idx:
		case <-c.done:
			c.err = errStopped
			return nil, false
		}
	}
}

func (c *cursor) rec() *keyedRec { return &c.b.recs[c.i] }

func (c *cursor) head(r *keyedRec) []byte { return c.b.heads[r.off : r.off+uint32(r.n)] }

// Feed reads every input and adds the frames of all of them to c in time
// order, keyed with c's Keyer by one goroutine per input (this goroutine
// only merges); it also records the live interval of each point known only
// once its frames are read (a pcap file's). c must have been made from
// s.Config, and may have been given more (a timeline of team uplinks,
// say); Feed neither closes nor keeps it. When ctx is done it stops with
// ctx's error.
func (s *Set) Feed(ctx context.Context, c *correlate.Correlator) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	done := ctx.Done()
	key := c.Keyer()
	var curs []*cursor
	var single []int // per cursor: the point whose live interval is its frames, else -1
	for _, src := range s.sources {
		switch src.format {
		case pktcap.FormatPcap:
			curs = append(curs, startSource(&wg, done, key, func(emit emitFunc) error { return readPcap(src, emit) }))
			single = append(single, src.point)
		case pktcap.FormatPcapNG:
			g := newGroup(src, key, done)
			for _, p := range g.pipes {
				curs = append(curs, &cursor{p: p, i: -1, done: done})
				single = append(single, -1)
			}
			wg.Go(func() { g.run(&wg) })
		default: // console text, read already
			curs = append(curs, startSource(&wg, done, key, func(emit emitFunc) error {
				for _, o := range src.obs {
					if !emit(src.point, o.Time.UnixNano(), o.Data, o.OrigLen) {
						break
					}
				}
				return nil
			}))
			single = append(single, -1)
		}
	}
	return merge(ctx, c, curs, single, s.window)
}

// merge adds the frames of the cursors to c in time order.
func merge(ctx context.Context, c *correlate.Correlator, curs []*cursor, single []int, window time.Duration) error {
	failed := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	heads := make([]int64, len(curs)) // ns of each cursor's next frame
	live := make([]int, 0, len(curs))
	for i, cu := range curs {
		if !cu.next() {
			if cu.err != nil {
				return failed(cu.err)
			}
			continue
		}
		live = append(live, i)
		heads[i] = cu.rec().ns
		if p := single[i]; p >= 0 {
			c.SetStart(p, time.Unix(0, heads[i]).Add(-window))
		}
	}
	for n := 0; len(live) > 0; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		bi := 0
		for k := 1; k < len(live); k++ {
			if heads[live[k]] < heads[live[bi]] {
				bi = k
			}
		}
		i := live[bi]
		cu := curs[i]
		r := cu.rec()
		c.AddKeyed(int(r.point), r.ns, r.key, cu.head(r))
		last := r.ns
		if cu.next() {
			heads[i] = cu.rec().ns
			continue
		}
		if cu.err != nil {
			return failed(cu.err)
		}
		live = append(live[:bi], live[bi+1:]...)
		if p := single[i]; p >= 0 {
			c.SetStop(p, time.Unix(0, last).Add(window))
		}
	}
	return ctx.Err()
}
