package shell

import (
	"context"
	"io"
	"maps"
	"sync"
	"time"
)

// Command is a program of the emulated host (pktcap-uw, esxcli, ...). args
// is its argv: args[0] is the name it was called by. It returns the exit
// status. It must return once ctx is done: ctx is cancelled when the process
// is killed (SIGKILL, or a signal it does not handle) and when the host
// closes. It reads and writes through p.Stdin, p.Stdout and p.Stderr, and
// reacts to p.Signals if it wants to handle signals itself.
type Command func(ctx context.Context, p *Proc, args []string) int

// Host is one emulated ESXi host's shell environment: its process table,
// filesystem and commands. Scripts run through Run as busybox ash would run
// them over SSH (`sh -c SCRIPT`).
type Host struct {
	name  string
	procs *ProcTable
	fs    *FS
	cmds  map[string]Command
	now   func() time.Time
	uname unameInfo

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type unameInfo struct{ release, version string }

// HostOption configures NewHost.
type HostOption func(*Host)

// WithClock sets the clock `date` reads (default time.Now).
func WithClock(now func() time.Time) HostOption { return func(h *Host) { h.now = now } }

// WithUname sets what `uname -r` and `uname -v` print (default: ESXi 6.7.0
// GA, "#1 SMP Release build-8169922 Apr  3 2018 14:48:22").
func WithUname(release, version string) HostOption {
	return func(h *Host) { h.uname = unameInfo{release, version} }
}

// NewHost returns a host named name. cmds adds commands to (or replaces)
// the built-in set; nil procs or fs get fresh ones. Close it when done.
func NewHost(name string, procs *ProcTable, fs *FS, cmds map[string]Command, opts ...HostOption) *Host {
	if procs == nil {
		procs = NewProcTable(0, nil)
	}
	if fs == nil {
		fs = NewFS(nil)
	}
	h := &Host{
		name: name, procs: procs, fs: fs, now: time.Now,
		uname: unameInfo{"6.7.0", "#1 SMP Release build-8169922 Apr  3 2018 14:48:22"},
	}
	for _, o := range opts {
		o(h)
	}
	h.cmds = defaultCommands()
	maps.Copy(h.cmds, cmds)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// Procs is the host's process table.
func (h *Host) Procs() *ProcTable { return h.procs }

// FS is the host's filesystem.
func (h *Host) FS() *FS { return h.fs }

// RunConfig is the optional part of a Run.
type RunConfig struct {
	// PPID is the parent cartel of the shell (the lab's sshd world), 0 for
	// none.
	PPID int
	// Env is the shell's initial environment (exported variables).
	Env map[string]string
}

// Run runs script as a new process `sh -c SCRIPT`, so `$$` is that process's
// PID. It returns the script's exit status (128+N when the shell was killed
// by signal N) once the shell has exited and no process holds stdout or
// stderr any more — like sshd, which closes a channel only when every
// process that inherited the channel's output has closed it: `sleep 60 &`
// without a redirection keeps Run waiting, `sleep 60 >/dev/null 2>&1 &`
// does not. Background processes outlive Run. Cancelling ctx kills the
// shell (SIGKILL) and makes Run return at once; a closed SSH channel should
// not cancel it (a command notices when a write fails). stdin may be nil;
// stdout and stderr may be the same writer.
func (h *Host) Run(ctx context.Context, script string, stdin io.Reader, stdout, stderr io.Writer) int {
	return h.RunWith(ctx, RunConfig{}, script, stdin, stdout, stderr)
}

// RunWith is Run with a parent PID and an environment.
func (h *Host) RunWith(ctx context.Context, cfg RunConfig, script string, stdin io.Reader, stdout, stderr io.Writer) int {
	if h.ctx.Err() != nil {
		return 255
	}
	if stdin == nil {
		stdin = eofReader{}
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	outMu := new(sync.Mutex)
	errMu := outMu
	if !sameWriter(stdout, stderr) {
		errMu = new(sync.Mutex)
	}
	held := newHoldCount(2)
	var fds fdTable
	fds[0] = newOfile(stdin, nil, nil)
	fds[1] = newOfile(nil, lockedWriter{outMu, stdout}, held.done)
	fds[2] = newOfile(nil, lockedWriter{errMu, stderr}, held.done)
	p := h.procs.newProc(h, h.ctx, cfg.PPID, []string{"sh", "-c", script}, fds)
	p.env = maps.Clone(cfg.Env)
	stop := context.AfterFunc(ctx, func() { p.signal(SIGKILL) })
	defer stop()
	h.wg.Go(func() {
		s := newShell(h, p, p.pid, "sh", nil)
		p.exit(s.runScript(script))
	})
	select {
	case <-p.done:
	case <-h.ctx.Done():
		return 255
	}
	select {
	case <-held.zero:
	case <-ctx.Done():
	case <-h.ctx.Done():
	}
	return p.exitStatus()
}

// Close kills every process of the host (their contexts are cancelled) and
// waits for all goroutines the host started. Commands must return when their
// ctx is done, or Close blocks. It is idempotent.
func (h *Host) Close() error {
	h.cancel()
	for _, pi := range h.procs.List() {
		h.procs.mu.Lock()
		w := h.procs.worlds[pi.PID]
		h.procs.mu.Unlock()
		if w != nil && w.proc != nil && w.proc.host == h {
			w.proc.terminate(128 + int(SIGKILL))
		}
	}
	h.wg.Wait()
	return nil
}

// spawn runs fn as the body of process p in a goroutine the host owns; p
// exits with fn's status unless it already died.
func (h *Host) spawn(p *Proc, fn func() int) {
	h.wg.Go(func() { p.exit(fn()) })
}

// holdCount closes zero when done has been called n times.
type holdCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func newHoldCount(n int) *holdCount { return &holdCount{n: n, zero: make(chan struct{})} }

func (c *holdCount) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 {
		close(c.zero)
	}
}
