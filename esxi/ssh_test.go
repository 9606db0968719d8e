package esxi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

func labConfig(t *testing.T, h lab.HostInfo, knownHosts string) SSHConfig {
	return SSHConfig{Host: h.Name, Addr: h.Addr, User: h.User, Password: h.Password, KnownHostsFile: knownHosts,
		KeyFiles: []string{}, NoAgent: true, Timeout: 5 * time.Second}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Keyboard-interactive login to an emulated ESXi host, a command, a typed
// error for a failing one, and a stuck command ended by its context.
func TestDialRunLab(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	h, _ := l.Host("esx01")
	c, err := Dial(context.Background(), labConfig(t, h, writeFile(t, h.KnownHostsLine+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _, err := c.Run(context.Background(), "echo hello; uname -s")
	if err != nil || string(out) != "hello\nVMkernel\n" {
		t.Fatalf("Run: %q, %v; want hello and VMkernel", out, err)
	}
	_, _, err = c.Run(context.Background(), "echo oops >&2; exit 3")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitStatus != 3 || ce.Stderr != "oops\n" || ce.Host != "esx01" || ce.Cmd != "echo oops >&2; exit 3" {
		t.Fatalf("failing command: %#v; want a CommandError with status 3 and the stderr", err)
	}
	var ee *ssh.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("CommandError does not wrap *ssh.ExitError: %v", err)
	}
	if !strings.Contains(err.Error(), "exited with status 3: oops") {
		t.Errorf("error text %q", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = c.Run(ctx, "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("stuck command: %v after %v; want the context's deadline soon", err, time.Since(start))
	}
	// The connection still works.
	if out, _, err := c.Run(context.Background(), "echo again"); err != nil || string(out) != "again\n" {
		t.Errorf("after a cancelled command: %q, %v", out, err)
	}
}

// A changed host key is refused, naming the key offered and the one known.
func TestHostKeyMismatch(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	h, _ := l.Host("esx02")
	kh := writeFile(t, h.KnownHostsLine+"\n")
	if err := l.ChangeHostKey("esx02"); err != nil {
		t.Fatal(err)
	}
	nh, _ := l.Host("esx02")
	cfg := labConfig(t, nh, kh)
	cfg.AcceptNewHostKey = true // never overrides a mismatch
	_, err := Dial(context.Background(), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("Dial after a host key change: %v; want a HostKeyError", err)
	}
	if hke.Fingerprint != nh.Fingerprint || len(hke.Known) != 1 || !strings.HasSuffix(hke.Known[0], " "+h.Fingerprint) {
		t.Errorf("HostKeyError offered %s known %v; want offered %s, known %s", hke.Fingerprint, hke.Known, nh.Fingerprint, h.Fingerprint)
	}
	msg := err.Error()
	for _, want := range []string{"esx02", "MISMATCH", nh.Fingerprint, h.Fingerprint, kh + ":1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if b, _ := os.ReadFile(kh); string(b) != h.KnownHostsLine+"\n" {
		t.Errorf("known_hosts changed on a mismatch:\n%s", b)
	}
}

// An unknown host is refused naming its key, unless new keys are
// accepted: then its line is added and later dials verify against it.
func TestUnknownHostAndAcceptNew(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	h, _ := l.Host("esx01")
	other, _ := l.Host("esx02")
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts") // does not exist yet
	_, err := Dial(context.Background(), labConfig(t, h, kh))
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Fingerprint != h.Fingerprint || len(hke.Known) != 0 || !strings.Contains(err.Error(), "unknown host key") {
		t.Fatalf("unknown host: %v; want a HostKeyError naming %s", err, h.Fingerprint)
	}
	cfg := labConfig(t, h, kh)
	cfg.AcceptNewHostKey = true
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	b, err := os.ReadFile(kh)
	if err != nil || string(b) != h.KnownHostsLine+"\n" {
		t.Fatalf("known_hosts after accepting: %q, %v; want %q", b, err, h.KnownHostsLine)
	}
	c, err = Dial(context.Background(), labConfig(t, h, kh))
	if err != nil {
		t.Fatalf("second dial with the accepted key: %v", err)
	}
	c.Close()
	// esx02 listens on another port: a different known_hosts entry.
	if _, err := Dial(context.Background(), labConfig(t, other, kh)); !errors.As(err, &hke) {
		t.Errorf("other host: %v; want a HostKeyError", err)
	}
}

// A wrong password fails at once with one attempt: no retry loop that
// would lock root.
func TestWrongPasswordNoRetry(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	h, _ := l.Host("esx01")
	kh := writeFile(t, h.KnownHostsLine+"\n")
	// ESXi 6.7 (the lab's esx01) locks root at the 5th failure
	for i := 0; i < 4; i++ {
		cfg := labConfig(t, h, kh)
		cfg.Password = "wrong"
		if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "ssh login as root") {
			t.Fatalf("wrong password: %v; want a login error", err)
		}
	}
	// Four failures (one per Dial) do not reach the lab's lock-out at five.
	c, err := Dial(context.Background(), labConfig(t, h, kh))
	if err != nil {
		t.Fatalf("right password after four failures: %v; want a login (one failure per dial)", err)
	}
	c.Close()
	if err := l.SetRefuseAuth("esx01", true); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(context.Background(), labConfig(t, h, kh)); err == nil {
		t.Error("refused auth: dial succeeded")
	}
}

// kiServer is an SSH server whose keyboard-interactive login first sends a
// round without questions (as ESXi does), then asks for the password;
// a wrong answer is asked again.
func kiServer(t *testing.T, password string) (addr string, knownHosts string, attempts func() int) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	var mu sync.Mutex
	n := 0
	cfg := &ssh.ServerConfig{
		KeyboardInteractiveCallback: func(md ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			if _, err := client("", "Welcome", nil, nil); err != nil {
				return nil, err
			}
			for range 3 {
				ans, err := client("", "", []string{"Password: ", "Again: "}, []bool{false, false})
				if err != nil {
					return nil, err
				}
				mu.Lock()
				n++
				mu.Unlock()
				if len(ans) == 2 && ans[0] == password && ans[1] == password {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("no")
		},
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no")
				}
				sc.Close()
			})
		}
	})
	line := KnownHostsLine(ln.Addr().String(), signer.PublicKey())
	return ln.Addr().String(), writeFile(t, line+"\n"), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// Keyboard-interactive: rounds without questions are accepted, every
// question is answered with the password, and a second prompt after a
// wrong password is not answered.
func TestKeyboardInteractiveRounds(t *testing.T) {
	addr, kh, attempts := kiServer(t, "s3cret")
	cfg := SSHConfig{Host: "esxi-test", Addr: addr, Password: "s3cret", KnownHostsFile: kh, KeyFiles: []string{}, NoAgent: true, Timeout: 5 * time.Second}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("login with a zero-question round and two questions: %v", err)
	}
	c.Close()
	cfg.Password = "wrong"
	_, err = Dial(context.Background(), cfg)
	if !errors.Is(err, errAskedAgain) || !errors.Is(err, ErrSSHAuth) {
		t.Fatalf("wrong password: %v; want a refusal to answer again", err)
	}
	if n := attempts(); n != 2 {
		t.Errorf("server saw %d answered prompts over two logins; want 2 (one each)", n)
	}
}

// A host that accepts TCP but never speaks SSH: Dial gives up at its
// timeout, or when its context is cancelled.
func TestDialTimeoutAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := SSHConfig{Host: "silent", Addr: ln.Addr().String(), Password: "x", KnownHostsFile: writeFile(t, ""),
		KeyFiles: []string{}, NoAgent: true, Timeout: 300 * time.Millisecond}
	start := time.Now()
	if _, err := Dial(context.Background(), cfg); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("silent host: %v after %v; want a timeout after 300ms", err, time.Since(start))
	}
	cfg.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	if _, err := Dial(ctx, cfg); !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Errorf("cancelled dial: %v after %v; want context.Canceled soon", err, time.Since(start))
	}
}

func TestParseAddrOverride(t *testing.T) {
	for _, tc := range []struct {
		in, host, addr string
		ok             bool
	}{
		{"esx01=127.0.0.1:2201", "esx01", "127.0.0.1:2201", true},
		{"esx01.lab.local=[::1]:22", "esx01.lab.local", "[::1]:22", true},
		{"esx01=127.0.0.1", "", "", false},
		{"esx01=127.0.0.1:0", "", "", false},
		{"esx01=127.0.0.1:99999", "", "", false},
		{"=127.0.0.1:22", "", "", false},
		{"esx01", "", "", false},
		{"esx01=:22", "", "", false},
	} {
		host, addr, err := ParseAddrOverride(tc.in)
		if (err == nil) != tc.ok || host != tc.host || addr != tc.addr {
			t.Errorf("ParseAddrOverride(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, host, addr, err, tc.host, tc.addr, tc.ok)
		}
	}
}

func FuzzParseAddrOverride(f *testing.F) {
	for _, s := range []string{"esx01=127.0.0.1:2201", "a=[::1]:22", "x=y", "=", "h=1.2.3.4:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, addr, err := ParseAddrOverride(s)
		if err != nil {
			return
		}
		if host == "" || host+"="+addr != s {
			t.Errorf("ParseAddrOverride(%q) = %q, %q", s, host, addr)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Errorf("ParseAddrOverride(%q): address %q: %v", s, addr, err)
		}
	})
}

func TestPasswordFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	getenv := map[string]string{"CAPTURECTL_TEST_PW": "from-env", "CAPTURECTL_TEST_EMPTY": ""}
	t.Setenv("CAPTURECTL_TEST_PW", "from the process: must not be read")
	for _, tc := range []struct {
		env, file, want string
		ok              bool
	}{
		{"CAPTURECTL_TEST_PW", file, "from-env", true},
		{"CAPTURECTL_TEST_EMPTY", file, "from-file", true},
		{"", file, "from-file", true},
		{"", "", "", true},
		{"", empty, "", false},
		{"", filepath.Join(dir, "missing"), "", false},
	} {
		got, err := PasswordFrom(func(k string) string { return getenv[k] }, tc.env, tc.file)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("PasswordFrom(%q, %q) = %q, %v; want %q, ok=%v", tc.env, tc.file, got, err, tc.want, tc.ok)
		}
	}
}

// A refused login says who was refused, what was offered and where it
// came from, and warns of ESXi's lock-out; each Dial answers the password
// exactly once at the lab's SSH server (counted there), never retrying.
func TestAuthErrorSaysWhatAndNeverRetries(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	h, _ := l.Host("esx02")
	kh := writeFile(t, h.KnownHostsLine+"\n")
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		password  string
		source    string
		keys      []string
		want      []string
		passwords int // answered at the server
	}{
		{"wrong password", "wrong-Pa%ss", "CAPTURECTL_SSH_PASSWORD", nil,
			[]string{"esxi: host esx02: ssh login as root@esx02 at " + h.Addr, "the password was refused",
				"offered the password from CAPTURECTL_SSH_PASSWORD", "Security.AccountLockFailures", "does not retry"}, 1},
		{"unknown key", "", "", []string{keyFile},
			[]string{"root@esx02", "the key was refused", "offered the key file " + keyFile, "Security.AccountUnlockTime"}, 0},
		{"key and wrong password", "wrong", "--ssh-password-file /run/pw", []string{keyFile},
			[]string{"the password or key was refused", "the key file " + keyFile + ", the password from --ssh-password-file /run/pw"}, 1},
		{"nothing to offer", "", "", []string{},
			[]string{"no password or key to offer", "CAPTURECTL_SSH_PASSWORD"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := l.PasswordAttempts("esx02")
			if err != nil {
				t.Fatal(err)
			}
			cfg := labConfig(t, h, kh)
			cfg.Password, cfg.PasswordSource, cfg.KeyFiles = c.password, c.source, c.keys
			_, err = Dial(context.Background(), cfg)
			var ae *AuthError
			if !errors.As(err, &ae) || !errors.Is(err, ErrSSHAuth) {
				t.Fatalf("got %v (%T); want an *AuthError", err, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q: want %q in it", err, w)
				}
			}
			if c.password != "" && strings.Contains(err.Error(), c.password) {
				t.Errorf("message %q shows the password", err)
			}
			after, _ := l.PasswordAttempts("esx02")
			if after-before != c.passwords {
				t.Errorf("the server was answered %d passwords; want %d (never a retry)", after-before, c.passwords)
			}
		})
	}
}
