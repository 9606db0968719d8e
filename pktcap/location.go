package pktcap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Location is where a capture point sits, as capturectl names a point
// (a pcapng interface, a --point argument, a report row):
//
//	HOST/vmnicN/rx       an uplink's receive side (pktcap-uw --uplink vmnicN)
//	HOST/vmnicN/tx       an uplink's transmit side (--uplink vmnicN --capture UplinkSnd)
//	HOST/vmnicN/POINT    an uplink at another point (UplinkRcvKernel, ...)
//	HOST/PORTID/POINT    a switch port at a point: esx02/50331657/VnicRx
//	HOST/drop            the host's Drop point
//
// This is the one place the grammar is written (String) and read
// (ParseLocation).
type Location struct {
	Host string
	// Uplink is the physical NIC of an uplink point (vmnicN); PortID the
	// switch port of a port point. At most one of them is set.
	Uplink string
	PortID uint32
	// Point is the capture point; on an uplink, "" is the receive side
	// (the --uplink default) and UplinkSnd the transmit side.
	Point Point
}

var rePortID = regexp.MustCompile(`^[1-9][0-9]{0,9}$`) // reUplink: options.go

// String writes the location in the grammar above.
func (l Location) String() string {
	switch {
	case l.Uplink != "":
		switch l.Point {
		case "":
			return l.Host + "/" + l.Uplink + "/rx"
		case UplinkSnd:
			return l.Host + "/" + l.Uplink + "/tx"
		}
		return l.Host + "/" + l.Uplink + "/" + string(l.Point)
	case l.PortID != 0:
		return l.Host + "/" + strconv.FormatUint(uint64(l.PortID), 10) + "/" + string(l.Point)
	case l.Point == Drop:
		return l.Host + "/drop"
	}
	return l.Host + "/?/" + string(l.Point)
}

// Stage is where the location sits on a frame's path. On an uplink only
// its receive and transmit points (and Drop) are stages: an uplink's own
// PortInput and PortOutput (pktcap-uw --uplink vmnic2 --capture
// PortOutput) are not a VM port's, so they are StageOther.
func (l Location) Stage() Stage {
	if l.Uplink == "" {
		return l.Point.Stage()
	}
	switch st := l.Point.Stage(); {
	case l.Point == "":
		return StageUplinkRx
	case st == StageUplinkRx || st == StageUplinkTx || st == StageDrop:
		return st
	}
	return StageOther
}

const locationForms = "HOST/vmnicN/rx, HOST/vmnicN/tx, HOST/PORTID/POINT or HOST/drop"

// ParseLocation reads a location in the grammar above. The host may be
// left out (vmnic2/rx, 50331657/VnicRx) and so may everything but the
// point (VnicRx), as saved captures name their points; a caller that
// needs a host checks Host.
func ParseLocation(s string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("capture point %q: %s (want %s, e.g. esx02/vmnic2/rx or esx02/50331657/VnicRx)", s, fmt.Sprintf(format, args...), locationForms)
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return bad("too many parts")
	}
	for _, p := range parts {
		if p == "" {
			return bad("an empty part")
		}
	}
	last := parts[len(parts)-1]
	if len(parts) == 2 && last == "drop" {
		return Location{Host: parts[0], Point: Drop}, nil
	}
	var l Location
	rest := parts[:len(parts)-1]
	if len(rest) > 0 {
		switch where := rest[len(rest)-1]; {
		case reUplink.MatchString(where):
			l.Uplink, rest = where, rest[:len(rest)-1]
		case rePortID.MatchString(where):
			id, err := strconv.ParseUint(where, 10, 32)
			if err != nil {
				return bad("bad port ID %q", where)
			}
			l.PortID, rest = uint32(id), rest[:len(rest)-1]
		case len(rest) == 2:
			return bad("%q is neither vmnicN nor a port ID", where)
		}
	}
	if len(rest) == 1 {
		l.Host = rest[0]
	}
	switch {
	case l.Uplink != "" && last == "rx":
		return l, nil
	case l.Uplink != "" && last == "tx":
		l.Point = UplinkSnd
		return l, nil
	}
	pt, err := ParsePoint(last)
	if err != nil {
		return bad("%v", err)
	}
	l.Point = pt
	if st := pt.Stage(); l.Uplink == "" && (st == StageUplinkRx || st == StageUplinkTx) {
		return bad("an uplink point needs the uplink, e.g. esx02/vmnic2/rx")
	}
	return l, nil
}
