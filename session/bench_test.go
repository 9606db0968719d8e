package session

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/capturectl/capturectl/pktcap"
)

// BenchmarkCapture4Points: the default four points of testvm2's port while
// testvm1 sends 100,000 UDP frames/s of 200 bytes to testvm2 (esx02's
// vmnic2 and vmnic3 see each frame once, PortOutput twice, VnicRx once:
// 500,000 frames/s in all). The capture runs in a subprocess (capturectl's
// side alone, writing a pcapng file flushed per frame) whose CPU time is
// reported per second of capture ("cores"), with the frames received per
// second and the drops the lab's pktcap-uw reported ("lab-drops": frames
// it lost because capturectl did not read fast enough), and the child's
// own heap allocations per frame and peak resident set. (-benchmem's B/op
// and allocs/op are the benchmark process's: the lab's, not capturectl's.)
func BenchmarkCapture4Points(b *testing.B) {
	rate, size, secs := benchRate(), 200, 3
	l := labtest.Start(b, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	plan := articlePlan(b, l)
	plan.Filter = pktcap.Filter{}
	for b.Loop() {
		cmd, _, sc := startChildPlan(b, l, plan, time.Minute)
		start := time.Now()
		sent, err := l.Net.Generate(context.Background(), lab.GenSpec{From: "testvm1", To: "testvm2", Rate: rate, Count: rate * secs, Size: size})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // let the last frames through
		cmd.Process.Signal(syscall.SIGINT)
		var res []childStats
		var mem childMem
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "[") {
				json.Unmarshal(sc.Bytes(), &res)
			}
			if m, ok := strings.CutPrefix(sc.Text(), "mem "); ok {
				json.Unmarshal([]byte(m), &mem)
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		var frames uint64
		drops := 0
		for _, p := range res {
			frames += p.Frames
			drops += max(p.Dropped, 0)
			b.Logf("%s: received %d, pktcap-uw dumped %d dropped %d", p.Name, p.Frames, p.Dumped, p.Dropped)
		}
		b.Logf("sent %d frames in %v; capturectl used %v CPU in %v (%.2f cores)", sent, wall, cpu, wall, cpu.Seconds()/wall.Seconds())
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
		b.ReportMetric(float64(frames)/wall.Seconds(), "frames/s")
		b.ReportMetric(float64(drops), "lab-drops")
		if frames > 0 {
			b.ReportMetric(float64(mem.Mallocs)/float64(frames), "child-allocs/frame")
		}
		b.ReportMetric(float64(mem.PeakKiB)/1024, "child-peak-MiB")
	}
}

// benchRate is the generator's rate: 100,000 frames/s, or
// CAPTURECTL_BENCH_RATE.
func benchRate() int {
	if n, err := strconv.Atoi(os.Getenv("CAPTURECTL_BENCH_RATE")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// BenchmarkReorder: the time-ordered pcapng's reorder alone, four points'
// streams of 200-byte frames arriving in bursts of 64 with each stream a
// little behind the next; per frame written (to a writer that only
// counts).
func BenchmarkReorder(b *testing.B) {
	const points, burst = 4, 64
	data := make([]byte, 200)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixNano()
	written := 0
	r := newReorder(points, func(pktcap.Observation) error { written++; return nil })
	at := make([]int64, points)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p := (n / burst) % points
		at[p] += 2000 // 2 µs apart: 500 kfps per point
		if err := r.push(pktcap.Observation{Point: p, Time: time.Unix(0, t0+at[p]-int64(p)*50_000), Data: data, OrigLen: len(data), VLAN: -1}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := r.flush(); err != nil {
		b.Fatal(err)
	}
	if written != n || r.Late != 0 || r.Forced != 0 {
		b.Fatalf("%d of %d written, late %d, forced %d", written, n, r.Late, r.Forced)
	}
}
