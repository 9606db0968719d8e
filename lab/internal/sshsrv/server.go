// Package sshsrv is the SSH server of one emulated ESXi host in the lab
// (golang.org/x/crypto/ssh). It authenticates like ESXi — root by
// keyboard-interactive (one "Password: " prompt, echo off) or public key,
// no "password" method unless asked for, ten failures lock the account for
// two minutes — and runs exec requests (and line-by-line shell requests)
// through a Handler with stdout and stderr kept apart and the exit status
// sent back.
//
// Like OpenSSH on a real host, closing a channel does not stop the command:
// the handler's context is only cancelled when the server closes; the
// command notices a closed channel when a write fails. Flow control is SSH's
// own: writes block while the client's window is full.
//
// Fault hooks for tests: refuse all authentication, cut every connection,
// rate-limit channel writes, swap the host key, stop listening.
//
// It does not do port forwarding, agent forwarding, subsystems (sftp, scp
// -s), X11, or per-user shells; pty requests are accepted and ignored (no
// terminal emulation, no prompt).
package sshsrv

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Handler runs one command. It returns the exit status. ctx is cancelled
// only when the server closes — not when the channel does — and the handler
// must return then, or Close blocks.
type Handler func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int

// Config configures a Server. Handler and HostKey are required.
type Config struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// HostKey identifies the server (see LoadOrCreateHostKey).
	HostKey ssh.Signer
	// User is the only account; default "root".
	User string
	// Password is the account's password, asked by keyboard-interactive
	// (and by "password" when AllowPassword is set). Empty disables both.
	Password string
	// AuthorizedKeys may log in by public key (ESXi's
	// /etc/ssh/keys-root/authorized_keys).
	AuthorizedKeys []ssh.PublicKey
	// AllowPassword also offers the "password" method. ESXi does not: Go's
	// ssh.Password alone fails there with "no supported methods remain".
	AllowPassword bool
	// LockoutFailures failed password logins lock the account (ESXi
	// Security.AccountLockFailures: 10 on 6.0, 5 from 6.5 on; default
	// here 10); negative disables. Only
	// password answers count and only they are refused while locked: public
	// key logins do not go through the PAM auth stack that keeps the tally
	// (an inference from pam_tally2/faillock, not verified on a host).
	LockoutFailures int
	// LockoutDuration is how long it stays locked (ESXi
	// Security.AccountUnlockTime: 2 minutes on 6.0, 15 from 6.5 on;
	// default here 2 minutes).
	LockoutDuration time.Duration
	// Now is the clock for the lockout; default time.Now.
	Now func() time.Time
	// ServerVersion is the identification string; default
	// "SSH-2.0-OpenSSH_7.7" (ESXi 6.7 ships an OpenSSH 7.x; the exact
	// version string per build was not verified).
	ServerVersion string
	// Handler runs exec requests and the lines of shell requests.
	Handler Handler
	// Logger receives connection and auth events; default discards.
	Logger *slog.Logger
}

// Server is a running SSH server. Close it when done.
type Server struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	ln          net.Listener
	addr        string
	conns       map[net.Conn]struct{}
	hostKey     ssh.Signer
	refuseAuth  bool
	unreachable bool
	failures    map[string]int
	lockedUntil map[string]time.Time
	attempts    int // passwords answered (keyboard-interactive or password), right or wrong

	rate atomic.Int64 // bytes per second on channel writes; 0 = unlimited
	link atomic.Pointer[Link]
	// accepted counts the TCP connections accepted (Accepted)
	accepted atomic.Int64
}

// Accepted is the number of connections the server has accepted (a test
// proves a command connected to nothing).
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Listen starts a server.
func Listen(cfg Config) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("sshsrv: config: HostKey is required")
	}
	if cfg.Handler == nil {
		return nil, errors.New("sshsrv: config: Handler is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	if cfg.LockoutFailures == 0 {
		cfg.LockoutFailures = 10
	}
	if cfg.LockoutDuration == 0 {
		cfg.LockoutDuration = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "SSH-2.0-OpenSSH_7.7"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("sshsrv: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{
		cfg: cfg, ln: ln, addr: ln.Addr().String(), hostKey: cfg.HostKey,
		conns: map[net.Conn]struct{}{}, failures: map[string]int{}, lockedUntil: map[string]time.Time{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(func() { s.accept(ln) })
	return s, nil
}

// Addr is the address the server listens on ("127.0.0.1:PORT"); it stays
// the same across SetUnreachable.
func (s *Server) Addr() string { return s.addr }

// HostKeyFingerprint is the current host key's SHA256 fingerprint, as
// ssh-keygen -l and known_hosts tooling print it ("SHA256:...").
func (s *Server) HostKeyFingerprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ssh.FingerprintSHA256(s.hostKey.PublicKey())
}

// Close stops listening, cuts every connection, cancels the handlers'
// context and waits for every goroutine. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	s.cancel()
	if ln != nil {
		ln.Close()
	}
	s.CutConnections()
	s.wg.Wait()
	return nil
}

// PasswordAttempts is how many passwords clients have answered since the
// server started, right or wrong (what ESXi's lock-out counts when they
// are wrong).
func (s *Server) PasswordAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// SetRefuseAuth makes every authentication attempt fail (fault hook).
func (s *Server) SetRefuseAuth(refuse bool) {
	s.mu.Lock()
	s.refuseAuth = refuse
	s.mu.Unlock()
}

// CutConnections closes every live TCP connection at once, mid-stream
// (fault hook). Handlers keep running; their writes fail.
func (s *Server) CutConnections() {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// SetRateLimit limits writes on every channel to bytesPerSec (a slow link;
// 0 removes the limit). It applies to live channels too.
func (s *Server) SetRateLimit(bytesPerSec int) { s.rate.Store(int64(max(bytesPerSec, 0))) }

// SetHostKey swaps the host key for new connections (fault hook: a host
// that was reinstalled, or a man in the middle).
func (s *Server) SetHostKey(k ssh.Signer) {
	s.mu.Lock()
	s.hostKey = k
	s.mu.Unlock()
}

// SetUnreachable stops listening and cuts every connection (true), or
// listens again on the same address (false).
func (s *Server) SetUnreachable(down bool) error {
	s.mu.Lock()
	if s.closed || down == s.unreachable {
		s.mu.Unlock()
		return nil
	}
	s.unreachable = down
	if down {
		ln := s.ln
		s.ln = nil
		s.mu.Unlock()
		ln.Close()
		s.CutConnections()
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.unreachable = true
		s.mu.Unlock()
		return fmt.Errorf("sshsrv: listen again on %s: %w", s.addr, err)
	}
	s.ln = ln
	s.wg.Go(func() { s.accept(ln) })
	s.mu.Unlock()
	return nil
}

// track registers a goroutine unless the server is closing.
func (s *Server) track(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(fn)
	return true
}

func (s *Server) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		lc := newLinkConn(s, c)
		s.conns[lc] = struct{}{}
		s.wg.Go(func() { s.serveConn(lc) })
		s.mu.Unlock()
	}
}

func (s *Server) serverConfig() *ssh.ServerConfig {
	s.mu.Lock()
	key := s.hostKey
	s.mu.Unlock()
	cfg := &ssh.ServerConfig{
		ServerVersion: s.cfg.ServerVersion,
		MaxAuthTries:  6,
		PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.refusing() || md.User() != s.cfg.User {
				return nil, errors.New("sshsrv: public key refused")
			}
			for _, k := range s.cfg.AuthorizedKeys {
				if string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("sshsrv: public key not authorized")
		},
	}
	// ESXi allows AES only (vSphere Security guide); the Go defaults for
	// key exchange and MACs are kept.
	cfg.Ciphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"}
	if s.cfg.Password != "" {
		cfg.KeyboardInteractiveCallback = func(md ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			// as OpenSSH with PAM on ESXi: no name or instruction, one
			// prompt (a client prints a name, so "root" must not appear)
			answers, err := client("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			return s.checkPassword(md, len(answers) == 1 && answers[0] == s.cfg.Password)
		}
		if s.cfg.AllowPassword {
			cfg.PasswordCallback = func(md ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
				return s.checkPassword(md, string(pw) == s.cfg.Password)
			}
		}
	}
	cfg.AddHostKey(key)
	return cfg
}

func (s *Server) refusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refuseAuth
}

// checkPassword applies the account lockout: a locked account is refused
// even with the right password; ten failures lock it.
func (s *Server) checkPassword(md ssh.ConnMetadata, ok bool) (*ssh.Permissions, error) {
	user := md.User()
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if until, locked := s.lockedUntil[user]; locked {
		if now.Before(until) {
			s.cfg.Logger.Info("login refused: account locked", "user", user, "until", until)
			return nil, errors.New("sshsrv: account locked")
		}
		delete(s.lockedUntil, user)
		s.failures[user] = 0
	}
	if ok && !s.refuseAuth && user == s.cfg.User {
		s.failures[user] = 0
		return &ssh.Permissions{}, nil
	}
	s.failures[user]++
	if n := s.cfg.LockoutFailures; n > 0 && s.failures[user] >= n {
		s.lockedUntil[user] = now.Add(s.cfg.LockoutDuration)
		s.cfg.Logger.Info("account locked", "user", user, "failures", s.failures[user])
	}
	return nil, errors.New("sshsrv: wrong password")
}

func (s *Server) serveConn(c *linkConn) {
	defer func() {
		c.Close()
		c.wg.Wait()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.serverConfig())
	if err != nil {
		s.cfg.Logger.Debug("handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	defer sc.Close()
	s.cfg.Logger.Info("login", "user", sc.User(), "remote", c.RemoteAddr().String())
	if !s.track(func() { ssh.DiscardRequests(reqs) }) {
		return
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "unknown channel type")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		if !s.track(func() { s.serveSession(ch, creqs) }) {
			ch.Close()
		}
	}
}

// serveSession answers a session's requests and runs its command.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	started := false
	for req := range reqs {
		switch req.Type {
		case "pty-req", "env", "window-change", "signal":
			if req.WantReply {
				req.Reply(req.Type != "signal", nil)
			}
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			req.Reply(true, nil)
			if !s.track(func() {
				s.run(ch, func(out, errw io.Writer) int { return s.cfg.Handler(s.ctx, p.Command, ch, out, errw) })
			}) {
				ch.Close()
			}
		case "shell":
			if started {
				req.Reply(false, nil)
				continue
			}
			started = true
			req.Reply(true, nil)
			if !s.track(func() { s.run(ch, s.shellLoop(ch)) }) {
				ch.Close()
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// shellLoop reads commands from the channel, one per line, and runs each,
// as `sh` reading stdin does.
func (s *Server) shellLoop(ch ssh.Channel) func(out, errw io.Writer) int {
	return func(out, errw io.Writer) int {
		st := 0
		r := bufio.NewReader(ch)
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) != "" {
				st = s.cfg.Handler(s.ctx, strings.TrimRight(line, "\r\n"), r, out, errw)
			}
			if err != nil || s.ctx.Err() != nil {
				return st
			}
		}
	}
}

// run runs a command on a channel and reports its exit status.
func (s *Server) run(ch ssh.Channel, fn func(out, errw io.Writer) int) {
	st := fn(&rateWriter{s: s, w: ch}, &rateWriter{s: s, w: ch.Stderr()})
	ch.CloseWrite()
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(st)}))
	ch.Close()
}

// rateWriter writes to a channel, at most the server's rate limit bytes per
// second. A closed channel makes writes fail (io.EOF from x/crypto).
type rateWriter struct {
	s *Server
	w io.Writer
}

func (r *rateWriter) Write(b []byte) (int, error) {
	rate := r.s.rate.Load()
	if rate <= 0 {
		return r.w.Write(b)
	}
	chunk := max(int(rate/10), 1)
	n := 0
	for n < len(b) {
		k := min(chunk, len(b)-n)
		t := time.NewTimer(time.Duration(float64(k) / float64(rate) * float64(time.Second)))
		select {
		case <-t.C:
		case <-r.s.ctx.Done():
			t.Stop()
			return n, r.s.ctx.Err()
		}
		m, err := r.w.Write(b[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// LoadOrCreateHostKey reads an OpenSSH private key from path, or creates an
// ed25519 key there (PEM "OPENSSH PRIVATE KEY", mode 0600) when the file
// does not exist, so that known_hosts entries stay valid across restarts.
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("sshsrv: host key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sshsrv: read host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshsrv: generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("sshsrv: encode host key: %w", err)
	}
	data := pem.EncodeToMemory(block)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // created meanwhile by another process
		return LoadOrCreateHostKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("sshsrv: create host key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("sshsrv: write host key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sshsrv: write host key %s: %w", path, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("sshsrv: host key signer: %w", err)
	}
	return signer, nil
}
