package extcap

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		want Request
	}{
		{[]string{"--extcap-interfaces", "--extcap-version=4.0"}, Request{Op: OpInterfaces, Version: "4.0"}},
		{[]string{"--extcap-interface", "capturectl", "--extcap-dlts"}, Request{Op: OpDLTs, Interface: "capturectl"}},
		{[]string{"--extcap-config", "--extcap-interface=capturectl"}, Request{Op: OpConfig, Interface: "capturectl"}},
		{[]string{"--extcap-capture-filter", "icmp", "--extcap-interface", "capturectl"}, Request{Op: OpValidateFilter, Interface: "capturectl", CaptureFilter: "icmp"}},
		{[]string{"--capture", "--extcap-interface", "capturectl", "--fifo", "/tmp/f", "--vm", "testvm2", "--insecure", "--extcap-capture-filter", "", "--duration", "5s"},
			Request{Op: OpCapture, Interface: "capturectl", Fifo: "/tmp/f", Options: []string{"--vm", "testvm2", "--insecure", "--duration", "5s"}}},
	}
	for _, tt := range tests {
		if !IsInvocation(tt.args) {
			t.Errorf("%q: not an invocation", tt.args)
		}
		got, err := Parse(tt.args)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
	for _, bad := range [][]string{
		{"--capture", "--extcap-interface", "capturectl"}, // no fifo
		{"--extcap-dlts"},                    // no interface
		{"--extcap-interface", "capturectl"}, // no request
		{"--extcap-dlts", "--extcap-config", "--extcap-interface", "x"}, // two
		{"--capture", "--extcap-interface", "capturectl", "--fifo"},     // no value
	} {
		if _, err := Parse(bad); err == nil || !strings.HasPrefix(err.Error(), "extcap: ") {
			t.Errorf("Parse(%q): err %v; want an extcap error", bad, err)
		}
	}
	if IsInvocation([]string{"capture", "--vm", "x"}) {
		t.Error("a capturectl command line taken for an extcap request")
	}
}

func TestWriters(t *testing.T) {
	var b bytes.Buffer
	WriteInterfaces(&b, Tool{Version: "1.2", Help: "https://example.invalid/x", Display: "capturectl"}, []Interface{{"capturectl", "ESXi {vSwitch}"}})
	want := "extcap {version=1.2}{help=https://example.invalid/x}{display=capturectl}\ninterface {value=capturectl}{display=ESXi (vSwitch)}\n"
	if b.String() != want {
		t.Errorf("interfaces:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	WriteDLTs(&b, []DLT{Ethernet})
	if b.String() != "dlt {number=1}{name=EN10MB}{display=Ethernet}\n" {
		t.Errorf("dlts: %q", b.String())
	}
	b.Reset()
	err := WriteConfig(&b, []Arg{
		{Call: "--vm", Display: "VM", Type: String, Required: true, Tooltip: "name, MAC or IP", Group: "Target"},
		{Call: "--mode", Display: "Mode", Type: Selector, Values: []Value{{"a", "A", true}, {"b", "B", false}}},
	})
	want = "arg {number=0}{call=--vm}{display=VM}{type=string}{required=true}{tooltip=name, MAC or IP}{group=Target}\n" +
		"arg {number=1}{call=--mode}{display=Mode}{type=selector}\n" +
		"value {arg=1}{value=a}{display=A}{default=true}\nvalue {arg=1}{value=b}{display=B}\n"
	if err != nil || b.String() != want {
		t.Errorf("config: %v\n%q\nwant\n%q", err, b.String(), want)
	}
	if err := WriteConfig(&b, []Arg{{Call: "vm"}}); err == nil {
		t.Error("a call without -- accepted")
	}
}

func TestFilterOptions(t *testing.T) {
	good := []struct {
		expr string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"icmp", map[string]string{"proto": "1"}},
		{"udp and host 10.0.0.5", map[string]string{"proto": "17", "ip": "10.0.0.5"}},
		{"src host 10.0.0.1 && dst 10.0.0.2", map[string]string{"srcip": "10.0.0.1", "dstip": "10.0.0.2"}},
		{"src net 10.0.0.0/8", map[string]string{"srcip": "10.0.0.0/8"}},
		{"ip host 10.0.0.1", map[string]string{"ip": "10.0.0.1"}},
		{"tcp port 443", map[string]string{"proto": "6", "tcpport": "443"}},
		{"tcp dst port 22 and tcp", map[string]string{"proto": "6", "dstport": "22"}},
		{"ether host 00:50:56:9d:fd:b1", map[string]string{"mac": "00:50:56:9d:fd:b1"}},
		{"ether src 00:50:56:9d:fd:b1 and vlan 100", map[string]string{"srcmac": "00:50:56:9d:fd:b1", "vlan": "100"}},
		{"arp", map[string]string{"ethtype": "0x0806"}},
		{"ether proto 0x88cc", map[string]string{"ethtype": "0x88cc"}},
		{"ip proto 17", map[string]string{"proto": "17"}},
		{"ip proto icmp", map[string]string{"proto": "1"}},
		{"IP and ICMP", map[string]string{"ethtype": "0x0800", "proto": "1"}},
	}
	for _, tt := range good {
		got, err := FilterOptions(tt.expr)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FilterOptions(%q) = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"icmp or arp":                     "'or'",
		"not arp":                         "'not'",
		"! arp":                           "'not'",
		"(icmp)":                          "parentheses",
		"port 80":                         `"port"`,
		"udp port 53":                     "TCP ports only",
		"src port 80":                     "tcp src port",
		"tcp and udp":                     "cannot be both",
		"host 10.0.0.1 and host 10.0.0.2": "cannot be both",
		"host fe80::1":                    "IPv4 only",
		"host example.com":                "not an IPv4 address",
		"net 10.0.0.0/8":                  "src net or dst net",
		"host 10.0.0.0/8":                 "prefix only with src or dst",
		"vlan":                            "VLAN ID",
		"vlan 5000":                       "vlan",
		"icmp and":                        "nothing after",
		"icmp arp":                        "want 'and'",
		"greater 100":                     `"greater"`,
		"ether proto 010":                 "ethtype",
	}
	for expr, want := range bad {
		_, err := FilterOptions(expr)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "cannot be mapped") {
			t.Errorf("FilterOptions(%q): err %v; want a refusal naming %s", expr, err, want)
		}
	}
}

func FuzzFilterOptions(f *testing.F) {
	for _, s := range []string{"icmp", "tcp port 80 and host 1.2.3.4", "src net 10.0.0.0/8", "ether src 00:11:22:33:44:55", "a or b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		opts, err := FilterOptions(expr)
		if err != nil {
			return
		}
		// what maps is exactly a conjunction: no word of a disjunction or negation got through
		for _, w := range strings.Fields(strings.ToLower(expr)) {
			if w == "or" || w == "not" || w == "||" || w == "!" {
				t.Fatalf("%q mapped to %v", expr, opts)
			}
		}
	})
}
