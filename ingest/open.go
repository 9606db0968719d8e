package ingest

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
)

// open opens an input for one pass, gzip-compressed or not (capture.pcap.gz
// reads as capture.pcap). Close the returned closer.
func open(in Input) (*bufio.Reader, io.Closer, error) {
	var rc io.ReadCloser
	var err error
	if in.Open != nil {
		rc, err = in.Open()
	} else {
		rc, err = os.Open(in.Name)
	}
	if err != nil {
		return nil, nil, inputErr(in.Name, err)
	}
	br := bufio.NewReaderSize(rc, 64<<10) // pcap: PcapReader reads past it in large blocks
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, nil, inputErr(in.Name, err)
		}
		return bufio.NewReaderSize(zr, 64<<10), rc, nil
	}
	return br, rc, nil
}

// StdinName is the Name of an input read from standard input (see Spool).
const StdinName = "-"
