package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

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
// interface's partial batch, and if there is none, hands the interface it
// is stuck on to a goroutine of its own that reads the file anew, skipping
// that interface's frames already sent. Every interface's frames come out
// in file order, once; memory stays bounded by the pipes.

// ngGroup is the one-pass reading of one pcapng file.
type ngGroup struct {
	file   string
	points []int // the analysis point of each interface
	pipes  []*pipe
	starve chan int // a cursor of the group waits on an empty pipe
}

// pipe carries one source's keyed frames, in batches, to its cursor.
type pipe struct {
	ch   chan *batch
	free chan *batch
	errc chan error
	b    *batch
	key  func([]byte, int) correlate.Key
	// for an interface of a pcapng group: the group's starve channel and
	// this interface's index, and whether it is now read alone (its
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

// send hands the current batch to the cursor, waiting for room; false
// when done closes first.
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

func (p *pipe) cursor() *cursor {
	return &cursor{p: p, i: -1}
}

// ngHandoffs counts interfaces handed to a reader of their own (tests).
var ngHandoffs atomic.Int64

// errStopped ends a reader whose analysis stopped.
var errStopped = errors.New("stopped")

// run scans the file once, feeding the pipes of the interfaces it still
// owns; an interface handed off gets a goroutine of its own (on wg).
func (g *ngGroup) run(wg *sync.WaitGroup, done <-chan struct{}) {
	n := len(g.pipes)
	detached := make([]bool, n)
	sent := make([]int, n) // frames of each interface added to its pipe
	finish := func(err error) {
		for i, p := range g.pipes {
			if !detached[i] {
				p.finish(done, err)
			}
		}
	}
	br, f, err := openCapture(g.file)
	if err != nil {
		finish(err)
		return
	}
	defer f.Close()
	sc, err := pktcap.NewNgScanner(br)
	if err != nil {
		finish(fmt.Errorf("analyze: %s: %w", g.file, err))
		return
	}
	sc.Want = func(id int) bool { return id < n && !detached[id] }
	// stuck: i's batch is full but its pipe has no room while the merge
	// waits on another interface; scanning goes on a while (the slack),
	// i's batch growing, since in an interleaved file the awaited frames
	// come soon. waiting: the merge waits on j, which had nothing pending:
	// j's next frame goes out at once.
	stuck, waiting := make([]bool, n), make([]bool, n)
	nStuck := 0
	setStuck := func(i int, v bool) {
		switch {
		case v && !stuck[i]:
			nStuck++
		case !v && stuck[i]:
			nStuck--
		}
		stuck[i] = v
	}
	const slack = 4 * batchLen
	trySend := func(i int) bool {
		select {
		case g.pipes[i].ch <- g.pipes[i].b:
			g.pipes[i].b = g.pipes[i].newBatch()
			setStuck(i, false)
			return true
		default:
			return false
		}
	}
	// wait sends interface i's batch, resolving a wait of the merge on
	// another interface of the file: by sending that one's partial batch;
	// else by scanning on (while i's batch is under the slack and more is
	// to come); else by handing i to a reader of its own. False when the
	// analysis stopped.
	wait := func(i int, final bool) bool {
		for {
			select {
			case g.pipes[i].ch <- g.pipes[i].b:
				g.pipes[i].b = g.pipes[i].newBatch()
				setStuck(i, false)
				return true
			case <-done:
				return false
			case j := <-g.starve:
				if j == i || detached[j] || len(g.pipes[j].ch) > 0 {
					continue // the merge will find frames there
				}
				if len(g.pipes[j].b.recs) > 0 {
					g.pipes[j].ch <- g.pipes[j].b // empty, so there is room
					g.pipes[j].b = g.pipes[j].newBatch()
					continue
				}
				if !final && len(g.pipes[i].b.recs) < slack {
					setStuck(i, true)
					waiting[j] = true
					return true
				}
				// j's next frames lie beyond what i's pipe and the slack
				// hold: i goes on alone (its pending batch first), from the
				// frame after those given to its pipe
				setStuck(i, false)
				detached[i] = true
				ngHandoffs.Add(1)
				p := g.pipes[i]
				p.alone.Store(true)
				skip := sent[i]
				wg.Go(func() { g.alone(done, i, p, skip) })
				return true
			}
		}
	}
	for {
		id, ns, data, origLen, err := sc.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = nil // a capture cut short is read up to the cut
			} else {
				err = fmt.Errorf("analyze: %s: %w", g.file, err)
			}
			// the partial batches go out like the full ones
			for i := range g.pipes {
				if err == nil && !detached[i] && len(g.pipes[i].b.recs) > 0 && !wait(i, true) {
					err = errStopped
				}
			}
			finish(err)
			return
		}
		sent[id]++
		full := g.pipes[id].add(g.points[id], ns, data, origLen)
		switch {
		case waiting[id]:
			waiting[id] = false
			trySend(id)
		case full && stuck[id] && len(g.pipes[id].b.recs) < slack:
			trySend(id)
		case full && !wait(id, false):
			finish(errStopped)
			return
		}
		// batches held back may go now that the merge moved on
		for i := 0; nStuck > 0 && i < n; i++ {
			if stuck[i] {
				trySend(i)
			}
		}
	}
}

// alone reads interface i of the file by itself, from the first frame after
// skip, once its pipe's pending batch is sent.
func (g *ngGroup) alone(done <-chan struct{}, i int, p *pipe, skip int) {
	if len(p.b.recs) > 0 && !p.send(done) {
		p.finish(done, errStopped)
		return
	}
	br, f, err := openCapture(g.file)
	if err != nil {
		p.finish(done, err)
		return
	}
	defer f.Close()
	sc, err := pktcap.NewNgScanner(br)
	if err != nil {
		p.finish(done, fmt.Errorf("analyze: %s: %w", g.file, err))
		return
	}
	sc.Want = func(id int) bool { return id == i }
	for k := 0; ; k++ {
		_, ns, data, origLen, err := sc.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = nil
			} else {
				err = fmt.Errorf("analyze: %s: %w", g.file, err)
			}
			p.finish(done, err)
			return
		}
		if k < skip {
			continue
		}
		if p.add(g.points[i], ns, data, origLen) && !p.send(done) {
			p.finish(done, errStopped)
			return
		}
	}
}
