package lab

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	esxcli "github.com/vmware/govmomi/cli/esx"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	vimxml "github.com/vmware/govmomi/vim25/xml"

	"github.com/capturectl/capturectl/lab/internal/esxfmt"
)

// esxcli through the vSphere API, as capturectl's discovery runs it
// (govmomi cli/esx): ExecuteSoap on the host's ManagedMethodExecuter.
//
// vcsim dispatches esxcli commands by reflection on its own
// ManagedMethodExecuter type, and the request and response types live in
// govmomi's internal package, so the lab cannot add a command directly.
// Instead a registry handler replaces each host's executer, when vcsim
// creates it, with labMME: same managed object reference, an ExecuteSoap
// that takes the request as `any` and reads it by reflection. labMME calls
// vcsim's ExecuteSoap for every request (keeping its other commands), and
// for the commands below overwrites the response in the returned body:
//
//	network vm list            running VMs with ports (World ID, Name, Num Ports, Networks)
//	network vm port list -w N  the VM's ports with the current team uplink
//	vm process list            running VMs; UUID printed as ESXi prints it
//
// The answers are read from the Network at query time (SetTeamUplink shows
// on the next query) and agree with the lab's SSH esxcli (lab/esxcli.go):
// same World IDs, same VMs (those with ports), same UUID form.
//
// This depends on govmomi internals by name: the request fields Method,
// Argument[].Name and Argument[].Val, the body fields Res.Returnval
// .Response and .Fault (FaultMsg, FaultDetail). A change makes ExecuteSoap
// answer with a fault naming the missing field, and TestVCenterEsxcli fail.

// esxcliHook is a simulator registry handler that installs labMME.
type esxcliHook struct {
	vc *VCenter
	n  *Network
}

func (h *esxcliHook) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "CapturectlEsxcliHook", Value: "capturectl-esxcli-hook"}
}

// PutObject replaces vcsim's ManagedMethodExecuter of a lab host with a
// labMME as soon as vcsim registers it (inside RetrieveManagedMethodExecuter,
// before the reference reaches the client).
func (h *esxcliHook) PutObject(ctx *simulator.Context, obj mo.Reference) {
	orig, ok := obj.(*simulator.ManagedMethodExecuter)
	if !ok {
		return
	}
	host, ok := h.vc.hostName(orig.Reference().Value)
	if !ok {
		return
	}
	ctx.Map.Put(&labMME{orig: orig, n: h.n, host: host})
}

func (h *esxcliHook) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

func (h *esxcliHook) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

// labMME is a host's ManagedMethodExecuter answering the lab's esxcli
// commands and passing the others to vcsim's.
type labMME struct {
	orig *simulator.ManagedMethodExecuter
	n    *Network
	host string
}

func (m *labMME) Reference() types.ManagedObjectReference { return m.orig.Reference() }

// ExecuteSoap is called by vcsim's dispatcher with an
// *internal.ExecuteSoapRequest.
func (m *labMME) ExecuteSoap(ctx *simulator.Context, req any) soap.HasFault {
	orig := reflect.ValueOf(m.orig).MethodByName("ExecuteSoap")
	if !orig.IsValid() {
		return hookFault("vcsim ManagedMethodExecuter has no ExecuteSoap method")
	}
	out := orig.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	res, ok := out[0].Interface().(soap.HasFault)
	if !ok {
		return hookFault(fmt.Sprintf("vcsim ExecuteSoap returned %s", out[0].Type()))
	}
	method, args, err := esxcliRequest(req)
	if err != nil {
		return hookFault(err.Error())
	}
	response, fault, handled := m.answer(method, args)
	if !handled {
		return res
	}
	if err := setEsxcliResult(res, response, fault); err != nil {
		return hookFault(err.Error())
	}
	return res
}

// esxcliRequest reads the method name and arguments of an
// ExecuteSoapRequest.
func esxcliRequest(req any) (string, esxcli.Values, error) {
	v := reflect.ValueOf(req)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return "", nil, fmt.Errorf("esxcli hook: request is %T, not a struct", req)
	}
	method, err := stringField(v, "Method")
	if err != nil {
		return "", nil, err
	}
	argv := v.FieldByName("Argument")
	if !argv.IsValid() || argv.Kind() != reflect.Slice {
		return "", nil, errors.New("esxcli hook: request has no Argument slice")
	}
	args := esxcli.Values{}
	for i := range argv.Len() {
		name, err := stringField(argv.Index(i), "Name")
		if err != nil {
			return "", nil, err
		}
		val, err := stringField(argv.Index(i), "Val")
		if err != nil {
			return "", nil, err
		}
		vals, err := esxcliArgValues(val)
		if err != nil {
			return "", nil, fmt.Errorf("esxcli hook: argument %s: %w", name, err)
		}
		args[name] = vals
	}
	return method, args, nil
}

func stringField(v reflect.Value, name string) (string, error) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.String {
		return "", fmt.Errorf("esxcli hook: %s has no string field %s", v.Type(), name)
	}
	return f.String(), nil
}

// esxcliArgValues decodes an ExecuteSoap argument value: one or more XML
// elements with character data, e.g. "<worldid>2199871</worldid>".
func esxcliArgValues(s string) ([]string, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	var vals []string
	depth := 0
	var text strings.Builder
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			text.Reset()
		case xml.CharData:
			if depth > 0 {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 1 {
				vals = append(vals, text.String())
			}
			depth--
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced XML")
	}
	return vals, nil
}

// setEsxcliResult writes the response XML (or a fault) into the
// ExecuteSoapBody that vcsim returned.
func setEsxcliResult(res soap.HasFault, response string, fault *esxcli.Fault) error {
	body := reflect.ValueOf(res)
	if body.Kind() != reflect.Pointer || body.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("esxcli hook: result is %T, not a struct pointer", res)
	}
	r := body.Elem().FieldByName("Res")
	if !r.IsValid() || r.Kind() != reflect.Pointer {
		return fmt.Errorf("esxcli hook: %s has no Res pointer", body.Elem().Type())
	}
	if r.IsNil() {
		r.Set(reflect.New(r.Type().Elem()))
	}
	rv := r.Elem().FieldByName("Returnval")
	if !rv.IsValid() || rv.Kind() != reflect.Pointer {
		return fmt.Errorf("esxcli hook: %s has no Returnval pointer", r.Elem().Type())
	}
	if rv.IsNil() {
		rv.Set(reflect.New(rv.Type().Elem()))
	}
	resp := rv.Elem().FieldByName("Response")
	f := rv.Elem().FieldByName("Fault")
	if !resp.IsValid() || resp.Kind() != reflect.String || !f.IsValid() || f.Kind() != reflect.Pointer {
		return fmt.Errorf("esxcli hook: %s has no Response string or Fault pointer", rv.Elem().Type())
	}
	if fault == nil {
		resp.SetString(response)
		f.Set(reflect.Zero(f.Type()))
		return nil
	}
	resp.SetString("")
	fv := reflect.New(f.Type().Elem())
	msg := fv.Elem().FieldByName("FaultMsg")
	detail := fv.Elem().FieldByName("FaultDetail")
	if !msg.IsValid() || msg.Kind() != reflect.String || !detail.IsValid() || detail.Kind() != reflect.String {
		return fmt.Errorf("esxcli hook: %s has no FaultMsg or FaultDetail string", fv.Elem().Type())
	}
	msg.SetString(fault.Message)
	detail.SetString(fault.Detail)
	f.Set(fv)
	return nil
}

// hookFault is a SOAP fault for a broken hook (a govmomi change).
type hookFaultBody struct {
	Fault_ *soap.Fault `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *hookFaultBody) Fault() *soap.Fault { return b.Fault_ }

func hookFault(msg string) soap.HasFault {
	return &hookFaultBody{Fault_: simulator.Fault("lab: "+msg, &types.SystemError{Reason: msg})}
}

// ---------------------------------------------------------------------------
// The commands

// networkVMPortInfo is the command info of "network vm port", which vcsim
// does not have. Parameter and hint names follow esxcli's conventions (and
// vcsim's vm.process kill for the world-id parameter); the help texts are
// written for the lab.
var networkVMPortInfo = esxcli.CommandInfo{
	CommandInfoItem: esxcli.CommandInfoItem{Name: "network.vm.port", DisplayName: "port", Help: "Operations on the ports of a VM."},
	Method: []esxcli.CommandInfoMethod{{
		CommandInfoItem: esxcli.CommandInfoItem{Name: "list", DisplayName: "list", Help: "List of active ports for a given VM."},
		Param: []esxcli.CommandInfoParam{{
			CommandInfoItem: esxcli.CommandInfoItem{Name: "worldid", DisplayName: "world-id", Help: "World ID of the VM whose ports to list (see 'network vm list')."},
			Aliases:         []string{"-w", "--world-id"},
		}},
		Hints: esxcli.CommandInfoHints{
			{Key: "fields:Port", Value: "Port ID,vSwitch,Portgroup,DVPort ID,MAC Address,IP Address,Team Uplink,Uplink Port ID,Active Filters"},
			{Key: "formatter", Value: "simple"},
		},
	}},
}

// answer handles the lab's commands; handled is false for the others.
func (m *labMME) answer(method string, args esxcli.Values) (response string, fault *esxcli.Fault, handled bool) {
	var r *esxcli.Response
	switch method {
	case "vim.CLIInfo.FetchCLIInfo":
		if args.Value("typeName") != "vim.EsxCLI.network.vm.port" {
			return "", nil, false
		}
		s, err := encodeEsxcliXML(&networkVMPortInfo)
		if err != nil {
			return "", &esxcli.Fault{Message: err.Error()}, true
		}
		return s, nil, true
	case "vim.EsxCLI.network.vm.list":
		r = &esxcli.Response{Kind: "VimEsxCLInetworkvmlistVM"}
		for _, vm := range m.vms() {
			var nets []string
			for _, p := range vm.ports {
				nets = append(nets, p.Portgroup)
			}
			r.Values = append(r.Values, esxcli.Values{
				"WorldID":  {strconv.Itoa(vm.info.WorldID)},
				"Name":     {vm.info.Name},
				"NumPorts": {strconv.Itoa(len(vm.ports))},
				"Networks": nets,
			})
		}
	case "vim.EsxCLI.network.vm.port.list":
		w := args.Value("worldid")
		if w == "" {
			return "", &esxcli.Fault{Message: "Missing required parameter -w|--world-id"}, true
		}
		wid, err := strconv.Atoi(w)
		if err != nil {
			return "", &esxcli.Fault{Message: "Invalid data constraint for parameter 'world-id'. Expected value of type integer"}, true
		}
		r = &esxcli.Response{Kind: "VimEsxCLInetworkvmportlistPort"}
		for _, vm := range m.vms() {
			if vm.info.WorldID != wid {
				continue
			}
			for _, p := range vm.ports {
				ip, team := p.IP, p.TeamUplink
				if ip == "" {
					ip = "0.0.0.0"
				}
				if team == "" {
					team = "void"
				}
				r.Values = append(r.Values, esxcli.Values{
					"PortID":       {strconv.FormatUint(uint64(p.PortID), 10)},
					"vSwitch":      {p.VSwitch},
					"Portgroup":    {p.Portgroup},
					"DVPortID":     {p.DVPortID},
					"MACAddress":   {p.MAC},
					"IPAddress":    {ip},
					"TeamUplink":   {team},
					"UplinkPortID": {strconv.FormatUint(uint64(p.UplinkPortID), 10)},
				})
			}
		}
	case "vim.EsxCLI.vm.process.list":
		r = &esxcli.Response{Kind: "VimEsxCLIvmprocesslistVirtualMachine"}
		for _, vm := range m.vms() {
			uuid, err := esxfmt.VMXUUID(vm.info.UUID)
			if err != nil {
				uuid = vm.info.UUID
			}
			r.Values = append(r.Values, esxcli.Values{
				"WorldID":     {strconv.Itoa(vm.info.WorldID)},
				"ProcessID":   {"0"},
				"VMXCartelID": {strconv.Itoa(vm.info.WorldID - 1)},
				"UUID":        {uuid},
				"DisplayName": {vm.info.Name},
				"ConfigFile":  {"/vmfs/volumes/" + vcenterDatastore + "/" + vm.info.Name + "/" + vm.info.Name + ".vmx"},
			})
		}
	default:
		return "", nil, false
	}
	s, err := encodeEsxcliXML(r)
	if err != nil {
		return "", &esxcli.Fault{Message: err.Error()}, true
	}
	return s, nil, true
}

type labVM struct {
	info  VMInfo
	ports []PortInfo
}

// vms lists the host's running VMs with ports, in port ID order of their
// first port (as the lab's SSH esxcli does).
func (m *labMME) vms() []labVM {
	ports, err := m.n.Ports(m.host)
	if err != nil {
		return nil
	}
	var out []labVM
	index := map[int]int{}
	for _, p := range ports {
		i, ok := index[p.VM.WorldID]
		if !ok {
			i = len(out)
			index[p.VM.WorldID] = i
			out = append(out, labVM{info: p.VM})
		}
		out[i].ports = append(out[i].ports, p)
	}
	return out
}

// encodeEsxcliXML encodes as vcsim does (govmomi's xml package, which
// handles the xsi:type attributes of esxcli.Response).
func encodeEsxcliXML(v any) (string, error) {
	var b bytes.Buffer
	if err := vimxml.NewEncoder(&b).Encode(v); err != nil {
		return "", fmt.Errorf("esxcli hook: encode response: %w", err)
	}
	return b.String(), nil
}
