package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://root:Pa%ss w0rd@vc/sdk", "https://root:***@vc/sdk"},
		{"https://root@vc/sdk", "https://root@vc/sdk"},
		{"https://vc/sdk", "https://vc/sdk"},
		{"root:p@ss@vc", "root:***@vc"},
		{"https://r:a/b@c@vc:443/sdk?x#y", "https://r:***@vc:443/sdk?x#y"},
		{"https://:pw@vc", "https://:***@vc"},
		{"https://administrator@vsphere.local:Pa@ss@vc/sdk", "https://administrator@vsphere.local:***@vc/sdk"},
		{"0://0@vc", "0:***@vc"}, // "0" is no scheme
		{"", ""},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	cases := []struct {
		in      string
		secrets []string
		want    string
	}{
		{`Get "https://root:s3cret@vc/sdk": refused`, nil, `Get "https://root:***@vc/sdk": refused`},
		{"login with s3cret failed", []string{"s3cret"}, "login with *** failed"},
		{"encoded p%40ss%20w and p%40ss%20w lower p%40ss%20w", []string{"p@ss w"}, "encoded *** and *** lower ***"},
		{"basic cm9vdDpwdw==", []string{Basic("root", "pw")}, "basic ***"},
		{`json "a\u003cb"`, []string{"a<b"}, `json "***"`},
		{"html a&lt;b", []string{"a<b"}, "html ***"},
		{"quoted \"a\\\"b\"", []string{`a"b`}, `quoted "***"`},
		{"the password", []string{"pas"}, "the ***sword"},
		{"nothing", []string{""}, "nothing"},
	}
	for _, c := range cases {
		if got := Text(c.in, c.secrets...); got != c.want {
			t.Errorf("Text(%q, %q) = %q; want %q", c.in, c.secrets, got, c.want)
		}
	}
	if got := Text("x p%2fq y", "p/q"); strings.Contains(got, "p%2fq") {
		t.Errorf("lower-case percent form kept: %q", got)
	}
}

// FuzzText: whatever the secret and the text around it, no encoding Forms
// lists survives Text.
func FuzzText(f *testing.F) {
	f.Add("Pa%ss w0rd", "login failed for ", " at vc")
	f.Add("a*", "aa*", "*")
	f.Add("p@ss:/?#", "https://root:", "@vc/sdk")
	f.Add("\xff\xfe", "x", "y")
	f.Add("", "login failed", "")
	f.Add("**", "root:", "@vc")
	f.Fuzz(func(t *testing.T, secret, before, after string) {
		// (a secret that is empty or all '*' has forms inside Mark: those
		// are left, as the check below allows, and the others still go)
		for _, form := range Forms(secret) {
			got := Text(before+form+after+form, secret)
			for _, g := range Forms(secret) {
				if strings.Contains(got, g) && !strings.Contains(Mark, g) {
					t.Fatalf("Text(%q) = %q: still holds %q", before+form+after+form, got, g)
				}
			}
		}
	})
}
