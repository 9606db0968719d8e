package session

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

func TestPointNames(t *testing.T) {
	for _, tc := range []struct {
		p    Point
		name string
		args string
	}{
		{UplinkRx("esx01", "vmnic2"), "esx01/vmnic2/rx", "pktcap-uw --uplink vmnic2 -s 0 -o -"},
		{UplinkTx("esx01", "vmnic3"), "esx01/vmnic3/tx", "pktcap-uw --uplink vmnic3 -s 0 --capture UplinkSnd -o -"},
		{PortPoint("esx02", 50331657, pktcap.PortOutput), "esx02/50331657/PortOutput", "pktcap-uw --switchport 50331657 --dir 1 -s 0 --capture PortOutput -o -"},
		{PortPoint("esx02", 50331657, pktcap.VnicRx), "esx02/50331657/VnicRx", "pktcap-uw --switchport 50331657 --dir 1 -s 0 --capture VnicRx -o -"},
		{PortPoint("esx02", 50331657, pktcap.VnicTx), "esx02/50331657/VnicTx", "pktcap-uw --switchport 50331657 --dir 0 -s 0 --capture VnicTx -o -"},
		{PortPoint("esx02", 50331657, pktcap.PortInput), "esx02/50331657/PortInput", "pktcap-uw --switchport 50331657 --dir 0 -s 0 --capture PortInput -o -"},
		{DropPoint("esx02"), "esx02/drop", "pktcap-uw -s 0 --capture Drop -o -"},
	} {
		if err := tc.p.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if got := tc.p.Name(); got != tc.name {
			t.Errorf("Name() = %q; want %q", got, tc.name)
		}
		if got := tc.p.Options(pktcap.Filter{}, 0).Command(); got != tc.args {
			t.Errorf("%s: command %q; want %q", tc.name, got, tc.args)
		}
		back, err := ParsePoint(tc.name)
		if err != nil || back != tc.p {
			t.Errorf("ParsePoint(%q) = %+v, %v; want %+v", tc.name, back, err, tc.p)
		}
	}
	got := DefaultPoints("esx02", 50331657, []string{"vmnic2", "vmnic3"})
	want := []Point{UplinkRx("esx02", "vmnic2"), UplinkRx("esx02", "vmnic3"),
		PortPoint("esx02", 50331657, pktcap.PortOutput), PortPoint("esx02", 50331657, pktcap.VnicRx)}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultPoints = %v; want %v", got, want)
	}
	for _, bad := range []string{"", "esx01", "esx01/vmnic2", "esx01/vmnic2/up", "esx01/eth0/rx", "esx01/0/VnicRx",
		"esx01/50331657/Bogus", "esx01/50331657/UplinkRcv", "esx 01/vmnic2/rx", "esx01;reboot/vmnic2/rx", "/vmnic2/rx", "esx01/99999999999/VnicRx"} {
		if p, err := ParsePoint(bad); err == nil {
			t.Errorf("ParsePoint(%q) = %+v; want an error", bad, p)
		}
	}
	for _, p := range []Point{{Host: "h", Uplink: "vmnic1", PortID: 5}, {Host: "h", Uplink: "vmnic1", Capture: pktcap.VnicRx},
		{Host: "h"}, {Host: "h", PortID: 5, Capture: pktcap.UplinkSnd}, {Host: "a b", Uplink: "vmnic1"}} {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", p)
		}
	}
}

func FuzzParsePoint(f *testing.F) {
	for _, s := range []string{"esx01/vmnic2/rx", "esx01/vmnic3/tx", "esx02/50331657/VnicRx", "esx02/drop", "a/1/PortInput", "x//y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePoint(s)
		if err != nil {
			return
		}
		if p.Name() != s {
			t.Errorf("ParsePoint(%q).Name() = %q", s, p.Name())
		}
		if err := p.Options(pktcap.Filter{}, 0).Validate(); err != nil {
			t.Errorf("ParsePoint(%q): options: %v", s, err)
		}
	})
}

func TestPlanValidate(t *testing.T) {
	ok := Plan{Points: DefaultPoints("esx02", 50331657, []string{"vmnic2"})}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Plan{
		"no points":  {},
		"duplicate":  {Points: []Point{UplinkRx("h", "vmnic1"), UplinkRx("h", "vmnic1")}},
		"snaplen":    {Points: ok.Points, Snaplen: 10},
		"duration":   {Points: ok.Points, Duration: -1},
		"count":      {Points: ok.Points, Count: -1},
		"vlan":       {Points: ok.Points, Filter: pktcap.Filter{VLAN: pktcap.Some[uint16](5000)}},
		"bad uplink": {Points: []Point{UplinkRx("h", "vmnic1;reboot")}},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate = nil; want an error", name)
		}
	}
}

const esxiPS = `WID      CID      WorldName          Command
2600005  2600005  pktcap-uw          pktcap-uw --uplink vmnic2 -s 0 -o -
2600006  2600005  pktcap-uw          pktcap-uw --uplink vmnic2 -s 0 -o -
2600007  2600007  sh                 sh -c echo capturectl-pid $$ >&2; ... exec pktcap-uw --uplink vmnic3 -s 0 -o -
2600011  2600011  sleep              sleep 2
`

const busyboxPS = "PID   USER     COMMAND\r\n    1 root     init\r\n 4321 cctest   pktcap-uw --uplink vmnic3 -s 0 -o -\r\n14321 cctest   sh -c echo x\r\n"

func TestRunning(t *testing.T) {
	for _, tc := range []struct {
		ps   string
		pid  int
		cmd  string
		want bool
	}{
		{esxiPS, 2600005, "pktcap-uw --uplink vmnic2 -s 0 -o -", true},
		{esxiPS, 2600005, "pktcap-uw --uplink vmnic3 -s 0 -o -", false}, // PID reused by another command
		{esxiPS, 2600007, "pktcap-uw --uplink vmnic3 -s 0 -o -", false}, // the watchdog's sh -c mentions it, but is not it
		{esxiPS, 2600008, "pktcap-uw --uplink vmnic2 -s 0 -o -", false},
		{busyboxPS, 4321, "pktcap-uw --uplink vmnic3 -s 0 -o -", true},
		{busyboxPS, 321, "pktcap-uw --uplink vmnic3 -s 0 -o -", false},
		{busyboxPS, 14321, "pktcap-uw --uplink vmnic3 -s 0 -o -", false},
		{"100 root /bin/pktcap-uw --uplink vmnic3 -s 0 -o -\n", 100, "pktcap-uw --uplink vmnic3 -s 0 -o -", true},
		{"100 root xpktcap-uw --uplink vmnic3 -s 0 -o -\n", 100, "pktcap-uw --uplink vmnic3 -s 0 -o -", false},
		{"100 root pktcap-uw --uplink vmnic3 -s 0 -o -x\n", 100, "pktcap-uw --uplink vmnic3 -s 0 -o -", false},
		{"100 root pktcap-uw --uplink vmnic3 -s 0 -o - \n", 100, "pktcap-uw --uplink vmnic3 -s 0 -o -", true},
	} {
		if got := running(parsePS(tc.ps), tc.pid, tc.cmd); got != tc.want {
			t.Errorf("running(pid %d, %q) = %v; want %v", tc.pid, tc.cmd, got, tc.want)
		}
	}
}

func TestParseListing(t *testing.T) {
	out := "file /tmp/capturectl-abcd1234-0.lease capturectl-lease v1 pid=2600005 start=1700000000 run=abcd1234 point=esx02/vmnic2/rx deadline=/tmp/capturectl-abcd1234.deadline cmd=pktcap-uw --uplink vmnic2 -s 0 -o -\n" +
		"file /tmp/capturectl-abcd1234-1.lease garbage\n" +
		"file /tmp/capturectl-zzzz9999-0.lease capturectl-lease v1 pid=77 start=1 run=abcd1234 point=x deadline=y cmd=pktcap-uw -o -\n" +
		"file /tmp/capturectl-a;rm -rf x.lease capturectl-lease v1 pid=77 start=1 run=abcd1234 point=x deadline=y cmd=pktcap-uw -o -\n" +
		"file /tmp/capturectl-abcd1234.deadline 1700000060\n" +
		"file /tmp/capturectl-ffff0000.deadline junk\n" +
		"file /tmp/capturectl-ffff0000.deadline.4711 17\n" +
		"now 1700000030\nps\n" + esxiPS
	ls, err := parseListing(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Lease{File: "/tmp/capturectl-abcd1234-0.lease", PID: 2600005, Start: 1700000000, Run: "abcd1234",
		Point: "esx02/vmnic2/rx", Deadline: 1700000060, Cmd: "pktcap-uw --uplink vmnic2 -s 0 -o -"}
	if len(ls.leases) != 1 || ls.leases[0] != want {
		t.Errorf("leases %+v; want [%+v]", ls.leases, want)
	}
	if !slices.Equal(ls.bad, []string{"/tmp/capturectl-abcd1234-1.lease", "/tmp/capturectl-zzzz9999-0.lease"}) {
		t.Errorf("bad leases %v", ls.bad)
	}
	// A deadline that holds no number is unknown, not expired (0).
	if ls.now != 1700000030 || ls.deadlines["ffff0000"] != deadlineUnknown || len(ls.deadlines) != 2 || len(ls.ps) != 4 {
		t.Errorf("now %d deadlines %v ps %d; want ffff0000 unknown (%d)", ls.now, ls.deadlines, len(ls.ps), deadlineUnknown)
	}
	if !slices.Equal(ls.temps["ffff0000"], []string{"/tmp/capturectl-ffff0000.deadline.4711"}) || len(ls.temps) != 1 {
		t.Errorf("temporary deadline files %v; want ffff0000's", ls.temps)
	}
	for _, bad := range []string{"", "now 1\n", "file x y\nps\n", "now x\nps\n"} {
		if _, err := parseListing(bad); err == nil {
			t.Errorf("parseListing(%q): no error", bad)
		}
	}
}

func FuzzParseListing(f *testing.F) {
	f.Add("file /tmp/capturectl-abcd1234-0.lease capturectl-lease v1 pid=5 start=1 run=abcd1234 point=p deadline=d cmd=pktcap-uw -o -\nfile /tmp/capturectl-abcd1234.deadline 9\nnow 3\nps\n" + esxiPS)
	f.Add("now 1\nps\n" + busyboxPS)
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := parseListing(s)
		if err != nil {
			return
		}
		for _, l := range ls.leases {
			// Whatever the host says, what reaches a command line is plain.
			if !reLeaseFile.MatchString(l.File) || !reRunID.MatchString(l.Run) || l.PID <= 1 || !strings.HasPrefix(l.Cmd, "pktcap-uw ") {
				t.Errorf("lease %+v from %q", l, s)
			}
		}
		for run := range ls.deadlines {
			if !reRunID.MatchString(run) {
				t.Errorf("deadline run %q from %q", run, s)
			}
		}
	})
}

// The start script, its watchdog and the listing run in Debian's busybox
// ash as they do in ESXi's (the lab): the watchdog stops a "pktcap-uw"
// past the run's deadline and removes its lease; the listing finds leases.
func TestScriptsInBusybox(t *testing.T) {
	_, run, sh := busyboxSandbox(t)
	if out, err := sh(setDeadlineScript(run, 3)).Output(); err != nil {
		t.Fatalf("deadline: %v", err)
	} else if _, err := strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
		t.Fatalf("deadline script printed %q", out)
	}
	cmdline := "pktcap-uw --uplink vmnic2 -s 0 -o -"
	c := sh(startScript(run, 0, "h/vmnic2/rx", time.Now().Unix(), 3, cmdline))
	stderr, _ := c.StderrPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// one Read may return part of the line: read up to its end
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, pidTag)))
	if err != nil || pid != c.Process.Pid {
		t.Fatalf("PID line %q; want %s%d", line, pidTag, c.Process.Pid)
	}
	time.Sleep(300 * time.Millisecond)
	out, err := sh(listScript).Output()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := parseListing(string(out))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ls.leases, func(l Lease) bool { return l.Run == run })
	if i < 0 || ls.leases[i].PID != pid || ls.leases[i].Cmd != cmdline || ls.leases[i].Deadline == 0 || !running(ls.ps, pid, cmdline) {
		t.Fatalf("listing: leases %+v; want ours with pid %d running\n%s", ls.leases, pid, out)
	}
	// Past the deadline (3 s), checked every 2 s, SIGINT ends it.
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGINT {
			t.Errorf("stand-in ended with %v; want SIGINT", err)
		}
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		t.Fatal("the watchdog did not stop the capture after its deadline")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(leaseFile(run, 0)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watchdog did not remove the lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last (here the only) capture of the run ended: its watchdog
	// removes the run's deadline too, after the lease.
	for {
		if _, err := os.Stat(deadlineFile(run)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watchdog of the run's last capture did not remove the deadline file")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
