// Package extcap speaks Wireshark's extcap protocol (extcap(4)): the
// interface, DLT and configuration listings Wireshark asks an external
// capture program for, the capture request it starts one with, and the
// validation of a capture filter typed into Wireshark's capture options.
// It also maps the part of libpcap's filter language that pktcap-uw can
// express onto pktcap-uw's flow filter options; a filter it cannot map is
// refused with the reason, never broadened.
//
// Wireshark runs the program in its extcap folder with these requests:
//
//	--extcap-interfaces [--extcap-version=V]     list the interfaces
//	--extcap-interface IF --extcap-dlts          list IF's link types
//	--extcap-interface IF --extcap-config        list IF's options
//	--extcap-interface IF --extcap-capture-filter F
//	                                             validate F (print nothing if valid)
//	--capture --extcap-interface IF --fifo PATH [--extcap-capture-filter F] OPTIONS...
//	                                             capture into PATH until SIGTERM
//
// OPTIONS are the arguments the configuration listed, as the user set
// them ("--vm testvm2"; a boolflag is the bare flag).
package extcap

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Op is what Wireshark asked for.
type Op int

const (
	OpInterfaces Op = iota + 1
	OpDLTs
	OpConfig
	OpValidateFilter
	OpCapture
)

// Request is one invocation by Wireshark.
type Request struct {
	Op Op
	// Version is Wireshark's, from --extcap-version (may be empty).
	Version string
	// Interface is --extcap-interface (empty for OpInterfaces).
	Interface string
	// Fifo is where a capture writes (OpCapture).
	Fifo string
	// CaptureFilter is --extcap-capture-filter, "" when none.
	CaptureFilter string
	// Options are the remaining arguments: the configuration's options
	// as the user set them, in Wireshark's order.
	Options []string
}

// IsInvocation reports whether args (without the program name) are an
// extcap request rather than a capturectl command line: Wireshark's calls
// always carry an --extcap- option or start with --capture.
func IsInvocation(args []string) bool {
	if len(args) > 0 && args[0] == "--capture" {
		return true
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--extcap-") {
			return true
		}
	}
	return false
}

// Parse reads an extcap request. Options Wireshark does not define are
// kept, in order, in Request.Options.
func Parse(args []string) (Request, error) {
	var r Request
	var list, dlts, config, capture bool
	filterSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("extcap: %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--extcap-interfaces":
			list = true
		case "--extcap-version":
			r.Version, err = next()
		case "--extcap-interface":
			r.Interface, err = next()
		case "--extcap-dlts":
			dlts = true
		case "--extcap-config":
			config = true
		case "--capture":
			capture = true
		case "--fifo":
			r.Fifo, err = next()
		case "--extcap-capture-filter":
			r.CaptureFilter, err = next()
			filterSet = true
		case "--extcap-reload-option", "--extcap-control-in", "--extcap-control-out":
			// interface toolbars and reloadable options: not offered, so
			// never asked; their value is skipped
			_, err = next()
		default:
			r.Options = append(r.Options, a)
		}
		if err != nil {
			return Request{}, err
		}
	}
	n := 0
	for _, b := range []bool{list, dlts, config, capture} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return Request{}, errors.New("extcap: more than one of --extcap-interfaces, --extcap-dlts, --extcap-config and --capture")
	case list:
		r.Op = OpInterfaces
		return r, nil
	case n == 0 && filterSet:
		r.Op = OpValidateFilter
	case n == 0:
		return Request{}, errors.New("extcap: no request: want --extcap-interfaces, --extcap-dlts, --extcap-config, --capture or --extcap-capture-filter")
	case dlts:
		r.Op = OpDLTs
	case config:
		r.Op = OpConfig
	case capture:
		r.Op = OpCapture
		if r.Fifo == "" {
			return Request{}, errors.New("extcap: --capture needs --fifo PATH")
		}
	}
	if r.Interface == "" {
		return Request{}, errors.New("extcap: --extcap-interface IF is required")
	}
	return r, nil
}

// Interface is one capture interface the program offers.
type Interface struct {
	Value   string // the name Wireshark passes back as --extcap-interface
	Display string
}

// Tool describes the program for --extcap-interfaces.
type Tool struct {
	Version string
	Help    string // a URL
	// Display names the tool in Wireshark's About dialog.
	Display string
}

// WriteInterfaces writes the answer to --extcap-interfaces.
func WriteInterfaces(w io.Writer, t Tool, ifs []Interface) error {
	var b strings.Builder
	fmt.Fprintf(&b, "extcap {version=%s}{help=%s}{display=%s}\n", sanitize(t.Version), sanitize(t.Help), sanitize(t.Display))
	for _, i := range ifs {
		fmt.Fprintf(&b, "interface {value=%s}{display=%s}\n", sanitize(i.Value), sanitize(i.Display))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DLT is a link-layer type (a LINKTYPE_ number and its libpcap name).
type DLT struct {
	Number  int
	Name    string
	Display string
}

// Ethernet is LINKTYPE_ETHERNET.
var Ethernet = DLT{1, "EN10MB", "Ethernet"}

// WriteDLTs writes the answer to --extcap-dlts.
func WriteDLTs(w io.Writer, dlts []DLT) error {
	var b strings.Builder
	for _, d := range dlts {
		fmt.Fprintf(&b, "dlt {number=%d}{name=%s}{display=%s}\n", d.Number, sanitize(d.Name), sanitize(d.Display))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ArgType is an option's type in Wireshark's dialog.
type ArgType string

const (
	String     ArgType = "string"
	Integer    ArgType = "integer"
	Unsigned   ArgType = "unsigned"
	Password   ArgType = "password"
	BoolFlag   ArgType = "boolflag" // passed as the bare flag when checked
	FileSelect ArgType = "fileselect"
	Selector   ArgType = "selector"
)

// Arg is one option of the capture dialog.
type Arg struct {
	Call     string // the flag Wireshark passes, "--vm"
	Display  string
	Type     ArgType
	Required bool
	Default  string
	Tooltip  string
	Group    string // the dialog's tab
	// Validation is a regular expression Wireshark checks the value with.
	Validation string
	// Values are a selector's choices.
	Values []Value
}

// Value is one choice of a selector.
type Value struct {
	Value, Display string
	Default        bool
}

// WriteConfig writes the answer to --extcap-config: one arg line per
// option, numbered in order, then the values of selectors.
func WriteConfig(w io.Writer, args []Arg) error {
	var b strings.Builder
	for n, a := range args {
		if !strings.HasPrefix(a.Call, "--") {
			return fmt.Errorf("extcap: option %q: call must start with --", a.Call)
		}
		fmt.Fprintf(&b, "arg {number=%d}{call=%s}{display=%s}{type=%s}", n, sanitize(a.Call), sanitize(a.Display), a.Type)
		if a.Required {
			b.WriteString("{required=true}")
		}
		if a.Default != "" {
			fmt.Fprintf(&b, "{default=%s}", sanitize(a.Default))
		}
		if a.Validation != "" {
			fmt.Fprintf(&b, "{validation=%s}", sanitize(a.Validation))
		}
		if a.Tooltip != "" {
			fmt.Fprintf(&b, "{tooltip=%s}", sanitize(a.Tooltip))
		}
		if a.Group != "" {
			fmt.Fprintf(&b, "{group=%s}", sanitize(a.Group))
		}
		b.WriteString("\n")
	}
	for n, a := range args {
		for _, v := range a.Values {
			fmt.Fprintf(&b, "value {arg=%d}{value=%s}{display=%s}", n, sanitize(v.Value), sanitize(v.Display))
			if v.Default {
				b.WriteString("{default=true}")
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sanitize keeps a value inside its {...}: Wireshark's parser ends a
// value at the first '}' and a line at a newline.
func sanitize(s string) string {
	return strings.NewReplacer("}", ")", "{", "(", "\n", " ", "\r", " ").Replace(s)
}
