package pktcap_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

func ExampleParseArgs() {
	o, err := pktcap.ParseArgs(strings.Fields("--switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput"))
	if err != nil {
		fmt.Println(err)
		return
	}
	o.Outfile = "-"
	fmt.Println(o.Command())
	fmt.Println(o.Capture[0].Stage(), "packets on", o.Packets(), "text on", o.Text())

	_, err = pktcap.ParseArgs([]string{"--uplink", "vmnic2;reboot"})
	fmt.Println(err)
	// Output:
	// pktcap-uw --switchport 50331657 --dir 1 -c 3 --proto 0x01 --capture PortOutput -o -
	// port-output packets on stdout text on stderr
	// pktcap: option --uplink: bad value "vmnic2;reboot": want vmnicN
}

func ExampleNewConsoleReader() {
	text := "16:12:40.631403[1] Captured at PortOutput point, TSO not enabled, VLAN tag 100, length 18.\n" +
		"Segment[0] ---- 18 bytes:\n" +
		"0x0000:  0050 569d fdb1 0050 569d 4342 0800 4500 \n" +
		"0x0010:  0054 \n" +
		"Dumped 1 packet to console, dropped 0 packets.\n"
	r := pktcap.NewConsoleReader(strings.NewReader(text))
	w := pktcap.NewConsoleWriter(os.Stdout, pktcap.Style80)
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		switch rec := rec.(type) {
		case *pktcap.ConsoleFrame:
			fmt.Println(rec.Point, rec.VLAN, rec.Length, len(rec.Data))
			rec.Layout = nil // write it in Style80
			_ = w.Write(rec)
		case *pktcap.TextLine:
			if s, ok := pktcap.ParseSummary(rec.Text); ok {
				fmt.Println("dumped", s.Dumped, "dropped", s.Dropped)
			}
		}
	}
	// Output:
	// PortOutput 100 18 18
	// 16:12:40.631403[1] Captured at PortOutput point, TSO not enabled, VLAN tag 100, length 18.
	//     Segment[0] ---- 18 bytes:
	//     0x0000:  0050 569d fdb1 0050 569d 4342 0800 4500
	//     0x0010:  0054
	// dumped 1 dropped 0
}

// NewPcapReader reads what pktcap-uw -o - streams, a packet at a time,
// without copying it: data is valid until the next call.
func ExampleNewPcapReader() {
	var stream bytes.Buffer
	w, _ := pktcap.NewPcapWriter(&stream, 0)
	w.WritePacket(time.Date(2020, 5, 4, 16, 13, 16, 471308000, time.UTC), make([]byte, 60), 60)
	w.Flush()

	r, err := pktcap.NewPcapReader(&stream)
	if err != nil {
		panic(err)
	}
	for {
		ns, data, origLen, err := r.Next()
		if err == io.EOF {
			break
		}
		fmt.Println(time.Unix(0, ns).UTC().Format("15:04:05.000000"), len(data), origLen)
	}
	// Output: 16:13:16.471308 60 60
}
