package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/session"
)

// Exit codes. exitCodeTable below is their one description: the README's
// "Exit codes" table is checked against it (TestREADMEExitCodes).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitFiltered    = 3
	exitLogin       = 4
	exitVM          = 5
	exitUnreachable = 6
	exitTLS         = 7
	exitHangup      = 128 + 1  // SIGHUP
	exitReaderGone  = 128 + 13 // SIGPIPE
)

var exitCodeTable = []struct {
	code    int
	meaning string
}{
	{exitOK, "success (trace, analyze, demo: nothing was filtered by reverse teaming; audit: no findings; check: all expectations met)"},
	{exitError, "the command failed (the message says what to do); audit: findings; check: an expectation failed"},
	{exitUsage, "bad usage: unknown command or flag, missing argument, bad connection settings; audit: could not run"},
	{exitFiltered, "trace, analyze: frames were filtered by reverse teaming (the report says which; trace with several vNICs: those of any of them)"},
	{exitLogin, "vSphere login failed (check the user name and password) — discover, capture, trace"},
	{exitVM, "the VM is unknown or its name is ambiguous (the message lists candidates)"},
	{exitUnreachable, "vCenter/ESXi unreachable"},
	{exitTLS, "the server's certificate is not trusted, or does not match the pinned thumbprint"},
	{exitHangup, "stopped by SIGHUP (the terminal or session closed): captures stopped and the hosts cleaned up as on Ctrl-C; what was captured is kept (see Stopping)"},
	{exitReaderGone, "the output's reader went away (a pipe into head, a FIFO or tshark that exited): captures stopped and the hosts cleaned up as on Ctrl-C"},
}

// errHangup is main's context's cause after SIGHUP.
var errHangup = fmt.Errorf("%w by SIGHUP", context.Canceled)

// interrupted is a run cut short by SIGHUP or by its output's reader
// going away; the hosts were cleaned up as on Ctrl-C (which keeps the
// command's code). It exits with the shell's 128 + the signal.
type interrupted struct {
	sig syscall.Signal
	err error // what the command returned
}

func (e *interrupted) Error() string {
	what := "stopped by SIGHUP (the terminal or session closed)"
	if e.err != nil && !errors.Is(e.err, errSilent) && !errors.Is(e.err, errFiltered) && !errors.Is(e.err, context.Canceled) {
		what = e.err.Error()
	}
	return what + "; the captures were stopped and the hosts cleaned up"
}

func (e *interrupted) Unwrap() error { return e.err }

// stoppedBy says how a command ended when SIGHUP cancelled main's context
// or its output's reader went away.
func stoppedBy(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errHangup) {
		return &interrupted{syscall.SIGHUP, err}
	}
	if errors.Is(err, session.ErrReaderGone) {
		return &interrupted{syscall.SIGPIPE, err}
	}
	return err
}

// usageError marks errors in what the user typed.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errSilent ends a command with the usage exit code after the message was
// already printed (e.g. -h).
var errSilent = errors.New("silent")

// errFiltered ends a command that printed its report with exitFiltered.
var errFiltered = errors.New("frames were filtered by reverse teaming")

// exitCode maps a command's error to its exit code.
func exitCode(err error) int {
	var ue *usageError
	var in *interrupted
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &in):
		return 128 + int(in.sig)
	case errors.Is(err, session.ErrReaderGone):
		return exitReaderGone
	case errors.Is(err, errFiltered):
		return exitFiltered
	case errors.As(err, &ue), errors.Is(err, errSilent):
		return exitUsage
	case errors.Is(err, esxi.ErrLoginFailed):
		return exitLogin
	case errors.Is(err, esxi.ErrVMNotFound), errors.Is(err, esxi.ErrVMAmbiguous):
		return exitVM
	case errors.Is(err, esxi.ErrUnreachable):
		return exitUnreachable
	case errors.Is(err, esxi.ErrUntrustedCert), errors.Is(err, esxi.ErrThumbprintMismatch):
		return exitTLS
	}
	return exitError
}
