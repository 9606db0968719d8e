package trace

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/session"
)

// benchChildEnv carries what the trace subprocess of BenchmarkPathTrace
// needs.
const benchChildEnv = "CAPTURECTL_TRACE_BENCH_CHILD"

type benchChild struct {
	Hosts      []lab.HostInfo
	KnownHosts string
	A, B       esxi.Target
	Plan       session.Plan
}

type benchChildResult struct {
	Points   []benchPoint
	Requests correlate.PathVerdictCounts
}

type benchPoint struct {
	Name    string
	Frames  uint64
	Dropped int
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(benchChildEnv); cfg != "" {
		os.Exit(benchChildMain(cfg))
	}
	os.Exit(m.Run())
}

// benchChildMain is trace --vm B --from A in miniature: a whole-path
// trace until SIGINT, printing what each point received and the verdicts.
func benchChildMain(cfgJSON string) int {
	var cfg benchChild
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if f := os.Getenv("CAPTURECTL_CHILD_CPUPROFILE"); f != "" {
		if pf, err := os.Create(f); err == nil {
			pprof.StartCPUProfile(pf)
			defer pprof.StopCPUProfile()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dial := func(ctx context.Context, host string) (*esxi.SSHClient, error) {
		for _, h := range cfg.Hosts {
			if h.Name == host {
				return esxi.Dial(ctx, esxi.SSHConfig{Host: h.Name, Addr: h.Addr, User: h.User, Password: h.Password,
					KnownHostsFile: cfg.KnownHosts, KeyFiles: []string{}, NoAgent: true, Timeout: 10 * time.Second,
					Getenv: func(string) string { return "" }})
			}
		}
		return nil, fmt.Errorf("no host %s", host)
	}
	res, err := Run(ctx, Config{Target: cfg.B, From: &From{Target: &cfg.A}, Plan: cfg.Plan, Session: session.Options{Dial: dial}, Poll: -1,
		OnStart: func(*Live) { fmt.Println("started") }})
	if res == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var out benchChildResult
	for _, p := range res.Session.Points {
		out.Points = append(out.Points, benchPoint{p.Name, p.Frames, p.Dropped})
	}
	for _, f := range res.Path.Flows {
		if f.Direction == correlate.AtoB && f.Key.Proto == 17 {
			for v, n := range f.Counts {
				out.Requests[v] += n
			}
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

// BenchmarkPathTrace: trace --vm testvm2 --from testvm1 on lab-path.yaml
// without its loss, two hosts × 8 points, while testvm1 sends UDP frames
// of 200 bytes to testvm2 at a rate that makes 100,000 frames/s at the
// points in all (each frame is seen at 6 of them: esx01's VnicTx,
// PortInput and vmnic2/tx, esx02's vmnic2/rx, PortOutput and VnicRx), or
// CAPTURECTL_BENCH_RATE in all. The trace runs in a subprocess
// (capturectl's side alone: SSH, pcap, the merge, the receiver's and the
// path's correlators), whose CPU time is reported per second ("cores")
// and per observation ("obs/cpu-s"), with the frames the hosts' pktcap-uw
// reported dropped ("lab-drops") and the share of frames delivered.
func BenchmarkPathTrace(b *testing.B) {
	total := 100000
	if n, err := strconv.Atoi(os.Getenv("CAPTURECTL_BENCH_RATE")); err == nil && n > 0 {
		total = n
	}
	rate, secs := total/6, 3
	l := labtest.Start(b, "../configs/lab-path.yaml", lab.Options{VCenter: true, NoTraffic: true})
	if err := l.Net.SetPortLoss("Gi1/0/3", 0); err != nil {
		b.Fatal(err)
	}
	vc := l.VCenter
	client, err := esxi.Connect(b.Context(), esxi.Config{URL: vc.URL().String(), Username: vc.Username(), Password: vc.Password(), CACerts: vc.CertificateFile()})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close(context.Background())
	disc := func(vm string) esxi.Target {
		ts, err := client.Discover(b.Context(), vm, esxi.DiscoverOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return ts[0]
	}
	bT, aT := disc("testvm2"), disc("testvm1")
	plan, _, err := PathPlan(bT, aT, session.Plan{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(benchChild{Hosts: l.Hosts(), KnownHosts: labtest.KnownHostsFile(b, l), A: aT, B: bT, Plan: plan})
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchChildEnv+"="+string(cfg))
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		if !sc.Scan() || sc.Text() != "started" {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatalf("child did not start: %q", sc.Text())
		}
		start := time.Now()
		sent, err := l.Net.Generate(context.Background(), lab.GenSpec{From: "testvm1", To: "testvm2", Rate: rate, Count: rate * secs, Size: 200})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // let the last frames through
		cmd.Process.Signal(syscall.SIGINT)
		var res benchChildResult
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "{") {
				json.Unmarshal(sc.Bytes(), &res)
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		var obs uint64
		drops := 0
		for _, p := range res.Points {
			obs += p.Frames
			drops += max(p.Dropped, 0)
			b.Logf("%s: received %d, pktcap-uw dropped %d", p.Name, p.Frames, p.Dropped)
		}
		delivered := float64(res.Requests[correlate.PathDelivered]) / float64(max(sent, 1))
		b.Logf("sent %d frames in %v (%d observations); capturectl used %v CPU (%.2f cores); UDP frames A to B: %v",
			sent, wall, obs, cpu, cpu.Seconds()/wall.Seconds(), res.Requests.ByID())
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
		b.ReportMetric(float64(obs)/wall.Seconds(), "obs/s")
		b.ReportMetric(float64(obs)/cpu.Seconds(), "obs/cpu-s")
		b.ReportMetric(float64(drops), "lab-drops")
		b.ReportMetric(delivered, "delivered")
	}
}
