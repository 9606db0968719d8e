package session

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/capturectl/capturectl/pktcap"
)

// Text before the pcap header (a notice or a prompt a build might print on
// stdout) is skipped and returned; text alone is an error that shows it.
func TestSkipText(t *testing.T) {
	var pcap bytes.Buffer
	w, _ := pktcap.NewPcapWriter(&pcap, 0)
	w.WritePacket(time.Unix(1, 0), make([]byte, 60), 60)
	w.Flush()
	notice := "pktcap: Please confirm [Y/n]\n"
	br := bufio.NewReader(strings.NewReader(notice + pcap.String()))
	text, err := skipText(br)
	if err != nil || string(text) != notice {
		t.Fatalf("got %q, %v; want the notice skipped", text, err)
	}
	cr, err := pktcap.NewCaptureReader(br)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cr.Next(); err != nil || len(p.Data) != 60 {
		t.Errorf("packet after the notice: %d bytes, %v", len(p.Data), err)
	}
	// a pcap stream from the first byte: nothing skipped
	if text, err := skipText(bufio.NewReader(bytes.NewReader(pcap.Bytes()))); err != nil || len(text) != 0 {
		t.Errorf("plain stream: skipped %q, %v", text, err)
	}
	// text alone
	text, err = skipText(bufio.NewReader(strings.NewReader("error: no such uplink\n")))
	if err == nil || string(text) != "error: no such uplink\n" {
		t.Errorf("text alone: %q, %v", text, err)
	}
	// nothing at all: left to the capture reader
	if text, err := skipText(bufio.NewReader(strings.NewReader(""))); err != nil || text != nil {
		t.Errorf("empty: %q, %v", text, err)
	}
}
