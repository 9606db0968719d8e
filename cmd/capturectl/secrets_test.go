package main

import (
	"encoding/base64"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// Connection settings that hold a password or are wrong: the exit code,
// the message, the --url warning (once), and never the password in the
// error or on stderr, in any encoding.
func TestSecretsAndBadSettings(t *testing.T) {
	dir := t.TempDir()
	const pw = "Pa%ss w0rd"
	const pw2 = "s3cr3t:@x"
	cases := []struct {
		name     string
		vars     map[string]string
		args     []string
		code     int
		want     string
		warnings int // the --url password warning
		secret   string
	}{
		{"GOVC_URL that does not parse", map[string]string{"GOVC_URL": "https://root:" + pw + "@vc/sdk"}, nil,
			exitUsage, `parse server URL "https://root:***@vc/sdk" (GOVC_URL): net/url: invalid userinfo`, 0, pw},
		{"--url that does not parse", nil, []string{"--url", "https://root:" + pw + "@vc/sdk"},
			exitUsage, `"https://root:***@vc/sdk" (--url)`, 1, pw},
		{"--url with a bad escape", nil, []string{"--url", "https://root:Pa%ssword@vc/sdk"},
			exitUsage, `invalid URL escape "***" (in the password)`, 1, "Pa%ssword"},
		{"--url, server refuses", nil, []string{"--url", "https://root:" + url.QueryEscape(pw2) + "@127.0.0.1:1/sdk"},
			exitUnreachable, "connect to https://127.0.0.1:1/sdk", 1, pw2},
		{"GOVC_URL, server refuses", map[string]string{"GOVC_URL": "https://root:" + url.PathEscape(pw2) + "@127.0.0.1:1/sdk"}, nil,
			exitUnreachable, "connection refused", 0, pw2},
		{"ambiguous user information", map[string]string{"GOVC_URL": "https://root:a/b@vc/sdk"}, nil,
			exitUsage, "the user information is ambiguous", 0, "a/b"},
		{"GOVC_PASSWORD names a directory", map[string]string{"GOVC_URL": "https://vc/sdk", "GOVC_USERNAME": "root", "GOVC_PASSWORD": dir}, nil,
			exitUsage, "GOVC_PASSWORD names a directory", 0, ""},
		{"GOVC_TLS_KNOWN_HOSTS missing", map[string]string{"GOVC_URL": "https://root@127.0.0.1:1/sdk", "GOVC_PASSWORD": "x-pw-x",
			"GOVC_TLS_KNOWN_HOSTS": filepath.Join(dir, "nope")}, nil, exitUsage, "GOVC_TLS_KNOWN_HOSTS names " + filepath.Join(dir, "nope") + ", which does not exist", 0, "x-pw-x"},
		// bad SSH settings are exit 2 before vCenter (127.0.0.1:1 would be exit 6)
		{"--ssh-addr malformed", map[string]string{"GOVC_URL": "https://root@127.0.0.1:1/sdk"}, []string{"--ssh-addr", "esx02"},
			exitUsage, `ssh address override "esx02": want HOST=ADDR:PORT`, 0, ""},
		{"CAPTURECTL_SSH_ADDRS malformed", map[string]string{"GOVC_URL": "https://root@127.0.0.1:1/sdk", "CAPTURECTL_SSH_ADDRS": "esx02=127.0.0.1:0"}, nil,
			exitUsage, `bad port "0"`, 0, ""},
		{"--ssh-password-file a directory", map[string]string{"GOVC_URL": "https://root@127.0.0.1:1/sdk"}, []string{"--ssh-password-file", dir},
			exitUsage, "read password file", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := runDiscoverWith(t, c.vars, append(c.args, "--vm", "testvm1")...)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if code := exitCode(err); code != c.code || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, %q; want exit %d and %q", code, msg, c.code, c.want)
			}
			if n := strings.Count(stderr, "shows in ps"); n != c.warnings {
				t.Errorf("stderr %q: %d --url password warnings; want %d", stderr, n, c.warnings)
			}
			if c.secret == "" {
				return
			}
			for _, form := range []string{c.secret, url.QueryEscape(c.secret), url.PathEscape(c.secret),
				base64.StdEncoding.EncodeToString([]byte("root:" + c.secret))} {
				if strings.Contains(msg, form) || strings.Contains(stderr, form) {
					t.Errorf("the password shows as %q: error %q, stderr %q", form, msg, stderr)
				}
			}
		})
	}
}
