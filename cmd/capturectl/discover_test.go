package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"

	"github.com/capturectl/capturectl/internal/testenv"
)

// discoverEnv is the environment a user of the lab would set: GOVC_URL and
// GOVC_USERNAME, and GOVC_PASSWORD naming a file with the password.
func discoverEnv(t *testing.T, vc *lab.VCenter, extra map[string]string) map[string]string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(vc.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GOVC_URL": vc.URL().String(), "GOVC_USERNAME": vc.Username(), "GOVC_PASSWORD": pw}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func runDiscoverWith(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb syncBuf
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	err = runDiscover(context.Background(), e, args)
	return out.String(), errb.String(), err
}

func TestDiscoverCommand(t *testing.T) {
	l := labtest.Start(t, "../../configs/lab-article.yaml", lab.Options{VCenter: true, NoTraffic: true})
	vc := l.VCenter
	vars := discoverEnv(t, vc, nil)
	tp := []string{"--thumbprint", vc.Thumbprint()}

	for _, tc := range []struct{ vm, host string }{{"testvm1", "esx01 (192.0.2.11)"}, {"testvm2", "esx02 (192.0.2.12)"}} {
		stdout, stderr, err := runDiscoverWith(t, vars, append(tp, "--vm", tc.vm)...)
		if err != nil {
			t.Fatalf("discover --vm %s: %v\nstderr: %s", tc.vm, err, stderr)
		}
		t.Logf("discover --vm %s:\n%s", tc.vm, stdout)
		for _, want := range []string{
			"VM " + tc.vm + " (vm-", "/DC0/vm/" + tc.vm + "), powered on, on host " + tc.host,
			"  port group    VLAN100, VLAN 100\n",
			"  switch        standard vSwitch1, uplinks vmnic2, vmnic3\n",
			"  teaming       route based on originating port ID (loadbalance_srcid)\n",
			"  active        vmnic2, vmnic3\n",
			"  standby       none\n",
			"  promiscuous   no\n",
			"  switchport    50331657 (from esxcli via vSphere API)\n",
			"  team uplink   vmnic2\n",
			"  warning: reverse-teaming blind spot: 2 active uplinks without a LAG; inbound frames that arrive on an uplink other than its team uplink vmnic2 are dropped",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("discover --vm %s: no %q in:\n%s", tc.vm, want, stdout)
			}
		}
		if stderr != "" {
			t.Errorf("discover --vm %s: stderr %q; want nothing", tc.vm, stderr)
		}
	}

	// JSON, after the lab moved testvm2's port to vmnic3.
	if err := l.Net.SetTeamUplink("esx02", 50331657, "vmnic3"); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runDiscoverWith(t, vars, append(tp, "--vm", "/DC0/vm/testvm2", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	testenv.ValidateJSON(t, "../../report/schema/discover-v1.schema.json", []byte(stdout))
	var doc struct {
		Version int              `json:"version"`
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if doc.Version != 1 || len(doc.Targets) != 1 {
		t.Fatalf("--json: version %d, %d targets; want 1, 1", doc.Version, len(doc.Targets))
	}
	got := doc.Targets[0]
	for k, want := range map[string]any{
		"vm": "testvm2", "host": "esx02", "host_address": "192.0.2.12", "mac": "00:50:56:9d:fd:b1",
		"portgroup": "VLAN100", "vlan": 100.0, "switch_type": "standard", "vswitch": "vSwitch1",
		"teaming_policy": "loadbalance_srcid", "promiscuous": false, "reverse_teaming_blind_spot": true,
		"port_id": 50331657.0, "team_uplink": "vmnic3", "port_source": "esxcli via vSphere API",
	} {
		if g := got[k]; g != want {
			t.Errorf("--json: %s = %#v; want %#v", k, g, want)
		}
	}
	if a, _ := got["active_uplinks"].([]any); len(a) != 2 || a[0] != "vmnic2" || a[1] != "vmnic3" {
		t.Errorf("--json: active_uplinks %#v", got["active_uplinks"])
	}
	if s, ok := got["standby_uplinks"].([]any); !ok || len(s) != 0 {
		t.Errorf("--json: standby_uplinks %#v; want []", got["standby_uplinks"])
	}

	// --insecure works and warns on stderr; the URL flag overrides GOVC_URL.
	noURL := discoverEnv(t, vc, map[string]string{"GOVC_URL": "https://192.0.2.1:1/sdk"})
	stdout, stderr, err := runDiscoverWith(t, noURL, "--url", vc.URL().String(), "--insecure", "--vm", "testvm1")
	if err != nil || !strings.Contains(stdout, "team uplink   vmnic2") || !strings.Contains(stderr, "capturectl: warning: not verifying the TLS certificate") {
		t.Errorf("--insecure: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	// GOVC_TLS_KNOWN_HOSTS and GOVC_TLS_CA_CERTS instead of --thumbprint.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(vc.URL().Host+" "+vc.ThumbprintSHA1()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, extra := range []map[string]string{{"GOVC_TLS_KNOWN_HOSTS": kh}, {"GOVC_TLS_CA_CERTS": vc.CertificateFile()}} {
		if _, stderr, err := runDiscoverWith(t, discoverEnv(t, vc, extra), "--vm", "testvm1"); err != nil {
			t.Errorf("with %v: %v %s", extra, err, stderr)
		}
	}
}

// Each failure is one line that says what to do, with a documented exit
// code.
// --vm by a guest IP address: the VM, with its vNIC marked.
func TestDiscoverCommandByIP(t *testing.T) {
	l := labtest.Start(t, "../../configs/lab-article.yaml", lab.Options{VCenter: true, NoTraffic: true})
	vars := discoverEnv(t, l.VCenter, nil)
	stdout, stderr, err := runDiscoverWith(t, vars, "--thumbprint", l.VCenter.Thumbprint(), "--vm", "192.168.100.12")
	if err != nil || !strings.Contains(stdout, "VM testvm2 (") || !strings.Contains(stdout, "00:50:56:9d:fd:b1  (the vNIC --vm names)") {
		t.Errorf("discover --vm 192.168.100.12: %v\n%s\n%s", err, stdout, stderr)
	}
}

func TestDiscoverCommandErrors(t *testing.T) {
	dir := t.TempDir()
	topo := filepath.Join(dir, "dup.yaml")
	// Two VMs named "dup" (the configs have none): an ambiguous name.
	if err := os.WriteFile(topo, []byte(`name: dup
hosts:
  - name: esx01
    version: "6.7"
    management: 192.0.2.11
    vswitches:
      - {name: vSwitch1, uplinks: [vmnic2, vmnic3], teaming: {policy: srcport, active: [vmnic2, vmnic3]}, portgroups: [{name: VLAN100, vlan: 100}]}
    vms:
      - {name: dup, nics: [{portgroup: VLAN100, mac: "00:50:56:9d:43:42", ip: 192.168.100.11/24}]}
  - name: esx02
    version: "6.7"
    management: 192.0.2.12
    vswitches:
      - {name: vSwitch1, uplinks: [vmnic2, vmnic3], teaming: {policy: srcport, active: [vmnic2, vmnic3]}, portgroups: [{name: VLAN100, vlan: 100}]}
    vms:
      - {name: dup, nics: [{portgroup: VLAN100, mac: "00:50:56:9d:fd:b1", ip: 192.168.100.12/24}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	vc := labtest.Start(t, topo, lab.Options{VCenter: true, NoTraffic: true}).VCenter
	vars := discoverEnv(t, vc, nil)
	tp := vc.Thumbprint()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	wrongPW := discoverEnv(t, vc, map[string]string{"GOVC_PASSWORD": "not-the-password"})

	cases := []struct {
		name string
		vars map[string]string
		args []string
		code int
		want string
	}{
		{"wrong password", wrongPW, []string{"--thumbprint", tp, "--vm", "dup"}, exitLogin, "check the user name and password"},
		{"unknown VM", vars, []string{"--thumbprint", tp, "--vm", "nope"}, exitVM, `vm "nope" not found`},
		{"ambiguous VM", vars, []string{"--thumbprint", tp, "--vm", "dup"}, exitVM, "/DC0/vm/dup (VirtualMachine:vm-"},
		{"unreachable URL", vars, []string{"--url", "https://" + closed + "/sdk", "--vm", "dup"}, exitUnreachable, "connection refused; check --url"},
		{"untrusted certificate", vars, []string{"--vm", "dup"}, exitTLS, "pass it to --thumbprint"},
		{"wrong thumbprint", vars, []string{"--thumbprint", strings.Repeat("00:", 31) + "00", "--vm", "dup"}, exitTLS, "not the pinned"},
		{"no --vm", vars, []string{"--thumbprint", tp}, exitUsage, "--vm is required"},
		{"stray argument", vars, []string{"--vm", "dup", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"bad --ports", vars, []string{"--vm", "dup", "--ports", "maybe"}, exitUsage, `--ports "maybe"`},
		{"no URL", map[string]string{}, []string{"--vm", "dup"}, exitUsage, "pass --url or set GOVC_URL"},
		{"bad GOVC_INSECURE", map[string]string{"GOVC_INSECURE": "perhaps"}, []string{"--vm", "dup"}, exitUsage, "GOVC_INSECURE"},
	}
	for _, c := range cases {
		stdout, _, err := runDiscoverWith(t, c.vars, c.args...)
		if err == nil {
			t.Errorf("%s: no error; stdout:\n%s", c.name, stdout)
			continue
		}
		code := exitCode(err)
		msg := err.Error()
		t.Logf("%s (exit %d): %s", c.name, code, msg)
		if code != c.code || !strings.Contains(msg, c.want) || strings.ContainsAny(msg, "\r\n") {
			t.Errorf("%s: exit %d, %q; want exit %d, one line containing %q", c.name, code, msg, c.code, c.want)
		}
		if stdout != "" {
			t.Errorf("%s: stdout %q; want nothing", c.name, stdout)
		}
	}
}

func TestDiscoverExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&esxi.Error{Kind: esxi.ErrLoginFailed}, exitLogin},
		{&esxi.Error{Kind: esxi.ErrVMNotFound}, exitVM},
		{&esxi.Error{Kind: esxi.ErrVMAmbiguous}, exitVM},
		{&esxi.Error{Kind: esxi.ErrUnreachable}, exitUnreachable},
		{&esxi.Error{Kind: esxi.ErrUntrustedCert}, exitTLS},
		{&esxi.Error{Kind: esxi.ErrThumbprintMismatch}, exitTLS},
		{&esxi.Error{Kind: esxi.ErrConfig}, exitError},
		{&usageError{&esxi.Error{Kind: esxi.ErrConfig}}, exitUsage},
		{os.ErrNotExist, exitError},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d; want %d", c.err, got, c.want)
		}
	}
}
