package esxi

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/capturectl/capturectl/internal/redact"
	"github.com/vmware/govmomi/cli/esx"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// The connection to vCenter or a standalone ESXi host through the vSphere
// API (govmomi), with govc's environment conventions.
//
// TLS is verified by default: the server certificate must chain to the
// system's CAs (or to the CAs of Config.CACerts) and name the host of the
// URL. A thumbprint pinned for the server's host:port (Config.Thumbprint,
// Config.KnownHosts) replaces that check, and is strict: with a pin, the
// certificate must have that SHA-256 or SHA-1 thumbprint even if it chains
// to a trusted CA. Config.Insecure turns verification off and warns.

// Environment variables read by ConfigFromEnv (govc's names).
const (
	EnvURL        = "GOVC_URL"
	EnvUsername   = "GOVC_USERNAME"
	EnvPassword   = "GOVC_PASSWORD"
	EnvInsecure   = "GOVC_INSECURE"
	EnvCACerts    = "GOVC_TLS_CA_CERTS"
	EnvKnownHosts = "GOVC_TLS_KNOWN_HOSTS"
)

// Kinds of connection and discovery errors; an *Error matches its kind with
// errors.Is, so callers (the CLI's exit codes) can branch on them.
var (
	ErrConfig             = errors.New("bad connection settings")
	ErrUnreachable        = errors.New("server unreachable")
	ErrUntrustedCert      = errors.New("server certificate not trusted")
	ErrThumbprintMismatch = errors.New("server certificate thumbprint mismatch")
	ErrLoginFailed        = errors.New("login failed")
	ErrVMNotFound         = errors.New("vm not found")
	ErrVMAmbiguous        = errors.New("vm name ambiguous")
)

// dialTimeout bounds connecting and the TLS handshake (the transport's own
// TLSHandshakeTimeout does not apply to a custom DialTLSContext).
const dialTimeout = 30 * time.Second

// Error is a connection or discovery failure that says what failed, why,
// and what to do about it, on one line.
type Error struct {
	// Kind is one of the Err* values of this package.
	Kind error
	// What names what failed, e.g. `log in to https://vc/sdk as root`.
	What string
	// Hint says what to do; empty when there is nothing useful to say.
	Hint string
	// Err is the cause; nil when there is none beyond What.
	Err error
	// Candidates are the VMs an ambiguous name matched (ErrVMAmbiguous),
	// each as "INVENTORY-PATH (VirtualMachine:MOID)".
	Candidates []string

	// secrets are removed from the message (redact.Text), in every
	// encoding, besides the password of any URL in it.
	secrets []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("esxi: ")
	b.WriteString(e.What)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(oneLine(e.Err.Error()))
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return redact.Text(oneLine(b.String()), e.secrets...)
}

// oneLine folds line breaks and the space around them so an error prints
// as one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Unwrap gives the kind and the cause.
func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Config says how to reach and log in to vCenter or an ESXi host.
type Config struct {
	// URL is [scheme://][user[:password]@]host[:port][/path]; the scheme
	// defaults to https and the path to /sdk.
	URL string
	// Username and Password, when set, override those of the URL.
	Username string
	Password string
	// Insecure skips certificate verification (a warning is given).
	Insecure bool
	// CACerts are PEM files of CAs to trust instead of the system's,
	// separated by the OS path list separator (':').
	CACerts string
	// KnownHosts are files of "host[:port] THUMBPRINT" lines (govc's
	// GOVC_TLS_KNOWN_HOSTS), separated by ':'; a missing file or a line of
	// another form is an ErrConfig error (govc ignores both silently).
	KnownHosts string
	// Thumbprint pins the SHA-256 (or SHA-1) thumbprint of the URL host's
	// certificate, colon-separated hex (case and colons do not matter).
	Thumbprint string
	// Warn receives warnings (insecure connections); nil drops them.
	Warn func(msg string)
	// URLSource and PasswordSource say where URL and Password came from
	// (a flag, an environment variable, a file), for error messages;
	// ConfigFromEnv sets them, a caller that overrides a value sets its
	// own. Empty: "the URL" and "the configured password".
	URLSource, PasswordSource string
}

// secrets are the values Connect's messages must never show: the
// password, the URL's password (as written and decoded) and their HTTP
// basic authentication forms.
func (cfg *Config) secrets() []string {
	var out []string
	user := cfg.Username
	uuser, upw, _ := redact.URLPassword(cfg.URL)
	if user == "" {
		user = uuser
	}
	for _, pw := range append([]string{cfg.Password}, upw...) {
		if pw != "" {
			out = append(out, pw, redact.Basic(user, pw), redact.Basic(uuser, pw))
		}
	}
	return out
}

// redactedError removes secrets from the message of an error that is not
// an *Error.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string { return redact.Text(e.err.Error(), e.secrets...) }
func (e *redactedError) Unwrap() error { return e.err }

// withSecrets makes err's message free of secrets.
func withSecrets(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e == err {
		e.secrets = append(e.secrets, secrets...)
		return e
	}
	return &redactedError{err: err, secrets: secrets}
}

// ConfigFromEnv reads govc's environment variables: GOVC_URL,
// GOVC_USERNAME and GOVC_PASSWORD (a value naming an existing file means
// the file's contents, as in govc), GOVC_INSECURE, GOVC_TLS_CA_CERTS and
// GOVC_TLS_KNOWN_HOSTS. Flags given on a command line override the result.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		URL:        getenv(EnvURL),
		CACerts:    getenv(EnvCACerts),
		KnownHosts: getenv(EnvKnownHosts),
		URLSource:  EnvURL,
	}
	var err error
	if cfg.Username, _, err = secret(EnvUsername, getenv(EnvUsername)); err != nil {
		return cfg, withSecrets(err, cfg.secrets())
	}
	var file string
	if cfg.Password, file, err = secret(EnvPassword, getenv(EnvPassword)); err != nil {
		return cfg, withSecrets(err, append(cfg.secrets(), getenv(EnvPassword)))
	}
	cfg.PasswordSource = EnvPassword
	if file != "" {
		cfg.PasswordSource = "the file " + file + " that " + EnvPassword + " names"
	}
	if v := getenv(EnvInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, &Error{Kind: ErrConfig, What: fmt.Sprintf("%s=%q", EnvInsecure, v), Err: errors.New("not a boolean"), Hint: "use 1, true, 0 or false"}
		}
		cfg.Insecure = b
	}
	return cfg, nil
}

// secret resolves a value that may name a file holding the secret (as
// govc's session.Secret does); file is the file's name when it did. A value
// naming a directory is an error (govc would take the directory's name for
// the password); so is a file that cannot be read. The messages never show
// the value (it may be the secret itself).
func secret(name, value string) (v, file string, err error) {
	if value == "" {
		return "", "", nil
	}
	if st, err := os.Stat(value); err == nil && st.IsDir() {
		return "", "", &Error{Kind: ErrConfig, What: name + " names a directory",
			Hint: "set it to the value itself or to a file holding it"}
	}
	v, err = session.Secret(value)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path may be the secret itself
		}
		return "", "", &Error{Kind: ErrConfig, What: "read " + name, Err: err, Hint: "the value names a file that cannot be read"}
	}
	if v != value {
		file = value
	} else if _, err := os.Stat(value); err == nil {
		file = value // a file holding its own name
	}
	return v, file, nil
}

// Client is a logged-in vSphere API session.
type Client struct {
	vim  *vim25.Client
	url  *url.URL
	user string

	warn func(string) // Config.Warn, never nil

	mu         sync.Mutex
	sshStarted []string // hosts whose SSH service EnableSSH started; Close stops them
}

// Vim is the underlying govmomi client (its RoundTripper may be wrapped,
// e.g. to count or trace calls).
func (c *Client) Vim() *vim25.Client { return c.vim }

// URL is the server's URL, without user information.
func (c *Client) URL() *url.URL { u := *c.url; return &u }

// Close stops the SSH services EnableSSH started, logs out and closes
// idle connections.
func (c *Client) Close(ctx context.Context) error {
	stopErr := c.stopStartedSSH(ctx)
	if stopErr != nil && c.warn != nil {
		c.warn(fmt.Sprintf("%v: stop it in the vSphere Client (the host > Configure > System > Services > SSH > Stop)", stopErr))
	}
	err := session.NewManager(c.vim).Logout(ctx)
	c.vim.CloseIdleConnections()
	if err != nil {
		err = fmt.Errorf("esxi: log out of %s: %w", c.url.Redacted(), err)
	}
	return errors.Join(stopErr, err)
}

// Connect opens a session: it checks the server's certificate, negotiates
// the API version and logs in (once: a refused login is never retried, as
// vCenter SSO and ESXi lock an account after repeated failures). Its errors
// are *Error values, and no error shows the password or the URL's
// password, in any encoding (redact.Text), whatever the URL holds.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, withSecrets(err, cfg.secrets())
	}
	return c, nil
}

func connect(ctx context.Context, cfg Config) (*Client, error) {
	urlSource := cfg.URLSource
	if urlSource == "" {
		urlSource = "the URL"
	}
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, &Error{Kind: ErrConfig, What: "no server given", Hint: "pass --url or set " + EnvURL + " (https://vcenter.example.com or an ESXi host)"}
	}
	if ambiguousUserinfo(cfg.URL) {
		return nil, &Error{Kind: ErrConfig, What: "server URL " + strconv.Quote(redact.URL(cfg.URL)) + " (" + urlSource + ")",
			Err:  errors.New(`an "@" after a "/", "?" or "#": the user information is ambiguous`),
			Hint: `percent-encode "@", "/", "?" and "#" in the user name and password, or better set them in ` + EnvUsername + " and " + EnvPassword}
	}
	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		// url.Parse quotes its input: the message is redacted (Connect).
		return nil, &Error{Kind: ErrConfig, What: "parse server URL " + strconv.Quote(redact.URL(cfg.URL)) + " (" + urlSource + ")",
			Err: unquoteURLError(err, cfg.URL), Hint: "want https://host[:port][/sdk], with the user name and password in " + EnvUsername + " and " + EnvPassword + " (a password in the URL must be percent-encoded and shows in ps)"}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, &Error{Kind: ErrConfig, What: fmt.Sprintf("server URL scheme %q", u.Scheme), Hint: "use https://"}
	}
	if u.Hostname() == "" {
		return nil, &Error{Kind: ErrConfig, What: fmt.Sprintf("server URL %q (%s) has no host", redact.URL(cfg.URL), urlSource)}
	}
	user := u.User.Username()
	pass, inURL := u.User.Password()
	passSource := "the password in " + urlSource
	if !inURL || pass == "" {
		passSource = "no password (set " + EnvPassword + ")"
	}
	if cfg.Username != "" {
		user = cfg.Username
	}
	if cfg.Password != "" {
		pass = cfg.Password
		passSource = "the password from " + cfg.PasswordSource
		if cfg.PasswordSource == "" {
			passSource = "the configured password"
		}
	}
	u.User = nil
	shown := u.String()
	if user == "" {
		return nil, &Error{Kind: ErrConfig, What: "no user name for " + shown, Hint: "set " + EnvUsername + " or put it in the URL (https://user@host)"}
	}

	d, err := newTLSDialer(u, cfg)
	if err != nil {
		return nil, err
	}
	sc := soap.NewClient(u, cfg.Insecure)
	sc.DefaultTransport().DialTLSContext = d.dialTLS
	warn := cfg.Warn
	if warn == nil {
		warn = func(string) {}
	}
	switch {
	case u.Scheme == "http":
		warn(fmt.Sprintf("connecting to %s over plain http: the password and all data cross the network unencrypted", shown))
	case cfg.Insecure:
		warn(fmt.Sprintf("not verifying the TLS certificate of %s (insecure): anyone on the network path can pose as the server and read the password", u.Host))
	}

	if err := useServiceVersion(ctx, sc); err != nil {
		return nil, classifyConnError(shown, err)
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, classifyConnError(shown, err)
	}
	if err := session.NewManager(vc).Login(ctx, url.UserPassword(user, pass)); err != nil {
		if isInvalidLogin(err) {
			return nil, &Error{Kind: ErrLoginFailed, What: fmt.Sprintf("log in to %s as %s with %s", shown, user, passSource), Err: err,
				Hint: "the server refused them: check the user name and password (" + EnvUsername + ", " + EnvPassword +
					" or user:password in the URL) before trying again: capturectl tries once, and vCenter SSO and ESXi lock an account after repeated failed logins"}
		}
		return nil, classifyConnError(shown, err)
	}
	return &Client{vim: vc, url: u, user: user, warn: warn}, nil
}

func isInvalidLogin(err error) bool {
	if !soap.IsSoapFault(err) {
		return false
	}
	switch soap.ToSoapFault(err).VimFault().(type) {
	case types.InvalidLogin, *types.InvalidLogin:
		return true
	}
	return false
}

// ambiguousUserinfo reports a URL with an "@" after the first "/", "?" or
// "#" of its authority: url.Parse then takes part of what the user meant as
// the password for the host or the path, where no redaction would know it.
func ambiguousUserinfo(raw string) bool {
	rest := raw[redact.SchemeEnd(raw):]
	end := strings.IndexAny(rest, "/?#")
	return end >= 0 && strings.LastIndex(rest, "@") > end
}

// unquoteURLError drops the quoted input from a *url.Error (its Op and
// URL), keeping what was wrong with it: the caller names the URL itself,
// redacted. What url.Parse quotes of the part (`invalid URL escape "%ss"`,
// `invalid port ":Pa" after host`) is a piece of the password when it lies
// in the URL's user information: it is redacted too.
func unquoteURLError(err error, raw string) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	msg := ue.Err.Error()
	_, pws, hasPW := redact.URLPassword(raw)
	if !hasPW {
		return errors.New(msg)
	}
	msg = quotedPart.ReplaceAllStringFunc(msg, func(q string) string {
		if v, err := strconv.Unquote(q); err == nil {
			for _, pw := range pws {
				if strings.Contains(pw, strings.TrimPrefix(v, ":")) {
					return `"` + redact.Mark + `" (in the password)`
				}
			}
		}
		return q
	})
	return errors.New(msg)
}

// quotedPart is a Go-quoted string in an error message.
var quotedPart = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// useServiceVersion asks the server which API version it speaks (older
// servers refuse requests in a newer namespace), as govc does. A server
// without the version document is left at govmomi's default.
func useServiceVersion(ctx context.Context, sc *soap.Client) error {
	u := sc.URL()
	u.Path = "/sdk/vimServiceVersions.xml"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	res, err := sc.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil
	}
	var v struct {
		Namespace string `xml:"namespace>name"`
		Version   string `xml:"namespace>version"`
	}
	if err := xml.NewDecoder(res.Body).Decode(&v); err != nil || v.Namespace == "" || v.Version == "" {
		return nil
	}
	sc.Namespace = "urn:" + strings.TrimPrefix(v.Namespace, "urn:")
	sc.Version = v.Version
	return nil
}

// classifyConnError turns a transport error into an *Error.
func classifyConnError(shown string, err error) error {
	var ce *certError
	if errors.As(err, &ce) {
		return ce.asError()
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return &Error{Kind: ErrUnreachable, What: "connect to " + shown, Err: dnsErr, Hint: "check --url (or " + EnvURL + ")"}
	case errors.As(err, &opErr):
		return &Error{Kind: ErrUnreachable, What: "connect to " + shown, Err: opErr, Hint: "check --url (or " + EnvURL + ") and that the server is up and reachable"}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: ErrUnreachable, What: "connect to " + shown, Err: err, Hint: "the server did not answer in time; check --url (or " + EnvURL + ") and the network"}
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("esxi: connect to %s: %w", shown, err)
	case soap.IsSoapFault(err):
		return fmt.Errorf("esxi: connect to %s: %w", shown, err)
	}
	return &Error{Kind: ErrUnreachable, What: "connect to " + shown, Err: err, Hint: "check that --url (or " + EnvURL + ") names a vCenter or ESXi API endpoint (https://host/sdk)"}
}

// tlsDialer dials the server and checks its certificate against the CAs or
// the pinned thumbprints, so that the errors say which check failed.
type tlsDialer struct {
	roots    *x509.CertPool // nil: the system's
	pins     map[string]string
	insecure bool
	dialer   net.Dialer
}

func newTLSDialer(u *url.URL, cfg Config) (*tlsDialer, error) {
	d := &tlsDialer{pins: make(map[string]string), insecure: cfg.Insecure, dialer: net.Dialer{Timeout: dialTimeout}}
	if cfg.CACerts != "" {
		pool := x509.NewCertPool()
		for _, name := range filepath.SplitList(cfg.CACerts) {
			if name == "" {
				continue
			}
			pem, err := os.ReadFile(name)
			if err != nil {
				return nil, &Error{Kind: ErrConfig, What: "read CA certificates", Err: err, Hint: "check " + EnvCACerts}
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &Error{Kind: ErrConfig, What: "read CA certificates from " + name, Err: errors.New("no PEM certificate found"), Hint: "check " + EnvCACerts}
			}
		}
		d.roots = pool
	}
	for _, name := range filepath.SplitList(cfg.KnownHosts) {
		if name == "" {
			continue
		}
		data, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Kind: ErrConfig, What: EnvKnownHosts + " names " + name + ", which does not exist",
				Hint: "create it with lines \"host[:port] THUMBPRINT\" (govc about.cert -k -thumbprint prints one), or unset " + EnvKnownHosts}
		}
		if err != nil {
			return nil, &Error{Kind: ErrConfig, What: "read known hosts", Err: err, Hint: "check " + EnvKnownHosts}
		}
		for i, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if len(f) != 2 {
				return nil, &Error{Kind: ErrConfig, What: fmt.Sprintf("%s %s:%d", EnvKnownHosts, name, i+1),
					Err: fmt.Errorf("%d fields", len(f)), Hint: "want \"host[:port] THUMBPRINT\" per line"}
			}
			if _, err := normThumbprint(f[1]); err != nil {
				return nil, &Error{Kind: ErrConfig, What: fmt.Sprintf("%s %s:%d: thumbprint of %s", EnvKnownHosts, name, i+1, f[0]),
					Err: err, Hint: "give the SHA-256 (or SHA-1) thumbprint as colon-separated hex"}
			}
			d.pins[hostPort(f[0])] = f[1]
		}
	}
	if cfg.Thumbprint != "" {
		if _, err := normThumbprint(cfg.Thumbprint); err != nil {
			return nil, &Error{Kind: ErrConfig, What: fmt.Sprintf("thumbprint %q", cfg.Thumbprint), Err: err, Hint: "give the SHA-256 (or SHA-1) thumbprint as colon-separated hex"}
		}
		d.pins[hostPort(u.Host)] = cfg.Thumbprint
	}
	return d, nil
}

// hostPort adds the https port when addr has none.
func hostPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), "443")
}

func (d *tlsDialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		raw.Close()
		return nil, err
	}
	conn := tls.Client(raw, &tls.Config{
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		// The certificate is verified in VerifyConnection, so that the
		// presented certificate's thumbprint is known when it fails.
		InsecureSkipVerify: true,
		VerifyConnection:   func(cs tls.ConnectionState) error { return d.verify(addr, host, cs) },
	})
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

func (d *tlsDialer) verify(addr, host string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &certError{addr: addr, err: errors.New("no certificate presented")}
	}
	leaf := cs.PeerCertificates[0]
	got256 := soap.ThumbprintSHA256(leaf)
	if pin, ok := d.pins[addr]; ok {
		want, _ := normThumbprint(pin)
		sum256, sum1 := sha256.Sum256(leaf.Raw), sha1.Sum(leaf.Raw)
		if want == thumbprintHex(sum256[:]) || want == thumbprintHex(sum1[:]) {
			return nil
		}
		return &certError{addr: addr, mismatch: true, sha256: got256, pinned: pin}
	}
	if d.insecure {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: d.roots, Intermediates: inter}); err != nil {
		return &certError{addr: addr, sha256: got256, err: err}
	}
	return nil
}

// thumbprintHex is a digest as uppercase hex without colons.
func thumbprintHex(sum []byte) string { return strings.ToUpper(hex.EncodeToString(sum)) }

// normThumbprint reduces a thumbprint to uppercase hex without colons.
func normThumbprint(tp string) (string, error) {
	s := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(tp)))
	if _, err := hex.DecodeString(s); err != nil {
		return "", errors.New("not hex")
	}
	if len(s) != 64 && len(s) != 40 {
		return "", fmt.Errorf("%d hex digits, want 64 (SHA-256) or 40 (SHA-1)", len(s))
	}
	return s, nil
}

// certError is a failed certificate check.
type certError struct {
	addr     string
	mismatch bool
	sha256   string // of the presented certificate
	pinned   string
	err      error
}

func (e *certError) Error() string {
	if e.mismatch {
		return fmt.Sprintf("server certificate has thumbprint %s, not the pinned %s", e.sha256, e.pinned)
	}
	return fmt.Sprintf("server certificate not trusted: %v", e.err)
}

func (e *certError) Unwrap() error { return e.err }

func (e *certError) asError() *Error {
	if e.mismatch {
		return &Error{Kind: ErrThumbprintMismatch, What: "connect to " + e.addr, Err: e,
			Hint: "if the certificate was replaced on purpose, update --thumbprint or " + EnvKnownHosts + "; otherwise someone may be intercepting the connection"}
	}
	hint := "add its CA to " + EnvCACerts + " or pin its thumbprint with --thumbprint"
	if e.sha256 != "" {
		hint = "its SHA-256 thumbprint is " + e.sha256 + ": if that is the server's (check out of band), pass it to --thumbprint, or add the CA to " + EnvCACerts
	}
	return &Error{Kind: ErrUntrustedCert, What: "connect to " + e.addr, Err: e, Hint: hint + " (--insecure skips the check)"}
}

// ---------------------------------------------------------------------------
// esxcli through the vSphere API
//
// govmomi's cli/esx Executor asks the host for each command's parameters
// (FetchCLIInfo) before running it and retrieves a DynamicTypeManager it
// does not need here: four extra calls per discovery. The two commands used
// here have fixed, documented parameters, so this runs ExecuteSoap on the
// host's ManagedMethodExecuter directly; the bindings mirror govmomi's
// internal ones (internal/methods.go, internal/types.go at v0.56.0).

type retrieveMMERequest struct {
	This types.ManagedObjectReference `xml:"_this"`
}

type retrieveMMEResponse struct {
	Returnval *types.ManagedObjectReference `xml:"urn:vim25 returnval"`
}

type retrieveMMEBody struct {
	Req    *retrieveMMERequest  `xml:"urn:vim25 RetrieveManagedMethodExecuter,omitempty"`
	Res    *retrieveMMEResponse `xml:"urn:vim25 RetrieveManagedMethodExecuterResponse,omitempty"`
	Fault_ *soap.Fault          `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *retrieveMMEBody) Fault() *soap.Fault { return b.Fault_ }

type soapArgument struct {
	Name string `xml:"name"`
	Val  string `xml:"val"`
}

type executeSoapRequest struct {
	This     types.ManagedObjectReference `xml:"_this"`
	Moid     string                       `xml:"moid"`
	Version  string                       `xml:"version"`
	Method   string                       `xml:"method"`
	Argument []soapArgument               `xml:"argument,omitempty"`
}

type executeSoapResult struct {
	Response string `xml:"response,omitempty"`
	Fault    *struct {
		FaultMsg    string `xml:"faultMsg"`
		FaultDetail string `xml:"faultDetail,omitempty"`
	} `xml:"fault,omitempty"`
}

type executeSoapResponse struct {
	Returnval *executeSoapResult `xml:"urn:vim25 returnval"`
}

type executeSoapBody struct {
	Req    *executeSoapRequest  `xml:"urn:vim25 ExecuteSoap,omitempty"`
	Res    *executeSoapResponse `xml:"urn:vim25 ExecuteSoapResponse,omitempty"`
	Fault_ *soap.Fault          `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *executeSoapBody) Fault() *soap.Fault { return b.Fault_ }

// apiEsxcli runs esxcli commands on one host through the vSphere API.
type apiEsxcli struct {
	rt  soap.RoundTripper
	mme types.ManagedObjectReference
}

// newAPIEsxcli retrieves the host's ManagedMethodExecuter (one call).
func newAPIEsxcli(ctx context.Context, rt soap.RoundTripper, host types.ManagedObjectReference) (*apiEsxcli, error) {
	req := retrieveMMEBody{Req: &retrieveMMERequest{This: host}}
	var res retrieveMMEBody
	if err := rt.RoundTrip(ctx, &req, &res); err != nil {
		return nil, err
	}
	if res.Res == nil || res.Res.Returnval == nil {
		return nil, errors.New("RetrieveManagedMethodExecuter returned no executer")
	}
	return &apiEsxcli{rt: rt, mme: *res.Res.Returnval}, nil
}

// run calls the esxcli method ns.name (e.g. "network.vm.port", "list")
// with the given arguments, one call.
func (x *apiEsxcli) run(ctx context.Context, ns, name string, args ...soapArgument) (*esx.Response, error) {
	req := executeSoapBody{Req: &executeSoapRequest{
		This:     x.mme,
		Moid:     "ha-cli-handler-" + strings.ReplaceAll(ns, ".", "-"),
		Version:  "urn:vim25/5.0",
		Method:   "vim.EsxCLI." + ns + "." + name,
		Argument: args,
	}}
	var res executeSoapBody
	if err := x.rt.RoundTrip(ctx, &req, &res); err != nil {
		return nil, err
	}
	out := new(esx.Response)
	if res.Res == nil || res.Res.Returnval == nil {
		return out, nil
	}
	if f := res.Res.Returnval.Fault; f != nil {
		return nil, &esx.Fault{Message: f.FaultMsg, Detail: f.FaultDetail}
	}
	if err := xml.Unmarshal([]byte(res.Res.Returnval.Response), out); err != nil {
		return nil, fmt.Errorf("decode esxcli %s %s response: %w", ns, name, err)
	}
	return out, nil
}

// esxcliArg is an ExecuteSoap argument as esxcli encodes it.
func esxcliArg(name, value string) soapArgument {
	var b strings.Builder
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(&b, []byte(value))
	b.WriteString("</" + name + ">")
	return soapArgument{Name: name, Val: b.String()}
}
