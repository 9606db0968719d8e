package lab

// Authentication counters of the emulated hosts' SSH servers.

// PasswordAttempts is how many passwords clients have answered a host's
// SSH server since the lab started (keyboard-interactive or password,
// right or wrong): a test that a client never retries a refused login
// counts them.
func (l *Lab) PasswordAttempts(host string) (int, error) {
	h, err := l.host(host)
	if err != nil {
		return 0, err
	}
	return h.srv.PasswordAttempts(), nil
}
