package sshsrv

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/capturectl/capturectl/internal/testenv"
)

const password = "VMware1!"

// blockReport is what the "block" command tells the test: the write error
// that ended it and whether its ctx was cancelled by then.
type blockReport struct {
	err        error
	ctxAlive   bool
	wroteBytes int
}

type fixture struct {
	srv     *Server
	key     ssh.Signer
	userKey ssh.Signer
	clock   *fakeClock
	blocked chan blockReport
}

type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

// handler understands a few commands: "out TEXT", "err TEXT", "exit N"
// (joined with ";"), "echo hi", and "block" (write until a write fails).
func (f *fixture) handler(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	if cmd == "block" {
		buf := bytes.Repeat([]byte("x"), 32<<10)
		n := 0
		for {
			k, err := stdout.Write(buf)
			n += k
			if err != nil {
				f.blocked <- blockReport{err, ctx.Err() == nil, n}
				return 141
			}
		}
	}
	st := 0
	for _, part := range strings.Split(cmd, ";") {
		verb, arg, _ := strings.Cut(strings.TrimSpace(part), " ")
		switch verb {
		case "out", "echo":
			fmt.Fprintln(stdout, arg)
		case "err":
			fmt.Fprintln(stderr, arg)
		case "exit":
			st, _ = strconv.Atoi(arg)
		case "cat":
			io.Copy(stdout, stdin)
		default:
			fmt.Fprintf(stderr, "sh: %s: not found\n", verb)
			st = 127
		}
	}
	return st
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	testenv.CheckGoroutines(t)
	f := &fixture{key: newSigner(t), userKey: newSigner(t), clock: &fakeClock{}, blocked: make(chan blockReport, 4)}
	f.clock.t.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg := Config{
		HostKey: f.key, Password: password, AuthorizedKeys: []ssh.PublicKey{f.userKey.PublicKey()},
		Now: f.clock.now, Handler: f.handler,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		srv.Close() // idempotent
	})
	return f
}

// answerAll answers every keyboard-interactive question with the password,
// and rounds with zero questions with nothing (as capturectl must).
func answerAll(pw string) ssh.KeyboardInteractiveChallenge {
	return func(_, _ string, qs []string, _ []bool) ([]string, error) {
		a := make([]string, len(qs))
		for i := range a {
			a[i] = pw
		}
		return a, nil
	}
}

func (f *fixture) dial(t *testing.T, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	c, err := ssh.Dial("tcp", f.srv.Addr(), &ssh.ClientConfig{
		User: "root", Auth: auth, HostKeyCallback: ssh.FixedHostKey(f.key.PublicKey()), Timeout: 5 * time.Second,
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (f *fixture) mustDial(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := f.dial(t, ssh.KeyboardInteractive(answerAll(password)))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func TestKeyboardInteractiveAsksOnePasswordPrompt(t *testing.T) {
	f := start(t, nil)
	var asked []string
	var echos []bool
	c, err := f.dial(t, ssh.KeyboardInteractive(func(_, _ string, qs []string, echo []bool) ([]string, error) {
		asked, echos = qs, echo
		return []string{password}, nil
	}))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if len(asked) != 1 || asked[0] != "Password: " || echos[0] {
		t.Errorf("questions %q echo %v; want one \"Password: \" with echo off", asked, echos)
	}
	out, err := session(t, c).Output("out hi")
	if err != nil || string(out) != "hi\n" {
		t.Errorf("got %q, %v; want \"hi\\n\"", out, err)
	}
}

func session(t *testing.T, c *ssh.Client) *ssh.Session {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPasswordMethod(t *testing.T) {
	f := start(t, nil)
	_, err := f.dial(t, ssh.Password(password))
	if err == nil || !strings.Contains(err.Error(), "no supported methods remain") {
		t.Errorf("ssh.Password alone: got %v; want \"no supported methods remain\" (ESXi offers no password method)", err)
	}
	g := start(t, func(c *Config) { c.AllowPassword = true })
	if _, err := g.dial(t, ssh.Password(password)); err != nil {
		t.Errorf("with AllowPassword: %v", err)
	}
}

func TestLockoutAfterTenFailures(t *testing.T) {
	f := start(t, nil)
	for i := range 9 {
		if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll("wrong"))); err == nil {
			t.Fatalf("attempt %d with a wrong password succeeded", i+1)
		}
	}
	// Nine failures do not lock; a success resets the count.
	f.mustDial(t)
	for i := range 10 {
		if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll("wrong"))); err == nil {
			t.Fatalf("attempt %d with a wrong password succeeded", i+1)
		}
	}
	if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll(password))); err == nil {
		t.Fatal("11th attempt with the right password succeeded; want the account locked")
	}
	f.clock.advance(2*time.Minute - time.Second)
	if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll(password))); err == nil {
		t.Fatal("login succeeded 1s before the lock expires")
	}
	f.clock.advance(time.Second)
	f.mustDial(t)
}

func TestPublicKey(t *testing.T) {
	f := start(t, nil)
	c, err := f.dial(t, ssh.PublicKeys(f.userKey))
	if err != nil {
		t.Fatalf("authorized key: %v", err)
	}
	if out, err := session(t, c).Output("echo hi"); err != nil || string(out) != "hi\n" {
		t.Errorf("got %q, %v", out, err)
	}
	if _, err := f.dial(t, ssh.PublicKeys(newSigner(t))); err == nil {
		t.Error("an unknown key logged in")
	}
}

func TestExitStatusAndSeparateStreams(t *testing.T) {
	f := start(t, nil)
	c := f.mustDial(t)
	s := session(t, c)
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	s.Setenv("LANG", "C")                              // accepted and ignored
	s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}) // likewise
	err := s.Run("out data; err oops; exit 3")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("got %v; want exit status 3", err)
	}
	if out.String() != "data\n" || errb.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q; want \"data\\n\" and \"oops\\n\"", out.String(), errb.String())
	}
	s2 := session(t, c)
	s2.Stdin = strings.NewReader("from stdin")
	if got, err := s2.Output("cat"); err != nil || string(got) != "from stdin" {
		t.Errorf("stdin: got %q, %v", got, err)
	}
}

func TestManyChannelsOnOneConnection(t *testing.T) {
	f := start(t, nil)
	c := f.mustDial(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			s, err := c.NewSession()
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			out, err := s.Output(fmt.Sprintf("out %d", i))
			if err != nil || string(out) != fmt.Sprintf("%d\n", i) {
				errs <- fmt.Errorf("session %d: got %q, %v", i, out, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClosedChannelFailsWritesButKeepsCtx(t *testing.T) {
	f := start(t, nil)
	c := f.mustDial(t)
	s := session(t, c)
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("block"); err != nil {
		t.Fatal(err)
	}
	// Read a little, then stop reading: the window fills and the writer
	// blocks; closing the channel must unblock it with an error.
	if _, err := io.ReadFull(stdout, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case r := <-f.blocked:
		if r.err == nil || !r.ctxAlive {
			t.Errorf("got %+v; want a write error and a live ctx", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer stayed blocked after the client closed the channel")
	}
}

func TestCutConnections(t *testing.T) {
	f := start(t, nil)
	c := f.mustDial(t)
	s := session(t, c)
	stdout, _ := s.StdoutPipe()
	if err := s.Start("block"); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(stdout, make([]byte, 1000))
	f.srv.CutConnections()
	select {
	case r := <-f.blocked:
		if r.err == nil || !r.ctxAlive {
			t.Errorf("got %+v; want a write error and a live ctx", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer stayed blocked after the connection was cut")
	}
	if err := s.Wait(); err == nil {
		t.Error("session ended cleanly; want an error after the cut")
	}
	f.mustDial(t) // the server still accepts
}

func TestRefuseAuthAndUnreachable(t *testing.T) {
	f := start(t, nil)
	f.srv.SetRefuseAuth(true)
	if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll(password)), ssh.PublicKeys(f.userKey)); err == nil {
		t.Error("login succeeded while auth is refused")
	}
	f.srv.SetRefuseAuth(false)
	f.mustDial(t)
	if err := f.srv.SetUnreachable(true); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", f.srv.Addr(), time.Second); err == nil {
		conn.Close()
		t.Error("dial succeeded while unreachable")
	}
	if err := f.srv.SetUnreachable(false); err != nil {
		t.Fatal(err)
	}
	f.mustDial(t)
}

func TestHostKeyPersistsAndSwaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	k1, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v, %v; want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(path)
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "OPENSSH PRIVATE KEY" {
		t.Errorf("key file is not an OpenSSH PEM key: %q", b[:min(len(b), 40)])
	}
	k2, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if ssh.FingerprintSHA256(k1.PublicKey()) != ssh.FingerprintSHA256(k2.PublicKey()) {
		t.Fatal("the host key changed across loads")
	}
	f := start(t, func(c *Config) { c.HostKey = k2 })
	f.key = k1 // a client that knew the key from before the restart
	f.mustDial(t)
	if got, want := f.srv.HostKeyFingerprint(), ssh.FingerprintSHA256(k1.PublicKey()); got != want || !strings.HasPrefix(got, "SHA256:") {
		t.Errorf("fingerprint %q; want %q", got, want)
	}
	f.srv.SetHostKey(newSigner(t))
	if _, err := f.dial(t, ssh.KeyboardInteractive(answerAll(password))); err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Errorf("after a key swap: got %v; want a host key mismatch", err)
	}
	if _, err := LoadOrCreateHostKey(filepath.Join(t.TempDir(), "missing-dir", "key")); err == nil {
		t.Error("created a key in a missing directory")
	}
}

func TestRateLimit(t *testing.T) {
	f := start(t, nil)
	f.srv.SetRateLimit(2000)
	c := f.mustDial(t)
	begin := time.Now()
	out, err := session(t, c).Output("out " + strings.Repeat("y", 599))
	if err != nil || len(out) != 600 {
		t.Fatalf("got %d bytes, %v", len(out), err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Errorf("600 bytes at 2000 B/s took %v; want about 300ms", d)
	}
}

func TestOpenSSHClient(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		testenv.Missing(t, "ssh client not installed")
	}
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	f := start(t, func(c *Config) { c.AuthorizedKeys = append(c.AuthorizedKeys, signer.PublicKey()) })
	host, port, _ := net.SplitHostPort(f.srv.Addr())
	kh := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(f.srv.Addr())}, f.key.PublicKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshPath, "-F", "/dev/null", "-p", port, "-i", keyPath,
		"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "root@"+host, "echo hi")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("ssh: got %q, %v; stderr %s", out, err, stderr.String())
	}
}

// The management link delays each direction by its latency: a round trip
// (an SSH keepalive) takes at least twice the latency, and a command's
// output still arrives whole and in order.
func TestLinkLatency(t *testing.T) {
	f := start(t, nil)
	const lat = 40 * time.Millisecond
	f.srv.SetLink(Link{Latency: lat, Jitter: 5 * time.Millisecond, Bandwidth: 200 << 10})
	c := f.mustDial(t)
	t0 := time.Now()
	if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(t0); rtt < 2*lat {
		t.Errorf("round trip %v over a link of %v each way; want at least %v", rtt, lat, 2*lat)
	}
	s := session(t, c)
	out, err := s.Output("echo hello")
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("output %q, %v", out, err)
	}
}
