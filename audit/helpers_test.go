package audit

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/lab/labtest"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
)

// Connections for the tests: vcsim models and the lab's vCenter, through
// esxi.Connect as the command connects.

const simUser, simPass = "user", "pass"

// startSim creates the model and serves it on 127.0.0.1 over TLS.
func startSim(t *testing.T, m *simulator.Model) (*simulator.Server, *simulator.Model) {
	t.Helper()
	if err := m.Create(); err != nil {
		t.Fatalf("vcsim: %v", err)
	}
	t.Cleanup(m.Remove)
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(simUser, simPass)}
	s := m.Service.NewServer()
	t.Cleanup(s.Close)
	return s, m
}

// connectSim logs in to a vcsim server, pinning its certificate.
func connectSim(t *testing.T, s *simulator.Server) *esxi.Client {
	t.Helper()
	u := (&url.URL{Scheme: "https", Host: s.URL.Host, Path: "/sdk"}).String()
	c, err := esxi.Connect(context.Background(), esxi.Config{URL: u, Username: simUser, Password: simPass, Thumbprint: s.CertificateInfo().ThumbprintSHA256})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// startVCLab serves a topology through the lab's vCenter and logs in.
func startVCLab(t *testing.T, cfgPath string) (*lab.Lab, *esxi.Client) {
	t.Helper()
	l := labtest.Start(t, cfgPath, lab.Options{VCenter: true, NoTraffic: true})
	vc := l.VCenter
	c, err := esxi.Connect(context.Background(), esxi.Config{URL: vc.URL().String(), Username: vc.Username(), Password: vc.Password(), Thumbprint: vc.Thumbprint()})
	if err != nil {
		t.Fatalf("connect to the lab's vCenter: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return l, c
}

// callLog records the API calls made through a client.
type callLog struct {
	rt soap.RoundTripper

	mu    sync.Mutex
	calls []string
}

func (l *callLog) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	name := fmt.Sprintf("%T", req)
	name = strings.TrimSuffix(name[strings.LastIndex(name, ".")+1:], "Body")
	l.mu.Lock()
	l.calls = append(l.calls, name)
	l.mu.Unlock()
	return l.rt.RoundTrip(ctx, req, res)
}

func (l *callLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// logCalls records the calls made through c from now on.
func logCalls(c *esxi.Client) *callLog {
	l := &callLog{rt: c.Vim().RoundTripper}
	c.Vim().RoundTripper = l
	return l
}
