package session

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/capturectl/capturectl/pktcap"
)

// Point is one place a capture runs: a host and a pktcap-uw capture point
// on an uplink, on a vSwitch port, or host-wide (Drop).
//
// A discovery step (esxi.Target: host, port ID, uplinks, team uplink)
// builds the default set with DefaultPoints.
type Point struct {
	// Host is the ESXi host (as the SSH dialler knows it).
	Host string
	// Uplink is the vmnic of an uplink point.
	Uplink string
	// PortID is the vSwitch port of a port point (decimal, as
	// "esxcli network vm port list" prints it).
	PortID uint32
	// Capture is the pktcap-uw capture point. For an uplink, "" is the
	// receive side that pktcap-uw picks by default (--uplink vmnicN:
	// EtherswitchDispath on 5.5/6.7, UplinkRcvKernel later) and UplinkSnd
	// the transmit side. For a port: PortOutput,
	// VnicRx, VnicTx or PortInput. Drop is host-wide: no Uplink, no PortID.
	Capture pktcap.Point
}

// UplinkRx is the receive point of an uplink.
func UplinkRx(host, vmnic string) Point { return Point{Host: host, Uplink: vmnic} }

// UplinkTx is the transmit point (UplinkSnd) of an uplink.
func UplinkTx(host, vmnic string) Point {
	return Point{Host: host, Uplink: vmnic, Capture: pktcap.UplinkSnd}
}

// PortPoint is a capture point of a vSwitch port (PortOutput, VnicRx,
// VnicTx, PortInput).
func PortPoint(host string, portID uint32, capture pktcap.Point) Point {
	return Point{Host: host, PortID: portID, Capture: capture}
}

// DropPoint is the host-wide Drop point.
func DropPoint(host string) Point { return Point{Host: host, Capture: pktcap.Drop} }

// DefaultPoints returns the default capture of a VM port: every uplink of
// its vSwitch in the receive direction, then PortOutput (before the
// reverse-teaming filter) and VnicRx (after it) of the port.
func DefaultPoints(host string, portID uint32, uplinks []string) []Point {
	var pts []Point
	for _, u := range uplinks {
		pts = append(pts, UplinkRx(host, u))
	}
	return append(pts, PortPoint(host, portID, pktcap.PortOutput), PortPoint(host, portID, pktcap.VnicRx))
}

var (
	reHost   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9])?$`)
	reVmnic  = regexp.MustCompile(`^(vmnic|vusb)[0-9]+$`)
	rePortID = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
)

// Validate checks the point: a plain host name, exactly one of uplink,
// port or the host-wide Drop, and a capture point that fits it.
func (p Point) Validate() error {
	var errs []error
	if !reHost.MatchString(p.Host) || strings.Contains(p.Host, "/") {
		errs = append(errs, fmt.Errorf("bad host name %q", p.Host))
	}
	switch {
	case p.Uplink != "" && p.PortID != 0:
		errs = append(errs, errors.New("both an uplink and a port given"))
	case p.Uplink != "":
		if !reVmnic.MatchString(p.Uplink) {
			errs = append(errs, fmt.Errorf("bad uplink %q: want vmnicN", p.Uplink))
		}
		if p.Capture != "" && p.Capture != pktcap.UplinkSnd {
			errs = append(errs, fmt.Errorf("uplink capture point %q: want \"\" (receive) or UplinkSnd", p.Capture))
		}
	case p.PortID != 0:
		switch p.Capture.Stage() {
		case pktcap.StagePortOutput, pktcap.StageVnicRx, pktcap.StageVnicTx, pktcap.StagePortInput:
		default:
			errs = append(errs, fmt.Errorf("capture point %q is not a port point: want PortOutput, VnicRx, VnicTx or PortInput", p.Capture))
		}
	default:
		if p.Capture != pktcap.Drop {
			errs = append(errs, errors.New("no uplink or port given (only Drop is host-wide)"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("session: point %s: %w", p.Name(), err)
	}
	return nil
}

// Location is where the point sits (pktcap's location grammar).
func (p Point) Location() pktcap.Location {
	return pktcap.Location{Host: p.Host, Uplink: p.Uplink, PortID: p.PortID, Point: p.Capture}
}

// Name is the point's pcapng interface name, its location:
// "esx01/vmnic2/rx", "esx01/vmnic2/tx", "esx01/50331657/VnicRx",
// "esx01/drop". ParsePoint reads it back.
func (p Point) Name() string { return p.Location().String() }

// String is Name.
func (p Point) String() string { return p.Name() }

// ParsePoint parses a point name as Name writes it (a location with its
// host). The result is validated.
func ParsePoint(s string) (Point, error) {
	l, err := pktcap.ParseLocation(s)
	if err != nil {
		return Point{}, fmt.Errorf("session: %w", err)
	}
	if l.Host == "" {
		return Point{}, fmt.Errorf("session: point %q: no host (want HOST/...)", s)
	}
	p := Point{Host: l.Host, Uplink: l.Uplink, PortID: l.PortID, Capture: l.Point}
	if err := p.Validate(); err != nil {
		return Point{}, err
	}
	return p, nil
}

// Options returns the pktcap-uw options that select the point, with the
// plan's filter and snap length and "-o -" (a pcap stream on stdout).
// Port points carry --dir as the article's command lines do: 1 for the
// frames leaving the vSwitch to the port (PortOutput, VnicRx), 0 for those
// entering it (VnicTx, PortInput).
func (p Point) Options(f pktcap.Filter, snaplen int) *pktcap.Options {
	o := &pktcap.Options{Filter: f, Outfile: "-", Snaplen: pktcap.Some(snaplen)}
	switch {
	case p.Uplink != "":
		o.Uplink = p.Uplink
		if p.Capture != "" {
			o.Capture = []pktcap.Point{p.Capture}
		}
	case p.PortID != 0:
		o.SwitchPort = pktcap.Some(p.PortID)
		switch p.Capture.Stage() {
		case pktcap.StagePortOutput, pktcap.StageVnicRx:
			o.Dir = pktcap.Some(pktcap.DirTx)
		default:
			o.Dir = pktcap.Some(pktcap.DirRx)
		}
		o.Capture = []pktcap.Point{p.Capture}
	default:
		o.Capture = []pktcap.Point{p.Capture}
	}
	return o
}
