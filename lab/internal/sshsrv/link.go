package sshsrv

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Link is the management link between a client and the server as the
// client sees it: each direction delays what crosses it by Latency plus
// a random part of Jitter (order kept, as TCP keeps it), and carries at
// most Bandwidth bytes per second (0: unlimited). A round trip takes
// twice Latency, plus up to twice Jitter.
type Link struct {
	Latency   time.Duration
	Jitter    time.Duration
	Bandwidth int64
}

// SetLink sets the management link (the zero Link: none). It applies to
// live connections too, from the next byte that crosses them.
func (s *Server) SetLink(l Link) { s.link.Store(&l) }

func (s *Server) currentLink() Link {
	if l := s.link.Load(); l != nil {
		return *l
	}
	return Link{}
}

// linkConn is a net.Conn behind the server's Link. Writes leave once the
// link is free for them (a writer waits while the link is busy, which is
// the back pressure of a full socket buffer) and arrive after the delay;
// reads see what the client sent only once it has crossed the link.
type linkConn struct {
	net.Conn
	s    *Server
	rnd  *rand.Rand
	rndM sync.Mutex

	wmu      sync.Mutex
	wFree    time.Time // when the outbound link is free again
	wLast    time.Time // arrival of the last outbound chunk
	wq       chan chunk
	rq       chan chunk
	rbuf     []byte
	rerr     error
	rLast    time.Time
	closed   chan struct{}
	closeOne sync.Once
	werr     atomic.Pointer[error]
	wpending atomic.Int64 // chunks queued and not yet written
	wg       sync.WaitGroup
}

type chunk struct {
	b   []byte
	due time.Time
	err error
}

var connSeq atomic.Uint64

func newLinkConn(s *Server, c net.Conn) *linkConn {
	n := connSeq.Add(1)
	lc := &linkConn{Conn: c, s: s, rnd: rand.New(rand.NewPCG(n, 0x5eed)), wq: make(chan chunk, 64), rq: make(chan chunk, 64),
		closed: make(chan struct{})}
	lc.wg.Go(lc.writer)
	lc.wg.Go(lc.reader)
	return lc
}

// delay is one crossing's delay under l.
func (c *linkConn) delay(l Link) time.Duration {
	d := l.Latency
	if l.Jitter > 0 {
		c.rndM.Lock()
		d += time.Duration(c.rnd.Int64N(int64(l.Jitter) + 1))
		c.rndM.Unlock()
	}
	return d
}

func transmit(l Link, n int) time.Duration {
	if l.Bandwidth <= 0 {
		return 0
	}
	return time.Duration(float64(n) / float64(l.Bandwidth) * float64(time.Second))
}

var errClosed = errors.New("sshsrv: connection closed")

func (c *linkConn) Write(b []byte) (int, error) {
	if e := c.werr.Load(); e != nil {
		return 0, *e
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	l := c.s.currentLink()
	if l == (Link{}) && c.wpending.Load() == 0 {
		// no link and nothing queued ahead: straight through
		return c.Conn.Write(b)
	}
	now := time.Now()
	start := c.wFree
	if start.Before(now) {
		start = now
	}
	if wait := start.Sub(now); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.closed:
			t.Stop()
			return 0, errClosed
		}
	}
	c.wFree = start.Add(transmit(l, len(b)))
	due := c.wFree.Add(c.delay(l))
	if due.Before(c.wLast) {
		due = c.wLast
	}
	c.wLast = due
	c.wpending.Add(1)
	select {
	case c.wq <- chunk{b: append([]byte(nil), b...), due: due}:
		return len(b), nil
	case <-c.closed:
		return 0, errClosed
	}
}

func (c *linkConn) writer() {
	for {
		select {
		case <-c.closed:
			return
		case ch := <-c.wq:
			if !sleepUntil(ch.due, c.closed) {
				return
			}
			_, err := c.Conn.Write(ch.b)
			c.wpending.Add(-1)
			if err != nil {
				c.werr.Store(&err)
				c.Close()
				return
			}
		}
	}
}

func (c *linkConn) reader() {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Conn.Read(buf)
		l := c.s.currentLink()
		due := time.Now().Add(transmit(l, n) + c.delay(l))
		if due.Before(c.rLast) {
			due = c.rLast
		}
		c.rLast = due
		ch := chunk{b: append([]byte(nil), buf[:n]...), due: due, err: err}
		select {
		case c.rq <- ch:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *linkConn) Read(b []byte) (int, error) {
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		var ch chunk
		select {
		case ch = <-c.rq:
		case <-c.closed:
			return 0, errClosed
		}
		if !sleepUntil(ch.due, c.closed) {
			return 0, errClosed
		}
		c.rbuf = ch.b
		if len(c.rbuf) == 0 && ch.err != nil {
			return 0, ch.err
		}
		// the bytes first; the error comes with the next read
		c.rerr = ch.err
	}
	n := copy(b, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *linkConn) Close() error {
	var err error
	c.closeOne.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	}
}
