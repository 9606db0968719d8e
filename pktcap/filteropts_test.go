package pktcap

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, c := range []struct {
		in   map[string]string
		args string // the pktcap-uw options written for it
		err  string
	}{
		{in: map[string]string{"proto": "17"}, args: "--proto 0x11"},
		{in: map[string]string{"proto": "0x11"}, args: "--proto 0x11"},
		{in: map[string]string{"proto": "0X01"}, args: "--proto 0x01"},
		{in: map[string]string{"proto": "1"}, args: "--proto 0x01"},
		{in: map[string]string{"ethtype": "0x0806"}, args: "--ethtype 0x0806"},
		{in: map[string]string{"ethtype": "2054"}, args: "--ethtype 0x0806"},
		{in: map[string]string{"ip": "10.0.0.1", "vlan": "100"}, args: "--vlan 100 --ip 10.0.0.1"},
		{in: map[string]string{"mac": "00:50:56:01:02:03"}, args: "--mac 00:50:56:01:02:03"},
		{in: map[string]string{}, args: ""},
		{in: map[string]string{"proto": "256"}, err: `--proto: bad value "256"`},
		{in: map[string]string{"proto": "010"}, err: `--proto: bad value "010": want a decimal number or 0x`},
		{in: map[string]string{"proto": "udp"}, err: `--proto: bad value "udp"`},
		{in: map[string]string{"proto": "-1"}, err: `--proto: bad value "-1"`},
		{in: map[string]string{"proto": " "}, err: `--proto: empty value`},
		{in: map[string]string{"vlan": "99999"}, err: `--vlan: bad value "99999"`},
		{in: map[string]string{"srcip": "fe80::1"}, err: `--srcip: bad value`},
		{in: map[string]string{"port": "80"}, err: `unknown filter "port" (want one of proto, ethtype,`},
		{in: map[string]string{"capture": "VnicRx"}, err: `unknown filter "capture"`},
	} {
		f, err := ParseFilter(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v; want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		if got := strings.Join(f.appendArgs(nil), " "); got != c.args {
			t.Errorf("%v: args %q; want %q", c.in, got, c.args)
		}
	}
	f, _ := ParseFilter(map[string]string{"srcip": "10.1.0.0/16"})
	if f.SrcIP.V != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("srcip %v", f.SrcIP)
	}
}

// Every filter option ParseFilter takes is a pktcap-uw option ParseArgs
// knows (so what capturectl accepts, the tool accepts).
func TestFilterOptionsArePktcapOptions(t *testing.T) {
	for _, o := range FilterOptions() {
		if lookup(specs(&Options{}), o.Name, false) == nil || o.Help == "" {
			t.Errorf("filter option %q: not a pktcap-uw option, or no help", o.Name)
		}
	}
}
