package esxi

import (
	"context"
	"encoding/base64"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/redact"
)

var percentHex = regexp.MustCompile(`%[0-9A-F]{2}`)

// leaks returns the encodings of pw that msg shows: raw, percent-encoded
// (path, query, user information; upper and lower case hex), quoted, and
// the base64 of pw and of "user:pw" (HTTP basic authentication).
func leaks(msg, user, pw string) []string {
	var found []string
	forms := []string{pw, url.PathEscape(pw), url.QueryEscape(pw), strings.TrimPrefix(url.UserPassword("", pw).String(), ":"),
		base64.StdEncoding.EncodeToString([]byte(pw)), base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))}
	q := strconv.Quote(pw)
	forms = append(forms, q[1:len(q)-1])
	for _, f := range forms {
		lowerHex := percentHex.ReplaceAllStringFunc(f, strings.ToLower)
		for _, g := range []string{f, lowerHex} {
			if g != "" && strings.Contains(msg, g) && !strings.Contains(redact.Mark, g) {
				found = append(found, g)
			}
		}
	}
	return found
}

// FuzzConnectSecrets feeds user names and passwords with every special
// character through Connect's real error paths — a URL that does not
// parse, a URL that parses and a server that refuses the connection
// (127.0.0.1:1), the password in the URL raw or percent-encoded, or in
// Config.Password beside a URL without one — and checks that no message
// shows the password in any encoding. The seed corpus runs as a normal
// test; go test -fuzz FuzzConnectSecrets explores further.
func FuzzConnectSecrets(f *testing.F) {
	for _, s := range []struct{ user, pw string }{
		{"root", "Pa%ss w0rd"},
		{"root", "Pa/ss"},
		{"root", "p@ss:word"},
		{"administrator@vsphere.local", "Sécret#1?x"},
		{"root", "%41%42%43dé"},
		{"root", "a\"b\\c'd`e"},
		{"root", "tab\tnew\nline"},
		{"r:o@t", "::@@//??##"},
		{"root", "\xff\xfeinvalid-utf8"},
		{"root", "密码-パスワード"},
		{"root", "+plus+&amp;=<tag>"},
		{"root", "%zz%"},
	} {
		f.Add(s.user, s.pw)
	}
	f.Fuzz(func(t *testing.T, user, pw string) {
		if len(pw) < 2 || strings.Trim(pw, redact.Mark) == "" {
			t.Skip("a password this short is in any message")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		configs := func(pw string) []Config {
			return []Config{
				{URL: "https://" + user + ":" + pw + "@127.0.0.1:1/sdk"},
				{URL: user + ":" + pw + "@127.0.0.1:1"},
				{URL: "https://" + url.UserPassword(user, pw).String() + "@127.0.0.1:1/sdk"},
				{URL: "https://" + url.PathEscape(user) + ":" + url.QueryEscape(pw) + "@127.0.0.1:1/sdk"},
				{URL: "https://127.0.0.1:1/sdk", Username: user, Password: pw},
				{URL: "ftp://" + user + ":" + pw + "@127.0.0.1:1/"},
				{URL: "https://" + user + ":" + pw + "@/sdk"},
			}
		}
		messages := func(cfg Config) []string {
			var warned []string
			cfg.Warn = func(m string) { warned = append(warned, m) }
			_, err := Connect(ctx, cfg)
			if err == nil {
				t.Fatalf("Connect(%q) succeeded against 127.0.0.1:1", redact.URL(cfg.URL))
			}
			return append(warned, err.Error())
		}
		// The same with a password that is in no message: what the
		// password shares with the message's own words (the host, the
		// hint) is not a leak.
		const neutral = "Qj7Qj7"
		baseline := configs(neutral)
		for i, cfg := range configs(pw) {
			if i == 1 && strings.HasPrefix(pw, "//") {
				continue // "user://..." is a URL with the scheme user, whatever was meant
			}
			base := strings.Join(messages(baseline[i]), "\n")
			for _, msg := range messages(cfg) {
				for _, l := range leaks(msg, user, pw) {
					if !strings.Contains(base, l) {
						t.Errorf("URL form %q: message %q shows the password as %q", redact.URL(cfg.URL), msg, l)
					}
				}
			}
		}
	})
}

// The pieces url.Parse quotes from a URL's user information are redacted
// too, and the message still says what was wrong.
func TestConnectParseErrorRedacted(t *testing.T) {
	cases := []struct {
		url, want, never string
	}{
		{"https://root:Pa%ss w0rd@vc/sdk", `parse server URL "https://root:***@vc/sdk" (the URL): net/url: invalid userinfo`, "%ss"},
		{"https://root:Pa%ssw0rd@vc/sdk", `parse server URL "https://root:***@vc/sdk" (the URL): invalid URL escape "***" (in the password)`, "%ss"},
		{"https://root:Pa/ss@vc/sdk", `"https://root:***@vc/sdk" (the URL): an "@" after a "/", "?" or "#": the user information is ambiguous`, ":Pa"},
		{"https://root:Pa:ss@vc:99x/sdk", `invalid port ":99x" after host`, "Pa:ss"},
		{"https://vc:99999x/sdk", `invalid port ":99999x" after host`, "\x00"},
	}
	for _, c := range cases {
		_, err := Connect(context.Background(), Config{URL: c.url, URLSource: ""})
		if err == nil {
			t.Fatalf("%s: Connect succeeded", c.url)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, c.never) || !strings.Contains(msg, "GOVC_PASSWORD") {
			t.Errorf("Connect(%q): %q; want it to contain %q (and the GOVC_PASSWORD hint), never %q", c.url, msg, c.want, c.never)
		}
	}
}
