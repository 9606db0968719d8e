package pktcap

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// PcapReader reads a classic pcap stream (both byte orders, microsecond and
// nanosecond timestamps, gzip-compressed too) as pcapgo.Reader does, but
// parses the records in place in its own buffer: no allocation, no copy and
// no read call per packet. On a pipe (a live pktcap-uw stream) it returns
// each packet as soon as its bytes have arrived.
type PcapReader struct {
	readBuf
	nanos    int64 // timestamp fraction unit in ns: 1 or 1000
	snaplen  uint32
	linkType layers.LinkType
}

// readBuf is the buffer of PcapReader and NgScanner: records are parsed in
// place in buf[pos:end].
type readBuf struct {
	r        io.Reader
	buf      []byte
	pos, end int
	err      error // sticky read error, returned once the buffer is used up
	big      bool  // big-endian records
}

// A record's captured length is bounded, as pcapgo does, by the larger of
// the snap length and 256 KiB, and in any case by 16 MiB (a corrupt header
// must not make the reader allocate gigabytes).
const (
	pcapRecordMin = 256 << 10
	pcapRecordMax = 16 << 20
)

// NewPcapReader reads the 24-byte file header.
func NewPcapReader(r io.Reader) (*PcapReader, error) {
	return newPcapReader(r, 256<<10)
}

func newPcapReader(r io.Reader, bufSize int) (*PcapReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64)
	}
	if m, err := br.Peek(2); err == nil && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		r = zr
	} else {
		r = br
	}
	p := &PcapReader{readBuf: readBuf{r: r, buf: make([]byte, bufSize)}}
	if err := p.fill(24); err != nil {
		if errors.Is(err, io.EOF) && p.end > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	h := p.buf[:24]
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		p.nanos = 1000
	case 0xa1b23c4d:
		p.nanos = 1
	case 0xd4c3b2a1:
		p.big, p.nanos = true, 1000
	case 0x4d3cb2a1:
		p.big, p.nanos = true, 1
	default:
		return nil, fmt.Errorf("unknown pcap magic %x", binary.LittleEndian.Uint32(h))
	}
	if v := p.u16(h[4:]); v != 2 {
		return nil, fmt.Errorf("unknown pcap major version %d", v)
	}
	if v := p.u16(h[6:]); v != 4 {
		return nil, fmt.Errorf("unknown pcap minor version %d", v)
	}
	p.snaplen = p.u32(h[16:])
	p.linkType = layers.LinkType(p.u32(h[20:]))
	p.pos = 24
	return p, nil
}

func (p *readBuf) u16(b []byte) uint16 {
	if p.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (p *readBuf) u32(b []byte) uint32 {
	if p.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (p *readBuf) u64(b []byte) uint64 {
	if p.big {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// LinkType is the stream's link type.
func (p *PcapReader) LinkType() layers.LinkType { return p.linkType }

// Snaplen is the snap length of the file header.
func (p *PcapReader) Snaplen() uint32 { return p.snaplen }

// Nanosecond reports whether the timestamps have nanosecond resolution.
func (p *PcapReader) Nanosecond() bool { return p.nanos == 1 }

// fill makes at least n unread bytes available in the buffer, reading as
// little as it can: one Read when that is enough.
func (p *readBuf) fill(n int) error {
	if p.end-p.pos >= n {
		return nil
	}
	if n > len(p.buf) {
		nb := make([]byte, max(n, 2*len(p.buf)))
		p.end = copy(nb, p.buf[p.pos:p.end])
		p.buf, p.pos = nb, 0
	} else if p.pos+n > len(p.buf) {
		p.end = copy(p.buf, p.buf[p.pos:p.end])
		p.pos = 0
	}
	for p.end-p.pos < n {
		if p.err != nil {
			return p.err
		}
		k, err := p.r.Read(p.buf[p.end:])
		p.end += k
		if err != nil {
			p.err = err
		} else if k == 0 {
			p.err = io.ErrNoProgress
		}
	}
	return nil
}

// Next returns the next packet: its time in nanoseconds since the Unix
// epoch, its captured bytes and its original length. data is valid only
// until the next call. At the end of the stream it returns io.EOF; a
// stream cut inside a packet gives io.ErrUnexpectedEOF.
func (p *PcapReader) Next() (ns int64, data []byte, origLen int, err error) {
	if err := p.fill(16); err != nil {
		return 0, nil, 0, p.endErr(err)
	}
	h := p.buf[p.pos : p.pos+16]
	var sec, frac, capLen, wire uint32
	if p.big {
		sec, frac = binary.BigEndian.Uint32(h), binary.BigEndian.Uint32(h[4:])
		capLen, wire = binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	} else {
		sec, frac = binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:])
		capLen, wire = binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	}
	if capLen > min(max(p.snaplen, pcapRecordMin), pcapRecordMax) {
		return 0, nil, 0, fmt.Errorf("capture length exceeds snap length: %d > %d", capLen, p.snaplen)
	}
	if capLen > wire {
		return 0, nil, 0, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wire)
	}
	n := 16 + int(capLen)
	if err := p.fill(n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, 0, err
	}
	data = p.buf[p.pos+16 : p.pos+n : p.pos+n]
	p.pos += n
	return int64(sec)*1e9 + int64(frac)*p.nanos, data, int(wire), nil
}

// endErr is the error for a stream that ends before a record header: EOF
// at a record boundary, ErrUnexpectedEOF inside one.
func (p *readBuf) endErr(err error) error {
	if errors.Is(err, io.EOF) && p.end > p.pos {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Buffered reports whether the next record is whole in the buffer, so
// that Next returns without reading.
func (p *PcapReader) Buffered() bool {
	if p.end-p.pos < 16 {
		return false
	}
	return p.end-p.pos >= 16+int(p.u32(p.buf[p.pos+8:]))
}

// NextPacket is Next with the time as a time.Time in UTC.
func (p *PcapReader) NextPacket() (t time.Time, data []byte, origLen int, err error) {
	ns, data, origLen, err := p.Next()
	if err != nil {
		return time.Time{}, nil, 0, err
	}
	return time.Unix(0, ns).UTC(), data, origLen, nil
}
