package esxi

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A stopped SSH service and lockdown mode, read through the lab's vCenter,
// are named as the cause of a failed SSH dial with how to fix it;
// EnableSSH starts the service (the lab's SSH server then accepts) and
// StopSSH stops it again.
func TestExplainSSHAndEnable(t *testing.T) {
	l, c := startVCLab(t, "../configs/lab-article.yaml")
	ctx := context.Background()
	h, _ := l.Host("esx02")
	kh := writeFile(t, h.KnownHostsLine+"\n")
	dial := func() error {
		cl, err := Dial(ctx, labConfig(t, h, kh))
		if err == nil {
			cl.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("running service: %v", err)
	}
	if a, err := c.ReadSSHAccess(ctx, "esx02"); err != nil || !a.ServiceKnown || !a.Running || a.Lockdown != "lockdownDisabled" {
		t.Fatalf("ReadSSHAccess = %+v, %v; want TSM-SSH running, lockdown disabled", a, err)
	}

	if err := l.SetSSHService("esx02", false); err != nil {
		t.Fatal(err)
	}
	err := dial()
	if err == nil {
		t.Fatal("stopped service: dial succeeded")
	}
	exp := c.ExplainSSH(ctx, "esx02", err)
	var ae *SSHAccessError
	if !errors.As(exp, &ae) {
		t.Fatalf("ExplainSSH(%v) = %v; want an *SSHAccessError", err, exp)
	}
	for _, w := range []string{"connection refused", "the SSH service (TSM-SSH) of host esx02 is stopped", "--enable-ssh", "vim-cmd hostsvc/enable_ssh", "Configure > System > Services"} {
		if !strings.Contains(exp.Error(), w) {
			t.Errorf("explained %q: want %q in it", exp, w)
		}
	}
	started, err := c.EnableSSH(ctx, "esx02")
	if err != nil || !started {
		t.Fatalf("EnableSSH = %v, %v; want started", started, err)
	}
	if err := dial(); err != nil {
		t.Fatalf("after EnableSSH: %v", err)
	}
	if again, err := c.EnableSSH(ctx, "esx02"); err != nil || again {
		t.Errorf("EnableSSH of a running service = %v, %v; want not started (it was running)", again, err)
	}
	// Close stops what EnableSSH started (this is its first step).
	if err := c.stopStartedSSH(ctx); err != nil {
		t.Fatal(err)
	}
	if running, _ := l.SSHService("esx02"); running || dial() == nil {
		t.Errorf("after StopSSH the lab's SSH service runs (%v) or accepts", running)
	}
	if err := l.SetSSHService("esx02", true); err != nil {
		t.Fatal(err)
	}

	if err := l.SetLockdown("esx02", "strict"); err != nil {
		t.Fatal(err)
	}
	err = dial()
	if !errors.Is(err, ErrSSHAuth) {
		t.Fatalf("lockdown: %v; want a refused login", err)
	}
	exp = c.ExplainSSH(ctx, "esx02", err)
	if !errors.As(exp, &ae) || !strings.Contains(exp.Error(), "host esx02 is in lockdown mode (lockdownStrict)") || !strings.Contains(exp.Error(), "Exception Users") {
		t.Errorf("lockdown explained as %q", exp)
	}
	// An error the API has nothing to add to stays as it was.
	plain := errors.New("esxi: host esx02: something else")
	if got := c.ExplainSSH(ctx, "esx02", plain); got != plain {
		t.Errorf("ExplainSSH(other) = %v; want it unchanged", got)
	}
}
