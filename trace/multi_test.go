package trace

import (
	"errors"
	"strings"
	"testing"

	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/session"
)

func vnic(host string, port uint32) Chosen {
	return Chosen{Target: esxi.Target{VM: "vm" + string(rune('a'+port%26)), NIC: "Network adapter 1", Host: host, PortID: port,
		Uplinks: []esxi.Uplink{{Name: "vmnic2"}, {Name: "vmnic3"}}}}
}

// Three vNICs with two uplinks fit a host (2 + 3×2 = 8 points); a fourth
// is refused by MultiConfig, saying why, and Batches puts it in a second
// run; vNICs of other hosts get runs of their own.
func TestHostLimitAndBatches(t *testing.T) {
	var cs []Chosen
	for p := uint32(1); p <= 4; p++ {
		cs = append(cs, vnic("esx01", p))
	}
	cs = append(cs, vnic("esx02", 9))
	if _, err := MultiConfig(nil, cs[:3], session.Plan{}, false); err != nil {
		t.Fatalf("three vNICs on one host: %v", err)
	}
	_, err := MultiConfig(nil, cs[:4], session.Plan{}, false)
	if !errors.Is(err, ErrTooManyPoints) || !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), "esx01 needs 10") || !strings.Contains(err.Error(), "MaxSessions") {
		t.Fatalf("four vNICs on one host: %v", err)
	}
	var sizes []int
	for _, b := range Batches(cs) {
		sizes = append(sizes, len(b))
		for _, c := range b[1:] {
			if c.Target.Host != b[0].Target.Host {
				t.Errorf("a run over two hosts: %v", b)
			}
		}
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 1 || sizes[2] != 1 {
		t.Errorf("batches %v; want [3 1 1]", sizes)
	}
	cfg, _ := MultiConfig(nil, cs[:2], session.Plan{}, false)
	d := Describe(cfg)
	if len(d) != 1 || len(d[0].Points) != 6 || len(d[0].Points[0].For) != 2 || len(d[0].Points[2].For) != 1 ||
		!strings.HasPrefix(d[0].Points[0].Command, "pktcap-uw --uplink vmnic2") {
		t.Errorf("describe: %+v", d)
	}
}
