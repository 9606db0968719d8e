package pktcap

import (
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsArticle(t *testing.T) {
	tests := []struct {
		cmd  string
		want Options
	}{
		{"--uplink vmnic2 -c 3 --proto 0x01", Options{Uplink: "vmnic2", Count: Some(3), Filter: Filter{Proto: Some[uint8](1)}}},
		{"--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput", Options{
			SwitchPort: Some[uint32](50331657), Dir: Some(DirTx), Count: Some(3),
			Filter: Filter{Proto: Some[uint8](1)}, Capture: []Point{PortOutput}}},
		{"--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture VnicRx", Options{
			SwitchPort: Some[uint32](50331657), Dir: Some(DirTx), Count: Some(3),
			Filter: Filter{Proto: Some[uint8](1)}, Capture: []Point{VnicRx}}},
	}
	for _, tt := range tests {
		args := strings.Fields(tt.cmd)
		o, err := ParseArgs(args)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.cmd, err)
			continue
		}
		if !reflect.DeepEqual(*o, tt.want) {
			t.Errorf("ParseArgs(%q): got %+v; want %+v", tt.cmd, *o, tt.want)
		}
		// Args gives back the article's command line exactly.
		if got := o.Args(); !slices.Equal(got, args) {
			t.Errorf("Args: got %q; want %q", got, args)
		}
		if got, want := o.Command(), "pktcap-uw "+tt.cmd; got != want {
			t.Errorf("Command: got %q; want %q", got, want)
		}
	}
}

func TestParseArgsRoundTrip(t *testing.T) {
	tests := []struct {
		args      string
		canonical string // Args() of the result; "" = same as args
	}{
		{"--uplink vmnic0 -K --dir 0 --stage 1", "--uplink vmnic0 --dir 0 --stage 1 -K"},
		{"--uplink=vmnic2 --capture=UplinkRcv,UplinkSnd -o - -P", "--uplink vmnic2 --capture UplinkRcv,UplinkSnd -o - -P"},
		{"--switchport 67108910 --dir inputAndOutput -o -", "--switchport 67108910 --dir 2 -o -"},
		{"--vmk vmk1 --capture PortInput -o /vmfs/volumes/ds1/cap.pcapng --ng", "--vmk vmk1 --capture PortInput -o /vmfs/volumes/ds1/cap.pcapng -P"},
		{"--dvfilter nic-2110720-eth0-vmware-sfw.2 --stage pre -o -", "--dvfilter nic-2110720-eth0-vmware-sfw.2 --stage 0 -o -"},
		{"--uplink vmnic1 -s 0 -c 10", "--uplink vmnic1 -c 10 -s 0"},
		{"--uplink vmnic1 --snapLen 128", "--uplink vmnic1 -s 128"},
		{"--uplink vmnic1 --snaplen=24", "--uplink vmnic1 -s 24"},
		{"--uplink vmnic3 -dir 0 --srcip 10.83.253.2", "--uplink vmnic3 --dir 0 --srcip 10.83.253.2"},
		{"--uplink vmnic1 -c5 -p=65440", "--uplink vmnic1 -c 5 -p 65440"},
		{"--uplink vmnic1 --vlan 0", ""},
		{"--srcmac 00:50:56:9D:43:42 --dstmac 00-50-56-9d-fd-b1 --mac ff:ff:ff:ff:ff:ff", "--srcmac 00:50:56:9d:43:42 --dstmac 00:50:56:9d:fd:b1 --mac ff:ff:ff:ff:ff:ff"},
		{"--ethtype 0x806 --vlan 4095 --srcip 192.168.100.0/24 --dstip 192.168.100.12 --ip 10.0.0.1", "--ethtype 0x0806 --vlan 4095 --srcip 192.168.100.0/24 --dstip 192.168.100.12 --ip 10.0.0.1"},
		{"--proto 0x6 --srcport 0 --dstport 443 --tcpport 22 --vxlan 16777215", "--proto 0x06 --srcport 0 --dstport 443 --tcpport 22 --vxlan 16777215"},
		{"--trace -c 1 -o - -P", ""},
		{"--lifID 570d455500000002 --capture VdrRxLeaf", ""},
		{"--capture Dynamic -f vmkernel.IOChain_Resume:0x10", "-f vmkernel.IOChain_Resume:0x10 --capture Dynamic"},
		{"--capture Drop --console", ""},
		{"-A", ""},
		{"-h", ""},
		{"-F --availpoints", "-A -F"},
		{"-AFh", "-A -F -h"},
		{"-o - -AP", "-o - -P -A"},
		{"--uplink vmnic2 --uplink vmnic3", "--uplink vmnic3"},
		{"", ""},
	}
	for _, tt := range tests {
		args := strings.Fields(tt.args)
		o, err := ParseArgs(args)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.args, err)
			continue
		}
		want := tt.canonical
		if want == "" {
			want = tt.args
		}
		if got := strings.Join(o.Args(), " "); got != want {
			t.Errorf("ParseArgs(%q).Args(): got %q; want %q", tt.args, got, want)
		}
		again, err := ParseArgs(o.Args())
		if err != nil {
			t.Errorf("ParseArgs(Args of %q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(again, o) {
			t.Errorf("round trip of %q: got %+v; want %+v", tt.args, again, o)
		}
	}
}

func TestParseArgsSetTracking(t *testing.T) {
	o, err := ParseArgs([]string{"--uplink", "vmnic0", "-s", "0", "--vlan", "0", "--dir", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Snaplen.Set || o.Snaplen.V != 0 || !o.Filter.VLAN.Set || !o.Dir.Set || o.Count.Set || o.Port.Set {
		t.Errorf("got snaplen %+v vlan %+v dir %+v count %+v port %+v; want the first three set to 0, the others unset",
			o.Snaplen, o.Filter.VLAN, o.Dir, o.Count, o.Port)
	}
}

func TestParseArgsRejectsInjection(t *testing.T) {
	tests := [][]string{
		{"--uplink", "vmnic2;reboot"},
		{"--uplink", "vmnic2 reboot"},
		{"--uplink", "$(reboot)"},
		{"--uplink", "`reboot`"},
		{"--uplink", "vmnic2\nreboot"},
		{"--uplink", "vmnic2|reboot"},
		{"--uplink", "vmnic2&"},
		{"--uplink", "'vmnic2'"},
		{"--vmk", "vmk0>/etc/passwd"},
		{"--dvfilter", "a b"},
		{"--dvfilter", "x;y"},
		{"--lifID", "\"x\""},
		{"-f", "vmkernel.fn;ls"},
		{"--uplink", "vmnic1", "-o", "/tmp/x;reboot"},
		{"--uplink", "vmnic1", "-o", "$HOME/x"},
		{"--uplink", "vmnic1", "-o", "a b.pcap"},
		{"--uplink", "vmnic1", "-o", "-rf"},
		{"--uplink", "vmnic1", "-o", "x<y"},
		{"--srcip", "10.0.0.1;ls"},
		{"--srcmac", "00:50:56:9d:43:42$(x)"},
		{"--capture", "VnicRx;reboot"},
		{"--ethtype", "0x0800 ; ls"},
		{"--switchport", "1$(x)"},
		{"-c", "3\n"},
		{"--uplink", "vmnic2", "extra"},
		{"--uplink", "vmnic2", "--", "x"},
	}
	for _, args := range tests {
		if o, err := ParseArgs(args); err == nil {
			t.Errorf("ParseArgs(%q): got %q; want an error", args, o.Command())
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		args string
		want string // substring of the error
	}{
		{"--uplink", "--uplink needs a value"},
		{"--uplink=", "--uplink: empty value"},
		{"--uplink eth0", `--uplink: bad value "eth0"`},
		{"--vmk vmnic0", `--vmk: bad value "vmnic0"`},
		{"--bogus 1", `unknown option "--bogus"`},
		{"-x", `unknown option "-x"`},
		{"--capture VnicRxx", "No such capture point: VnicRxx"},
		{"--capture VnicRx,VnicRx", "point VnicRx given twice"},
		{"--dir 3", `--dir: bad value "3"`},
		{"--stage middle", `--stage: bad value "middle"`},
		{"--uplink vmnic0 -s 23", `-s: bad value "23"`},
		{"--uplink vmnic0 -s -1", `-s: bad value "-1"`},
		{"--uplink vmnic0 -c 0", `-c: bad value "0"`},
		{"--uplink vmnic0 -c x", `-c: bad value "x"`},
		{"--uplink vmnic0 -p 0", `-p: bad value "0"`},
		{"--uplink vmnic0 -p 65536", `-p: bad value "65536"`},
		{"--uplink vmnic0 -P", "-P/--ng only works with -o"},
		{"--uplink vmnic0 --ng", "-P/--ng only works with -o"},
		{"--uplink vmnic0 -o - --console", "--console and -o exclude each other"},
		{"--uplink vmnic0 --switchport 5", "--uplink and --switchport exclude each other"},
		{"--vmk vmk0 -K", "-K/--kernelside only works with --uplink"},
		{"--trace --capture VnicRx", "--trace takes no port"},
		{"--trace --uplink vmnic0", "--trace takes no port"},
		{"--switchport 4294967296", `--switchport: bad value "4294967296"`},
		{"--switchport 0x03000009", `--switchport: bad value "0x03000009"`},
		{"--vlan 4096", `--vlan: bad value "4096"`},
		{"--vxlan 16777216", `--vxlan: bad value "16777216"`},
		{"--ethtype 0x10000", `--ethtype: bad value "0x10000"`},
		{"--proto 0x100", `--proto: bad value "0x100"`},
		{"--srcip 10.0.0.1/33", `--srcip: bad value "10.0.0.1/33"`},
		{"--srcip fe80::1", `--srcip: bad value "fe80::1"`},
		{"--ip 10.0.0.0/8", `--ip: bad value "10.0.0.0/8"`},
		{"--srcmac 00:50:56", `--srcmac: bad value "00:50:56"`},
		{"--srcport 65536", `--srcport: bad value "65536"`},
		{"-A=1", "-A takes no value"},
		{"-Ac 3", `unknown option "-Ac"`},
		{"--console=yes", "--console takes no value"},
	}
	for _, tt := range tests {
		_, err := ParseArgs(strings.Fields(tt.args))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseArgs(%q): got error %v; want one containing %q", tt.args, err, tt.want)
		}
	}
}

// Options built in code (never parsed) are checked by Validate, and Command
// quotes anything unsafe even without validation.
func TestValidateAndCommandForBuiltOptions(t *testing.T) {
	o := &Options{Uplink: "vmnic2;reboot", Outfile: "x y", Capture: []Point{"VnicRx'$(id)"}}
	if err := o.Validate(); err == nil {
		t.Fatal("Validate: got nil; want errors")
	}
	cmd := o.Command()
	want := `pktcap-uw --uplink 'vmnic2;reboot' --capture 'VnicRx'\''$(id)' -o 'x y'`
	if cmd != want {
		t.Errorf("Command: got %q; want %q", cmd, want)
	}
	good := &Options{Uplink: "vmnic2", Capture: []Point{UplinkRcv}, Outfile: "-", Snaplen: Some(0),
		Filter: Filter{SrcIP: Some(netip.MustParsePrefix("10.0.0.0/8"))}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := good.Command(), "pktcap-uw --uplink vmnic2 -s 0 --srcip 10.0.0.0/8 --capture UplinkRcv -o -"; got != want {
		t.Errorf("Command: got %q; want %q", got, want)
	}
	bad := &Options{Filter: Filter{VLAN: Some[uint16](5000), IP: Some(netip.MustParseAddr("::1"))}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--vlan") || !strings.Contains(err.Error(), "--ip") {
		t.Errorf("Validate: got %v; want --vlan and --ip errors", err)
	}
}

func TestStreams(t *testing.T) {
	tests := []struct {
		outfile       string
		packets, text Stream
	}{
		{"", Stdout, Stderr},
		{"-", Stdout, Stderr},
		{"/vmfs/volumes/ds1/x.pcap", StreamNone, Stderr},
	}
	for _, tt := range tests {
		o := &Options{Outfile: tt.outfile}
		if o.Packets() != tt.packets || o.Text() != tt.text {
			t.Errorf("outfile %q: got packets %v text %v; want %v %v", tt.outfile, o.Packets(), o.Text(), tt.packets, tt.text)
		}
	}
}

// Every option the 6.0-era help text lists is known to ParseArgs, and every
// --dir name of the newer help parses.
func TestHelpSamplesOptionsKnown(t *testing.T) {
	help := string(readFixture(t, "pktcap-uw-help-nsx6.2-era.txt"))
	table := specs(&Options{})
	seen := 0
	for _, m := range regexp.MustCompile(`(?m)(?:^|[\s\[|,])(--?[A-Za-z]+)`).FindAllStringSubmatch(help, -1) {
		name := m[1]
		if name == "-uw" { // from "pktcap-uw"
			continue
		}
		if strings.HasPrefix(name, "--") {
			if lookup(table, name[2:], false) == nil {
				t.Errorf("option %s of the 6.0 help text is unknown", name)
			}
			seen++
			continue
		}
		for _, c := range name[1:] { // -AFhP lists four flags
			if lookup(table, string(c), true) == nil {
				t.Errorf("option -%c of the 6.0 help text is unknown", c)
			}
			seen++
		}
	}
	if seen < 30 {
		t.Errorf("found only %d options in the help text; the pattern is broken", seen)
	}
	newer := string(readFixture(t, "pktcap-uw-help-7x-8x-partial.txt"))
	if !strings.Contains(newer, "--dir <0|input|1|output|2|inputAndOutput>") {
		t.Fatal("newer help sample lacks the --dir line")
	}
	for _, d := range []string{"0", "input", "1", "output", "2", "inputAndOutput"} {
		if _, err := ParseDir(d); err != nil {
			t.Errorf("ParseDir(%q): %v", d, err)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	seeds := []string{
		"--uplink vmnic2 -c 3 --proto 0x01",
		"--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput",
		"--uplink=vmnic2 --capture=UplinkRcv,UplinkSnd -o - -P",
		"--srcmac 00:50:56:9d:43:42 --srcip 192.168.100.0/24 --vlan 0 -s 0",
		"--trace -c 1 --vxlan 5001 --tcpport 22",
		"-dir 0 -c5 -p=65440 --snapLen 96",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		o, err := ParseArgs(args)
		if err != nil {
			return
		}
		again, err := ParseArgs(o.Args())
		if err != nil {
			t.Fatalf("ParseArgs(%q) ok but its Args %q fail: %v", args, o.Args(), err)
		}
		if !reflect.DeepEqual(again, o) {
			t.Fatalf("round trip of %q: got %+v; want %+v", args, again, o)
		}
		for _, a := range o.Args() {
			if !reSafeArg.MatchString(a) {
				t.Fatalf("validated argument %q needs quoting", a)
			}
		}
	})
}
