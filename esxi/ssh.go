package esxi

// The SSH client for ESXi hosts: context-aware dialling, host keys checked
// against known_hosts, the logins ESXi accepts (public key from the agent or
// key files, keyboard-interactive with the password, plain password), and
// remote commands with typed errors.
//
// ESXi facts this follows (reference/pktcap-uw-notes.md §8): password login
// is keyboard-interactive (ssh.Password alone fails with "no supported
// methods remain"); every prompt is answered with the password and rounds
// with zero questions are accepted; failed logins lock the account (see
// AuthError), so a Dial never retries a login and never sends the password
// twice; the shell is busybox ash.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// PasswordEnv is the environment variable Dial's callers read the SSH
// password from (see PasswordFrom). A password never comes from a flag
// value, which any user could read in ps.
const PasswordEnv = "CAPTURECTL_SSH_PASSWORD"

// SSHConfig says how to reach and log in to one ESXi host.
type SSHConfig struct {
	// Host is the host's name as the user knows it (inventory name or
	// address); errors and logs name it. Required.
	Host string
	// Addr overrides where to connect, "ADDR:PORT" (a jump set-up, a port
	// forward, the lab). Empty: Host on port 22.
	Addr string
	// User to log in as; default "root".
	User string
	// Password for keyboard-interactive and password logins; empty: no
	// password login is tried.
	Password string
	// PasswordSource says where Password came from ("CAPTURECTL_SSH_PASSWORD",
	// "--ssh-password-file FILE"), for the message of a refused login.
	PasswordSource string
	// KnownHostsFile to verify the host key against; default
	// ~/.ssh/known_hosts. A missing file is an empty one.
	KnownHostsFile string
	// HostKeyAlias is the name looked up in known_hosts, NAME or NAME:PORT;
	// default the address dialled (known_hosts writes "[127.0.0.1]:2201"
	// for ports other than 22).
	HostKeyAlias string
	// AcceptNewHostKey trusts the key of a host that known_hosts does not
	// list (trust on first use) and appends its line to KnownHostsFile. A
	// changed key is refused all the same.
	AcceptNewHostKey bool
	// KeyFiles are private key files to try; nil: ~/.ssh/id_ed25519,
	// ~/.ssh/id_ecdsa and ~/.ssh/id_rsa, those that exist. Encrypted keys
	// are skipped (use the agent for them).
	KeyFiles []string
	// AgentSocket is the SSH agent's socket; default $SSH_AUTH_SOCK.
	AgentSocket string
	// NoAgent disables the agent.
	NoAgent bool
	// Timeout bounds the TCP connect, the SSH handshake and the login;
	// default 15s.
	Timeout time.Duration
	// KeepAlive is the interval of keep-alive requests that detect a dead
	// link; default 15s, negative disables. A connection that does not
	// answer two in a row is closed.
	KeepAlive time.Duration
	// Logger receives connection events; default discards.
	Logger *slog.Logger
	// Getenv reads HOME (for ~/.ssh) and SSH_AUTH_SOCK; nil is os.Getenv.
	// A program that injects its environment (tests, an embedded lab)
	// sets it so the process's own is never read.
	Getenv func(string) string
}

// SSHClient is one SSH connection to a host; it carries many channels
// (one per capture point plus short commands). It is safe for concurrent
// use.
type SSHClient struct {
	// Host is SSHConfig.Host.
	Host string
	// Addr is the address connected to.
	Addr string

	client *ssh.Client
	log    *slog.Logger
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// HostKeyError reports a host key that known_hosts does not confirm: the
// host is unknown, or it offered a key other than the one listed (a
// reinstalled host or a man in the middle).
type HostKeyError struct {
	Host string // SSHConfig.Host
	Addr string // the name looked up in known_hosts
	// KeyType and Fingerprint (SHA256:...) describe the key the host offered.
	KeyType     string
	Fingerprint string
	// Known lists "file:line fingerprint" of the keys known_hosts holds for
	// the host; empty when the host is unknown.
	Known []string
	// File is the known_hosts file consulted.
	File string
}

func (e *HostKeyError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("esxi: host %s: unknown host key %s %s (looked up as %s in %s; check the fingerprint on the host's console, then add it or allow new host keys)",
			e.Host, e.KeyType, e.Fingerprint, e.Addr, e.File)
	}
	return fmt.Sprintf("esxi: host %s: HOST KEY MISMATCH: the host offered %s %s; %s lists %s for %s (a reinstalled host or a man in the middle; connection refused)",
		e.Host, e.KeyType, e.Fingerprint, e.File, strings.Join(e.Known, ", "), e.Addr)
}

// ErrSSHAuth is the kind of an *AuthError (errors.Is).
var ErrSSHAuth = errors.New("ssh login refused")

// AuthError reports a host that refused every credential offered: the
// password and the keys, each offered once. It is never retried: ESXi
// counts each refused password towards locking the account.
//
// ESXi's lock-out (vSphere Security, "ESXi Passwords and Account Lockout"):
// Security.AccountLockFailures failed logins over SSH or the API lock a
// local account — 10 on ESXi 6.0, 5 from 6.5 on — for
// Security.AccountUnlockTime seconds — 120 on 6.0, 900 (15 minutes) from
// 6.5 on (Broadcom KB 436299, "Configuring the user account lockout
// duration in ESXi": default 900 s). The DCUI and the ESXi Shell do not
// lock.
type AuthError struct {
	Host string // SSHConfig.Host
	User string
	Addr string // the address dialled
	// Tried lists what was offered, each with where it came from:
	// "the password from CAPTURECTL_SSH_PASSWORD", "the SSH agent's keys
	// ($SSH_AUTH_SOCK)", "the key file ~/.ssh/id_ed25519".
	Tried []string
	Err   error // x/crypto/ssh's error
}

// LockoutWarning is what a refused login says about ESXi's lock-out.
const LockoutWarning = "capturectl does not retry: ESXi locks the account after a few failed logins " +
	"(Security.AccountLockFailures: 10 on ESXi 6.0, 5 from 6.5 on) for Security.AccountUnlockTime " +
	"(2 minutes on 6.0, 15 minutes from 6.5 on); check the credential before running again"

func (e *AuthError) Error() string {
	who := e.User + "@" + e.Host
	if len(e.Tried) == 0 {
		return fmt.Sprintf("esxi: host %s: ssh login as %s at %s: no password or key to offer (set %s or --ssh-password-file, or load a key into the SSH agent)",
			e.Host, who, e.Addr, PasswordEnv)
	}
	what := "the password or key was refused"
	if len(e.Tried) == 1 && strings.HasPrefix(e.Tried[0], "the password") {
		what = "the password was refused"
	} else if !slicesHasPrefix(e.Tried, "the password") {
		what = "the key was refused"
	}
	return fmt.Sprintf("esxi: host %s: ssh login as %s at %s: %s (offered %s); %s",
		e.Host, who, e.Addr, what, strings.Join(e.Tried, ", "), LockoutWarning)
}

func slicesHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// Unwrap gives ErrSSHAuth and the cause.
func (e *AuthError) Unwrap() []error { return []error{ErrSSHAuth, e.Err} }

// errAskedAgain is returned by the password callbacks when the host asks
// for the password a second time (it refused the first).
var errAskedAgain = errors.New("the host asked for the password again; not answering twice")

// isAuthFailure reports an error of ssh.NewClientConn that is a refused
// login (not a network or host key problem).
func isAuthFailure(err error) bool {
	return errors.Is(err, errAskedAgain) || strings.Contains(err.Error(), "unable to authenticate")
}

// CommandError reports a remote command that ran and exited non-zero, or
// was killed by a signal.
type CommandError struct {
	Host       string
	Cmd        string
	ExitStatus int    // -1 when the command ended without a status (signal, lost channel)
	Stderr     string // what the command wrote to stderr (at most 4 KiB, the end)
	Err        error  // *ssh.ExitError or *ssh.ExitMissingError
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("esxi: host %s: command %q", e.Host, e.Cmd)
	if e.ExitStatus >= 0 {
		msg += fmt.Sprintf(" exited with status %d", e.ExitStatus)
	} else {
		msg += fmt.Sprintf(" failed: %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// ParseAddrOverride parses a host address override "HOST=ADDR:PORT".
func ParseAddrOverride(s string) (host, addr string, err error) {
	host, addr, ok := strings.Cut(s, "=")
	if !ok || host == "" || addr == "" {
		return "", "", fmt.Errorf("esxi: ssh address override %q: want HOST=ADDR:PORT", s)
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil || h == "" {
		return "", "", fmt.Errorf("esxi: ssh address override %q: want HOST=ADDR:PORT", s)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("esxi: ssh address override %q: bad port %q", s, p)
	}
	return host, addr, nil
}

// PasswordFrom returns the SSH password from the environment variable env
// as getenv reads it (when set and not empty) or else from file (its first
// line; empty file name: none). It returns "" without error when neither
// gives one. A nil getenv is os.Getenv.
func PasswordFrom(getenv func(string) string, env, file string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if env != "" {
		if v := getenv(env); v != "" {
			return v, nil
		}
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("esxi: read password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("esxi: password file %s: first line is empty", file)
	}
	return line, nil
}

func (c *SSHConfig) withDefaults() (SSHConfig, error) {
	cfg := *c
	if cfg.Host == "" {
		return cfg, errors.New("esxi: ssh: no host given")
	}
	if cfg.Addr == "" {
		cfg.Addr = net.JoinHostPort(cfg.Host, "22")
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := getenv("HOME")
	if cfg.KnownHostsFile == "" {
		if home == "" {
			return cfg, fmt.Errorf("esxi: host %s: no known_hosts file given and no home directory", cfg.Host)
		}
		cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if cfg.KeyFiles == nil && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			cfg.KeyFiles = append(cfg.KeyFiles, filepath.Join(home, ".ssh", n))
		}
	}
	if cfg.AgentSocket == "" {
		cfg.AgentSocket = getenv("SSH_AUTH_SOCK")
	}
	return cfg, nil
}

// Dial connects to the host, verifies its key and logs in, trying in turn
// the agent's keys, the key files, keyboard-interactive and password (each
// method at most once: no login is ever retried). ctx bounds the whole
// dial; once Dial returns, ctx no longer matters (Close the client).
func Dial(ctx context.Context, config SSHConfig) (*SSHClient, error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	// alias is HOST:PORT, the form the known_hosts check takes.
	alias := cfg.HostKeyAlias
	if alias == "" {
		alias = cfg.Addr
	}
	if _, _, err := net.SplitHostPort(alias); err != nil {
		alias = net.JoinHostPort(alias, "22")
	}
	hkcb, algos, err := hostKeyCallback(cfg, alias)
	if err != nil {
		return nil, err
	}
	auth, tried, closeAgent := authMethods(cfg)
	defer closeAgent()

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("esxi: host %s: ssh connect %s: %w", cfg.Host, cfg.Addr, err)
	}
	// x/crypto/ssh has no context: a cancelled ctx or the timeout closes the
	// connection, which ends a stuck handshake.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	cc, chans, reqs, err := ssh.NewClientConn(readBuffered(conn), cfg.Addr, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hkcb,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.Timeout,
	})
	if !stop() {
		if err == nil {
			cc.Close()
		}
		conn.Close()
		cause := ctx.Err()
		if err != nil && !errors.Is(cause, context.DeadlineExceeded) {
			cause = errors.Join(cause, err)
		}
		return nil, fmt.Errorf("esxi: host %s: ssh login at %s: %w", cfg.Host, cfg.Addr, cause)
	}
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		if errors.As(err, &hke) {
			return nil, hke
		}
		if isAuthFailure(err) {
			return nil, &AuthError{Host: cfg.Host, User: cfg.User, Addr: cfg.Addr, Tried: tried, Err: err}
		}
		return nil, fmt.Errorf("esxi: host %s: ssh login as %s at %s: %w", cfg.Host, cfg.User, cfg.Addr, err)
	}
	conn.SetDeadline(time.Time{})
	c := &SSHClient{Host: cfg.Host, Addr: cfg.Addr, client: ssh.NewClient(cc, chans, reqs),
		log: cfg.Logger.With("host", cfg.Host), done: make(chan struct{})}
	c.wg.Go(func() {
		err := c.client.Wait()
		c.once.Do(func() { c.err = err; close(c.done) })
	})
	if cfg.KeepAlive > 0 {
		c.wg.Go(func() { c.keepAlive(cfg.KeepAlive) })
	}
	c.log.Debug("ssh connected", "addr", cfg.Addr, "server", string(cc.ServerVersion()))
	return c, nil
}

// keepAlive sends keep-alive requests; a connection that does not answer
// within two intervals is closed, so that readers of its channels see an
// error instead of hanging on a dead link.
func (c *SSHClient) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			c.client.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-c.done:
			return
		case <-time.After(2 * every):
			c.log.Warn("ssh keep-alive unanswered; closing the connection")
			c.client.Close()
			return
		}
	}
}

// hostKeyCallback returns the known_hosts check for the host and the host
// key algorithms to ask for (those of the keys known_hosts holds, so that
// a host with several keys offers the one that is known).
func hostKeyCallback(cfg SSHConfig, alias string) (ssh.HostKeyCallback, []string, error) {
	file := cfg.KnownHostsFile
	var db ssh.HostKeyCallback
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		db = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else {
		var err error
		if db, err = knownhosts.New(file); err != nil {
			return nil, nil, fmt.Errorf("esxi: host %s: known hosts: %w", cfg.Host, err)
		}
	}
	// Ask which keys are known for alias by checking a key that cannot be
	// among them.
	var algos []string
	if probe, err := probeKey(); err == nil {
		var ke *knownhosts.KeyError
		if err := db(alias, &net.TCPAddr{IP: net.IPv4zero}, probe); errors.As(err, &ke) {
			for _, k := range ke.Want {
				algos = append(algos, algorithmsFor(k.Key.Type())...)
			}
		}
	}
	var mu sync.Mutex
	cb := func(_ string, remote net.Addr, key ssh.PublicKey) error {
		err := db(alias, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("esxi: host %s: host key: %w", cfg.Host, err)
		}
		hke := &HostKeyError{Host: cfg.Host, Addr: knownhosts.Normalize(alias), KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), File: file}
		for _, w := range ke.Want {
			hke.Known = append(hke.Known, fmt.Sprintf("%s:%d %s", w.Filename, w.Line, ssh.FingerprintSHA256(w.Key)))
		}
		if len(ke.Want) > 0 || !cfg.AcceptNewHostKey {
			return hke
		}
		mu.Lock()
		defer mu.Unlock()
		if err := appendKnownHost(file, alias, key); err != nil {
			return fmt.Errorf("esxi: host %s: accept new host key %s: %w", cfg.Host, hke.Fingerprint, err)
		}
		cfg.Logger.Warn("accepted a new host key and added it to known_hosts", "host", cfg.Host,
			"key", key.Type()+" "+hke.Fingerprint, "file", file)
		return nil
	}
	return cb, dedup(algos), nil
}

func probeKey() (ssh.PublicKey, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	// An ed25519 public key of random bytes: it matches nothing.
	blob := ssh.Marshal(struct {
		Name string
		Key  []byte
	}{ssh.KeyAlgoED25519, b[:]})
	return ssh.ParsePublicKey(blob)
}

// algorithmsFor returns the host key algorithms that verify a key of type t.
func algorithmsFor(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

func dedup(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// appendKnownHost adds "alias key" to file, creating it (and its
// directory) when missing.
func appendKnownHost(file, alias string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(alias)}, key) + "\n"
	// Start on a new line when the file does not end with one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if rf, err := os.Open(file); err == nil {
			rf.ReadAt(last, st.Size()-1)
			rf.Close()
			if last[0] != '\n' {
				line = "\n" + line
			}
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// authMethods returns the login methods in the order tried, what they
// offer (for an AuthError) and a function that closes the agent
// connection.
func authMethods(cfg SSHConfig) ([]ssh.AuthMethod, []string, func()) {
	var methods []ssh.AuthMethod
	var tried []string
	var signers []ssh.Signer
	closeAgent := func() {}
	if !cfg.NoAgent && cfg.AgentSocket != "" {
		if conn, err := net.DialTimeout("unix", cfg.AgentSocket, cfg.Timeout); err == nil {
			closeAgent = func() { conn.Close() }
			ag := agent.NewClient(conn)
			if s, err := ag.Signers(); err == nil {
				signers = append(signers, s...)
				if len(s) > 0 {
					tried = append(tried, fmt.Sprintf("the SSH agent's %d key(s) (%s)", len(s), cfg.AgentSocket))
				}
			} else {
				cfg.Logger.Debug("ssh agent: no keys", "err", err)
			}
		} else {
			cfg.Logger.Debug("ssh agent unreachable", "socket", cfg.AgentSocket, "err", err)
		}
	}
	for _, f := range cfg.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				cfg.Logger.Warn("ssh key file unreadable", "file", f, "err", err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			var ppe *ssh.PassphraseMissingError
			if errors.As(err, &ppe) {
				cfg.Logger.Debug("ssh key file is encrypted; load it into the agent", "file", f)
			} else {
				cfg.Logger.Warn("ssh key file not usable", "file", f, "err", err)
			}
			continue
		}
		signers = append(signers, s)
		tried = append(tried, "the key file "+f)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if cfg.Password != "" {
		src := cfg.PasswordSource
		if src == "" {
			src = "the configuration"
		}
		tried = append(tried, "the password from "+src)
		sent := false
		methods = append(methods, ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			if len(questions) == 0 {
				return nil, nil // ESXi sends rounds without questions
			}
			if sent {
				// The host asks again: the password was wrong. Answering
				// again would count another failed login towards ESXi's
				// lock-out.
				return nil, fmt.Errorf("keyboard-interactive: %w", errAskedAgain)
			}
			sent = true
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = cfg.Password
			}
			return answers, nil
		}))
		methods = append(methods, ssh.PasswordCallback(func() (string, error) {
			if sent {
				return "", fmt.Errorf("password: %w", errAskedAgain)
			}
			sent = true
			return cfg.Password, nil
		}))
	}
	return methods, tried, closeAgent
}

// Done is closed when the connection has ended (closed or lost).
func (c *SSHClient) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, nil while it is up or after Close.
func (c *SSHClient) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// NewSession opens a channel for one command.
func (c *SSHClient) NewSession() (*ssh.Session, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("esxi: host %s: open ssh channel: %w", c.Host, err)
	}
	return s, nil
}

// Close closes the connection and waits for its goroutines. It may be
// called more than once.
func (c *SSHClient) Close() error {
	err := c.client.Close()
	c.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// maxStderr is how much of a command's stderr a CommandError keeps.
const maxStderr = 4096

// Run runs cmd on the host and returns its stdout and stderr. A non-zero
// exit is a *CommandError. Cancelling ctx closes the channel (a command
// stuck on the host is not killed by this: it is the caller's to stop).
func (c *SSHClient) Run(ctx context.Context, cmd string) (stdout, stderr []byte, err error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	if ctx.Err() != nil {
		return o.Bytes(), e.Bytes(), fmt.Errorf("esxi: host %s: command %q: %w", c.Host, cmd, context.Cause(ctx))
	}
	if err != nil {
		return o.Bytes(), e.Bytes(), c.commandError(cmd, e.Bytes(), err)
	}
	return o.Bytes(), e.Bytes(), nil
}

// commandError wraps the error of a command that was started.
func (c *SSHClient) commandError(cmd string, stderr []byte, err error) error {
	var ee *ssh.ExitError
	var me *ssh.ExitMissingError
	switch {
	case errors.As(err, &ee):
		status := ee.ExitStatus()
		if ee.Signal() != "" {
			status = -1
		}
		return &CommandError{Host: c.Host, Cmd: cmd, ExitStatus: status, Stderr: tail(stderr), Err: err}
	case errors.As(err, &me):
		return &CommandError{Host: c.Host, Cmd: cmd, ExitStatus: -1, Stderr: tail(stderr), Err: err}
	case errors.Is(err, io.EOF):
		return fmt.Errorf("esxi: host %s: command %q: connection lost: %w", c.Host, cmd, err)
	}
	return fmt.Errorf("esxi: host %s: command %q: %w", c.Host, cmd, err)
}

func tail(b []byte) string {
	if len(b) > maxStderr {
		b = b[len(b)-maxStderr:]
	}
	return string(b)
}

// KnownHostsLine returns the known_hosts line for key under the address
// addr ("HOST:PORT"), as AcceptNewHostKey writes it.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

// sshReadBuffer is how much is read from a host's connection at once.
// x/crypto/ssh reads through a 4 KiB buffer, a system call per few
// packets when a host streams small ones (pktcap-uw's frames, one SSH
// packet each when its output is not buffered): a larger buffer in front
// takes what has arrived in one call.
const sshReadBuffer = 64 << 10

// bufConn reads its connection through a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func readBuffered(c net.Conn) net.Conn { return &bufConn{c, bufio.NewReaderSize(c, sshReadBuffer)} }

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
