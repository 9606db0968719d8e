package pktcap

import (
	"strings"
	"testing"
)

func TestLocation(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Location
		out  string // String of the result; "" means in
	}{
		{"esx02/vmnic2/rx", Location{Host: "esx02", Uplink: "vmnic2"}, ""},
		{"esx02/vmnic2/tx", Location{Host: "esx02", Uplink: "vmnic2", Point: UplinkSnd}, ""},
		{"esx02/vmnic2/UplinkSnd", Location{Host: "esx02", Uplink: "vmnic2", Point: UplinkSnd}, "esx02/vmnic2/tx"},
		{"esx02/vmnic2/UplinkRcvKernel", Location{Host: "esx02", Uplink: "vmnic2", Point: UplinkRcvKernel}, ""},
		{"esx02/50331657/VnicRx", Location{Host: "esx02", PortID: 50331657, Point: VnicRx}, ""},
		{"esx02/2214592517/PortOutput", Location{Host: "esx02", PortID: 2214592517, Point: PortOutput}, ""},
		{"esx02/drop", Location{Host: "esx02", Point: Drop}, ""},
		{"vmnic3/rx", Location{Uplink: "vmnic3"}, "/vmnic3/rx"},
		{"50331657/VnicRx", Location{PortID: 50331657, Point: VnicRx}, "/50331657/VnicRx"},
		{"VnicRx", Location{Point: VnicRx}, "/?/VnicRx"},
		{"esx02.example.com/vusb0/rx", Location{Host: "esx02.example.com", Uplink: "vusb0"}, ""},
	} {
		got, err := ParseLocation(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		out := c.out
		if out == "" {
			out = c.in
		}
		if s := got.String(); s != out {
			t.Errorf("%+v.String() = %q; want %q", got, s, out)
		}
	}
	for in, want := range map[string]string{
		"":                        "an empty part",
		"esx02//VnicRx":           "an empty part",
		"a/b/c/d":                 "too many parts",
		"esx02/vmnic2/bogus":      "No such capture point: bogus",
		"esx02/port9/VnicRx":      `"port9" is neither vmnicN nor a port ID`,
		"esx02/UplinkRcv":         "an uplink point needs the uplink",
		"esx02/9999999999/VnicRx": "bad port ID",
		"esx02/50331657/rx":       "No such capture point: rx",
	} {
		if _, err := ParseLocation(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLocation(%q): %v; want an error containing %q", in, err, want)
		}
	}
}

// What ParseLocation reads, String writes back so that it reads the same.
func FuzzLocation(f *testing.F) {
	for _, s := range []string{"esx02/vmnic2/rx", "esx02/50331657/VnicRx", "esx02/drop", "VnicRx", "vmnic2/tx", "h/vmnic1/UplinkSnd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocation(s)
		if err != nil || l.Host == "" || (l.Uplink == "" && l.PortID == 0 && l.Point != Drop) {
			return // a partial name (saved captures'): the grammar writes only whole ones
		}
		again, err := ParseLocation(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseLocation(%q) = %+v, written %q, read back %+v, %v", s, l, l.String(), again, err)
		}
	})
}

// An uplink's own PortInput and PortOutput are not a VM port's stages.
func TestLocationStageOnUplink(t *testing.T) {
	for s, want := range map[string]Stage{
		"esx02/vmnic2/rx":              StageUplinkRx,
		"esx02/vmnic2/tx":              StageUplinkTx,
		"esx02/vmnic2/UplinkRcvKernel": StageUplinkRx,
		"esx02/vmnic2/PortOutput":      StageOther,
		"esx02/vmnic2/PortInput":       StageOther,
		"esx02/50331657/PortOutput":    StagePortOutput,
	} {
		l, err := ParseLocation(s)
		if err != nil || l.Stage() != want {
			t.Errorf("%s: %v %v; want %v", s, l.Stage(), err, want)
		}
	}
}
