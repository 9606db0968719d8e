package pktcap

import (
	"fmt"
	"slices"
)

// Point is a pktcap-uw capture point name as given to --capture and as
// printed in console output ("Captured at <Point> point").
type Point string

// Capture points. The names are the ones pktcap-uw -A lists (VMware's own
// test code), the vSphere documentation and real output use.
const (
	UplinkRcv       Point = "UplinkRcv"       // uplink, driver receive
	UplinkSnd       Point = "UplinkSnd"       // uplink, driver transmit
	UplinkRcvKernel Point = "UplinkRcvKernel" // uplink receive in the kernel; default --uplink point on newer builds
	UplinkSndKernel Point = "UplinkSndKernel" // uplink transmit in the kernel
	PortInput       Point = "PortInput"       // frames entering the vSwitch from a port
	PortOutput      Point = "PortOutput"      // frames leaving the vSwitch to a port (before reverse teaming)
	VnicRx          Point = "VnicRx"          // delivered to the vNIC (after reverse teaming)
	VnicTx          Point = "VnicTx"          // sent by the vNIC
	Vmxnet3Rx       Point = "Vmxnet3Rx"       // older name of VnicRx (6.5 docs, 6.7 PDF)
	Vmxnet3Tx       Point = "Vmxnet3Tx"       // older name of VnicTx
	// EtherswitchDispath is VMware's spelling. 5.5/6.7 print it for the
	// default --uplink receive point.
	EtherswitchDispath Point = "EtherswitchDispath"
	EtherswitchOutput  Point = "EtherswitchOutput"
	Drop               Point = "Drop" // dropped packets
	PreDVFilter        Point = "PreDVFilter"
	PostDVFilter       Point = "PostDVFilter"
	IOChain            Point = "IOChain"
	TcpipDispatch      Point = "TcpipDispatch"
	PktFree            Point = "PktFree"
	Dynamic            Point = "Dynamic" // a function given with -f
	VdrRxLeaf          Point = "VdrRxLeaf"
	VdrTxLeaf          Point = "VdrTxLeaf"
	VdrRxTerminal      Point = "VdrRxTerminal"
	VdrTxTerminal      Point = "VdrTxTerminal"
	// ENSInput is an Enhanced Network Stack point seen in real use on NSX
	// hosts (k-guo/nsx-pktcap-multimode).
	ENSInput Point = "ENSInput"
)

// knownPoints lists every Point constant; ParsePoint accepts exactly these.
var knownPoints = []Point{
	UplinkRcv, UplinkSnd, UplinkRcvKernel, UplinkSndKernel,
	PortInput, PortOutput, VnicRx, VnicTx, Vmxnet3Rx, Vmxnet3Tx,
	EtherswitchDispath, EtherswitchOutput, Drop, PreDVFilter, PostDVFilter,
	IOChain, TcpipDispatch, PktFree, Dynamic,
	VdrRxLeaf, VdrTxLeaf, VdrRxTerminal, VdrTxTerminal, ENSInput,
}

// Points returns the capture points ParsePoint knows, in a stable order.
func Points() []Point { return slices.Clone(knownPoints) }

// ParsePoint returns the Point named s. Names are case-sensitive, as on the
// command line of the real tool; the error text is the real tool's
// ("No such capture point: X"). Newer builds know more points (45 on one
// NSX host) than this package; an unknown name is rejected rather than passed
// through so that it can never carry shell syntax.
func ParsePoint(s string) (Point, error) {
	if slices.Contains(knownPoints, Point(s)) {
		return Point(s), nil
	}
	// Capitalised on purpose: this is the real tool's wording.
	return "", fmt.Errorf("No such capture point: %s", s)
}

// Stage places a capture point on a frame's path through the vSwitch, which
// is what correlation needs: aliases of one place share a stage.
type Stage int

// Stages in path order for a frame from the physical network to a VM and back.
const (
	StageOther      Stage = iota // not on the uplink↔vNIC path (IOChain, DVFilter, VDR, PktFree, ...)
	StageUplinkRx                // UplinkRcv, UplinkRcvKernel, EtherswitchDispath
	StagePortOutput              // PortOutput: before the reverse-teaming filter
	StageVnicRx                  // VnicRx, Vmxnet3Rx: after the reverse-teaming filter
	StageVnicTx                  // VnicTx, Vmxnet3Tx
	StagePortInput               // PortInput
	StageUplinkTx                // UplinkSnd, UplinkSndKernel
	StageDrop                    // Drop

	// NumStages is the number of stages (not a stage): arrays indexed by
	// Stage have this length.
	NumStages
)

var stageNames = [...]string{
	StageOther:      "other",
	StageUplinkRx:   "uplink-rx",
	StagePortOutput: "port-output",
	StageVnicRx:     "vnic-rx",
	StageVnicTx:     "vnic-tx",
	StagePortInput:  "port-input",
	StageUplinkTx:   "uplink-tx",
	StageDrop:       "drop",
}

// String returns a short lower-case name such as "uplink-rx".
func (s Stage) String() string {
	if s >= 0 && int(s) < len(stageNames) {
		return stageNames[s]
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Stage returns where p sits on the path. EtherswitchDispath and
// UplinkRcvKernel map to StageUplinkRx because 5.5/6.7 print
// EtherswitchDispath and later builds UplinkRcvKernel for the default
// --uplink point. EtherswitchOutput (between dispatch and PortOutput) is
// StageOther: it is not a point the tool selects by default for any port.
// Unknown names are StageOther.
func (p Point) Stage() Stage {
	switch p {
	case UplinkRcv, UplinkRcvKernel, EtherswitchDispath:
		return StageUplinkRx
	case PortOutput:
		return StagePortOutput
	case VnicRx, Vmxnet3Rx:
		return StageVnicRx
	case VnicTx, Vmxnet3Tx:
		return StageVnicTx
	case PortInput:
		return StagePortInput
	case UplinkSnd, UplinkSndKernel:
		return StageUplinkTx
	case Drop:
		return StageDrop
	}
	return StageOther
}
