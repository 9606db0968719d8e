package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"sync"
	"time"
)

// Signal is a POSIX signal number as ESXi userworlds (which follow the Linux
// ABI) number them.
type Signal int

// The signals the lab knows by name. Numbers are Linux x86 numbers, which is
// what busybox `kill -l` prints on ESXi.
const (
	SIGHUP    Signal = 1
	SIGINT    Signal = 2
	SIGQUIT   Signal = 3
	SIGILL    Signal = 4
	SIGTRAP   Signal = 5
	SIGABRT   Signal = 6
	SIGBUS    Signal = 7
	SIGFPE    Signal = 8
	SIGKILL   Signal = 9
	SIGUSR1   Signal = 10
	SIGSEGV   Signal = 11
	SIGUSR2   Signal = 12
	SIGPIPE   Signal = 13
	SIGALRM   Signal = 14
	SIGTERM   Signal = 15
	SIGSTKFLT Signal = 16
	SIGCHLD   Signal = 17
	SIGCONT   Signal = 18
	SIGSTOP   Signal = 19
	SIGTSTP   Signal = 20
	SIGTTIN   Signal = 21
	SIGTTOU   Signal = 22
	SIGURG    Signal = 23
	SIGXCPU   Signal = 24
	SIGXFSZ   Signal = 25
	SIGVTALRM Signal = 26
	SIGPROF   Signal = 27
	SIGWINCH  Signal = 28
	SIGPOLL   Signal = 29
	SIGPWR    Signal = 30
	SIGSYS    Signal = 31
	sigRTMIN  Signal = 32
	sigRTMAX  Signal = 64
)

// signalNames is busybox's libbb/u_signal_names.c table for Linux.
var signalNames = [...]string{
	0: "EXIT", 1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM",
	15: "TERM", 16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN",
	22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH",
	29: "POLL", 30: "PWR", 31: "SYS", 32: "RTMIN",
}

// String returns the busybox name of s without the SIG prefix ("TERM"), or
// its number when it has no name.
func (s Signal) String() string {
	if s >= 0 && int(s) < len(signalNames) && signalNames[s] != "" {
		return signalNames[s]
	}
	if s == sigRTMAX {
		return "RTMAX"
	}
	return fmt.Sprint(int(s))
}

// defaultIgnored reports whether the default disposition of s is to ignore it
// (or, for STOP/TSTP/TTIN/TTOU, to stop the process, which the lab does not
// model: those are ignored too).
func defaultIgnored(s Signal) bool {
	switch s {
	case 0, SIGCHLD, SIGCONT, SIGURG, SIGWINCH, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU:
		return true
	}
	return false
}

// ErrNoSuchProcess is returned by ProcTable.Kill for a PID that is not in the
// table (busybox prints it as "No such process").
var ErrNoSuchProcess = errors.New("no such process")

// errProcessGone is what a write by a process that has already been killed
// returns: a dead process cannot write.
var errProcessGone = errors.New("write: process has exited")

// ProcInfo describes one line of the process table: an ESXi world.
type ProcInfo struct {
	PID     int       // world ID (WID); equals CID for a cartel's main world
	CID     int       // cartel ID: the process; 0 for kernel worlds
	PPID    int       // parent cartel (0 when none or when the parent is gone)
	Name    string    // world name, as `ps` prints it
	Cmdline []string  // argv of the cartel
	Started time.Time // when the world was created
}

// ProcTable is the process (world) table of one emulated host. IDs are
// deterministic: they start at the configured base and increase by one for
// every world created, like the 7-digit world IDs of ESXi 6.x and later
// (2099871...). It is safe for concurrent use.
type ProcTable struct {
	mu     sync.Mutex
	next   int
	now    func() time.Time
	worlds map[int]*world // by WID
}

// world is one line of `ps`.
type world struct {
	wid, cid int
	name     string
	started  time.Time
	proc     *Proc // nil for kernel worlds and static daemons
	ppid     int   // for static daemons
	cmdline  []string
}

// NewProcTable returns an empty table whose first world ID is firstPID.
// now may be nil (time.Now).
func NewProcTable(firstPID int, now func() time.Time) *ProcTable {
	if now == nil {
		now = time.Now
	}
	if firstPID <= 0 {
		firstPID = 2099871
	}
	return &ProcTable{next: firstPID, now: now, worlds: make(map[int]*world)}
}

func (t *ProcTable) allocLocked() int {
	id := t.next
	t.next++
	return id
}

// AddWorld adds a world that no shell started: a kernel world (cartel 0, it
// cannot be killed) when kernel is true, else a daemon cartel with the given
// command line and parent (killing it removes it). It returns the world ID.
// The lab uses it to make `ps` look like a host that runs hostd, sshd, etc.
func (t *ProcTable) AddWorld(name string, cmdline []string, ppid int, kernel bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.allocLocked()
	w := &world{wid: id, cid: id, name: name, started: t.now(), ppid: ppid, cmdline: slices.Clone(cmdline)}
	if kernel {
		w.cid = 0
		w.ppid = 0
		w.cmdline = nil
	}
	t.worlds[id] = w
	return id
}

// List returns every world, ordered by world ID, as `ps` shows them.
func (t *ProcTable) List() []ProcInfo {
	t.mu.Lock()
	ws := make([]*world, 0, len(t.worlds))
	for _, w := range t.worlds {
		ws = append(ws, w)
	}
	t.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].wid < ws[j].wid })
	out := make([]ProcInfo, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.info())
	}
	return out
}

func (w *world) info() ProcInfo {
	pi := ProcInfo{PID: w.wid, CID: w.cid, Name: w.name, Started: w.started, PPID: w.ppid, Cmdline: slices.Clone(w.cmdline)}
	if p := w.proc; p != nil {
		p.mu.Lock()
		pi.Cmdline = slices.Clone(p.cmdline)
		pi.PPID = p.ppid
		if w.wid == p.pid {
			pi.Name = p.name
		}
		p.mu.Unlock()
	}
	return pi
}

// Lookup returns the world with ID pid.
func (t *ProcTable) Lookup(pid int) (ProcInfo, bool) {
	t.mu.Lock()
	w, ok := t.worlds[pid]
	t.mu.Unlock()
	if !ok {
		return ProcInfo{}, false
	}
	return w.info(), true
}

// Kill sends sig to the cartel that world pid belongs to. Signal 0 only
// checks that it exists. Kernel worlds are not processes: they give
// ErrNoSuchProcess. SIGKILL ends the process at once: it leaves the table
// even if its command has not returned yet.
func (t *ProcTable) Kill(pid int, sig Signal) error {
	t.mu.Lock()
	w, ok := t.worlds[pid]
	if ok && w.cid == 0 {
		ok = false
	}
	if ok && w.proc == nil && sig != 0 && !defaultIgnored(sig) {
		delete(t.worlds, pid)
	}
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("kill %d: %w", pid, ErrNoSuchProcess)
	}
	if w.proc != nil {
		w.proc.signal(sig)
	}
	return nil
}

// WaitGone blocks until no world with ID pid is in the table or ctx is done.
func (t *ProcTable) WaitGone(ctx context.Context, pid int) error {
	t.mu.Lock()
	w, ok := t.worlds[pid]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	if w.proc == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case <-w.proc.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Proc is a running process (an ESXi cartel) as a Command sees it.
type Proc struct {
	table *ProcTable
	host  *Host
	pid   int

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the process leaves the table

	mu       sync.Mutex
	ppid     int
	cmdline  []string
	name     string
	threads  []int
	fds      fdTable
	env      map[string]string
	cwd      string
	handling bool // a Command called Signals: signals are delivered, not acted on
	sigc     chan Signal
	dead     bool
	status   int
}

// newProc creates a process in the table with its own (already referenced)
// fds. The process ends when exit or a fatal signal is called.
func (t *ProcTable) newProc(h *Host, parent context.Context, ppid int, cmdline []string, fds fdTable) *Proc {
	ctx, cancel := context.WithCancelCause(parent)
	p := &Proc{
		table: t, host: h, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		ppid: ppid, cmdline: slices.Clone(cmdline), name: worldName(cmdline), fds: fds,
		sigc: make(chan Signal, 16),
	}
	t.mu.Lock()
	p.pid = t.allocLocked()
	t.worlds[p.pid] = &world{wid: p.pid, cid: p.pid, started: t.now(), proc: p}
	t.mu.Unlock()
	return p
}

func worldName(cmdline []string) string {
	if len(cmdline) == 0 {
		return "sh"
	}
	return path.Base(cmdline[0])
}

// PID is the process's cartel ID, which `kill` takes and `$$` prints.
func (p *Proc) PID() int { return p.pid }

// PPID is the parent's cartel ID.
func (p *Proc) PPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ppid
}

// Cmdline is the process's argv.
func (p *Proc) Cmdline() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cmdline)
}

// Getenv returns an environment variable of the process.
func (p *Proc) Getenv(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.env[name]
}

// Cwd is the working directory the process started in.
func (p *Proc) Cwd() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cwd == "" {
		return "/"
	}
	return p.cwd
}

// abs resolves a path against the process's working directory.
func (p *Proc) abs(name string) string { return absPath(p.Cwd(), name) }

// FS is the host's virtual filesystem.
func (p *Proc) FS() *FS { return p.host.fs }

// Hostname is the emulated host's name.
func (p *Proc) Hostname() string { return p.host.name }

// Stdin is fd 0 of the process.
func (p *Proc) Stdin() io.Reader { return fdReader{p, 0} }

// Stdout is fd 1. Writes fail once the process has been killed, and when the
// other end is gone (a closed SSH channel, a pipe with no reader).
func (p *Proc) Stdout() io.Writer { return fdWriter{p, 1} }

// Stderr is fd 2.
func (p *Proc) Stderr() io.Writer { return fdWriter{p, 2} }

// Signals subscribes the process to its signals: from this call on, every
// signal except KILL (and STOP/CONT, which the lab ignores) is delivered on
// the channel instead of taking its default action, and the command decides
// what to do. A command that never calls Signals dies from HUP, INT, TERM,
// PIPE, etc. like an unprepared program. Call it first thing.
func (p *Proc) Signals() <-chan Signal {
	p.mu.Lock()
	p.handling = true
	p.mu.Unlock()
	return p.sigc
}

// AddThread adds a thread world (own WID, this process's CID) named name,
// as ESXi lists the threads of a cartel in `ps`; it goes when the process
// does.
func (p *Proc) AddThread(name string) int {
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return 0
	}
	id := t.allocLocked()
	t.worlds[id] = &world{wid: id, cid: p.pid, name: name, started: t.now(), proc: p}
	p.threads = append(p.threads, id)
	return id
}

// Done is closed when the process has left the table.
func (p *Proc) Done() <-chan struct{} { return p.done }

// signal delivers sig to p following its disposition.
func (p *Proc) signal(sig Signal) {
	if sig == 0 {
		return
	}
	if sig == SIGKILL {
		p.terminate(128 + int(SIGKILL))
		return
	}
	p.mu.Lock()
	handling, dead := p.handling, p.dead
	p.mu.Unlock()
	if dead || sig == SIGSTOP || sig == SIGCONT {
		return
	}
	if handling {
		select {
		case p.sigc <- sig:
		default: // standard signals do not queue: a pending one is enough
		}
		return
	}
	if defaultIgnored(sig) {
		return
	}
	p.terminate(128 + int(sig))
}

// exec replaces the process image: new argv, signal dispositions reset.
func (p *Proc) exec(argv []string) {
	p.mu.Lock()
	p.cmdline = slices.Clone(argv)
	p.name = worldName(argv)
	p.handling = false
	p.mu.Unlock()
}

// exit ends the process with status unless it has already ended.
func (p *Proc) exit(status int) { p.end(status, nil) }

// terminate ends the process as killed by a signal.
func (p *Proc) terminate(status int) {
	p.end(status, fmt.Errorf("process %d killed by signal %s", p.pid, Signal(status-128)))
}

func (p *Proc) end(status int, cause error) {
	t := p.table
	t.mu.Lock()
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		t.mu.Unlock()
		return
	}
	p.dead = true
	p.status = status
	delete(t.worlds, p.pid)
	for _, id := range p.threads {
		delete(t.worlds, id)
	}
	fds := p.fds
	p.fds = fdTable{}
	p.mu.Unlock()
	t.mu.Unlock()
	if cause == nil {
		cause = fmt.Errorf("process %d exited", p.pid)
	}
	p.cancel(cause)
	fds.release()
	close(p.done)
}

// exitStatus is valid after done is closed.
func (p *Proc) exitStatus() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

func (p *Proc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// setFDs replaces the process's fd table (exec with redirections), releasing
// the old one.
func (p *Proc) setFDs(fds fdTable) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		fds.release()
		return
	}
	old := p.fds
	p.fds = fds
	p.mu.Unlock()
	old.release()
}

func (p *Proc) fd(n int) (*ofile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return nil, false
	}
	return p.fds[n], true
}

type fdWriter struct {
	p  *Proc
	fd int
}

func (w fdWriter) Write(b []byte) (int, error) {
	f, alive := w.p.fd(w.fd)
	if !alive {
		return 0, errProcessGone
	}
	if f == nil || f.w == nil {
		return 0, fmt.Errorf("write fd %d: bad file descriptor", w.fd)
	}
	return writeOrSIGPIPE(w.p, f, b)
}

// writeOrSIGPIPE writes for p; when the other end is gone (a pipe without
// reader, a closed SSH channel) the write fails and p gets SIGPIPE, as the
// kernel does: a process that does not handle it dies (status 141).
func writeOrSIGPIPE(p *Proc, f *ofile, b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err != nil {
		p.signal(SIGPIPE)
	}
	return n, err
}

type fdReader struct {
	p  *Proc
	fd int
}

func (r fdReader) Read(b []byte) (int, error) {
	f, alive := r.p.fd(r.fd)
	if !alive {
		return 0, errProcessGone
	}
	if f == nil || f.r == nil {
		return 0, fmt.Errorf("read fd %d: bad file descriptor", r.fd)
	}
	return f.r.Read(b)
}
