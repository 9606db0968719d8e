package main

import (
	"errors"
	"fmt"

	"github.com/capturectl/capturectl/esxi"
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
)

var exitCodeTable = []struct {
	code    int
	meaning string
}{
	{exitOK, "success (trace, analyze, demo: nothing was filtered by reverse teaming; audit: no findings; check: all expectations met)"},
	{exitError, "the command failed (the message says what to do); audit: findings; check: an expectation failed"},
	{exitUsage, "bad usage: unknown command or flag, missing argument, bad connection settings; audit: could not run"},
	{exitFiltered, "trace, analyze: frames were filtered by reverse teaming (the report says which)"},
	{exitLogin, "vSphere login failed (check the user name and password) — discover, capture, trace"},
	{exitVM, "the VM is unknown or its name is ambiguous (the message lists candidates)"},
	{exitUnreachable, "vCenter/ESXi unreachable"},
	{exitTLS, "the server's certificate is not trusted, or does not match the pinned thumbprint"},
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
	switch {
	case err == nil:
		return exitOK
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
