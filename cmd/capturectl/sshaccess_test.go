package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// capture against a host whose SSH service is stopped says so, with the
// fix; --enable-ssh starts it for the run and stops it afterwards; a host
// in lockdown is named as the cause of the refused login; a wrong SSH
// password says who, where it came from and the lock-out, and is answered
// once at the host; an --ssh-addr for a host the run does not use is exit 2.
func TestCaptureSSHAccess(t *testing.T) {
	l, kh := labEnv(t, "../../configs/lab-article.yaml", false)
	out := filepath.Join(t.TempDir(), "c.pcapng")
	capture := func(extra ...string) (string, error) {
		args := append([]string{"capture", "--vm", "testvm2", "--duration", "500ms", "--known-hosts", kh, "--proto", "0x01", "-o", out}, extra...)
		_, stderr, err := runCmd(t, context.Background(), args...)
		return stderr, err
	}
	if err := l.SetSSHService("esx02", false); err != nil {
		t.Fatal(err)
	}
	_, err := capture()
	if err == nil || !strings.Contains(err.Error(), "the SSH service (TSM-SSH) of host esx02 is stopped") || !strings.Contains(err.Error(), "--enable-ssh") {
		t.Fatalf("stopped SSH service: %v; want it named as the cause, with --enable-ssh", err)
	}
	if stderr, err := capture("--enable-ssh"); err != nil {
		t.Fatalf("--enable-ssh: %v\n%s", err, stderr)
	} else if !strings.Contains(stderr, "started the SSH service (TSM-SSH) of host esx02 for this run") {
		t.Errorf("--enable-ssh: stderr %q; want it to say it started the service", stderr)
	}
	if running, _ := l.SSHService("esx02"); running {
		t.Error("--enable-ssh left the SSH service running; want it stopped again after the run")
	}
	if err := l.SetSSHService("esx02", true); err != nil {
		t.Fatal(err)
	}

	if err := l.SetLockdown("esx02", "normal"); err != nil {
		t.Fatal(err)
	}
	if _, err := capture(); err == nil || !strings.Contains(err.Error(), "host esx02 is in lockdown mode (lockdownNormal)") {
		t.Errorf("lockdown: %v; want lockdown named as the cause", err)
	}
	if err := l.SetLockdown("esx02", "disabled"); err != nil {
		t.Fatal(err)
	}

	before, _ := l.PasswordAttempts("esx02")
	t.Setenv("CAPTURECTL_SSH_PASSWORD", "not-the-password")
	t.Setenv("HOME", t.TempDir()) // no key files of the user's
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err = capture()
	if err == nil || exitCode(err) != exitError {
		t.Fatalf("wrong SSH password: %v; want exit 1", err)
	}
	for _, w := range []string{"root@esx02", "the password was refused", "the password from CAPTURECTL_SSH_PASSWORD", "Security.AccountLockFailures"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("wrong SSH password: %q; want %q in it", err, w)
		}
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("the message shows the password: %q", err)
	}
	if after, _ := l.PasswordAttempts("esx02"); after-before != 1 {
		t.Errorf("the host was answered %d passwords; want 1 (never a retry)", after-before)
	}

	_, err = capture("--ssh-addr", "esx99=127.0.0.1:1")
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), `this run uses no host "esx99" (it captures on esx02)`) {
		t.Errorf("--ssh-addr for an unused host: %v (exit %d); want exit 2 naming the hosts used", err, exitCode(err))
	}
}
