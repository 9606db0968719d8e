package pktcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// NgScanner reads the packets of a pcapng stream fast: blocks are parsed
// in place in its buffer, with no allocation or copy per packet, and
// packets of interfaces the caller does not want are skipped undecoded. It
// reads what pcapgo.NgReader reads for analysis — enhanced and obsolete
// packet blocks, interfaces (name, timestamp resolution and offset) and
// interface statistics — in either byte order and across sections.
// Interfaces are numbered across the whole stream: a new section's first
// interface follows the previous section's last. Simple packet blocks
// carry no timestamp and are skipped.
type NgScanner struct {
	readBuf
	base   int // global index of the current section's interface 0
	ifaces []NgScanInterface
	apps   []string
	// Want, when set, selects the interfaces whose packets Next returns.
	Want func(iface int) bool
}

// NgScanInterface is an interface of a pcapng stream as read so far.
type NgScanInterface struct {
	Name     string
	LinkType uint16
	Snaplen  uint32
	// Stats is the last interface statistics block read, nil if none.
	Stats *NgStats
	// timestamps: ns = ts/perSec*1e9 + offset, fraction scaled exactly
	perSec  uint64 // units per second (10^n or 2^n)
	binary  uint8  // n for 2^-n resolutions, 0 for decimal ones
	offsetS int64  // if_tsoffset, seconds
}

// Interfaces returns the interfaces read so far (the slice is shared).
func (s *NgScanner) Interfaces() []NgScanInterface { return s.ifaces }

// Applications returns the application that wrote each section read so
// far (its shb_userappl option, "" when it has none), e.g. "Mergecap
// (Wireshark) 4.0.17" for a file mergecap wrote (the slice is shared).
func (s *NgScanner) Applications() []string { return s.apps }

// NewNgScanner reads the first section header.
func NewNgScanner(r io.Reader) (*NgScanner, error) {
	s := &NgScanner{readBuf: readBuf{r: r, buf: make([]byte, 256<<10)}}
	if err := s.fill(12); err != nil {
		return nil, fmt.Errorf("pcapng: %w", s.endErr(err))
	}
	if binary.LittleEndian.Uint32(s.buf[s.pos:]) != 0x0a0d0d0a {
		return nil, errors.New("pcapng: not a pcapng stream (no section header block)")
	}
	body, err := s.block() // reads the section header
	if err != nil {
		return nil, err
	}
	s.pos += len(body) + 12
	return s, nil
}

// ngBlockMax bounds a block's length: a corrupt length must not make the
// scanner allocate gigabytes.
const ngBlockMax = 16 << 20

// block makes the next whole block available at s.buf[s.pos:] and returns
// its body (after type and length, before the trailing length); s.pos
// still points at the block. A section header is handled here.
func (s *NgScanner) block() (body []byte, err error) {
	if err := s.fill(12); err != nil {
		return nil, s.endErr(err)
	}
	h := s.buf[s.pos:]
	typ := binary.LittleEndian.Uint32(h) // the SHB type reads the same both ways
	if typ == 0x0a0d0d0a {
		switch binary.LittleEndian.Uint32(h[8:]) {
		case 0x1a2b3c4d:
			s.big = false
		case 0x4d3c2b1a:
			s.big = true
		default:
			return nil, fmt.Errorf("pcapng: bad byte-order magic %x", h[8:12])
		}
	}
	n := int(s.u32(h[4:]))
	if n < 12 || n%4 != 0 || n > ngBlockMax {
		return nil, fmt.Errorf("pcapng: corrupt block length %d", n)
	}
	if err := s.fill(n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	b := s.buf[s.pos : s.pos+n]
	if typ == 0x0a0d0d0a {
		if n < 28 {
			return nil, errors.New("pcapng: section header too short")
		}
		if v := s.u16(b[12:]); v != 1 {
			return nil, fmt.Errorf("pcapng: unknown major version %d", v)
		}
		s.base = len(s.ifaces)
		app := ""
		s.options(b[24:n-4], func(code uint16, v []byte) {
			if code == 4 { // shb_userappl
				app = string(v)
			}
		})
		s.apps = append(s.apps, app)
	}
	return b[8 : n-4], nil
}

// options calls f for each option in b.
func (s *NgScanner) options(b []byte, f func(code uint16, v []byte)) {
	for len(b) >= 4 {
		code, n := s.u16(b), int(s.u16(b[2:]))
		if code == 0 || 4+n > len(b) {
			return
		}
		f(code, b[4:4+n])
		b = b[4+(n+3)&^3:]
	}
}

// Next returns the next packet of a wanted interface: its global
// interface index, time (ns since the epoch), captured bytes (valid until
// the next call) and wire length. At the end it returns io.EOF; a stream
// cut inside a block gives io.ErrUnexpectedEOF.
func (s *NgScanner) Next() (iface int, ns int64, data []byte, origLen int, err error) {
	for {
		body, err := s.block()
		if err != nil {
			return 0, 0, nil, 0, err
		}
		typ := s.u32(s.buf[s.pos:])
		n := len(body) + 12
		switch typ {
		case 6, 2: // enhanced packet, obsolete packet
			if len(body) < 20 {
				return 0, 0, nil, 0, fmt.Errorf("pcapng: packet block too short (%d bytes)", n)
			}
			var id int
			if typ == 6 {
				id = int(s.u32(body))
			} else {
				id = int(s.u16(body))
			}
			id += s.base
			if id >= len(s.ifaces) {
				return 0, 0, nil, 0, fmt.Errorf("pcapng: packet of interface %d, which is not described", id-s.base)
			}
			if s.Want != nil && !s.Want(id) {
				s.pos += n
				continue
			}
			ts := uint64(s.u32(body[4:]))<<32 | uint64(s.u32(body[8:]))
			capLen, wire := int(s.u32(body[12:])), int(s.u32(body[16:]))
			if capLen > len(body)-20 {
				return 0, 0, nil, 0, fmt.Errorf("pcapng: packet block of %d bytes holds no %d captured bytes", n, capLen)
			}
			s.pos += n
			return id, s.ifaces[id].nanos(ts), body[20 : 20+capLen : 20+capLen], wire, nil
		case 1: // interface description
			if len(body) < 8 {
				return 0, 0, nil, 0, errors.New("pcapng: interface block too short")
			}
			intf := NgScanInterface{LinkType: s.u16(body), Snaplen: s.u32(body[4:]), perSec: 1e6}
			var err error
			s.options(body[8:], func(code uint16, v []byte) {
				switch {
				case code == 2:
					intf.Name = string(v)
				case code == 9 && len(v) >= 1:
					exp := v[0] & 0x7f
					if v[0]&0x80 != 0 {
						if exp > 63 {
							err = fmt.Errorf("pcapng: timestamp resolution 2^-%d", exp)
						}
						intf.perSec, intf.binary = 1<<exp, exp
					} else {
						if exp > 19 {
							err = fmt.Errorf("pcapng: timestamp resolution 10^-%d", exp)
						}
						intf.perSec = 1
						for range exp {
							intf.perSec *= 10
						}
					}
				case code == 14 && len(v) >= 8:
					intf.offsetS = int64(s.u64(v))
				}
			})
			if err != nil {
				return 0, 0, nil, 0, err
			}
			s.ifaces = append(s.ifaces, intf)
		case 5: // interface statistics
			if len(body) < 12 {
				return 0, 0, nil, 0, errors.New("pcapng: statistics block too short")
			}
			id := int(s.u32(body)) + s.base
			if id >= len(s.ifaces) {
				return 0, 0, nil, 0, fmt.Errorf("pcapng: statistics of interface %d, which is not described", id-s.base)
			}
			intf := &s.ifaces[id]
			st := &NgStats{DropsUnknown: true}
			s.options(body[12:], func(code uint16, v []byte) {
				if len(v) < 8 {
					return
				}
				switch code {
				case 2, 3: // start, end
					t := time.Unix(0, intf.nanos(uint64(s.u32(v))<<32|uint64(s.u32(v[4:])))).UTC()
					if code == 2 {
						st.Start = t
					} else {
						st.End = t
					}
				case 5: // isb_ifdrop
					st.Dropped, st.DropsUnknown = s.u64(v), false
				}
			})
			intf.Stats = st
		}
		s.pos += n
	}
}

// nanos converts a timestamp in the interface's units to ns since the
// epoch.
func (i *NgScanInterface) nanos(ts uint64) int64 {
	sec, frac := ts/i.perSec, ts%i.perSec
	var fns uint64
	switch {
	case i.binary > 0:
		hi, lo := bits.Mul64(frac, 1e9)
		fns = lo>>i.binary | hi<<(64-i.binary)
	case i.perSec <= 1e9:
		fns = frac * (1e9 / i.perSec)
	default:
		fns = frac / (i.perSec / 1e9)
	}
	return (int64(sec)+i.offsetS)*1e9 + int64(fns)
}
