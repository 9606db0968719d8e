package pktcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Observation is one frame seen at one capture point; later stages
// (session, correlate) stream these.
type Observation struct {
	Point   int       // index of the capture point in the capture's list
	Time    time.Time // capture time
	Data    []byte    // captured bytes (may be shorter than OrigLen)
	OrigLen int       // length of the frame on the wire
	VLAN    int       // VLAN metadata of the point; -1 when unknown
}

// DefaultSnaplen is the pcap snap length written for "-s 0" (whole packet).
const DefaultSnaplen = 65535

// PcapWriter writes a classic pcap stream with Ethernet link type and
// microsecond timestamps, what "pktcap-uw -o -" emits (one file header per
// stream). Packets are buffered; Flush pushes them out, and with AutoFlush
// every packet is flushed as it is written.
type PcapWriter struct {
	bw        *bufio.Writer
	w         *pcapgo.Writer
	snaplen   int
	AutoFlush bool
}

// NewPcapWriter writes the pcap file header to w. snaplen 0 means
// DefaultSnaplen; packets longer than snaplen are truncated, keeping their
// original length. The header is flushed at once.
func NewPcapWriter(w io.Writer, snaplen int) (*PcapWriter, error) {
	if snaplen < 0 {
		return nil, fmt.Errorf("pktcap: pcap writer: bad snap length %d", snaplen)
	}
	if snaplen == 0 {
		snaplen = DefaultSnaplen
	}
	bw := bufio.NewWriter(w)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(uint32(snaplen), layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pktcap: write pcap header: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("pktcap: write pcap header: %w", err)
	}
	return &PcapWriter{bw: bw, w: pw, snaplen: snaplen}, nil
}

// WritePacket writes one frame. origLen below len(data) is taken as
// len(data).
func (p *PcapWriter) WritePacket(t time.Time, data []byte, origLen int) error {
	origLen = max(origLen, len(data))
	if len(data) > p.snaplen {
		data = data[:p.snaplen]
	}
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: origLen}
	if err := p.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("pktcap: write pcap packet: %w", err)
	}
	if p.AutoFlush {
		return p.Flush()
	}
	return nil
}

// Flush writes buffered packets to the underlying writer.
func (p *PcapWriter) Flush() error {
	if err := p.bw.Flush(); err != nil {
		return fmt.Errorf("pktcap: flush pcap: %w", err)
	}
	return nil
}

// Format names a capture file format.
type Format string

// Capture file formats.
const (
	FormatPcap   Format = "pcap"
	FormatPcapNG Format = "pcapng"
)

// Packet is one packet read from a pcap or pcapng stream.
type Packet struct {
	Time          time.Time
	Data          []byte
	OrigLen       int
	Interface     int    // pcapng interface index; 0 for pcap
	InterfaceName string // pcapng if_name; "" for pcap or when absent
	Comments      []string
	// VLAN is taken from a "vlan=N" packet comment (see VLANComment), -1
	// when there is none.
	VLAN int
}

// Observation converts p, with Point set to the interface index.
func (p Packet) Observation() Observation {
	return Observation{Point: p.Interface, Time: p.Time, Data: p.Data, OrigLen: p.OrigLen, VLAN: p.VLAN}
}

// CaptureReader reads a pcap or pcapng stream, detected from its first
// bytes: both byte orders, microsecond and nanosecond pcap, any pcapng
// timestamp resolution (gzip-compressed pcap too, as pcapgo supports it).
type CaptureReader struct {
	// ZeroCopy makes Next of a pcap stream return data that is only valid
	// until the next call (no allocation per packet).
	ZeroCopy bool
	format   Format
	pcap     *PcapReader
	ng       *pcapgo.NgReader
}

// NewCaptureReader reads the file header from r.
func NewCaptureReader(r io.Reader) (*CaptureReader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("pktcap: read capture header: %w", err)
	}
	cr := &CaptureReader{}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		cr.format = FormatPcapNG
		cr.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
	} else {
		cr.format = FormatPcap
		cr.pcap, err = newPcapReader(br, 256<<10)
	}
	if err != nil {
		return nil, fmt.Errorf("pktcap: read %s header: %w", cr.format, err)
	}
	return cr, nil
}

// NextBuffered reports whether the next packet of a pcap stream has
// arrived whole, so that Next will not wait for input (false for pcapng).
func (c *CaptureReader) NextBuffered() bool {
	return c.pcap != nil && c.pcap.Buffered()
}

// DetectFormat tells a capture stream's format from its first four bytes:
// a pcap magic (either byte order, µs or ns) or pcapng's section header
// block type; "" when neither.
func DetectFormat(head []byte) Format {
	if len(head) < 4 {
		return ""
	}
	switch binary.LittleEndian.Uint32(head) {
	case 0x0a0d0d0a:
		return FormatPcapNG
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		return FormatPcap
	}
	return ""
}

// Format reports whether the stream is pcap or pcapng.
func (c *CaptureReader) Format() Format { return c.format }

// LinkType returns the link type of the stream (of the first interface for
// pcapng).
func (c *CaptureReader) LinkType() layers.LinkType {
	if c.ng != nil {
		return c.ng.LinkType()
	}
	return c.pcap.LinkType()
}

// Next returns the next packet, or io.EOF at the end of the stream. A stream
// cut in the middle of a packet gives io.ErrUnexpectedEOF.
func (c *CaptureReader) Next() (Packet, error) {
	if c.pcap != nil {
		t, data, origLen, err := c.pcap.NextPacket()
		if err != nil {
			return Packet{}, wrapReadErr(c.format, err)
		}
		if !c.ZeroCopy {
			data = append([]byte(nil), data...)
		}
		return Packet{Time: t, Data: data, OrigLen: origLen, VLAN: -1}, nil
	}
	data, ci, opts, err := c.ng.ReadPacketDataWithOptions()
	if err != nil {
		return Packet{}, wrapReadErr(c.format, err)
	}
	p := Packet{Time: ci.Timestamp, Data: data, OrigLen: ci.Length, Interface: ci.InterfaceIndex, Comments: opts.Comments, VLAN: -1}
	if intf, err := c.ng.Interface(ci.InterfaceIndex); err == nil {
		p.InterfaceName = intf.Name
	}
	for _, cm := range opts.Comments {
		if v, ok := ParseVLANComment(cm); ok {
			p.VLAN = v
		}
	}
	return p, nil
}

func wrapReadErr(f Format, err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return fmt.Errorf("pktcap: read %s packet: %w", f, err)
}

// VLANComment returns the packet comment this package uses to keep a
// capture point's VLAN metadata in pcapng ("vlan=100"), which the frame
// bytes do not carry at uplink and PortOutput points.
func VLANComment(vlan int) string { return "vlan=" + strconv.Itoa(vlan) }

// ParseVLANComment parses a VLANComment.
func ParseVLANComment(s string) (int, bool) {
	v, ok := strings.CutPrefix(s, "vlan=")
	if !ok {
		return 0, false
	}
	n, ok := atoiDigits(v)
	if !ok || n > 4095 {
		return 0, false
	}
	return n, true
}

// NgInterface describes one capture point of a pcapng file.
type NgInterface struct {
	Name        string // e.g. "esx01/vmnic2/rx", "esx01/50331657/VnicRx"
	Description string // free text, e.g. the pktcap-uw command line
	Snaplen     int    // 0 = unlimited
	// Stats is the interface statistics block read so far (reading only):
	// the capture's start and end and its drops; nil when none was read.
	Stats *NgStats
}

// NgStats is what the interface statistics block of one interface reports.
type NgStats struct {
	Start, End time.Time
	Dropped    uint64 // packets the capture lost (pktcap-uw's "dropped N packets")
	// DropsUnknown: the capture's drop count is not known (its summary
	// never came); the statistics block then has no isb_ifdrop, and a
	// reader finds none.
	DropsUnknown bool
}

// ngBufferSize is how much an NgWriter buffers before writing to its
// writer (Flush writes it all).
const ngBufferSize = 64 << 10

// NgWriter writes one pcapng section with one interface per capture point.
// It is safe for concurrent use; with AutoFlush each packet is flushed as it
// is written. Close writes an interface statistics block per interface.
type NgWriter struct {
	mu        sync.Mutex
	w         *pcapgo.NgWriter
	ifaces    []NgInterface
	received  []uint64
	stats     []NgStats
	closed    bool
	AutoFlush bool
}

// NewNgWriter writes the section header and the interface descriptions.
// ifaces must not be empty; packets name their interface by index.
func NewNgWriter(w io.Writer, ifaces []NgInterface) (*NgWriter, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("pktcap: pcapng writer: no interfaces")
	}
	ngIntf := func(i NgInterface) pcapgo.NgInterface {
		return pcapgo.NgInterface{
			Name:                i.Name,
			Description:         i.Description,
			LinkType:            layers.LinkTypeEthernet,
			SnapLength:          uint32(max(i.Snaplen, 0)),
			TimestampResolution: 9,
		}
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "capturectl"}}
	// pcapgo buffers in a bufio.Writer of 4 KiB, or in w itself when w is
	// one at least that large: hand it a larger one, so that a stream of
	// small frames reaches w in few writes (a write per 15 frames of 200
	// bytes cost capturectl a system call and a goroutine hand-off each).
	nw, err := pcapgo.NewNgWriterInterface(bufio.NewWriterSize(w, ngBufferSize), ngIntf(ifaces[0]), opts)
	if err != nil {
		return nil, fmt.Errorf("pktcap: write pcapng header: %w", err)
	}
	for _, i := range ifaces[1:] {
		if _, err := nw.AddInterface(ngIntf(i)); err != nil {
			return nil, fmt.Errorf("pktcap: write pcapng interface %q: %w", i.Name, err)
		}
	}
	if err := nw.Flush(); err != nil {
		return nil, fmt.Errorf("pktcap: write pcapng header: %w", err)
	}
	return &NgWriter{
		w:        nw,
		ifaces:   append([]NgInterface(nil), ifaces...),
		received: make([]uint64, len(ifaces)),
		stats:    make([]NgStats, len(ifaces)),
	}, nil
}

// WritePacket writes one packet on interface iface with optional comments.
func (n *NgWriter) WritePacket(iface int, t time.Time, data []byte, origLen int, comments ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("pktcap: write pcapng packet: writer closed")
	}
	if iface < 0 || iface >= len(n.ifaces) {
		return fmt.Errorf("pktcap: write pcapng packet: no interface %d", iface)
	}
	if sl := n.ifaces[iface].Snaplen; sl > 0 && len(data) > sl {
		data = data[:sl]
	}
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: max(origLen, len(data)), InterfaceIndex: iface}
	if err := n.w.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: comments}); err != nil {
		return fmt.Errorf("pktcap: write pcapng packet on %s: %w", n.ifaces[iface].Name, err)
	}
	n.received[iface]++
	if n.AutoFlush {
		if err := n.w.Flush(); err != nil {
			return fmt.Errorf("pktcap: flush pcapng: %w", err)
		}
	}
	return nil
}

// WriteObservation writes o on interface o.Point, adding a VLANComment when
// o.VLAN >= 0.
func (n *NgWriter) WriteObservation(o Observation, comments ...string) error {
	if o.VLAN >= 0 {
		comments = append([]string{VLANComment(o.VLAN)}, comments...)
	}
	return n.WritePacket(o.Point, o.Time, o.Data, o.OrigLen, comments...)
}

// SetStats records what Close writes in the statistics block of iface.
func (n *NgWriter) SetStats(iface int, s NgStats) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if iface < 0 || iface >= len(n.ifaces) {
		return fmt.Errorf("pktcap: pcapng stats: no interface %d", iface)
	}
	n.stats[iface] = s
	return nil
}

// Flush writes buffered data to the underlying writer.
func (n *NgWriter) Flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.w.Flush(); err != nil {
		return fmt.Errorf("pktcap: flush pcapng: %w", err)
	}
	return nil
}

// Close writes an interface statistics block for every interface (packets
// received = packets written + dropped, packets dropped as set by SetStats)
// and flushes. It does not close the underlying writer. Calling it again
// does nothing.
func (n *NgWriter) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	now := time.Now()
	for i := range n.ifaces {
		st := n.stats[i]
		isb := pcapgo.NgInterfaceStatistics{
			LastUpdate:      now,
			StartTime:       st.Start,
			EndTime:         st.End,
			PacketsReceived: n.received[i] + st.Dropped,
			PacketsDropped:  st.Dropped,
		}
		if st.DropsUnknown {
			isb.PacketsReceived, isb.PacketsDropped = pcapgo.NgNoValue64, pcapgo.NgNoValue64
		}
		if err := n.w.WriteInterfaceStats(i, isb); err != nil {
			return fmt.Errorf("pktcap: write pcapng statistics of %s: %w", n.ifaces[i].Name, err)
		}
	}
	if err := n.w.Flush(); err != nil {
		return fmt.Errorf("pktcap: flush pcapng: %w", err)
	}
	return nil
}

// Interfaces returns the interfaces of a pcapng stream read so far (none
// for pcap).
func (c *CaptureReader) Interfaces() []NgInterface {
	if c.ng == nil {
		return nil
	}
	out := make([]NgInterface, c.ng.NInterfaces())
	for i := range out {
		intf, err := c.ng.Interface(i)
		if err != nil {
			continue
		}
		out[i] = NgInterface{Name: intf.Name, Description: intf.Description, Snaplen: int(intf.SnapLength)}
		if st := intf.Statistics; !st.StartTime.IsZero() || !st.EndTime.IsZero() || (st.PacketsDropped != pcapgo.NgNoValue64 && st.PacketsDropped != 0) {
			out[i].Stats = &NgStats{Start: st.StartTime, End: st.EndTime, DropsUnknown: true}
			if st.PacketsDropped != pcapgo.NgNoValue64 {
				out[i].Stats.Dropped, out[i].Stats.DropsUnknown = st.PacketsDropped, false
			}
		}
	}
	return out
}
