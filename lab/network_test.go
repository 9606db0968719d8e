package lab

import (
	"context"
	"github.com/capturectl/capturectl/pktcap"
	"testing"
	"time"

	"github.com/capturectl/capturectl/internal/testenv"
)

func loadTestConfig(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newTestNetwork is labtest.Network for the lab's own tests (which cannot
// import labtest): the network model of a topology file, closed at
// cleanup, then the goroutine-leak check.
func newTestNetwork(t *testing.T, path string) *Network {
	t.Helper()
	cfg := loadTestConfig(t, path)
	testenv.CheckGoroutines(t)
	n, err := NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func drain(tp *Tap) []Captured {
	var out []Captured
	for {
		select {
		case c := <-tp.C:
			out = append(out, c)
		default:
			return out
		}
	}
}

func subscribe(t *testing.T, n *Network, host string, sel Selector, filter func([]byte, int) bool) *Tap {
	t.Helper()
	tp, err := n.Subscribe(host, sel, filter, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	return tp
}

func isICMP(f []byte, _ int) bool {
	_, _, proto, _, ok := ipv4(f)
	return ok && proto == protoICMP
}

// The article's observation: echo requests to testvm2 arrive on both uplinks
// of esx02, twice at PortOutput of its port (microseconds apart), once at VnicRx.
func TestArticlePing(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-article.yaml")
	v2 := subscribe(t, n, "esx02", Selector{Point: UplinkRcv, Uplink: "vmnic2"}, isICMP)
	v3 := subscribe(t, n, "esx02", Selector{Point: UplinkRcv, Uplink: "vmnic3"}, isICMP)
	po := subscribe(t, n, "esx02", Selector{Point: PortOutput, PortID: 50331657}, isICMP)
	rx := subscribe(t, n, "esx02", Selector{Point: VnicRx, PortID: 50331657}, isICMP)
	res, err := n.Ping(context.Background(), "testvm1", "testvm2", 3, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Received != 3 {
		t.Fatalf("ping: got %+v; want 3 sent, 3 received", res)
	}
	got2, got3, gotPO, gotRx := drain(v2), drain(v3), drain(po), drain(rx)
	if len(got2) != 3 || len(got3) != 3 {
		t.Errorf("uplink rx: got vmnic2 %d, vmnic3 %d; want 3 each", len(got2), len(got3))
	}
	for _, c := range got2 {
		if c.VLAN != 100 {
			t.Errorf("uplink VLAN: got %d; want 100", c.VLAN)
		}
	}
	if len(gotPO) != 6 {
		t.Fatalf("PortOutput: got %d frames; want 6 (each echo request twice)", len(gotPO))
	}
	for i := 0; i < 6; i += 2 {
		a, b := gotPO[i], gotPO[i+1]
		if string(a.Data) != string(b.Data) {
			t.Errorf("PortOutput pair %d: bytes differ", i/2)
		}
		if d := b.Time.Sub(a.Time); d <= 0 || d > 100*time.Microsecond {
			t.Errorf("PortOutput pair %d: %v apart; want a few µs", i/2, d)
		}
	}
	if len(gotRx) != 3 {
		t.Errorf("VnicRx: got %d; want 3", len(gotRx))
	}
	for _, c := range gotRx {
		if c.VLAN != -1 || len(c.Data) != 98 {
			t.Errorf("VnicRx frame: VLAN %d len %d; want -1, 98", c.VLAN, len(c.Data))
		}
	}
}

// Subscribe takes pktcap.Stage, the stage type capturectl uses: a stage
// the lab does not emulate is an error, not a panic or a silent tap.
func TestSubscribeStages(t *testing.T) {
	n := newTestNetwork(t, "../configs/lab-article.yaml")
	_, port, err := n.FindPort("testvm2", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sel Selector
		ok  bool
	}{
		{Selector{Point: pktcap.StageUplinkRx, Uplink: "vmnic2"}, true},
		{Selector{Point: pktcap.StagePortOutput, PortID: port.PortID}, true},
		{Selector{Point: pktcap.StageVnicRx, PortID: port.PortID}, true},
		{Selector{Point: pktcap.StageDrop}, true},
		{Selector{Point: pktcap.StageVnicRx, Uplink: "vmnic2"}, false},
		{Selector{Point: pktcap.StageUplinkRx, PortID: port.PortID}, false},
		{Selector{Point: pktcap.StageOther, Uplink: "vmnic2"}, false},
		{Selector{Point: pktcap.NumStages, PortID: port.PortID}, false},
		{Selector{Point: -1, Uplink: "vmnic2"}, false},
	} {
		tap, err := n.Subscribe("esx02", c.sel, nil, 1)
		if (err == nil) != c.ok {
			t.Errorf("%+v: error %v; want ok=%v", c.sel, err, c.ok)
		}
		if tap != nil {
			tap.Close()
		}
	}
}
