package session

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/pktcap"
)

// Plan is what to capture: the points, one flow filter for all of them,
// the snap length and when to stop.
type Plan struct {
	Points []Point
	// Filter is passed to every pktcap-uw (its flow filter options).
	Filter pktcap.Filter
	// Snaplen is pktcap-uw's -s: 0 captures whole frames.
	Snaplen int
	// Duration stops the capture this long after every point started; 0:
	// no time limit.
	Duration time.Duration
	// Count stops the capture once this many frames were received from all
	// points together; frames already on their way are still written. 0:
	// no limit. Without Duration and Count the capture runs until Stop or
	// until the context is cancelled (Ctrl-C).
	Count int
}

// Validate checks the plan: at least one point, valid and distinct
// points, a valid filter and snap length, no negative limits.
func (p *Plan) Validate() error {
	var errs []error
	if len(p.Points) == 0 {
		errs = append(errs, errors.New("session: plan has no capture points"))
	}
	seen := map[string]bool{}
	for _, pt := range p.Points {
		if err := pt.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[pt.Name()] {
			errs = append(errs, fmt.Errorf("session: point %s given twice", pt.Name()))
		}
		seen[pt.Name()] = true
		if err := pt.Options(p.Filter, p.Snaplen).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("session: point %s: %w", pt.Name(), err))
		}
	}
	if p.Duration < 0 {
		errs = append(errs, fmt.Errorf("session: negative duration %v", p.Duration))
	}
	if p.Count < 0 {
		errs = append(errs, fmt.Errorf("session: negative frame count %d", p.Count))
	}
	return errors.Join(errs...)
}

// Dialer opens the SSH connection to a host (see esxi.Dial). The session
// calls it once per host to start, and again to clean up after a lost
// connection.
type Dialer func(ctx context.Context, host string) (*esxi.SSHClient, error)

// Options says where a capture's output goes and how it talks to hosts.
type Options struct {
	// Dial connects to a host. Required.
	Dial Dialer
	// Output receives one pcapng with one interface per point (named by
	// Point.Name, in plan order), flushed after every packet so that a cut
	// file is valid; interface statistics (start, end, drops) are written
	// when the capture ends. nil: no pcapng. An output with a Commit()
	// error method (OutputFile) is committed once every point streams; a
	// failed start never commits it. A reader that stops reading holds up
	// the capture while it runs (the hosts then drop frames) but not its
	// stop: a write not taken within 2s of the stop is abandoned
	// (ErrOutputStalled). A reader that goes away (EPIPE; on Linux, a
	// pipe's or FIFO's read end closed while nothing was written) ends the
	// capture with ErrReaderGone, the hosts cleaned up as on Ctrl-C.
	Output io.Writer
	// PointOutput, when set, gives the writer of one classic pcap per
	// point (see PointFiles), written and committed like Output; the
	// session closes it at the end.
	PointOutput func(Point) (io.WriteCloser, error)
	// Consumer receives every frame as it arrives, one call at a time, in
	// arrival order; Observation.Point is the index of the point in
	// Plan.Points. Every frame has its own Data buffer, which the consumer
	// may keep. A slow consumer slows the capture, and the hosts then drop
	// (and report) frames.
	Consumer func(pktcap.Observation)
	// Hold, when set, holds each frame of the pcapng Output, once in time
	// order, until its comment is given or its wait is over (see Hold).
	Hold *Hold
	// Stopped, when set, is called once every point's stream has ended,
	// with each point's statistics, before the last frames of the pcapng
	// Output are written: the last chance to give a Hold's comments.
	Stopped func([]PointStats)
	// Logger receives progress with host and point attributes; default
	// discards.
	Logger *slog.Logger
	// DeadMan is how long a remote capture outlives capturectl: the host
	// stops it by itself once this long has passed since capturectl last
	// renewed the run's deadline (it does so every DeadMan/3). Default 60s,
	// at least 6s.
	DeadMan time.Duration
	// StartTimeout bounds the start of all points; default 20s.
	StartTimeout time.Duration
	// StopTimeout bounds stopping and cleaning up every point once the
	// capture ends, whatever ended it (a fresh context: the caller's may be
	// cancelled already); default 30s.
	StopTimeout time.Duration
	// RunID names the run in leases on the hosts; default random.
	RunID string
	// MaxPointsPerHost limits the channels on one connection (OpenSSH's
	// MaxSessions is 10 by default and one channel is kept for control
	// commands); default 8.
	MaxPointsPerHost int
	// Clocks reads each host's clock before its points start (Clock,
	// Result.Clocks): up to a second per host, the hosts in parallel. A
	// clock that cannot be read fails the start. With it, the pcapng's
	// interface statistics give each point's live interval on its host's
	// clock, narrowed by the clock's uncertainty, as its frames are
	// stamped; without it, on capturectl's.
	Clocks bool
}

// Stop-signal timings: SIGINT first (pktcap-uw closes its output and prints
// its summary), SIGTERM after stopINT, SIGKILL after stopTERM more.
const (
	stopINT  = 5 * time.Second
	stopTERM = 3 * time.Second
	stopKILL = 2 * time.Second
	psPoll   = 200 * time.Millisecond
)

// PointStats is what one point did.
type PointStats struct {
	Point   Point
	Name    string // Point.Name
	Command string // the pktcap-uw command line
	PID     int    // of pktcap-uw on the host; 0 when never learnt
	Lease   string // the lease file on the host
	// Start is when the point's pcap stream began (its header arrived):
	// the point captures from then on. Stop is when capturectl sent the
	// stop signal, or the stream ended if that came first. Local clock.
	Start, Stop time.Time
	Frames      uint64 // frames received
	Bytes       uint64 // captured bytes received
	// Dumped and Dropped are pktcap-uw's summary ("Dumped N packet to file
	// -, dropped M packets."); Dropped is -1 while no summary was read.
	Dumped, Dropped int
	// Stalls counts the times delivery — the outputs' writes and the
	// Consumer — held the point's stream for stallMin or more (a slow disk,
	// a blocked FIFO, a busy correlator), and Stalled is their total. The
	// session never drops a frame itself: while it does not read, pktcap-uw
	// buffers on the host and drops there when the buffer fills, so drops
	// at a point that stalled may be capturectl's own doing.
	Stalls  int
	Stalled time.Duration
	// Undrained says the point's stream had not delivered up to the stop
	// when the stop could wait no longer (drainWait): what pktcap-uw still
	// held may be lost at the signal, uncounted, so Stop was moved back to
	// its latest delivered frame (when the host's clock is known).
	Undrained bool
	// Banner holds the lines pktcap-uw wrote to stderr (at most 100).
	Banner []string
	Err    error
}

// Result is the outcome of a capture.
type Result struct {
	RunID  string
	Points []PointStats
	// Start and Stop bound the common live window: the latest point start
	// and the earliest point stop.
	Start, Stop time.Time
	// Skew is the spread of the points' start times.
	Skew time.Duration
	// Reason says what ended the capture: "duration", "count", "stopped",
	// "cancelled" or "error".
	Reason string
	// Remaining lists "host pid N (point)" for captures that could not be
	// confirmed stopped; their lease and dead-man deadline remain on the
	// host (see Cleanup).
	Remaining []string
	// Clocks is each host's clock, by host name (Options.Clocks).
	Clocks map[string]Clock
	// OutOfOrder counts the frames of the pcapng Output written after a
	// later one: they came after frames of other points that could wait
	// no longer (see reorder.go) had been written.
	OutOfOrder uint64
}

// reorderTicks writes the frames that have waited long enough, and
// flushes, until finish.
func (s *Session) reorderTicks() {
	defer close(s.roDone)
	t := time.NewTicker(reorderTick)
	defer t.Stop()
	for {
		select {
		case <-s.roStop:
			return
		case <-t.C:
		}
		s.outMu.Lock()
		err := s.ro.tick()
		if err == nil && s.opts.Hold != nil {
			err = s.opts.Hold.tick()
		}
		if err == nil {
			err = s.ng.Flush()
		}
		s.outMu.Unlock()
		if err != nil {
			if s.ngGuard.failed() == nil { // else the guard said why
				s.trigger("error", fmt.Errorf("session: pcapng output: %w", err))
			}
			return
		}
	}
}

// stallMin is the shortest hold-up of a stream counted as a stall
// (PointStats.Stalls): long against a frame's delivery (microseconds),
// short against what a pktcap-uw buffer holds at a high rate.
const stallMin = 10 * time.Millisecond

// stallRun is the most frames delivered between two reads of the clock.
const stallRun = 64

// Session is a running capture.
type Session struct {
	plan   Plan
	opts   Options
	runID  string
	log    *slog.Logger
	hosts  map[string]*hostConn
	points []*pointRun

	outMu   sync.Mutex // serialises the outputs and the consumer
	ng      *pktcap.NgWriter
	ro      *reorder      // puts ng's frames in time order
	roStop  chan struct{} // ends the reorder's ticks
	roDone  chan struct{}
	ngGuard *guard
	outputs []io.Writer // the outputs as given, to commit
	unwatch func()      // ends WatchReader on Output
	total   atomic.Uint64

	stopOnce  sync.Once
	stopCh    chan struct{}
	reasonMu  sync.Mutex
	reason    string
	fatal     error
	runCtx    context.Context
	runCancel context.CancelFunc

	wg     sync.WaitGroup
	done   chan struct{}
	result *Result
	err    error
}

// hostConn is the connection to one host.
type hostConn struct {
	name   string
	dial   Dialer
	mu     sync.Mutex // guards client
	client *esxi.SSHClient
	ctl    sync.Mutex // one control command at a time
	points []*pointRun
	log    *slog.Logger
	clock  int64 // the host's clock when the run started (Unix seconds)

	clockMu   sync.Mutex
	hostClock Clock // Options.Clocks
}

// pointRun is the capture at one point.
type pointRun struct {
	idx      int
	pt       Point
	shiftSet bool // the reorder knows this point's clock (under outMu)
	// latestNS is the host time of the latest frame delivered, arrivedNS
	// the local time a run of frames was last delivered (drain).
	latestNS, arrivedNS atomic.Int64
	host                *hostConn
	cmd                 string
	lease               string
	log                 *slog.Logger
	client              *esxi.SSHClient // the connection sess belongs to
	sess                *ssh.Session
	pcap                *pktcap.PcapWriter
	pcapOut             io.WriteCloser
	pcapGuard           *guard

	pid        atomic.Int64
	pidCh      chan int
	started    chan struct{} // closed when the pcap header arrived
	streamDone chan struct{} // closed when the pcap stream ended
	errDone    chan struct{} // closed when stderr ended
	stopping   atomic.Bool
	launched   bool // runPoint was started (streamDone and errDone will close)

	mu    sync.Mutex
	stats PointStats
}

// Run captures as the plan says and returns when the capture has ended
// and every remote process is stopped (or reported in Result.Remaining).
// Cancelling ctx stops the capture like Ctrl-C: the result and the output
// are complete up to the stop, and the error is nil.
func Run(ctx context.Context, plan Plan, opts Options) (*Result, error) {
	s, err := Start(ctx, plan, opts)
	if err != nil {
		return nil, err
	}
	return s.Wait()
}

// Start starts every point in parallel (one SSH connection per host, one
// channel per point) and returns once all of them stream, or stops what
// did start and returns an error. The capture then runs until the plan's
// limit, Stop, or ctx is done.
func Start(ctx context.Context, plan Plan, opts Options) (*Session, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if opts.Dial == nil {
		return nil, errors.New("session: no dialer")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DeadMan == 0 {
		opts.DeadMan = 60 * time.Second
	}
	if opts.DeadMan < 6*time.Second {
		return nil, fmt.Errorf("session: dead-man time %v: want at least 6s", opts.DeadMan)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 20 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	if opts.MaxPointsPerHost <= 0 {
		opts.MaxPointsPerHost = 8
	}
	if opts.RunID == "" {
		var b [6]byte
		rand.Read(b[:])
		opts.RunID = hex.EncodeToString(b[:])
	}
	if !reRunID.MatchString(opts.RunID) {
		return nil, fmt.Errorf("session: run ID %q: want 4 to 32 of a-z and 0-9", opts.RunID)
	}
	s := &Session{plan: plan, opts: opts, runID: opts.RunID, log: opts.Logger.With("run", opts.RunID),
		hosts: map[string]*hostConn{}, stopCh: make(chan struct{}), done: make(chan struct{})}
	var hostOrder []string
	for i, pt := range plan.Points {
		h := s.hosts[pt.Host]
		if h == nil {
			h = &hostConn{name: pt.Host, dial: opts.Dial, log: s.log.With("host", pt.Host)}
			s.hosts[pt.Host] = h
			hostOrder = append(hostOrder, pt.Host)
		}
		o := pt.Options(plan.Filter, plan.Snaplen)
		pr := &pointRun{idx: i, pt: pt, host: h, cmd: o.Command(), lease: leaseFile(s.runID, i),
			log: h.log.With("point", pt.Name()), pidCh: make(chan int, 1), started: make(chan struct{}),
			streamDone: make(chan struct{}), errDone: make(chan struct{})}
		pr.stats = PointStats{Point: pt, Name: pt.Name(), Command: pr.cmd, Lease: pr.lease, Dropped: -1}
		h.points = append(h.points, pr)
		s.points = append(s.points, pr)
	}
	for _, name := range hostOrder {
		if n := len(s.hosts[name].points); n > opts.MaxPointsPerHost {
			return nil, fmt.Errorf("session: host %s: %d capture points; at most %d per host (Options.MaxPointsPerHost)", name, n, opts.MaxPointsPerHost)
		}
	}
	if err := s.openOutputs(); err != nil {
		return nil, err
	}
	if s.ro != nil {
		go s.reorderTicks() // ended by finish
	}
	s.runCtx, s.runCancel = context.WithCancel(context.WithoutCancel(ctx))

	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	err := s.start(startCtx, hostOrder)
	if err != nil && ctx.Err() != nil {
		err = startCancelled(context.Cause(ctx), err)
	}
	if err == nil {
		err = s.commitOutputs()
	}
	if err != nil {
		s.trigger("error", err)
		s.finish()
		// Wait's error begins with err (the session's fatal error): it is
		// returned once, with what the stop added.
		_, werr := s.Wait()
		return nil, werr
	}
	s.wg.Go(func() { s.supervise(ctx) })
	return s, nil
}

// startCancelled is the error of a start the caller cancelled (Ctrl-C):
// it says so, and keeps err only when it is more than the cancellation.
func startCancelled(cause, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, cause) {
		return fmt.Errorf("session: cancelled while starting the captures: %w", cause)
	}
	return fmt.Errorf("session: cancelled while starting the captures: %w (meanwhile: %w)", cause, err)
}

// openOutputs writes the pcapng header and opens the per-point pcaps.
// Every output is written through a guard (see Options.Output).
func (s *Session) openOutputs() error {
	snap := s.plan.Snaplen
	if s.opts.Output != nil {
		ifaces := make([]pktcap.NgInterface, len(s.points))
		for i, pr := range s.points {
			ifaces[i] = pktcap.NgInterface{Name: pr.pt.Name(), Description: pr.cmd, Snaplen: snap}
		}
		s.ngGuard = newGuard(s.opts.Output, s.stopCh)
		ng, err := pktcap.NewNgWriter(s.ngGuard, ifaces)
		if err != nil {
			s.ngGuard.close()
			return fmt.Errorf("session: pcapng output: %w", err)
		}
		s.ng = ng
		write := func(o pktcap.Observation) error { return ng.WriteObservation(o) }
		if h := s.opts.Hold; h != nil {
			if err := h.bind(ng.WriteObservation); err != nil {
				s.ngGuard.close()
				return err
			}
			write = h.push
		}
		s.ro = newReorder(len(s.points), write)
		s.roStop, s.roDone = make(chan struct{}), make(chan struct{})
		s.outputs = append(s.outputs, s.opts.Output)
		s.unwatch = WatchReader(s.opts.Output, func() {
			s.trigger("error", fmt.Errorf("session: pcapng output: %w", ErrReaderGone))
		})
	}
	if s.opts.PointOutput != nil {
		for _, pr := range s.points {
			w, err := s.opts.PointOutput(pr.pt)
			if err == nil {
				pr.pcapOut = w
				pr.pcapGuard = newGuard(w, s.stopCh)
				s.outputs = append(s.outputs, w)
				pr.pcap, err = pktcap.NewPcapWriter(pr.pcapGuard, snap)
			}
			if err != nil {
				s.closeOutputs()
				return fmt.Errorf("session: pcap output of %s: %w", pr.pt.Name(), err)
			}
		}
	}
	return nil
}

// commitOutputs renames the outputs written beside their target into
// place, once every point streams.
func (s *Session) commitOutputs() error {
	for _, w := range s.outputs {
		if c, ok := w.(committer); ok {
			if err := c.Commit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeOutputs ends the guards and closes the per-point pcaps (Output is
// the caller's to close).
func (s *Session) closeOutputs() error {
	if s.unwatch != nil {
		s.unwatch()
	}
	if s.ngGuard != nil {
		s.ngGuard.close()
	}
	var errs []error
	for _, pr := range s.points {
		if pr.pcapGuard != nil {
			pr.pcapGuard.close()
		}
		if pr.pcapOut != nil {
			errs = append(errs, pr.pcapOut.Close())
			pr.pcapOut = nil
		}
	}
	return errors.Join(errs...)
}

// start connects to every host, clears what crashed runs left there, sets
// the run's deadline, then starts every point at once.
func (s *Session) start(ctx context.Context, hostOrder []string) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, name := range hostOrder {
		h := s.hosts[name]
		wg.Go(func() {
			if err := s.prepareHost(ctx, h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Open every channel first, then start all commands together: the
	// points' start times then differ by one round trip at most.
	for _, pr := range s.points {
		c, err := pr.host.conn(ctx)
		if err == nil {
			pr.client = c
			pr.sess, err = c.NewSession()
		}
		if err != nil {
			return fmt.Errorf("session: point %s: %w", pr.pt.Name(), err)
		}
	}
	startErr := make(chan error, len(s.points))
	for _, pr := range s.points {
		pr.launched = true
		s.wg.Go(func() { s.runPoint(pr, startErr) })
	}
	for range s.points {
		select {
		case err := <-startErr:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return context.Cause(ctx) // the caller's cancel: Start says so
			}
			return fmt.Errorf("session: start: not every point streams after %v: %w", s.opts.StartTimeout, context.Cause(ctx))
		}
	}
	return nil
}

// prepareHost dials the host, stops leftovers of crashed runs (expired
// leases only: another live capturectl's captures are not touched) and
// writes the run's deadline.
func (s *Session) prepareHost(ctx context.Context, h *hostConn) error {
	c, err := h.conn(ctx)
	if err != nil {
		return err
	}
	rep, err := Cleanup(ctx, c, CleanupOptions{Logger: h.log})
	if err != nil {
		h.log.Warn("cleanup of earlier runs failed", "err", err)
	} else if len(rep.Stopped)+len(rep.Removed) > 0 {
		h.log.Info("stopped leftovers of earlier runs", "stopped", len(rep.Stopped), "removed", len(rep.Removed))
	}
	clock, err := h.setDeadline(ctx, s.runID, s.opts.DeadMan)
	if err != nil {
		return err
	}
	h.clock = clock
	if s.opts.Clocks {
		return h.readClock(ctx)
	}
	return nil
}

// conn returns the host's connection, dialling again when it was lost.
func (h *hostConn) conn(ctx context.Context) (*esxi.SSHClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil && h.client.Err() == nil {
		select {
		case <-h.client.Done():
		default:
			return h.client, nil
		}
	}
	if h.client != nil {
		h.client.Close()
		h.log.Info("ssh connection lost; reconnecting")
	}
	if h.dial == nil {
		return nil, fmt.Errorf("session: host %s: ssh connection lost", h.name)
	}
	c, err := h.dial(ctx, h.name)
	if err != nil {
		h.client = nil
		return nil, fmt.Errorf("session: host %s: %w", h.name, err)
	}
	h.client = c
	return c, nil
}

// run runs a control command on the host, one at a time.
func (h *hostConn) run(ctx context.Context, cmd string) (string, error) {
	c, err := h.conn(ctx)
	if err != nil {
		return "", err
	}
	h.ctl.Lock()
	defer h.ctl.Unlock()
	out, _, err := c.Run(ctx, cmd)
	return string(out), err
}

// setDeadline writes the run's deadline ttl from now and returns the
// host's clock (Unix seconds).
func (h *hostConn) setDeadline(ctx context.Context, run string, ttl time.Duration) (int64, error) {
	out, err := h.run(ctx, setDeadlineScript(run, int(ttl/time.Second)))
	if err != nil {
		return 0, fmt.Errorf("session: host %s: set the dead-man deadline: %w", h.name, err)
	}
	clock, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("session: host %s: set the dead-man deadline: host clock %q", h.name, out)
	}
	return clock, nil
}

func (h *hostConn) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil {
		h.client.Close()
		h.client = nil
	}
}

// runPoint starts the point's command and streams its output until the
// stream ends. It reports on startErr once: nil when the pcap header
// arrived, else why the point could not start.
func (s *Session) runPoint(pr *pointRun, startErr chan<- error) {
	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			startErr <- err
		}
	}
	defer close(pr.streamDone)
	stdout, err1 := pr.sess.StdoutPipe()
	stderr, err2 := pr.sess.StderrPipe()
	// stdin: a pipe we never write to, so that pktcap-uw never reads a
	// terminal (it may ask for confirmation, pktcap-uw-notes §2.5).
	_, err3 := pr.sess.StdinPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		close(pr.errDone)
		report(fmt.Errorf("session: point %s: %w", pr.pt.Name(), err))
		return
	}
	script := startScript(s.runID, pr.idx, pr.pt.Name(), pr.host.clock, int(s.opts.DeadMan/time.Second), pr.cmd)
	if err := pr.sess.Start(script); err != nil {
		close(pr.errDone)
		report(fmt.Errorf("session: point %s: start pktcap-uw: %w", pr.pt.Name(), err))
		return
	}
	s.wg.Go(func() { s.readStderr(pr, stderr) })
	br := bufio.NewReaderSize(stdout, 64<<10)
	text, err := skipText(br)
	if len(text) > 0 && err == nil {
		pr.log.Warn("pktcap-uw wrote text before its pcap stream; skipped", "text", string(text))
	}
	var cr *pktcap.CaptureReader
	if err == nil {
		cr, err = pktcap.NewCaptureReader(br)
	}
	if err == nil {
		// the outputs copy what they hold; a consumer may keep its frames
		cr.ZeroCopy = s.opts.Consumer == nil
	}
	if err != nil {
		<-pr.errDone
		if len(text) > 0 {
			err = fmt.Errorf("%w; it wrote text instead: %q", err, truncateText(text, 300))
		}
		report(fmt.Errorf("session: point %s: %s: no pcap stream: %w%s", pr.pt.Name(), pr.cmd, err, pr.stderrTail()))
		pr.setErr(err)
		return
	}
	now := time.Now()
	pr.mu.Lock()
	pr.stats.Start = now
	pr.mu.Unlock()
	close(pr.started)
	report(nil)
	pr.log.Debug("capture started", "pid", pr.pid.Load())
	var runStart time.Time
	run := 0
	for {
		pkt, err := cr.Next()
		if err != nil {
			pr.mu.Lock()
			if pr.stats.Stop.IsZero() {
				pr.stats.Stop = time.Now()
			}
			pr.mu.Unlock()
			if !pr.stopping.Load() {
				// The stream ended before capturectl stopped it: pktcap-uw
				// died or the connection was lost. Wait for the last of
				// stderr, which may say why.
				select {
				case <-pr.errDone:
				case <-time.After(time.Second):
				}
				cause := err
				if errors.Is(err, io.EOF) {
					cause = errors.New("stream ended")
				}
				select {
				case <-pr.client.Done():
					cause = fmt.Errorf("ssh connection lost: %w", cause)
				case <-time.After(100 * time.Millisecond):
				}
				err := fmt.Errorf("session: point %s: capture ended before the stop: %w%s", pr.pt.Name(), cause, pr.stderrTail())
				pr.setErr(err)
				s.trigger("error", err)
			} else if !errors.Is(err, io.EOF) {
				pr.log.Debug("stream ended during the stop", "err", err)
			}
			return
		}
		// Flush the outputs before every wait for input. Delivery is timed
		// by runs of at most stallRun frames read without a wait for input
		// (a clock read per frame would cost more than the rest of it):
		// such a run takes microseconds unless an output or the consumer
		// held it up.
		if run == 0 {
			runStart = time.Now()
		}
		flush := !cr.NextBuffered()
		err = s.deliver(pr, pkt, flush)
		pr.latestNS.Store(pkt.Time.UnixNano())
		if run++; flush || run == stallRun || err != nil {
			d := time.Since(runStart)
			pr.arrivedNS.Store(runStart.Add(d).UnixNano())
			if d >= stallMin {
				pr.mu.Lock()
				pr.stats.Stalls++
				pr.stats.Stalled += d
				pr.mu.Unlock()
			}
			run = 0
		}
		if err != nil {
			pr.setErr(err)
			s.trigger("error", err)
			// Keep reading so that pktcap-uw is not blocked; drop frames.
			io.Copy(io.Discard, stdout)
			return
		}
	}
}

// skipText reads past text that comes before a capture stream's header
// (pktcap-uw's stdout should be pure pcap, but a build that printed a
// notice or a prompt there would otherwise fail with a bad magic) and
// returns it. It reads no more than it must: a byte at a time until a
// header's first four bytes, at most 64 KiB.
func skipText(br *bufio.Reader) ([]byte, error) {
	var text []byte
	for len(text) < 64<<10 {
		head, err := br.Peek(4)
		if pktcap.DetectFormat(head) != "" {
			return text, nil
		}
		if err != nil {
			if len(text) > 0 {
				return append(text, head...), errors.New("no capture header")
			}
			return nil, nil // nothing at all: the capture reader says so
		}
		c, _ := br.ReadByte()
		text = append(text, c)
	}
	return text, errors.New("no capture header in the first 64 KiB")
}

func truncateText(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// deliver writes one frame to every output and hands it to the consumer.
// With flush the outputs are flushed: the session flushes whenever the
// point's next frame has not arrived yet, so that the outputs hold every
// frame received before it waits for more (a capturectl killed at any
// moment leaves a valid file with every frame it had taken in, bar the
// ones it was decoding from one network read).
func (s *Session) deliver(pr *pointRun, pkt pktcap.Packet, flush bool) error {
	obs := pktcap.Observation{Point: pr.idx, Time: pkt.Time, Data: pkt.Data, OrigLen: pkt.OrigLen, VLAN: -1}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.ng != nil {
		if !pr.shiftSet {
			// several hosts: order on capturectl's clock
			if c := s.Clock(pr.pt.Host); c.Known() && len(s.hosts) > 1 {
				s.ro.setShift(pr.idx, c.Offset.Nanoseconds())
			}
			pr.shiftSet = true
		}
		if err := s.ro.push(obs); err != nil {
			return fmt.Errorf("session: pcapng output: %w", err)
		}
	}
	if pr.pcap != nil {
		if err := pr.pcap.WritePacket(obs.Time, obs.Data, obs.OrigLen); err != nil {
			return fmt.Errorf("session: pcap output of %s: %w", pr.pt.Name(), err)
		}
	}
	if flush {
		if s.ng != nil {
			if err := s.ng.Flush(); err != nil {
				return fmt.Errorf("session: pcapng output: %w", err)
			}
		}
		// Every point's pcap: another point's frames may wait in its
		// buffer while that point reads on.
		for _, p := range s.points {
			if p.pcap != nil {
				if err := p.pcap.Flush(); err != nil {
					return fmt.Errorf("session: pcap output of %s: %w", p.pt.Name(), err)
				}
			}
		}
	}
	pr.mu.Lock()
	pr.stats.Frames++
	pr.stats.Bytes += uint64(len(obs.Data))
	pr.mu.Unlock()
	if s.opts.Consumer != nil {
		s.opts.Consumer(obs)
	}
	if n := s.total.Add(1); s.plan.Count > 0 && n == uint64(s.plan.Count) {
		s.trigger("count", nil)
	}
	return nil
}

// readStderr reads the PID line the start script prints, then pktcap-uw's
// banner and summary.
func (s *Session) readStderr(pr *pointRun, r io.Reader) {
	defer close(pr.errDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, pidTag); ok && pr.pid.Load() == 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && pid > 1 {
				pr.pid.Store(int64(pid))
				pr.mu.Lock()
				pr.stats.PID = pid
				pr.mu.Unlock()
				pr.pidCh <- pid
				continue
			}
		}
		pr.mu.Lock()
		if len(pr.stats.Banner) < 100 {
			pr.stats.Banner = append(pr.stats.Banner, line)
		}
		if sum, ok := pktcap.ParseSummary(line); ok {
			pr.stats.Dumped, pr.stats.Dropped = sum.Dumped, sum.Dropped
		}
		pr.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

func (pr *pointRun) setErr(err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.stats.Err == nil {
		pr.stats.Err = err
	}
}

// stderrTail returns the last banner lines for an error message.
func (pr *pointRun) stderrTail() string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	b := pr.stats.Banner
	if len(b) == 0 {
		return ""
	}
	if len(b) > 3 {
		b = b[len(b)-3:]
	}
	return " (stderr: " + strings.Join(b, " / ") + ")"
}

// trigger ends the capture; the first reason wins. A non-nil err makes it
// a failure.
func (s *Session) trigger(reason string, err error) {
	s.reasonMu.Lock()
	if s.reason == "" {
		s.reason = reason
	}
	if err != nil && s.fatal == nil {
		s.fatal = err
	}
	s.reasonMu.Unlock()
	s.stopOnce.Do(func() { close(s.stopCh) })
}

// Stop ends the capture (as Ctrl-C would); Wait then returns its result.
func (s *Session) Stop() { s.trigger("stopped", nil) }

// RunID is the run's name in the hosts' leases.
func (s *Session) RunID() string { return s.runID }

// Done is closed when the capture has ended and cleanup is over.
func (s *Session) Done() <-chan struct{} { return s.done }

// supervise waits for the end of the capture and then stops it. It renews
// the dead-man deadline on every host while the capture runs.
func (s *Session) supervise(ctx context.Context) {
	var timer <-chan time.Time
	if s.plan.Duration > 0 {
		t := time.NewTimer(s.plan.Duration)
		defer t.Stop()
		timer = t.C
	}
	for _, h := range s.hosts {
		s.wg.Go(func() { s.renew(h) })
	}
	select {
	case <-ctx.Done():
		s.trigger("cancelled", nil)
	case <-timer:
		s.trigger("duration", nil)
	case <-s.stopCh:
	}
	s.finish()
}

// renew pushes the host's deadline forward every DeadMan/3 until the
// capture ends.
func (s *Session) renew(h *hostConn) {
	t := time.NewTicker(s.opts.DeadMan / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stopCh:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.runCtx, s.opts.DeadMan/3)
		_, err := h.setDeadline(ctx, s.runID, s.opts.DeadMan)
		cancel()
		if err != nil {
			h.log.Warn("renewing the dead-man deadline failed", "err", err)
		}
	}
}

// finish stops every point on every host under a fresh context, closes the
// outputs and sets the result. It runs once, from supervise or from a
// failed Start.
func (s *Session) finish() {
	s.wg.Go(func() {
		defer close(s.done)
		ctx, cancel := context.WithTimeout(s.runCtx, s.opts.StopTimeout)
		defer cancel()
		var mu sync.Mutex
		var remaining []string
		var errs []error
		var wg sync.WaitGroup
		for _, h := range s.hosts {
			wg.Go(func() {
				rem, err := s.stopHost(ctx, h)
				mu.Lock()
				remaining = append(remaining, rem...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		s.log.Debug("hosts stopped")
		// Every stream has ended (or its channel was closed): the outputs
		// hold every frame received.
		for _, pr := range s.points {
			if !pr.launched {
				continue
			}
			<-pr.streamDone
			select {
			case <-pr.errDone:
			case <-time.After(time.Second):
			}
		}
		s.log.Debug("streams ended")
		res := &Result{RunID: s.runID, Remaining: remaining}
		if s.opts.Clocks {
			res.Clocks = map[string]Clock{}
			for name := range s.hosts {
				res.Clocks[name] = s.Clock(name)
			}
		}
		if s.ro != nil {
			close(s.roStop)
			<-s.roDone
		}
		if s.opts.Stopped != nil {
			stats := make([]PointStats, len(s.points))
			for i, pr := range s.points {
				stats[i] = pr.snapshot()
			}
			s.opts.Stopped(stats)
		}
		s.outMu.Lock()
		if s.ro != nil {
			err := s.ro.flush()
			if err == nil && s.opts.Hold != nil {
				err = s.opts.Hold.flush()
			}
			if err != nil && s.ngGuard.failed() == nil {
				errs = append(errs, fmt.Errorf("session: pcapng output: %w", err))
			}
			res.OutOfOrder = s.ro.Late
			if s.ro.Late > 0 || s.ro.Forced > 0 {
				s.log.Info("pcapng frames out of time order", "late", s.ro.Late, "forced", s.ro.Forced)
			}
		}
		for i, pr := range s.points {
			st := pr.snapshot()
			if s.ng != nil {
				dropped := uint64(max(st.Dropped, 0))
				start, stop := st.Start, st.Stop
				if c := s.Clock(pr.pt.Host); c.Known() {
					// on the host's clock, as the frames: when it surely
					// captured
					start, stop = c.Latest(start), c.Earliest(stop)
				}
				s.ng.SetStats(i, pktcap.NgStats{Start: start, End: stop, Dropped: dropped, DropsUnknown: st.Dropped < 0})
			}
			res.Points = append(res.Points, st)
		}
		if s.ng != nil {
			// An output that failed already (its reader went away or
			// stalled) has said so once.
			if err := s.ng.Close(); err != nil && s.ngGuard.failed() == nil {
				errs = append(errs, fmt.Errorf("session: pcapng output: %w", err))
			}
		}
		if err := s.closeOutputs(); err != nil {
			errs = append(errs, fmt.Errorf("session: pcap output: %w", err))
		}
		s.outMu.Unlock()
		res.Start, res.Stop, res.Skew = window(res.Points)
		s.reasonMu.Lock()
		res.Reason = s.reason
		if s.fatal != nil {
			res.Reason = "error"
			errs = append([]error{s.fatal}, errs...)
		}
		s.reasonMu.Unlock()
		for _, h := range s.hosts {
			h.close()
		}
		s.runCancel()
		if len(remaining) > 0 {
			errs = append(errs, fmt.Errorf("session: captures that may still run (their dead-man deadline will stop them; or run cleanup): %s", strings.Join(remaining, "; ")))
		}
		s.result, s.err = res, errors.Join(errs...)
	})
}

// window returns the common live window and the start skew.
func window(pts []PointStats) (start, stop time.Time, skew time.Duration) {
	var first time.Time
	for _, p := range pts {
		if p.Start.IsZero() {
			continue
		}
		if start.IsZero() || p.Start.After(start) {
			start = p.Start
		}
		if first.IsZero() || p.Start.Before(first) {
			first = p.Start
		}
		if !p.Stop.IsZero() && (stop.IsZero() || p.Stop.Before(stop)) {
			stop = p.Stop
		}
	}
	return start, stop, start.Sub(first)
}

func (pr *pointRun) snapshot() PointStats {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	st := pr.stats
	st.Banner = slices.Clone(st.Banner)
	return st
}

// proc is a remote process of this run.
type proc struct {
	pid   int
	cmd   string
	label string
}

// stopHost stops every point of the run on one host: SIGINT, then TERM and
// KILL for those that do not end; waits for their streams to end; then
// removes the run's leases and deadline. A lost connection is dialled
// again. It returns the processes it could not confirm stopped.
func (s *Session) stopHost(ctx context.Context, h *hostConn) ([]string, error) {
	now := time.Now()
	launched := false
	for _, pr := range h.points {
		launched = launched || pr.launched
		pr.stopping.Store(true)
		pr.mu.Lock()
		if pr.stats.Stop.IsZero() {
			pr.stats.Stop = now
		}
		pr.mu.Unlock()
	}
	if !launched {
		return nil, nil // nothing was started on this host
	}
	s.drain(ctx, h, now)
	var procs []proc
	for _, pr := range h.points {
		pid := int(pr.pid.Load())
		if pid == 0 && pr.launched {
			// The script may have started without its PID line reaching us
			// yet: give it a moment.
			select {
			case pid = <-pr.pidCh:
			case <-time.After(500 * time.Millisecond):
			}
		}
		if pid > 0 {
			procs = append(procs, proc{pid: pid, cmd: pr.cmd, label: pr.pt.Name()})
		}
	}
	var left []proc
	var err error
	if _, cerr := h.conn(ctx); cerr != nil {
		left, err = procs, cerr
	} else {
		// Leases of this run whose PID we never learnt.
		if out, lerr := h.run(ctx, listScript); lerr == nil {
			if ls, perr := parseListing(out); perr == nil {
				for _, l := range ls.leases {
					if l.Run == s.runID && !slices.ContainsFunc(procs, func(p proc) bool { return p.pid == l.PID }) {
						procs = append(procs, proc{pid: l.PID, cmd: l.Cmd, label: l.Point})
					}
				}
			}
		}
		streamsDone := func(ctx context.Context) {
			for _, pr := range h.points {
				select {
				case <-pr.streamDone:
				case <-ctx.Done():
					return
				}
			}
		}
		left, err = stopProcs(ctx, h, procs, streamsDone)
	}
	// Unblock readers of streams that did not end (a lost connection, a
	// process that could not be stopped) after one grace for all.
	grace := time.NewTimer(2 * time.Second)
	defer grace.Stop()
	for _, pr := range h.points {
		if pr.launched {
			select {
			case <-pr.streamDone:
			case <-grace.C:
				grace.Reset(0)
			}
		}
		if pr.sess != nil {
			pr.sess.Close()
		}
	}
	var rem []string
	for _, p := range left {
		rem = append(rem, fmt.Sprintf("host %s pid %d (%s)", h.name, p.pid, p.label))
	}
	if err == nil && len(left) == 0 {
		// Every process is gone: remove the leases and the deadline (their
		// watchdogs end within 2 s once the lease is gone).
		files := []string{deadlineFile(s.runID)}
		for _, pr := range h.points {
			files = append(files, pr.lease)
		}
		if _, rerr := h.run(ctx, "rm -f "+strings.Join(files, " ")); rerr != nil {
			err = fmt.Errorf("session: host %s: remove leases: %w", h.name, rerr)
		}
	}
	if err != nil {
		err = fmt.Errorf("session: host %s: stop captures: %w", h.name, err)
	}
	return rem, err
}

// drainWait bounds how long a stop waits for the points to deliver what
// they captured before it; drainIdle is how long a point must have brought
// nothing to count as drained.
const (
	drainWait = 500 * time.Millisecond
	drainIdle = 100 * time.Millisecond
)

// drain waits, before the points of h are signalled, until each point
// still streaming has delivered a frame stamped after the stop (at, on the
// host's clock) or has brought nothing for drainIdle, at most drainWait: a
// pktcap-uw may lose what is still in its buffer when it is signalled, and
// frames captured before the stop must not be missing from one point while
// another delivered them (the oracle's seed 3023 and the two-host seed 3:
// "not forwarded" for frames reverse teaming filtered).
func (s *Session) drain(ctx context.Context, h *hostConn, at time.Time) {
	c := s.Clock(h.name)
	mark := int64(math.MaxInt64) // host time past which a point has drained
	if c.Known() {
		mark = c.Latest(at).UnixNano()
	}
	deadline := time.Now().Add(drainWait)
	for {
		var pending []*pointRun
		now := time.Now().UnixNano()
		for _, pr := range h.points {
			select {
			case <-pr.streamDone:
				continue
			default:
			}
			if pr.latestNS.Load() >= mark || now-pr.arrivedNS.Load() >= int64(drainIdle) {
				continue
			}
			pending = append(pending, pr)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.giveUpDrain(h.name, c, pending)
			return
		}
		select {
		case <-ctx.Done():
			s.giveUpDrain(h.name, c, pending)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// giveUpDrain ends the live window of each point that had not drained
// when the stop could wait no longer at its latest delivered frame: what
// pktcap-uw held beyond it may be lost at the signal, uncounted, so the
// point is not taken to have been capturing then (a frame another point
// saw after it is inconclusive at this one, never "missed" by it).
func (s *Session) giveUpDrain(host string, c Clock, pending []*pointRun) {
	for _, pr := range pending {
		latest := pr.latestNS.Load()
		pr.mu.Lock()
		pr.stats.Undrained = true
		if c.Known() {
			// on capturectl's clock: the estimate, which Clock.Earliest
			// narrows by the uncertainty where the frames are compared
			stop := pr.stats.Start
			if latest > 0 {
				stop = time.Unix(0, latest).Add(-c.Offset)
			}
			if stop.Before(pr.stats.Stop) {
				pr.stats.Stop = stop
			}
		}
		pr.mu.Unlock()
		s.log.Warn("a point had not delivered what it captured before the stop when the stop could wait no longer; its live window ends at its last frame",
			"host", host, "point", pr.pt.Name(), "waited", drainWait)
	}
}

// stopProcs stops procs on the host: kill -INT, then (waiting for them to
// end, checked with ps by PID and command line) kill -TERM and kill -9.
// afterINT is called after the SIGINT (to let streams drain) and bounded
// by the SIGINT grace time. It returns the processes still running.
func stopProcs(ctx context.Context, h *hostConn, procs []proc, afterINT func(context.Context)) ([]proc, error) {
	if len(procs) == 0 {
		return nil, nil
	}
	alive := func() ([]proc, error) {
		out, err := h.run(ctx, psCmd)
		if err != nil {
			return nil, err
		}
		ps := parsePS(out)
		var left []proc
		for _, p := range procs {
			if running(ps, p.pid, p.cmd) {
				left = append(left, p)
			}
		}
		return left, nil
	}
	left, err := alive()
	if err != nil {
		return procs, err
	}
	for _, step := range []struct {
		sig   string
		grace time.Duration
	}{{"INT", stopINT}, {"TERM", stopTERM}, {"9", stopKILL}} {
		if len(left) == 0 {
			return nil, nil
		}
		pids := make([]string, len(left))
		for i, p := range left {
			pids[i] = strconv.Itoa(p.pid)
		}
		h.log.Debug("stopping captures", "signal", step.sig, "pids", pids)
		// kill reports a PID that ended meanwhile; that is fine.
		if _, err := h.run(ctx, "kill -"+step.sig+" "+strings.Join(pids, " ")); err != nil {
			var ce *esxi.CommandError
			if !errors.As(err, &ce) {
				return left, err
			}
		}
		gctx, cancel := context.WithTimeout(ctx, step.grace)
		if step.sig == "INT" && afterINT != nil {
			afterINT(gctx)
		}
		for {
			if left, err = alive(); err != nil {
				cancel()
				return left, err
			}
			if len(left) == 0 {
				cancel()
				return nil, nil
			}
			select {
			case <-gctx.Done():
			case <-time.After(psPoll):
				continue
			}
			break
		}
		cancel()
		if ctx.Err() != nil {
			return left, ctx.Err()
		}
	}
	return left, nil
}

// Stats returns the points' counters so far (for live progress).
func (s *Session) Stats() []PointStats {
	out := make([]PointStats, len(s.points))
	for i, pr := range s.points {
		out[i] = pr.snapshot()
	}
	return out
}

// Wait waits for the capture to end and every remote process to be
// stopped, and returns the result. The error joins what failed: a point
// that could not start or ended early, a lost connection, an output that
// could not be written, processes that could not be confirmed stopped.
// The result is valid even with an error (and the outputs hold every frame
// received).
func (s *Session) Wait() (*Result, error) {
	<-s.done
	s.wg.Wait()
	return s.result, s.err
}

// Close stops the capture and waits for it; see Wait.
func (s *Session) Close() error {
	s.Stop()
	_, err := s.Wait()
	return err
}
