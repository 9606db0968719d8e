package session

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/internal/testenv"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// The pktcap-uw shim: the test binary, copied as "pktcap-uw" onto the PATH
// of the OpenSSH test's user, runs the same command on a lab host over SSH
// and relays its stdout (the pcap stream) and stderr (banner, summary).
// SIGINT, SIGTERM and SIGHUP are passed on to the remote pktcap-uw, so it
// ends as the real one does; a failed write to stdout kills the shim with
// SIGPIPE, as it would the real one.

// shimConfig sits next to the shim binary as shim.json.
type shimConfig struct {
	Host       lab.HostInfo
	KnownHosts string
}

func shimMain() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktcap-uw shim:", err)
		return 1
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(exe), "shim.json"))
	var cfg shimConfig
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktcap-uw shim: config:", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	c, err := esxi.Dial(context.Background(), labSSHConfig(cfg.Host, cfg.KnownHosts))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktcap-uw shim:", err)
		return 1
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktcap-uw shim:", err)
		return 1
	}
	s.Stdout = os.Stdout
	stderr, _ := s.StderrPipe()
	args := make([]string, len(os.Args)-1)
	for i, a := range os.Args[1:] {
		args[i] = shQuote(a)
	}
	if err := s.Start("echo shim-pid $$ >&2; exec pktcap-uw " + strings.Join(args, " ")); err != nil {
		fmt.Fprintln(os.Stderr, "pktcap-uw shim:", err)
		return 1
	}
	br := bufio.NewReader(stderr)
	line, _ := br.ReadString('\n')
	rpid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "shim-pid ")))
	go io.Copy(os.Stderr, br)
	go func() {
		for sig := range sigs {
			name := map[os.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP"}[sig]
			c.Run(context.Background(), fmt.Sprintf("kill -%s %d", name, rpid))
		}
	}()
	if err := s.Wait(); err != nil {
		if ee, ok := err.(*ssh.ExitError); ok {
			return ee.ExitStatus()
		}
		return 1
	}
	return 0
}

// sshdHost is a Debian OpenSSH sshd on 127.0.0.1 with a throwaway user
// whose login shell is busybox ash and whose PATH holds busybox applets
// and the pktcap-uw shim, as on ESXi.
type sshdHost struct {
	addr, user, password, knownHosts string
	uid                              int
}

func startSSHD(t *testing.T, l *lab.Lab, labHost string) *sshdHost {
	t.Helper()
	const sshdPath = "/usr/sbin/sshd"
	if _, err := os.Stat(sshdPath); err != nil {
		testenv.Missing(t, "openssh-server not installed")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox not installed")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root: the test creates a throwaway user whose login shell is busybox")
	}
	for _, tool := range []string{"useradd", "userdel", "chpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (Debian package passwd)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "capturectl-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "bin")
	must(os.Mkdir(bin, 0o755))
	for _, applet := range []string{"sh", "ps", "kill", "sleep", "date", "cat", "grep", "rm", "echo", "ls", "mv"} {
		must(os.Symlink(busybox, filepath.Join(bin, applet)))
	}
	// The shim: this test binary, named pktcap-uw (TestMain dispatches).
	self, err := os.Executable()
	must(err)
	data, err := os.ReadFile(self)
	must(err)
	must(os.WriteFile(filepath.Join(bin, "pktcap-uw"), data, 0o755))
	h, err := l.Host(labHost)
	must(err)
	labKH := filepath.Join(dir, "lab_known_hosts")
	must(os.WriteFile(labKH, []byte(h.KnownHostsLine+"\n"), 0o644))
	sc, _ := json.Marshal(shimConfig{Host: h, KnownHosts: labKH})
	must(os.WriteFile(filepath.Join(bin, "shim.json"), sc, 0o644))

	var rb [4]byte
	rand.Read(rb[:])
	name := "cctest" + hex.EncodeToString(rb[:])
	password := "Pw-" + hex.EncodeToString(rb[:]) + "x9"
	home := filepath.Join(dir, "home")
	if out, err := exec.Command("useradd", "-M", "-d", home, "-s", filepath.Join(bin, "sh"), name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
			t.Logf("userdel %s: %v %s", name, err, out)
		}
	})
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v %s", err, out)
	}
	u, err := user.Lookup(name)
	must(err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	must(os.MkdirAll(filepath.Join(home, ".ssh"), 0o755))
	must(os.WriteFile(filepath.Join(home, ".ssh", "environment"), []byte("PATH="+bin+"\n"), 0o644))
	must(os.Chown(home, uid, gid))

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	must(err)
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	must(os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600))
	signer, _ := ssh.NewSignerFromKey(priv)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "sshd_config")
	must(os.WriteFile(conf, []byte(strings.Join([]string{
		"Port " + port,
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile none",
		"UsePAM yes",
		"KbdInteractiveAuthentication yes",
		"PasswordAuthentication no",
		"PubkeyAuthentication no",
		"AuthenticationMethods keyboard-interactive",
		"PermitRootLogin no",
		"AllowUsers " + name,
		"PermitUserEnvironment yes",
		"StrictModes no",
		"MaxSessions 10",
		"LogLevel VERBOSE",
	}, "\n")+"\n"), 0o600))
	must(os.MkdirAll("/run/sshd", 0o755)) // privilege separation directory
	sshd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	sshd.Stdout, sshd.Stderr = tWriter{t}, tWriter{t}
	must(sshd.Start())
	t.Cleanup(func() { sshd.Process.Signal(syscall.SIGTERM); sshd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	kh := filepath.Join(dir, "known_hosts")
	must(os.WriteFile(kh, []byte(esxi.KnownHostsLine(addr, signer.PublicKey())+"\n"), 0o600))
	return &sshdHost{addr: addr, user: name, password: password, knownHosts: kh, uid: uid}
}

// The capture over a real OpenSSH sshd: keyboard-interactive login through
// PAM, busybox ash running the start script, lease and watchdog, the
// pktcap-uw shim streaming from a lab host; the frames arrive, and stopping
// leaves no process of the user and no pktcap-uw on the lab host.
func TestOpenSSHBusyboxCapture(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	sh := startSSHD(t, l, "esx02")
	dial := func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		return esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: sh.addr, User: sh.user, Password: sh.password,
			KnownHostsFile: sh.knownHosts, KeyFiles: []string{}, NoAgent: true, Timeout: 10 * time.Second, Logger: testLogger(t)})
	}
	_, port, err := l.Net.FindPort("testvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	plan := articlePlan(t, l)
	plan.Points = DefaultPoints("debian", port.PortID, []string{"vmnic2", "vmnic3"})
	var out lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, plan, Options{Dial: dial, Output: &out, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	starts := make([]time.Time, len(st))
	for i, p := range st {
		starts[i] = p.Start
	}
	if procs := userProcs(t, sh.uid); !slices.ContainsFunc(procs, func(p string) bool { return strings.Contains(p, "pktcap-uw --uplink vmnic2") }) {
		t.Errorf("no pktcap-uw shim among the user's processes:\n%s", strings.Join(procs, "\n"))
	}
	want := pingAndWait(t, l, framesOf(s), 3)
	cancel()
	r, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("OpenSSH: start skew %v", r.Skew)
	for _, p := range r.Points {
		if p.PID == 0 || p.Dropped != 0 || p.Dumped != int(p.Frames) {
			t.Errorf("%s: pid %d, summary dumped %d dropped %d, received %d", p.Name, p.PID, p.Dumped, p.Dropped, p.Frames)
		}
	}
	names, pkts := readPcapng(t, out.Bytes())
	if c := countByPoint(pkts, 4); !slices.Equal(c, want) {
		t.Errorf("pcapng frames per point %v; want %v", c, want)
	}
	checkTshark(t, out.Bytes(), names, want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs := userProcs(t, sh.uid)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the user left after the capture:\n%s", strings.Join(procs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitNoCaptures(t, l, "esx02", 5*time.Second)
	leftovers, _ := filepath.Glob("/tmp/capturectl-" + r.RunID + "*")
	if len(leftovers) != 0 {
		t.Errorf("lease files left: %v", leftovers)
	}
}
