package lab

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/lab/internal/shell"
	"github.com/capturectl/capturectl/lab/internal/sshsrv"
)

// Options configures Start.
type Options struct {
	// StateDir keeps the hosts' SSH host keys (and the generated password)
	// across restarts, so known_hosts entries stay valid. Empty: a
	// temporary directory removed by Close.
	StateDir string
	// Password for root on every host whose topology sets none. Empty: the
	// one saved in StateDir, else a new random one.
	Password string
	// AuthorizedKeys may log in to every host by public key.
	AuthorizedKeys []ssh.PublicKey
	// Logger receives SSH connection events; default discards.
	Logger *slog.Logger
	// NoTraffic skips the topology's background traffic.
	NoTraffic bool
	// VCenter also serves the inventory through vcsim (see StartVCenter),
	// with the same root password.
	VCenter bool
}

// Lab is a running emulated lab: the network model and one SSH server per
// ESXi host on 127.0.0.1.
type Lab struct {
	Net *Network
	// VCenter is the lab's vCenter when Options.VCenter was set.
	VCenter  *VCenter
	cfg      *Config
	hosts    []*labHost
	stateDir string
	tempDir  bool
	password string
	pwSource string
	close    sync.Once
	closeErr error
}

// labHost is one emulated ESXi host: its shell (process table, files,
// commands) and SSH server.
type labHost struct {
	n        *Network
	name     string
	version  string
	cfg      *HostConfig
	sh       *shell.Host
	srv      *sshsrv.Server
	password string
	hostKey  ssh.PublicKey

	mu       sync.Mutex
	sessions int
	// access.go: the SSH service, lockdown mode and the fault hooks
	sshStopped, faultDown, faultRefuse bool
	lockdown                           string
}

// HostInfo says how to reach an emulated host.
type HostInfo struct {
	Name     string
	Version  string
	Addr     string // 127.0.0.1:PORT
	User     string
	Password string
	// Fingerprint is the SSH host key's SHA256 fingerprint.
	Fingerprint string
	// KnownHostsLine is the host's line for an OpenSSH known_hosts file.
	KnownHostsLine string
}

// Process is one entry of an emulated host's process table.
type Process struct {
	PID     int
	Cmdline []string
}

// Start builds the network of cfg and serves every host over SSH.
func Start(ctx context.Context, cfg *Config, opts Options) (*Lab, error) {
	n, err := NewNetwork(cfg)
	if err != nil {
		return nil, err
	}
	l := &Lab{Net: n, cfg: cfg, stateDir: opts.StateDir}
	if l.stateDir == "" {
		if l.stateDir, err = os.MkdirTemp("", "capturectl-lab-"); err != nil {
			n.Close()
			return nil, fmt.Errorf("lab: state dir: %w", err)
		}
		l.tempDir = true
	} else if err := os.MkdirAll(l.stateDir, 0o700); err != nil {
		n.Close()
		return nil, fmt.Errorf("lab: state dir: %w", err)
	}
	if err := l.loadPassword(opts.Password); err != nil {
		l.Close()
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for i := range cfg.Hosts {
		hc := &cfg.Hosts[i]
		h := &labHost{n: n, name: hc.Name, version: hc.Version, cfg: hc, password: l.password}
		if hc.SSH.Password != "" {
			h.password = hc.SSH.Password
		}
		keyPath := filepath.Join(l.stateDir, hc.Name+"_ssh_host_ed25519_key")
		key, err := sshsrv.LoadOrCreateHostKey(keyPath)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("lab: host %s: %w", hc.Name, err)
		}
		h.hostKey = key.PublicKey()
		hostNow := func() time.Time { return n.HostNow(hc.Name) }
		procs := shell.NewProcTable(2100000+i*1000000+500000, hostNow)
		h.sh = shell.NewHost(hc.Name, procs, shell.NewFS(hostNow), h.commands(), shell.WithUname(unameFor(hc.Version)),
			shell.WithClock(hostNow))
		lockFailures, lockFor := lockoutFor(hc.Version)
		addr := "127.0.0.1:0"
		if hc.SSH.Port != 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", hc.SSH.Port)
		}
		h.srv, err = sshsrv.Listen(sshsrv.Config{
			Addr: addr, HostKey: key, User: hc.SSH.User, Password: h.password,
			AuthorizedKeys: opts.AuthorizedKeys, Logger: logger.With("host", hc.Name),
			ServerVersion:   sshVersionFor(hc.Version),
			LockoutFailures: lockFailures, LockoutDuration: lockFor,
			Handler: func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
				return h.sh.Run(ctx, cmd, stdin, stdout, stderr)
			},
		})
		if err != nil {
			h.sh.Close()
			l.Close()
			return nil, fmt.Errorf("lab: host %s: ssh: %w", hc.Name, err)
		}
		l.hosts = append(l.hosts, h)
		h.sshStopped, h.lockdown = hc.SSH.Service == "stopped", hc.Lockdown
		if err := h.applyAccess(); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab: host %s: ssh: %w", hc.Name, err)
		}
		if err := l.SetManagementLink(hc.Name, hc.ManagementLink); err != nil {
			l.Close()
			return nil, err
		}
	}
	if opts.VCenter {
		if l.VCenter, err = StartVCenter(n, cfg, VCenterOptions{Password: l.password, access: l}); err != nil {
			l.Close()
			return nil, err
		}
	}
	if !opts.NoTraffic {
		for _, t := range cfg.Traffic {
			l.startTraffic(t)
		}
	}
	return l, nil
}

func (l *Lab) loadPassword(given string) error {
	pwFile := filepath.Join(l.stateDir, "root-password")
	switch {
	case given != "":
		l.password, l.pwSource = given, "given by the caller"
		return nil
	case !l.tempDir:
		if b, err := os.ReadFile(pwFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			l.password, l.pwSource = strings.TrimSpace(string(b)), "file "+pwFile
			return nil
		}
	}
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("lab: generate password: %w", err)
	}
	l.password = "Lab-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	l.pwSource = "generated"
	if !l.tempDir {
		if err := os.WriteFile(pwFile, []byte(l.password+"\n"), 0o600); err != nil {
			return fmt.Errorf("lab: save password: %w", err)
		}
		l.pwSource = "generated, saved in " + pwFile
	}
	return nil
}

// PasswordSource says where the root password came from.
func (l *Lab) PasswordSource() string { return l.pwSource }

// Config is the topology the lab runs.
func (l *Lab) Config() *Config { return l.cfg }

// StartTraffic sends t until the lab closes (a check scenario's traffic,
// started once its capture runs). t is validated against the topology
// first, as a topology's own traffic is.
func (l *Lab) StartTraffic(t TrafficConfig) error {
	ts := []TrafficConfig{t}
	if err := l.cfg.ValidateTraffic("traffic", "traffic", ts); err != nil {
		return err
	}
	l.startTraffic(ts[0])
	return nil
}

func (l *Lab) startTraffic(t TrafficConfig) {
	n := l.Net
	n.Go(func(ctx context.Context) {
		switch t.Kind {
		case "ping":
			for ctx.Err() == nil {
				n.Ping(ctx, t.From, t.To, 1, 0)
				sleepCtx(ctx, t.Interval)
			}
		case "broadcast":
			for ctx.Err() == nil {
				if a, err := n.target(t.To); err == nil {
					n.Broadcast(t.From, a)
				}
				sleepCtx(ctx, t.Interval)
			}
		case "udp":
			n.Generate(ctx, GenSpec{From: t.From, To: t.To, Rate: t.Rate, Size: t.Size})
		}
	})
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Hosts describes how to reach each host, in topology order.
func (l *Lab) Hosts() []HostInfo {
	var out []HostInfo
	for _, h := range l.hosts {
		out = append(out, h.info())
	}
	return out
}

// Env is what `capturectl lab serve` tells a user to export to point
// capturectl (and govc) at the lab:
//
//   - GOVC_URL, GOVC_USERNAME, GOVC_PASSWORD and GOVC_TLS_CA_CERTS (the
//     vCenter's certificate file, the alternative lab serve gives to a
//     GOVC_TLS_KNOWN_HOSTS thumbprint file), when the lab serves a vCenter;
//   - CAPTURECTL_SSH_ADDRS, "HOST=127.0.0.1:PORT,..." in topology order;
//   - CAPTURECTL_SSH_PASSWORD, the lab's root password (a host whose
//     topology sets its own password is not covered).
//
// The SSH host keys are not in the environment: write KnownHosts to a
// file and pass it with --known-hosts. Env sets nothing to the empty
// string; a caller that must not pick up the user's own settings
// (GOVC_INSECURE, GOVC_TLS_KNOWN_HOSTS, SSH_AUTH_SOCK, ~/.ssh) clears
// them itself.
func (l *Lab) Env() map[string]string {
	var addrs []string
	for _, h := range l.hosts {
		addrs = append(addrs, h.name+"="+h.srv.Addr())
	}
	env := map[string]string{
		// cmd/capturectl's envSSHAddrs and esxi.PasswordEnv, which lab
		// does not import; their tests check that the names agree
		"CAPTURECTL_SSH_ADDRS":    strings.Join(addrs, ","),
		"CAPTURECTL_SSH_PASSWORD": l.password,
	}
	if vc := l.VCenter; vc != nil {
		env["GOVC_URL"] = vc.URL().String()
		env["GOVC_USERNAME"] = vc.Username()
		env["GOVC_PASSWORD"] = vc.Password()
		env["GOVC_TLS_CA_CERTS"] = vc.CertificateFile()
	}
	return env
}

// KnownHosts is an OpenSSH known_hosts file with every host's current key,
// one line per host in topology order.
func (l *Lab) KnownHosts() []byte {
	var b []byte
	for _, h := range l.hosts {
		b = append(b, h.info().KnownHostsLine...)
		b = append(b, '\n')
	}
	return b
}

// Host describes one host.
func (l *Lab) Host(name string) (HostInfo, error) {
	h, err := l.host(name)
	if err != nil {
		return HostInfo{}, err
	}
	return h.info(), nil
}

func (l *Lab) host(name string) (*labHost, error) {
	for _, h := range l.hosts {
		if h.name == name {
			return h, nil
		}
	}
	return nil, fmt.Errorf("lab: unknown host %q", name)
}

func (h *labHost) info() HostInfo {
	addr := h.srv.Addr()
	host, port, _ := strings.Cut(addr, ":")
	khHost := host
	if port != "22" {
		khHost = "[" + host + "]:" + port
	}
	return HostInfo{Name: h.name, Version: h.version, Addr: addr, User: h.cfg.SSH.User, Password: h.password,
		Fingerprint:    ssh.FingerprintSHA256(h.hostKey),
		KnownHostsLine: khHost + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.hostKey)))}
}

// Processes lists a host's process table (what `ps` shows).
func (l *Lab) Processes(host string) ([]Process, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, p := range h.sh.Procs().List() {
		out = append(out, Process{PID: p.PID, Cmdline: p.Cmdline})
	}
	return out, nil
}

// ReadFile reads a file on a host's filesystem (e.g. a capture written
// with pktcap-uw -o /tmp/x.pcap).
func (l *Lab) ReadFile(host, name string) ([]byte, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	return h.sh.FS().ReadFile(name)
}

// Counts are what a host has served since the lab started.
type Counts struct {
	// SSHConnections: TCP connections its SSH server accepted.
	SSHConnections int64
	// Captures: pktcap-uw sessions started (a capture, not --help).
	Captures int
}

// Counts says how many SSH connections and pktcap-uw sessions a host has
// served (tests measure what a command costs the hosts).
func (l *Lab) Counts(host string) (Counts, error) {
	h, err := l.host(host)
	if err != nil {
		return Counts{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return Counts{SSHConnections: h.srv.Accepted(), Captures: h.sessions}, nil
}

// Fault injection (DESIGN.md §5).

// CutConnections closes every SSH connection of a host mid-stream.
func (l *Lab) CutConnections(host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.srv.CutConnections()
	return nil
}

// SetRefuseAuth makes a host refuse every login.
func (l *Lab) SetRefuseAuth(host string, refuse bool) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.faultRefuse = refuse
	h.mu.Unlock()
	return h.applyAccess()
}

// SetSlowLink limits a host's SSH channel output to bytesPerSec (0: off).
func (l *Lab) SetSlowLink(host string, bytesPerSec int) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.srv.SetRateLimit(bytesPerSec)
	return nil
}

// SetUnreachable stops (or resumes) a host's SSH listener.
func (l *Lab) SetUnreachable(host string, down bool) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.faultDown = down
	h.mu.Unlock()
	return h.applyAccess()
}

// ChangeHostKey gives a host a new SSH host key (a reinstalled host, or a
// man in the middle).
func (l *Lab) ChangeHostKey(host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	path := filepath.Join(l.stateDir, h.name+"_ssh_host_ed25519_key")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key, err := sshsrv.LoadOrCreateHostKey(path)
	if err != nil {
		return err
	}
	h.srv.SetHostKey(key)
	h.hostKey = key.PublicKey()
	return nil
}

// Close stops the SSH servers, every emulated process and the traffic.
func (l *Lab) Close() error {
	l.close.Do(func() {
		var errs []error
		if l.VCenter != nil {
			l.VCenter.Close()
		}
		for _, h := range l.hosts {
			errs = append(errs, h.srv.Close(), h.sh.Close())
		}
		l.Net.Close()
		if l.tempDir {
			errs = append(errs, os.RemoveAll(l.stateDir))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// unameFor returns what `uname -r` and `uname -v` print on an ESXi release
// (GA builds).
func unameFor(version string) (string, string) {
	switch version {
	case "5.5":
		return "5.5.0", "#1 SMP Release build-1331820 Sep 18 2013 23:08:31"
	case "6.0":
		return "6.0.0", "#1 SMP Release build-2494585 Feb 13 2015 14:22:34"
	case "6.5":
		return "6.5.0", "#1 SMP Release build-4564106 Oct 26 2016 22:25:20"
	case "7.0":
		return "7.0.0", "#1 SMP Release build-15843807 Mar 11 2020 15:13:39"
	case "8.0":
		return "8.0.0", "#1 SMP Release build-20513097 Sep 23 2022 23:45:03"
	case "9.0":
		// the GA build; its build date was not found, the release date
		// (17 June 2025) stands in for it
		return "9.0.0", "#1 SMP Release build-24755229 Jun 17 2025 00:00:00"
	default:
		return "6.7.0", "#1 SMP Release build-8169922 Apr  3 2018 14:48:22"
	}
}

// lockoutFor is a release's default account lock-out: failed logins
// (Security.AccountLockFailures) and how long the account stays locked
// (Security.AccountUnlockTime). vSphere Security 6.0 "ESXi Passwords and
// Account Lockout": 10 failures, 2 minutes; from 6.5 on: 5 failures, 15
// minutes (900 s, Broadcom KB 436299). Lock-out arrived with 6.0; 5.5 is
// given 6.0's values.
func lockoutFor(version string) (int, time.Duration) {
	switch version {
	case "5.5", "6.0":
		return 10, 2 * time.Minute
	default:
		return 5, 15 * time.Minute
	}
}

// sshVersionFor is the SSH identification string of the release's OpenSSH.
func sshVersionFor(version string) string {
	switch version {
	case "5.5", "6.0":
		return "SSH-2.0-OpenSSH_6.6"
	case "6.5", "6.7":
		return "SSH-2.0-OpenSSH_7.7"
	case "7.0":
		return "SSH-2.0-OpenSSH_8.1"
	default:
		return "SSH-2.0-OpenSSH_9.1"
	}
}
