package ingest

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// A real `pktcap-uw -o - | tcpdump-uw -ner -` paste (an NSX-T host of 2022):
// pktcap-uw's banner, tcpdump-uw's "reading from file" line in its midst,
// and plain tcpdump lines without bytes. analyze cannot correlate frames it
// has no bytes of, and says to run tcpdump-uw with -xx.
func TestTcpdumpPipeTranscriptNSXT2022(t *testing.T) {
	raw, err := os.ReadFile(transcripts + "tcpdump-uw/pktcap-uw-stdout-tcpdump-uw-ner-nsxt-2022.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = openText(t, "nsxt.txt", string(raw), Options{})
	if !errors.Is(err, ErrNoBytes) || !strings.Contains(err.Error(), "-xx") || !strings.Contains(err.Error(), "2 of its 2 frames") {
		t.Errorf("got %v; want ErrNoBytes for 2 of its 2 frames, saying to run with -xx", err)
	}
}

// The vSAN node's paste (blank lines after every line, 12-digit thread-id
// lines) is refused the same way: its 8 frames have no bytes.
func TestTcpdumpPipeTranscriptVSAN(t *testing.T) {
	raw, err := os.ReadFile(transcripts + "tcpdump-uw/pktcap-uw-stdout-tcpdump-uw-enr-vsan-onenote.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, err = openText(t, "vsan.txt", string(raw), Options{})
	if !errors.Is(err, ErrNoBytes) || !strings.Contains(err.Error(), "8 of its 8 frames") {
		t.Errorf("got %v; want ErrNoBytes for 8 of its 8 frames", err)
	}
}
