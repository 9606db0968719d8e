package ingest

import (
	"io"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/pktcap"
)

// addPcap makes a pcap file a point: Input.Point names it. Its live
// interval is its frames, known once they are read.
func (s *Set) addPcap(in Input, r io.Reader) error {
	if in.Point == "" {
		return &NameError{Input: in.Name, Problem: Unnamed, Iface: -1}
	}
	p, err := correlate.PointFromName(in.Point)
	if err != nil {
		return &NameError{Input: in.Name, Problem: BadName, Iface: -1, Name: in.Point, Err: err}
	}
	pr, err := pktcap.NewPcapReader(r)
	if err != nil {
		return inputErr(in.Name, err)
	}
	if err := noInterfaces(in); err != nil {
		return err
	}
	idx := len(s.points)
	s.points = append(s.points, Point{Point: p, From: []string{in.Name}, LiveFromFrames: true, SnapLen: int(pr.Snaplen())})
	s.sources = append(s.sources, source{in: in, format: pktcap.FormatPcap, point: idx})
	return nil
}

// noInterfaces rejects Input.Interfaces for an input that is not a pcapng.
func noInterfaces(in Input) error {
	for _, i := range sortedKeys(in.Interfaces) {
		return &NameError{Input: in.Name, Problem: NoSuchInterface, Iface: i, Name: in.Interfaces[i]}
	}
	return nil
}

// readPcap passes the frames of a pcap source to emit, until the end or
// until emit returns false.
func readPcap(src source, emit emitFunc) error {
	r, c, err := open(src.in)
	if err != nil {
		return err
	}
	defer c.Close()
	pr, err := pktcap.NewPcapReader(r)
	if err != nil {
		return inputErr(src.in.Name, err)
	}
	for {
		ns, data, origLen, err := pr.Next()
		if err != nil {
			return readEnd(src.in.Name, err)
		}
		if !emit(src.point, ns, data, origLen) {
			return nil
		}
	}
}
