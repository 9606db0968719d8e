package labtest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// What Env and the known_hosts file give is enough to reach the lab the
// way capturectl does: vCenter through the GOVC_* variables with the CA
// file, every host over SSH through CAPTURECTL_SSH_ADDRS, the password and
// the known_hosts file, and nothing of the machine's own settings.
func TestEnvReachesTheLab(t *testing.T) {
	l := labtest.Start(t, "../../configs/lab-article.yaml", lab.Options{VCenter: true, NoTraffic: true})
	env := labtest.Env(t, l)
	for k, want := range map[string]string{"GOVC_INSECURE": "", "GOVC_TLS_KNOWN_HOSTS": "", "SSH_AUTH_SOCK": ""} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("Env()[%s] = %q (set %v); want it set to %q", k, got, ok, want)
		}
	}
	if env["HOME"] == "" || env["HOME"] == os.Getenv("HOME") {
		t.Errorf("HOME = %q; want a new directory", env["HOME"])
	}
	ctx := context.Background()

	vcfg, err := esxi.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if vcfg.CACerts == "" || vcfg.Thumbprint != "" || vcfg.Insecure {
		t.Errorf("vCenter config %+v; want the CA file, no thumbprint, not insecure", vcfg)
	}
	c, err := esxi.Connect(ctx, vcfg)
	if err != nil {
		t.Fatalf("connect with GOVC_* from Env: %v", err)
	}
	defer c.Close(ctx)

	kh := labtest.KnownHostsFile(t, l)
	addrs := strings.Split(env["CAPTURECTL_SSH_ADDRS"], ",")
	if len(addrs) != len(l.Hosts()) {
		t.Fatalf("CAPTURECTL_SSH_ADDRS %q; want one entry per host (%d)", addrs, len(l.Hosts()))
	}
	for _, a := range addrs {
		host, addr, err := esxi.ParseAddrOverride(a)
		if err != nil {
			t.Fatal(err)
		}
		s, err := esxi.Dial(ctx, esxi.SSHConfig{Host: host, Addr: addr, User: "root", Password: env[esxi.PasswordEnv],
			KnownHostsFile: kh, KeyFiles: []string{}, NoAgent: true, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("ssh %s at %s with the known_hosts file: %v", host, addr, err)
		}
		out, _, err := s.Run(ctx, "uname -n")
		s.Close()
		if err != nil || strings.TrimSpace(string(out)) != host {
			t.Errorf("%s: uname -n = %q, %v; want %s", host, out, err, host)
		}
	}
}

// Without a vCenter the environment has the SSH variables only.
func TestEnvWithoutVCenter(t *testing.T) {
	l := labtest.Start(t, "../../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	env := l.Env()
	if len(env) != 2 || env["CAPTURECTL_SSH_ADDRS"] == "" || env[esxi.PasswordEnv] == "" {
		t.Errorf("Env() = %v; want CAPTURECTL_SSH_ADDRS and %s only", env, esxi.PasswordEnv)
	}
}

// Setenv puts Env into the process environment for the test.
func TestSetenv(t *testing.T) {
	l := labtest.Start(t, "../../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	kh := labtest.Setenv(t, l)
	if got, want := os.Getenv(esxi.PasswordEnv), l.Env()[esxi.PasswordEnv]; got != want {
		t.Errorf("%s = %q; want %q", esxi.PasswordEnv, got, want)
	}
	b, err := os.ReadFile(kh)
	if err != nil || string(b) != string(l.KnownHosts()) || strings.Count(string(b), "\n") != len(l.Hosts()) {
		t.Errorf("known_hosts file %q, %v; want one line per host", b, err)
	}
}
