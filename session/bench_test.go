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
// it lost because capturectl did not read fast enough).
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
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "[") {
				json.Unmarshal(sc.Bytes(), &res)
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
