package pktcap

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// The ESXi 5.5 console transcript of Cisco's ACI book: the frame is read
// with its point, VLAN, length and bytes; Style67 (which claims 5.5 as well
// as 6.7) writes the same banner and, without the parsed layout, the same
// frame, byte for byte.
func TestConsoleTranscript55(t *testing.T) {
	const name = "pktcap-uw-console-5.5-uplink-etherswitchdispath.txt"
	raw, recs, f := onlyFrame(t, name)
	if f.Point != "EtherswitchDispath" || f.VLAN != 602 || f.Length != 60 || f.SegmentSize != 60 || len(f.Data) != 60 || f.Seq != 1 {
		t.Errorf("got point %q VLAN %d length %d segment %d, %d bytes, seq %d; want EtherswitchDispath 602 60 60 60 1",
			f.Point, f.VLAN, f.Length, f.SegmentSize, len(f.Data), f.Seq)
	}
	if want := clock(t, "01:04:51.765509"); f.TimeOfDay != want {
		t.Errorf("got time %v; want %v", f.TimeOfDay, want)
	}
	// an ARP request (ethertype 0806, opcode 1) broadcast by 00:50:56:bb:cc:cf
	// for 10.1.0.1, from 10.1.0.11
	if len(f.Data) == 60 {
		arp := f.Data[:42]
		want := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x50, 0x56, 0xbb, 0xcc, 0xcf, 0x08, 0x06, 0x00, 0x01,
			0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x50, 0x56, 0xbb, 0xcc, 0xcf, 0x0a, 0x01, 0x00, 0x0b,
			0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x01}
		if !bytes.Equal(arp, want) {
			t.Errorf("got % x; want % x", arp, want)
		}
		if !bytes.Equal(f.Data[42:], make([]byte, 18)) {
			t.Errorf("got padding % x; want 18 zero bytes", f.Data[42:])
		}
	}
	if f.Layout == nil || !f.Layout.HexTrailingSpace {
		t.Error("the trailing space of the hex lines was not recorded")
	}

	// The banner as the lab writes it for this command line and session.
	lines := strings.Split(string(raw), "\n")
	o, err := ParseArgs(strings.Fields(strings.TrimPrefix(lines[1], "~ # pktcap-uw ")))
	if err != nil {
		t.Fatal(err)
	}
	banner := BannerLines(o, Style67, SessionInfo{ServerPort: 38100, ClientPort: 1027})
	want := slices.Concat(lines[:2], banner)
	if got := textLines(recs); !slices.Equal(got, want) {
		t.Errorf("text lines:\ngot  %q\nwant %q", got, want)
	}

	f.Layout = nil
	if got := writeAll(t, recs, Style67); !bytes.Equal(got, raw) {
		t.Errorf("Style67 output differs from the 5.5 transcript: %s", firstDiff(got, raw))
	}
}

// The stderr lines of two real `pktcap-uw ... -o - | tcpdump-uw ...` pastes
// of 7.0-or-later hosts are the Style80 banner of their command lines: a
// vSAN node's with the thread-id lines, an NSX-T host's (2022) without them.
// Each is written by Style80 with ThreadLines as the paste shows and not
// with the other choice, so which builds print them stays an open question
// the lab must not paper over.
func TestBannerPipeTranscripts(t *testing.T) {
	for _, tc := range []struct {
		file    string
		threads bool
		s       SessionInfo
	}{
		{"pktcap-uw-stdout-tcpdump-uw-ner-nsxt-2022.txt", false, SessionInfo{ServerPort: 7799, ClientPort: 1096}},
		{"pktcap-uw-stdout-tcpdump-uw-enr-vsan-onenote.txt", true,
			SessionInfo{ServerPort: 27181, ClientPort: 1026, Threads: [3]uint64{955338963776, 955339499264, 955340027648}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile("../testdata/transcripts/tcpdump-uw/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			_, cmd, _ := strings.Cut(lines[1], "] pktcap-uw ")
			cmd, _, _ = strings.Cut(cmd, " |")
			o, err := ParseArgs(strings.Fields(cmd))
			if err != nil {
				t.Fatal(err)
			}
			if o.Outfile != "-" {
				t.Fatalf("parsed %q with output %q; want -", cmd, o.Outfile)
			}
			// pktcap-uw's own lines: tcpdump-uw's "reading from file" and
			// packet lines are the other process's, blank lines the paste's
			var want []string
			for _, l := range lines[2:] {
				if _, isTcpdump := ParseTcpdumpHeader(l); l != "" && !isTcpdump && !strings.HasPrefix(l, "reading from file") {
					want = append(want, l)
				}
			}
			st := Style80
			st.ThreadLines = tc.threads
			if got := BannerLines(o, st, tc.s); !slices.Equal(got, want) {
				t.Errorf("Style80, thread lines %v:\ngot  %q\nwant %q", tc.threads, got, want)
			}
			st.ThreadLines = !tc.threads
			if got := BannerLines(o, st, tc.s); slices.Equal(got, want) {
				t.Errorf("Style80 with thread lines %v reproduced it too: %q", !tc.threads, got)
			}
		})
	}
}
