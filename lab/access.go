package lab

import "fmt"

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

// A host's SSH service (TSM-SSH) and lockdown mode, with the fault hooks
// SetUnreachable and SetRefuseAuth: the SSH server listens while the
// service runs and the host is reachable, and refuses logins while the host
// is in lockdown (root is on no exception list) or the fault says so.

func (h *labHost) applyAccess() error {
	h.mu.Lock()
	down := h.faultDown || h.sshStopped
	refuse := h.faultRefuse || h.lockdown == "normal" || h.lockdown == "strict"
	h.mu.Unlock()
	h.srv.SetRefuseAuth(refuse)
	return h.srv.SetUnreachable(down)
}

// SSHService reports whether a host's SSH service runs.
func (l *Lab) SSHService(host string) (bool, error) {
	h, err := l.host(host)
	if err != nil {
		return false, err
	}
	return l.sshRunning(h.name), nil
}

// SetSSHService starts or stops a host's SSH service, as the vSphere
// Client or the API's HostServiceSystem would; the lab's vCenter shows it.
func (l *Lab) SetSSHService(host string, running bool) error {
	if err := l.setSSHRunning(host, running); err != nil {
		return err
	}
	if l.VCenter != nil {
		l.VCenter.syncAccess(host)
	}
	return nil
}

// SetLockdown sets a host's lockdown mode: "disabled", "normal" or
// "strict"; the lab's vCenter shows it.
func (l *Lab) SetLockdown(host, mode string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	switch mode {
	case "disabled", "normal", "strict":
	default:
		return fmt.Errorf("lab: host %s: unknown lockdown mode %q (want disabled, normal or strict)", host, mode)
	}
	h.mu.Lock()
	h.lockdown = mode
	h.mu.Unlock()
	if err := h.applyAccess(); err != nil {
		return err
	}
	if l.VCenter != nil {
		l.VCenter.syncAccess(host)
	}
	return nil
}

func (l *Lab) sshRunning(host string) bool {
	h, err := l.host(host)
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.sshStopped
}

func (l *Lab) setSSHRunning(host string, running bool) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.sshStopped = !running
	h.mu.Unlock()
	return h.applyAccess()
}

func (l *Lab) lockdownMode(host string) string {
	h, err := l.host(host)
	if err != nil {
		return "disabled"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lockdown
}
