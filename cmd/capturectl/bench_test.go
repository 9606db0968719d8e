package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/capturectl/capturectl/configs"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/pktcap"
)

var benchPoints = []struct {
	name string
	sel  lab.Selector
}{
	{"esx02/vmnic2/rx", lab.Selector{Point: lab.UplinkRcv, Uplink: "vmnic2"}},
	{"esx02/vmnic3/rx", lab.Selector{Point: lab.UplinkRcv, Uplink: "vmnic3"}},
	{"esx02/50331657/PortOutput", lab.Selector{Point: lab.PortOutput, PortID: 50331657}},
	{"esx02/50331657/VnicRx", lab.Selector{Point: lab.VnicRx, PortID: 50331657}},
}

// benchFiles records (once, cached in the temp dir) the article's traffic
// offline: frames from testvm1 to testvm2, captured at both uplinks (one
// mirrored), PortOutput (each frame twice) and VnicRx.
func benchFiles(tb testing.TB, frames int) []string {
	// v2: each point in time order (files of an older recorder are not reused)
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("capturectl-bench-v2-%d", frames))
	var files []string
	for _, p := range benchPoints {
		files = append(files, filepath.Join(dir, filepath.Base(filepath.Dir(p.name))+"-"+filepath.Base(p.name)+".pcap"))
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return files
	}
	os.MkdirAll(dir, 0o755)
	cfg, _, err := loadTopology(configs.Default)
	if err != nil {
		tb.Fatal(err)
	}
	spec := lab.OfflineSpec{Host: "esx02", From: "testvm1", To: "testvm2", Count: frames, Size: 64}
	var fs []*os.File
	for i, p := range benchPoints {
		f, err := os.Create(files[i])
		if err != nil {
			tb.Fatal(err)
		}
		fs = append(fs, f)
		spec.Points = append(spec.Points, p.sel)
		spec.Out = append(spec.Out, f)
	}
	if err := lab.RecordOffline(cfg, spec); err != nil {
		tb.Fatal(err)
	}
	for _, f := range fs {
		f.Close()
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o644)
	return files
}

// benchPcapng merges the benchmark's pcap files into one pcapng with an
// interface per point, as trace writes it (cached next to them).
func benchPcapng(tb testing.TB, files []string) string {
	name := filepath.Join(filepath.Dir(files[0]), "all.pcapng")
	if _, err := os.Stat(name + ".done"); err == nil {
		return name
	}
	var ifaces []pktcap.NgInterface
	var next []func() (pktcap.Observation, bool, error)
	for i, p := range benchPoints {
		ifaces = append(ifaces, pktcap.NgInterface{Name: p.name})
		f, err := os.Open(files[i])
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		r, err := pktcap.NewPcapReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		next = append(next, func() (pktcap.Observation, bool, error) {
			t, data, origLen, err := r.NextPacket()
			if err != nil {
				return pktcap.Observation{}, false, nil
			}
			return pktcap.Observation{Point: i, Time: t, Data: append([]byte(nil), data...), OrigLen: origLen}, true, nil
		})
	}
	out, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	w, err := pktcap.NewNgWriter(bw, ifaces)
	if err != nil {
		tb.Fatal(err)
	}
	heads := make([]*pktcap.Observation, len(next))
	for i := range next {
		if o, ok, _ := next[i](); ok {
			heads[i] = &o
		}
	}
	for {
		bi := -1
		for i, h := range heads {
			if h != nil && (bi < 0 || h.Time.Before(heads[bi].Time)) {
				bi = i
			}
		}
		if bi < 0 {
			break
		}
		if err := w.WriteObservation(*heads[bi]); err != nil {
			tb.Fatal(err)
		}
		if o, ok, _ := next[bi](); ok {
			heads[bi] = &o
		} else {
			heads[bi] = nil
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	out.Close()
	os.WriteFile(name+".done", nil, 0o644)
	return name
}

func analyzeArgs(files []string) []string {
	// the offline recorder drops nothing; pcap files cannot say so
	args := []string{"analyze", "--team-uplink", "vmnic2", "--dropped", "*=0"}
	for i, p := range benchPoints {
		args = append(args, "--point", files[i]+"="+p.name)
	}
	return append(args, files...)
}

// BenchmarkAnalyze compares, in one run and at the same GOMAXPROCS
// (-cpu), reading the four pcap files with pcapgo alone (one goroutine per
// file, as analyze reads them) against analyze correlating them: in
// process, from one pcapng, and as a separate process for its CPU time
// per observation and its peak memory. CAPTURECTL_BENCH_FRAMES sets the
// frames per uplink file (default 1,000,000; PortOutput holds twice as
// many).
//
// Go's testing runs each sub-benchmark for every -cpu value before the
// next sub-benchmark, so the read time is kept per GOMAXPROCS: a ratio
// divides by the read time measured with the same number of cores.
func BenchmarkAnalyze(b *testing.B) {
	frames := 1_000_000
	if s := os.Getenv("CAPTURECTL_BENCH_FRAMES"); s != "" {
		frames, _ = strconv.Atoi(s)
	}
	files := benchFiles(b, frames)
	obs := 5 * frames
	readNs := map[int]float64{} // GOMAXPROCS -> ns per read of all files
	ratio := func(b *testing.B, ns float64) {
		if r := readNs[runtime.GOMAXPROCS(0)]; r > 0 {
			b.ReportMetric(ns/r, "x-read-time")
		}
	}
	b.Run("pcapgo-read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if n := readParallel(b, files); n < obs {
				b.Fatalf("read %d packets; want %d", n, obs)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		readNs[runtime.GOMAXPROCS(0)] = ns
		b.ReportMetric(float64(obs)/(ns/1e9), "obs/s")
	})
	b.Run("analyze", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			err := run(context.Background(), analyzeArgs(files), nil, io.Discard, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(obs)/(ns/1e9), "obs/s")
		ratio(b, ns)
	})
	b.Run("analyze-pcapng", func(b *testing.B) {
		ng := benchPcapng(b, files)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := run(context.Background(), []string{"analyze", "--team-uplink", "vmnic2", ng}, nil, io.Discard, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(obs)/(ns/1e9), "obs/s")
		ratio(b, ns)
	})
	b.Run("analyze-process", func(b *testing.B) {
		bin := filepath.Join(b.TempDir(), "capturectl")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
		b.ResetTimer()
		var peak peakRSS
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(bin, analyzeArgs(files)...)
			// the child gets the cores the benchmark runs with
			cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", runtime.GOMAXPROCS(0)))
			p, ps, err := measurePeakRSS(b, cmd)
			if err != nil {
				b.Fatal(err)
			}
			peak = peak.max(p)
			cpu += ps.UserTime() + ps.SystemTime()
		}
		peak.report(b)
		// observations per second of CPU time (all cores, user and
		// system, including the process's start and the file reading)
		b.ReportMetric(float64(obs)*float64(b.N)/cpu.Seconds(), "obs/cpu-s")
	})
}

// readParallel reads every file with pcapgo, each in a goroutine of its
// own, and returns the packets read.
func readParallel(tb testing.TB, files []string) int {
	counts := make([]int, len(files))
	var wg sync.WaitGroup
	for k, name := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(name)
			if err != nil {
				tb.Error(err)
				return
			}
			defer f.Close()
			r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
			if err != nil {
				tb.Error(err)
				return
			}
			for {
				if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
					break
				}
				counts[k]++
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// RecordOffline's files analyze to the article's verdict for every frame.
func TestOfflineRecording(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := loadTopology(configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	spec := lab.OfflineSpec{Host: "esx02", From: "testvm1", To: "testvm2", Count: 2000, Size: 64}
	var files []string
	for _, p := range benchPoints {
		name := filepath.Join(dir, fmt.Sprintf("%d.pcap", len(files)))
		f, _ := os.Create(name)
		defer f.Close()
		files = append(files, name)
		spec.Points = append(spec.Points, p.sel)
		spec.Out = append(spec.Out, f)
	}
	if err := lab.RecordOffline(cfg, spec); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCmd(t, context.Background(), analyzeArgs(files)...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2000 delivered, duplicates removed by reverse teaming\n"; !containsLine(stdout, want) {
		t.Errorf("analyze of offline files:\n%s", stdout)
	}
}

func containsLine(s, want string) bool {
	for _, l := range splitLines(s) {
		if len(l) >= len(want)-1 && l[len(l)-(len(want)-1):] == want[:len(want)-1] {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
