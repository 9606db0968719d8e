//go:build !linux

package main

import (
	"os"
	"os/exec"
	"testing"
)

// peakRSS is not measured off Linux (see rss_linux_test.go for why
// wait4's figure is not used).
type peakRSS struct{}

func (p peakRSS) max(peakRSS) peakRSS { return p }
func (peakRSS) report(*testing.B)     {}

func measurePeakRSS(_ *testing.B, cmd *exec.Cmd) (peakRSS, *os.ProcessState, error) {
	err := cmd.Run()
	return peakRSS{}, cmd.ProcessState, err
}
