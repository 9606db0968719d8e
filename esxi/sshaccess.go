package esxi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"syscall"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// SSHServiceKey is ESXi's SSH service in HostServiceSystem.
const SSHServiceKey = "TSM-SSH"

// SSHAccess is what the API says about reaching a host over SSH.
type SSHAccess struct {
	Host string
	// ServiceKnown: the host's service system lists TSM-SSH.
	ServiceKnown bool
	// Running: the SSH service runs.
	Running bool
	// Lockdown is config.lockdownMode: lockdownDisabled, lockdownNormal or
	// lockdownStrict ("" when the host does not say).
	Lockdown string
}

// ReadSSHAccess reads a host's SSH service state (HostServiceSystem,
// TSM-SSH) and lockdown mode (config.lockdownMode) through the API.
func (c *Client) ReadSSHAccess(ctx context.Context, host string) (SSHAccess, error) {
	a := SSHAccess{Host: host}
	h, err := find.NewFinder(c.vim).HostSystem(ctx, host)
	if err != nil {
		return a, fmt.Errorf("esxi: find host %s: %w", host, err)
	}
	var hs mo.HostSystem
	if err := h.Properties(ctx, h.Reference(), []string{"configManager.serviceSystem", "config.lockdownMode"}, &hs); err != nil {
		return a, fmt.Errorf("esxi: host %s: read lockdown mode and service system: %w", host, err)
	}
	if hs.Config != nil {
		a.Lockdown = string(hs.Config.LockdownMode)
	}
	if hs.ConfigManager.ServiceSystem == nil {
		return a, nil
	}
	var ss mo.HostServiceSystem
	if err := h.Properties(ctx, *hs.ConfigManager.ServiceSystem, []string{"serviceInfo"}, &ss); err != nil {
		return a, fmt.Errorf("esxi: host %s: read services: %w", host, err)
	}
	for _, s := range ss.ServiceInfo.Service {
		if s.Key == SSHServiceKey {
			a.ServiceKnown, a.Running = true, s.Running
		}
	}
	return a, nil
}

// SSHAccessError is an SSH connection or login that failed for a reason
// the API names: the SSH service is stopped (ESXi's default) or the host
// is in lockdown mode.
type SSHAccessError struct {
	Access SSHAccess
	Cause  string // what the API said
	Fix    string
	Err    error // the SSH error
}

func (e *SSHAccessError) Error() string {
	return fmt.Sprintf("%v; the cause, as the vSphere API reports it: %s; %s", e.Err, e.Cause, e.Fix)
}

func (e *SSHAccessError) Unwrap() error { return e.Err }

// isConnectFailure reports an SSH dial that never reached the SSH server
// (refused, timed out, unreachable).
func isConnectFailure(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &oe) && oe.Op == "dial")
}

// ExplainSSH returns err with its cause when the API names one: a failed
// connection to a host whose SSH service is stopped, or a refused or failed
// one to a host in lockdown mode. Other errors, and errors whose cause the
// API does not show, are returned as they are (with why the API could not
// be read, when it could not).
func (c *Client) ExplainSSH(ctx context.Context, host string, err error) error {
	if err == nil || c == nil {
		return err
	}
	auth := errors.Is(err, ErrSSHAuth)
	if !auth && !isConnectFailure(err) {
		return err
	}
	a, rerr := c.ReadSSHAccess(ctx, host)
	if rerr != nil {
		return fmt.Errorf("%w (the host's SSH service and lockdown mode could not be read through the API: %v)", err, rerr)
	}
	switch {
	case a.Lockdown == string(types.HostLockdownModeLockdownNormal) || a.Lockdown == string(types.HostLockdownModeLockdownStrict):
		return &SSHAccessError{Access: a, Err: err,
			Cause: fmt.Sprintf("host %s is in lockdown mode (%s): it refuses direct logins of users not on its exception list", host, a.Lockdown),
			Fix:   "disable lockdown mode (vSphere Client: the host > Configure > System > Security Profile > Lockdown Mode > Edit) or add the user to its Exception Users"}
	case !auth && a.ServiceKnown && !a.Running:
		return &SSHAccessError{Access: a, Err: err,
			Cause: fmt.Sprintf("the SSH service (%s) of host %s is stopped (ESXi's default)", SSHServiceKey, host),
			Fix:   "start it for this run with --enable-ssh (capturectl stops it again afterwards), or in the vSphere Client (the host > Configure > System > Services > SSH > Start), or on the host's console: vim-cmd hostsvc/enable_ssh"}
	}
	return err
}

// EnableSSH starts the host's SSH service through the API when it is
// stopped; started says whether it did (then StopSSH stops it again).
func (c *Client) EnableSSH(ctx context.Context, host string) (started bool, err error) {
	a, err := c.ReadSSHAccess(ctx, host)
	if err != nil {
		return false, err
	}
	if !a.ServiceKnown {
		return false, fmt.Errorf("esxi: host %s: the API lists no %s service", host, SSHServiceKey)
	}
	if a.Running {
		return false, nil
	}
	ss, err := c.serviceSystem(ctx, host)
	if err != nil {
		return false, err
	}
	if err := ss.Start(ctx, SSHServiceKey); err != nil {
		return false, fmt.Errorf("esxi: host %s: start the SSH service (%s): %w", host, SSHServiceKey, err)
	}
	c.mu.Lock()
	if !slices.Contains(c.sshStarted, host) { // two dials of one host at once
		c.sshStarted = append(c.sshStarted, host)
	}
	c.mu.Unlock()
	if c.warn != nil {
		c.warn(fmt.Sprintf("started the SSH service (%s) of host %s for this run; it is stopped again when the run ends", SSHServiceKey, host))
	}
	return true, nil
}

// stopStartedSSH stops the SSH services EnableSSH started (Close calls
// it, before logging out).
func (c *Client) stopStartedSSH(ctx context.Context) error {
	c.mu.Lock()
	hosts := c.sshStarted
	c.sshStarted = nil
	c.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, c.StopSSH(ctx, h))
	}
	return errors.Join(errs...)
}

// StopSSH stops the host's SSH service through the API.
func (c *Client) StopSSH(ctx context.Context, host string) error {
	ss, err := c.serviceSystem(ctx, host)
	if err != nil {
		return err
	}
	if err := ss.Stop(ctx, SSHServiceKey); err != nil {
		return fmt.Errorf("esxi: host %s: stop the SSH service (%s) capturectl started: %w", host, SSHServiceKey, err)
	}
	return nil
}

func (c *Client) serviceSystem(ctx context.Context, host string) (*object.HostServiceSystem, error) {
	h, err := find.NewFinder(c.vim).HostSystem(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("esxi: find host %s: %w", host, err)
	}
	ss, err := h.ConfigManager().ServiceSystem(ctx)
	if err != nil {
		return nil, fmt.Errorf("esxi: host %s: service system: %w", host, err)
	}
	return ss, nil
}
