package lab

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// A host whose topology stops its SSH service refuses connections until
// the service is started; lockdown refuses root's login (and each refused
// password counts at the server); the SetRefuseAuth fault and lockdown do
// not undo each other.
func TestSSHServiceAndLockdown(t *testing.T) {
	cfg := loadTestConfig(t, "../configs/lab-article.yaml")
	cfg.Hosts[1].SSH.Service = "stopped"
	l := startCfg(t, cfg)
	if running, err := l.SSHService("esx02"); err != nil || running {
		t.Fatalf("SSHService = %v, %v; want stopped as the topology says", running, err)
	}
	if _, err := tryDial(l, "esx02"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a stopped SSH service: %v; want connection refused", err)
	}
	if err := l.SetSSHService("esx02", true); err != nil {
		t.Fatal(err)
	}
	c, err := tryDial(l, "esx02")
	if err != nil {
		t.Fatalf("dial after starting the service: %v", err)
	}
	c.Close()

	if err := l.SetLockdown("esx02", "normal"); err != nil {
		t.Fatal(err)
	}
	before, _ := l.PasswordAttempts("esx02")
	if _, err := tryDial(l, "esx02"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("dial in lockdown: %v; want the login refused", err)
	}
	if after, _ := l.PasswordAttempts("esx02"); after != before+1 {
		t.Errorf("password attempts %d -> %d; want one more", before, after)
	}
	// The fault hook and lockdown each refuse on their own.
	if err := l.SetRefuseAuth("esx02", true); err != nil {
		t.Fatal(err)
	}
	if err := l.SetLockdown("esx02", "disabled"); err != nil {
		t.Fatal(err)
	}
	if _, err := tryDial(l, "esx02"); err == nil {
		t.Error("SetRefuseAuth(true) and lockdown disabled: login accepted; want refused (the fault still holds)")
	}
	if err := l.SetRefuseAuth("esx02", false); err != nil {
		t.Fatal(err)
	}
	if c, err := tryDial(l, "esx02"); err != nil {
		t.Errorf("no fault, no lockdown: %v", err)
	} else {
		c.Close()
	}
	if err := l.SetLockdown("esx02", "sometimes"); err == nil {
		t.Error("SetLockdown(sometimes): no error")
	}
}

// tryDial logs in to a host as dial does, returning the error.
func tryDial(l *Lab, host string) (*ssh.Client, error) {
	info, err := l.Host(host)
	if err != nil {
		return nil, err
	}
	_, _, pub, _, _, err := ssh.ParseKnownHosts([]byte(info.KnownHostsLine))
	if err != nil {
		return nil, err
	}
	answered := false
	return ssh.Dial("tcp", info.Addr, &ssh.ClientConfig{
		User: info.User,
		Auth: []ssh.AuthMethod{ssh.KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
			if answered && len(qs) > 0 {
				return nil, errors.New("asked again")
			}
			answered = answered || len(qs) > 0
			ans := make([]string, len(qs))
			for i := range qs {
				ans[i] = info.Password
			}
			return ans, nil
		})},
		HostKeyCallback: ssh.FixedHostKey(pub),
		Timeout:         5 * time.Second,
	})
}
