// Package redact removes secrets from text before it is printed: the
// password of a URL's user information (also when the URL does not parse:
// url.Parse quotes its input in its errors), and known secret values in
// every encoding a message, a log, a JSON or HTML report may give them
// (raw, percent-encoded, quoted, JSON- and HTML-escaped, base64, and the
// base64 "user:password" of HTTP basic authentication).
//
// Every place in capturectl that prints a URL or an error that may hold one
// goes through this package. It does not decide what is secret beyond a
// URL's password: callers pass the secrets they know.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Mark replaces a redacted secret.
const Mark = "***"

// URL returns raw with the password of its user information replaced by
// Mark. It does not need raw to parse: the user information is what lies
// between "://" (or the start, for a URL without a scheme) and the last
// "@" before the host, and the password is what follows its first ":".
// A URL without a password is returned as it is.
func URL(raw string) string {
	start := schemeEnd(raw)
	rest := raw[start:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return raw
	}
	return raw[:start] + rest[:colon+1] + Mark + rest[at:]
}

// URLPassword returns the password of raw's user information as URL finds
// it, both as written and percent-decoded (when that decodes), and the
// user name; ok is false when raw has no password.
func URLPassword(raw string) (user string, passwords []string, ok bool) {
	start := schemeEnd(raw)
	rest := raw[start:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", nil, false
	}
	user, pass, ok := strings.Cut(rest[:at], ":")
	if !ok || pass == "" {
		return user, nil, false
	}
	passwords = []string{pass}
	if d, err := url.PathUnescape(pass); err == nil && d != pass {
		passwords = append(passwords, d)
	}
	if d, err := url.PathUnescape(user); err == nil {
		user = d
	}
	return user, passwords, true
}

// scheme is a URL scheme and "://" (RFC 3986: a letter, then letters,
// digits, "+", "-" and ".").
var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*://`)

// schemeEnd is where what follows raw's scheme and "://" starts; 0 when it
// has none.
func schemeEnd(raw string) int {
	return len(scheme.FindString(raw))
}

// SchemeEnd is where what follows raw's scheme and "://" starts (0 when
// raw has no scheme), as URL and URLPassword find it.
func SchemeEnd(raw string) int { return schemeEnd(raw) }

// urlUserinfo finds the user information of URLs in free text: a scheme,
// "://", then user[:password]@ without a space, slash or quote.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/"'@:]*):([^\s/"'@]*)@`)

// Text returns s with the password of every URL in it replaced by Mark
// (URLs of the usual form, whose password holds no space, slash or quote)
// and every given secret replaced in each of its encodings (see Forms).
// Empty secrets are ignored.
func Text(s string, secrets ...string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}${2}:"+Mark+"@")
	var forms []string
	for _, sec := range secrets {
		forms = append(forms, Forms(sec)...)
	}
	// longest first, so that a form is not cut by a shorter one inside it
	for i := 1; i < len(forms); i++ {
		for j := i; j > 0 && len(forms[j]) > len(forms[j-1]); j-- {
			forms[j], forms[j-1] = forms[j-1], forms[j]
		}
	}
	for _, f := range forms {
		s = replaceAll(s, f)
	}
	return s
}

// replaceAll replaces f by Mark until s no longer contains it (a
// replacement can join its neighbours into f again).
func replaceAll(s, f string) string {
	if f == "" || strings.Contains(Mark, f) {
		return s
	}
	for n := 0; strings.Contains(s, f) && n < 64; n++ {
		s = strings.ReplaceAll(s, f, Mark)
	}
	return s
}

// Basic returns the secret an HTTP basic authentication header carries for
// user and password (base64 of "user:password"), to pass to Text.
func Basic(user, password string) string {
	if password == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// Forms returns the encodings of secret a message may show: the value
// itself, percent-encoded (path, query and user-information escaping, upper
// and lower case hex), Go- and JSON-quoted, HTML-escaped, and base64
// (standard and URL alphabets, with and without padding).
func Forms(secret string) []string {
	if secret == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	quoted := strconv.Quote(secret)
	ascii := strconv.QuoteToASCII(secret)
	js, _ := json.Marshal(secret)
	userinfo := strings.TrimPrefix(url.UserPassword("", secret).String(), ":")
	for _, f := range []string{
		secret,
		url.PathEscape(secret), url.QueryEscape(secret), userinfo,
		quoted[1 : len(quoted)-1], ascii[1 : len(ascii)-1],
		string(js[1 : len(js)-1]),
		html.EscapeString(secret),
	} {
		add(f)
		add(lowerHex(f))
		// quoted twice (an error quoting an error that quoted the input)
		q := strconv.Quote(f)
		add(q[1 : len(q)-1])
	}
	b := []byte(secret)
	add(base64.StdEncoding.EncodeToString(b))
	add(base64.RawStdEncoding.EncodeToString(b))
	add(base64.URLEncoding.EncodeToString(b))
	add(base64.RawURLEncoding.EncodeToString(b))
	return out
}

// lowerHex writes the hex digits of s's percent escapes in lower case.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lower(b[i+1])
			b[i+2] = lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}
