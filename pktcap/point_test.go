package pktcap

import "testing"

func TestParsePoint(t *testing.T) {
	for _, p := range Points() {
		got, err := ParsePoint(string(p))
		if err != nil || got != p {
			t.Errorf("ParsePoint(%q): got %q, %v", p, got, err)
		}
	}
	for _, s := range []string{"UplinkRcvKernel0", "vnicrx", "", "VnicRx;reboot"} {
		_, err := ParsePoint(s)
		if want := "No such capture point: " + s; err == nil || err.Error() != want {
			t.Errorf("ParsePoint(%q): got %v; want %q", s, err, want)
		}
	}
}

func TestPointStage(t *testing.T) {
	tests := []struct {
		p    Point
		want Stage
	}{
		{UplinkRcv, StageUplinkRx},
		{UplinkRcvKernel, StageUplinkRx},
		{EtherswitchDispath, StageUplinkRx},
		{PortOutput, StagePortOutput},
		{VnicRx, StageVnicRx},
		{Vmxnet3Rx, StageVnicRx},
		{VnicTx, StageVnicTx},
		{Vmxnet3Tx, StageVnicTx},
		{PortInput, StagePortInput},
		{UplinkSnd, StageUplinkTx},
		{UplinkSndKernel, StageUplinkTx},
		{Drop, StageDrop},
		{EtherswitchOutput, StageOther},
		{PktFree, StageOther},
		{VdrRxLeaf, StageOther},
		{"SomethingNew", StageOther},
	}
	for _, tt := range tests {
		if got := tt.p.Stage(); got != tt.want {
			t.Errorf("%s.Stage(): got %v; want %v", tt.p, got, tt.want)
		}
	}
	if got := StageVnicRx.String(); got != "vnic-rx" {
		t.Errorf("got %q; want vnic-rx", got)
	}
	if got := Stage(99).String(); got != "Stage(99)" {
		t.Errorf("got %q; want Stage(99)", got)
	}
}
