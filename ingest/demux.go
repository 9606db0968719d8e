package ingest

import (
	"sync"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// A pcapng file's interfaces are read in one pass: one goroutine scans the
// file and hands each interface's frames to that interface's pipe. The
// merge takes frames in time order across all sources, so it may wait for
// an interface whose next frames lie further in the file while the
// scanner waits for room in another interface's pipe (a file that is not
// interleaved, such as mergecap -a writes). The waiting cursor says so (it
// offers its index on starve); the scanner then first sends the starved
// interface's partial batch; if there is none, it scans on for a while (the
// slack), the batch it is stuck on growing, since in an interleaved file the
// awaited frames come soon; and beyond the slack it hands the interface it
// is stuck on to a goroutine of its own that reads the file anew, skipping
// that interface's frames already sent. Every interface's frames come out
// in file order, once; memory stays bounded by the pipes and the slack.

// ngGroup is the one-pass reading of one pcapng file.
type ngGroup struct {
	in     Input
	points []int // the point of each interface
	pipes  []*pipe
	starve chan int // a cursor of the group waits on an empty pipe
	done   <-chan struct{}
}

func newGroup(src source, key func([]byte, int) correlate.Key, done <-chan struct{}) *ngGroup {
	g := &ngGroup{in: src.in, points: src.ifaces, starve: make(chan int), done: done}
	for i := range src.ifaces {
		p := newPipe(key)
		p.starve, p.idx = g.starve, i
		g.pipes = append(g.pipes, p)
	}
	return g
}

// slack is how many frames the batch of a stuck interface may hold.
const slack = 4 * batchLen

// ifaceState is who feeds an interface's pipe.
type ifaceState uint8

const (
	scanned   ifaceState = iota // the group's scanner
	handedOff                   // a reader of its own (ngGroup.alone)
	ended                       // nobody: the pipe is finished
)

// demux is the state of a group's scanner, which only its goroutine
// touches.
type demux struct {
	g     *ngGroup
	wg    *sync.WaitGroup
	state []ifaceState
	sent  []int // frames of each interface added to its pipe
	// stuck: i's batch is full but its pipe has no room while the merge
	// waits on another interface: scanning goes on, i's batch growing up to
	// the slack, and each frame scanned tries to send it. waiting: the
	// merge waits on i, which had nothing pending: i's next frame goes out
	// at once.
	stuck, waiting []bool
	nStuck         int
}

// run scans the file once, feeding the pipes of the interfaces it still
// owns; an interface handed off gets a goroutine of its own (on wg).
func (g *ngGroup) run(wg *sync.WaitGroup) {
	n := len(g.pipes)
	d := &demux{g: g, wg: wg, state: make([]ifaceState, n), sent: make([]int, n), stuck: make([]bool, n), waiting: make([]bool, n)}
	r, c, err := open(g.in)
	if err != nil {
		d.finish(err)
		return
	}
	defer c.Close()
	sc, err := pktcap.NewNgScanner(r)
	if err != nil {
		d.finish(inputErr(g.in.Name, err))
		return
	}
	sc.Want = func(id int) bool { return id < n && d.state[id] == scanned }
	for {
		id, ns, data, origLen, err := sc.Next()
		if err != nil {
			if err := readEnd(g.in.Name, err); err != nil {
				d.finish(err)
				return
			}
			d.end()
			return
		}
		d.sent[id]++
		p := g.pipes[id]
		full := p.add(g.points[id], ns, data, origLen)
		switch {
		case d.waiting[id]:
			d.waiting[id] = false
			d.offer(id)
		case full && d.stuck[id] && len(p.b.recs) < slack:
			d.offer(id)
		case full && !d.wait(id):
			d.finish(errStopped)
			return
		}
		// batches held back may go now that the merge moved on
		for i := 0; d.nStuck > 0 && i < n; i++ {
			if d.stuck[i] {
				d.offer(i)
			}
		}
	}
}

// sentBatch records that i's batch went into its pipe: i starts a new,
// empty batch and is stuck no more. Every batch the scanner sends goes
// through here, so a stuck interface always has frames pending.
func (d *demux) sentBatch(i int) {
	d.g.pipes[i].b = d.g.pipes[i].newBatch()
	d.setStuck(i, false)
}

func (d *demux) setStuck(i int, v bool) {
	switch {
	case v && !d.stuck[i]:
		d.nStuck++
	case !v && d.stuck[i]:
		d.nStuck--
	}
	d.stuck[i] = v
}

// offer sends i's batch if it holds frames and the pipe has room.
func (d *demux) offer(i int) {
	p := d.g.pipes[i]
	if len(p.b.recs) == 0 {
		return
	}
	select {
	case p.ch <- p.b:
		d.sentBatch(i)
	default:
	}
}

// serve answers the merge's wait on interface j, by sending j's partial
// batch if it has one and its pipe is empty. False when j has nothing
// pending: its next frames lie further in the file.
func (d *demux) serve(j int) bool {
	p := d.g.pipes[j]
	switch {
	case d.state[j] != scanned || len(p.ch) > 0:
		return true // j's own reader serves it, or the merge will find frames there
	case len(p.b.recs) > 0:
		p.ch <- p.b // the pipe is empty, so there is room
		d.sentBatch(j)
		return true
	}
	return false
}

// wait sends interface i's full batch, resolving a wait of the merge on
// another interface of the file: by sending that one's partial batch; else
// by scanning on (while i's batch is under the slack); else by handing i
// to a reader of its own. False when the merge stopped.
func (d *demux) wait(i int) bool {
	p := d.g.pipes[i]
	for {
		select {
		case p.ch <- p.b:
			d.sentBatch(i)
			return true
		case <-d.g.done:
			return false
		case j := <-d.g.starve:
			if j == i || d.serve(j) {
				continue
			}
			if len(p.b.recs) < slack {
				d.setStuck(i, true)
				d.waiting[j] = true
				return true
			}
			d.handOff(i)
			return true
		}
	}
}

// handOff gives interface i to a reader of its own, which sends i's pending
// batch, then i's frames after those given to its pipe: the merge waits for
// frames of another interface that lie beyond what i's pipe and the slack
// hold.
func (d *demux) handOff(i int) {
	d.setStuck(i, false)
	d.state[i] = handedOff
	p := d.g.pipes[i]
	p.alone.Store(true)
	skip := d.sent[i]
	d.wg.Go(func() { d.g.alone(i, p, skip) })
}

// end sends what the scan left in the batches and ends the pipes the
// scanner owns. Those with nothing pending end first, so that a merge
// waiting on one goes on; a merge waiting on one with a batch pending gets
// that batch while the scanner waits to send another.
func (d *demux) end() {
	for i, p := range d.g.pipes {
		if d.state[i] == scanned && len(p.b.recs) == 0 {
			d.close(i, nil)
		}
	}
	for i := range d.g.pipes {
		if d.state[i] != scanned {
			continue
		}
		if !d.flush(i) {
			d.finish(errStopped)
			return
		}
		d.close(i, nil)
	}
}

// flush sends i's last batch, meanwhile serving the merge's waits on the
// interfaces whose last batch is pending too. False when the merge stopped.
func (d *demux) flush(i int) bool {
	p := d.g.pipes[i]
	for {
		select {
		case p.ch <- p.b:
			d.sentBatch(i)
			return true
		case <-d.g.done:
			return false
		case j := <-d.g.starve:
			if q := d.g.pipes[j]; j != i && d.state[j] == scanned && len(q.ch) == 0 {
				q.ch <- q.b // not empty (those are ended), and there is room
				d.sentBatch(j)
				d.close(j, nil)
			}
		}
	}
}

// close ends interface i's pipe with err.
func (d *demux) close(i int, err error) {
	d.g.pipes[i].finish(d.g.done, err)
	d.state[i] = ended
}

// finish ends the pipes the scanner owns with err.
func (d *demux) finish(err error) {
	for i := range d.g.pipes {
		if d.state[i] == scanned {
			d.close(i, err)
		}
	}
}

// alone reads interface i of the file by itself, from the first frame after
// skip, once its pipe's pending batch is sent.
func (g *ngGroup) alone(i int, p *pipe, skip int) {
	if len(p.b.recs) > 0 && !p.send(g.done) {
		p.finish(g.done, errStopped)
		return
	}
	r, c, err := open(g.in)
	if err != nil {
		p.finish(g.done, err)
		return
	}
	defer c.Close()
	sc, err := pktcap.NewNgScanner(r)
	if err != nil {
		p.finish(g.done, inputErr(g.in.Name, err))
		return
	}
	sc.Want = func(id int) bool { return id == i }
	for k := 0; ; k++ {
		_, ns, data, origLen, err := sc.Next()
		if err != nil {
			p.finish(g.done, readEnd(g.in.Name, err))
			return
		}
		if k < skip {
			continue
		}
		if p.add(g.points[i], ns, data, origLen) && !p.send(g.done) {
			p.finish(g.done, errStopped)
			return
		}
	}
}
