//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peakRSS is a child process's peak resident set, measured two ways.
//
// The obvious figure, the rusage ru_maxrss that wait4 returns, is wrong
// for a child of a large process: Go starts children with
// clone(CLONE_VM|CLONE_VFORK), and at execve Linux folds the high-water
// mark of the memory the child still shares with its parent (the whole
// benchmark binary's heap) into the child's maxrss. So the child's own
// peak is read from /proc/PID/status (VmHWM belongs to the address space
// execve created) while it runs, and, where GNU time is installed, checked
// against /usr/bin/time, a small process that forks the command itself.
type peakRSS struct {
	hwmKiB  int64 // VmHWM, polled every millisecond
	timeKiB int64 // /usr/bin/time's %M; 0 when not measured
}

func (p peakRSS) max(q peakRSS) peakRSS {
	return peakRSS{max(p.hwmKiB, q.hwmKiB), max(p.timeKiB, q.timeKiB)}
}

func (p peakRSS) report(b *testing.B) {
	b.ReportMetric(float64(p.hwmKiB)/1024, "peak-RSS-MiB")
	if p.timeKiB > 0 {
		b.ReportMetric(float64(p.timeKiB)/1024, "time-maxrss-MiB")
	}
}

// measurePeakRSS runs cmd to completion, polling its VmHWM; when GNU time
// is installed it runs the same command once more under /usr/bin/time
// (outside the benchmark's timer) for the cross-check.
func measurePeakRSS(b *testing.B, cmd *exec.Cmd) (peakRSS, *os.ProcessState, error) {
	var p peakRSS
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return p, nil, err
	}
	done := make(chan struct{})
	polled := make(chan int64)
	go func() {
		var hwm int64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v, ok := vmHWM(cmd.Process.Pid, cmd.Path); ok {
				hwm = max(hwm, v)
			}
			select {
			case <-done:
				polled <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	p.hwmKiB = <-polled
	if err != nil {
		return p, cmd.ProcessState, fmt.Errorf("%v: %v\n%s", cmd.Args, err, stderr.Bytes())
	}
	b.StopTimer()
	defer b.StartTimer()
	if t, err := timeMaxRSS(cmd); err == nil {
		p.timeKiB = t
	} else if !os.IsNotExist(err) {
		return p, cmd.ProcessState, err
	}
	return p, cmd.ProcessState, nil
}

// vmHWM reads a process's VmHWM in KiB; false once the process has exited
// (a zombie has no address space) or the PID names another program.
func vmHWM(pid int, path string) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if name, ok := strings.CutPrefix(l, "Name:"); ok && !strings.HasPrefix(baseName(path), strings.TrimSpace(name)) {
			return 0, false
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// timeMaxRSS runs cmd's command under /usr/bin/time and returns its %M.
func timeMaxRSS(cmd *exec.Cmd) (int64, error) {
	const gnuTime = "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	c := exec.Command(gnuTime, append([]string{"-f", "capturectl-bench-maxrss=%M", cmd.Path}, cmd.Args[1:]...)...)
	c.Env, c.Stderr = cmd.Env, &stderr
	if err := c.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", gnuTime, err, stderr.Bytes())
	}
	out := stderr.String()
	i := strings.LastIndex(out, "capturectl-bench-maxrss=")
	if i < 0 {
		return 0, fmt.Errorf("%s printed no maximum RSS:\n%s", gnuTime, out)
	}
	return strconv.ParseInt(strings.TrimSpace(out[i+len("capturectl-bench-maxrss="):]), 10, 64)
}

// The measurement is checked before it is trusted: a child started by a
// process holding 256 MiB has its own small peak in VmHWM and in GNU
// time's figure, while wait4's ru_maxrss reports the parent's.
func TestPeakRSSMethod(t *testing.T) {
	ballast := make([]byte, 256<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1
	}
	cmd := exec.Command("cat")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var hwm int64
	for ok := false; !ok; {
		hwm, ok = vmHWM(cmd.Process.Pid, cmd.Path) // cat is blocked reading: its VmHWM is final
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if hwm <= 0 || hwm > 32<<10 {
		t.Errorf("cat's VmHWM: %d KiB; want a few MiB", hwm)
	}
	rusage := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	t.Logf("cat: VmHWM %d KiB, wait4 ru_maxrss %d KiB (parent holds 256 MiB)", hwm, rusage)
	if tm, err := timeMaxRSS(exec.Command("true")); err == nil {
		if tm <= 0 || tm > 32<<10 {
			t.Errorf("/usr/bin/time's maximum RSS of true: %d KiB; want a few MiB", tm)
		}
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	runtime.KeepAlive(ballast)
}
