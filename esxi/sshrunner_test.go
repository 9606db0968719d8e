package esxi

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
)

// SSHRunner keeps one connection per host: concurrent first commands on a
// host may both dial, but one connection is kept and the other closed;
// Close closes what is kept (the lab's leak check sees no session left).
func TestSSHRunnerOneConnectionPerHost(t *testing.T) {
	l := labtest.Start(t, "../configs/lab-article.yaml", lab.Options{NoTraffic: true})
	known := labtest.KnownHostsFile(t, l)
	var dials atomic.Int32
	r := &SSHRunner{Dial: func(ctx context.Context, host string) (*SSHClient, error) {
		dials.Add(1)
		h, err := l.Host(host)
		if err != nil {
			return nil, err
		}
		return Dial(ctx, labConfig(t, h, known))
	}}
	defer r.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, host := range []string{"esx01", "esx02"} {
				out, err := r.Run(t.Context(), host, "hostname")
				if err != nil || out != host+"\n" {
					t.Errorf("%s: hostname: %q, %v", host, out, err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(r.clients); n != 2 {
		t.Errorf("%d connections kept; want one per host", n)
	}
	if _, err := r.Run(t.Context(), "esx99", "true"); err == nil {
		t.Error("a host the lab lacks: no error")
	}
	before := dials.Load()
	if _, err := r.Run(t.Context(), "esx01", "true"); err != nil || dials.Load() != before {
		t.Errorf("a later command dialled again (%d dials, was %d): %v", dials.Load(), before, err)
	}
}
