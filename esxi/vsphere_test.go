package esxi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
)

const (
	simUser = "root"
	simPass = "s3cret"
)

// startSim serves a vcsim model over TLS (vcsim's test certificate, valid
// for 127.0.0.1) on a free port and requires simUser/simPass at login.
func startSim(t *testing.T, m *simulator.Model) (*simulator.Server, *simulator.Model) {
	t.Helper()
	if err := m.Create(); err != nil {
		t.Fatalf("vcsim: %v", err)
	}
	t.Cleanup(m.Remove)
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(simUser, simPass)}
	s := m.Service.NewServer()
	t.Cleanup(s.Close)
	return s, m
}

// simURL is the server's URL without credentials.
func simURL(s *simulator.Server) string {
	return (&url.URL{Scheme: "https", Host: s.URL.Host, Path: "/sdk"}).String()
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr error
	}{
		{"empty", nil, Config{}, nil},
		{"all", map[string]string{
			EnvURL: "vc.example.com", EnvUsername: "admin", EnvPassword: "pw", EnvInsecure: "true",
			EnvCACerts: "/a.pem:/b.pem", EnvKnownHosts: "/kh",
		}, Config{URL: "vc.example.com", Username: "admin", Password: "pw", Insecure: true, CACerts: "/a.pem:/b.pem", KnownHosts: "/kh"}, nil},
		{"password names a file", map[string]string{EnvPassword: pwFile}, Config{Password: "from-file"}, nil},
		{"password names no file", map[string]string{EnvPassword: filepath.Join(dir, "nope")}, Config{Password: filepath.Join(dir, "nope")}, nil},
		{"insecure 0", map[string]string{EnvInsecure: "0"}, Config{}, nil},
		{"insecure junk", map[string]string{EnvInsecure: "yes please"}, Config{}, ErrConfig},
		{"password names a directory", map[string]string{EnvPassword: dir}, Config{}, ErrConfig},
	}
	for _, c := range cases {
		got, err := ConfigFromEnv(func(k string) string { return c.env[k] })
		if !errors.Is(err, c.wantErr) {
			t.Errorf("%s: got error %v; want %v", c.name, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got.Warn != nil || got.URL != c.want.URL || got.Username != c.want.Username || got.Password != c.want.Password ||
			got.Insecure != c.want.Insecure || got.CACerts != c.want.CACerts || got.KnownHosts != c.want.KnownHosts || got.Thumbprint != "" {
			t.Errorf("%s: got %+v; want %+v", c.name, got, c.want)
		}
	}
}

func TestNormThumbprint(t *testing.T) {
	sha256 := strings.Repeat("ab:", 31) + "ab"
	cases := []struct {
		in, want string
		ok       bool
	}{
		{sha256, strings.Repeat("AB", 32), true},
		{strings.Repeat("Cd", 20), strings.Repeat("CD", 20), true},
		{" " + strings.ToUpper(sha256) + " ", strings.Repeat("AB", 32), true},
		{"AA:BB", "", false},
		{strings.Repeat("zz", 32), "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, err := normThumbprint(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("normThumbprint(%q) = %q, %v; want %q, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestConnect covers TLS verification, thumbprint pinning, login and the
// error kinds, each error on one line and saying what to do.
func TestConnect(t *testing.T) {
	s, _ := startSim(t, simulator.ESX())
	u := simURL(s)
	info := s.CertificateInfo()
	caFile, err := s.CertificateFile()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte("# pinned\n"+s.URL.Host+" "+info.ThumbprintSHA256+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKnown := filepath.Join(dir, "bad_known_hosts")
	if err := os.WriteFile(badKnown, []byte(s.URL.Host+" "+info.ThumbprintSHA256+"\nvc AB:CD extra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badTP := filepath.Join(dir, "bad_tp")
	if err := os.WriteFile(badTP, []byte("vc not-a-thumbprint\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	wrong := strings.Repeat("AB:", 31) + "AB"

	base := Config{URL: u, Username: simUser, Password: simPass}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	cases := []struct {
		name     string
		cfg      Config
		kind     error  // nil: success
		inErr    string // in the message
		warnings int
	}{
		{"system CAs only", base, ErrUntrustedCert, "thumbprint is " + info.ThumbprintSHA256 + ": if that is the server's (check out of band), pass it to --thumbprint", 0},
		{"CA file", with(func(c *Config) { c.CACerts = caFile }), nil, "", 0},
		{"SHA-256 pin", with(func(c *Config) { c.Thumbprint = info.ThumbprintSHA256 }), nil, "", 0},
		{"SHA-1 pin", with(func(c *Config) { c.Thumbprint = info.ThumbprintSHA1 }), nil, "", 0},
		{"pin without colons, lowercase", with(func(c *Config) {
			c.Thumbprint = strings.ToLower(strings.ReplaceAll(info.ThumbprintSHA256, ":", ""))
		}), nil, "", 0},
		{"known hosts file", with(func(c *Config) { c.KnownHosts = known }), nil, "", 0},
		{"known hosts file missing", with(func(c *Config) { c.KnownHosts = filepath.Join(dir, "missing") + ":" + known }), ErrConfig, "GOVC_TLS_KNOWN_HOSTS names " + filepath.Join(dir, "missing") + ", which does not exist", 0},
		{"known hosts line unparsable", with(func(c *Config) { c.KnownHosts = badKnown }), ErrConfig, badKnown + ":2", 0},
		{"known hosts thumbprint not hex", with(func(c *Config) { c.KnownHosts = badTP }), ErrConfig, badTP + ":1: thumbprint of vc", 0},
		{"wrong pin", with(func(c *Config) { c.Thumbprint = wrong }), ErrThumbprintMismatch, "not the pinned " + wrong, 0},
		{"wrong pin wins over a trusted CA", with(func(c *Config) { c.Thumbprint = wrong; c.CACerts = caFile }), ErrThumbprintMismatch, "update --thumbprint or GOVC_TLS_KNOWN_HOSTS", 0},
		{"insecure", with(func(c *Config) { c.Insecure = true }), nil, "", 1},
		{"user and password in the URL", Config{URL: "https://" + simUser + ":" + simPass + "@" + s.URL.Host + "/sdk", Thumbprint: info.ThumbprintSHA256}, nil, "", 0},
		{"host only, default path", Config{URL: s.URL.Host, Username: simUser, Password: simPass, Thumbprint: info.ThumbprintSHA256}, nil, "", 0},
		{"wrong password", with(func(c *Config) { c.Password = "nope"; c.Thumbprint = info.ThumbprintSHA256 }), ErrLoginFailed, "as root with the configured password: ServerFaultCode: Login failure; the server refused them: check the user name and password", 0},
		{"wrong password, its source", with(func(c *Config) {
			c.Password = "nope"
			c.PasswordSource = "GOVC_PASSWORD"
			c.Thumbprint = info.ThumbprintSHA256
		}), ErrLoginFailed, "with the password from GOVC_PASSWORD", 0},
		{"wrong password in the URL", Config{URL: "https://root:nope@" + s.URL.Host + "/sdk", URLSource: "--url", Thumbprint: info.ThumbprintSHA256}, ErrLoginFailed, "with the password in --url", 0},
		{"unreachable", with(func(c *Config) { c.URL = "https://" + closedAddr + "/sdk" }), ErrUnreachable, "connection refused", 0},
		{"no URL", with(func(c *Config) { c.URL = "" }), ErrConfig, "GOVC_URL", 0},
		{"no user", with(func(c *Config) { c.Username = "" }), ErrConfig, "GOVC_USERNAME", 0},
		{"bad scheme", with(func(c *Config) { c.URL = "ftp://" + s.URL.Host }), ErrConfig, "https://", 0},
		{"bad thumbprint", with(func(c *Config) { c.Thumbprint = "AA:BB" }), ErrConfig, "colon-separated hex", 0},
		{"bad CA file", with(func(c *Config) { c.CACerts = known }), ErrConfig, "no PEM certificate", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var warnings []string
			c.cfg.Warn = func(m string) { mu.Lock(); warnings = append(warnings, m); mu.Unlock() }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cl, err := Connect(ctx, c.cfg)
			if c.kind == nil {
				if err != nil {
					t.Fatalf("got %v; want success", err)
				}
				defer cl.Close(ctx)
				if cl.URL().User != nil || cl.URL().Path != "/sdk" {
					t.Errorf("URL() = %v; want no user info and path /sdk", cl.URL())
				}
			} else {
				var e *Error
				if !errors.Is(err, c.kind) || !errors.As(err, &e) {
					t.Fatalf("got %v (%T); want an *Error of kind %v", err, err, c.kind)
				}
				msg := err.Error()
				if strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "esxi: ") || !strings.Contains(msg, c.inErr) {
					t.Errorf("message %q: want one line starting with esxi: and containing %q", msg, c.inErr)
				}
				if strings.Contains(msg, simPass) {
					t.Errorf("message %q shows the password", msg)
				}
			}
			if len(warnings) != c.warnings {
				t.Errorf("got warnings %q; want %d", warnings, c.warnings)
			}
		})
	}
}

// A server that accepts TCP but never speaks TLS: Connect gives up when the
// context ends, as an unreachable-server error.
func TestConnectHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, Config{URL: ln.Addr().String(), Username: "u", Password: "p"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v; want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %v after a 300ms deadline", d)
	}
}

func TestErrorOneLine(t *testing.T) {
	e := &Error{Kind: ErrUnreachable, What: "connect to x", Err: errors.New("line one\nline two\r\n"), Hint: "do this"}
	if got, want := e.Error(), "esxi: connect to x: line one line two; do this"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if !errors.Is(e, ErrUnreachable) || errors.Is(e, ErrLoginFailed) {
		t.Errorf("errors.Is: kind not matched as expected")
	}
}
