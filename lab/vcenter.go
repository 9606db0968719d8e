package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"

	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The lab's vCenter: govmomi's vcsim, in process, serving the topology's
// hosts, vSwitches, portgroups and VMs.
//
// vcsim's API cannot build a vSwitch with uplinks and teaming, so the
// inventory is made in two passes: the API creates what vcsim supports
// (standalone hosts, a datastore, one Network entity per portgroup name,
// the VMs with their vNICs, power state), then the simulator objects are
// seeded directly with what it does not: HostSystem config.network (pnics,
// vSwitches with bridge and teaming, portgroups with VLAN, overrides,
// computed policy and VM ports, vmk0), HostNetworkSystem networkInfo (the
// same data; govc's host.vswitch.info and host.portgroup.info read it),
// the product version and the guest's IP addresses. Changes made through
// the API later behave as vcsim makes them (AddPortGroup updates
// networkInfo only, Update* are not implemented).
//
// esxcli through the API (network vm list, network vm port list, vm process
// list) answers from the Network at query time; see vcenter_esxcli.go.

// VCenterOptions configures StartVCenter.
type VCenterOptions struct {
	// Addr to listen on; default 127.0.0.1:0 (a free port).
	Addr string
	// Username and Password required at login; default root and a
	// generated password.
	Username, Password string
	// access is the lab's hosts' SSH service and lockdown mode (see
	// vcenter_access.go); nil: no HostServiceSystem.
	access hostAccess
}

// VCenter is a running simulated vCenter (vcsim) serving a lab topology
// over HTTPS with a certificate generated at start.
type VCenter struct {
	model    *simulator.Model
	server   *simulator.Server
	url      *url.URL
	user     string
	password string
	sha256   string
	sha1     string
	caFile   string
	dsDir    string

	// hostByMoid maps a HostSystem moid to the lab host name; the esxcli
	// hook reads it from request goroutines.
	mu         sync.Mutex
	hostByMoid map[string]string
	// per host name: its service system and HostSystem (vcenter_access.go)
	serviceSystems map[string]*labServiceSystem
	hostSystems    map[string]*simulator.HostSystem
	access         hostAccess

	closeOnce sync.Once
}

// vcenterDatacenter is the datacenter holding every lab host (vcsim's
// default name; the lab has no reason to pick another).
const vcenterDatacenter = "DC0"

// vcenterDatastore is the datastore every host mounts; the lab's SSH esxcli
// prints VM config files under /vmfs/volumes/datastore1.
const vcenterDatastore = "datastore1"

// ESXi GA builds, for the hosts' product information.
var esxiBuilds = map[string]struct{ version, build string }{
	"5.5": {"5.5.0", "1331820"},
	"6.0": {"6.0.0", "2494585"},
	"6.5": {"6.5.0", "4564106"},
	"6.7": {"6.7.0", "8169922"},
	"7.0": {"7.0.0", "15843807"},
	"8.0": {"8.0.0", "20513097"},
	"9.0": {"9.0.0", "24755229"}, // ESX 9.0.0.0 GA (VCF 9.0 BOM; esxcli system version get of a 9.0 host)
}

// vcsimMu serialises the part of StartVCenter that touches vcsim's
// package-level state.
var vcsimMu sync.Mutex

// StartVCenter starts vcsim on opts.Addr serving cfg's hosts and VMs as
// n models them; n must have been built from cfg. Close stops it.
func StartVCenter(n *Network, cfg *Config, opts VCenterOptions) (*VCenter, error) {
	if n == nil || cfg == nil {
		return nil, errors.New("lab: vcenter: nil network or config")
	}
	for _, hc := range cfg.Hosts {
		n.mu.Lock()
		_, ok := n.hostBy[hc.Name]
		n.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("lab: vcenter: host %s of the config is not in the network", hc.Name)
		}
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Username == "" {
		opts.Username = "root"
	}
	if opts.Password == "" {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("lab: vcenter: generate password: %w", err)
		}
		opts.Password = "Lab-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	}
	cert, err := selfSignedCert()
	if err != nil {
		return nil, fmt.Errorf("lab: vcenter: %w", err)
	}

	vc := &VCenter{user: opts.Username, password: opts.Password, hostByMoid: map[string]string{},
		serviceSystems: map[string]*labServiceSystem{}, hostSystems: map[string]*simulator.HostSystem{}, access: opts.access}
	ok := false
	defer func() {
		if !ok {
			vc.Close()
		}
	}()

	// vcsim keeps package-level state that Model.Create and NewServer
	// write without a lock (LicenseManager's license list, the server's
	// defaults): labs started in parallel in one process (the oracle's
	// sweep) take turns here.
	vcsimMu.Lock()
	m := simulator.VPX()
	m.Datacenter = 1
	m.Host, m.Cluster, m.ClusterHost, m.Pool = 0, 0, 0, 0
	m.Machine, m.Portgroup, m.Datastore = 0, 0, 0
	m.Autostart = false
	if err := m.Create(); err != nil {
		m.Remove()
		vcsimMu.Unlock()
		return nil, fmt.Errorf("lab: vcenter: create vcsim model: %w", err)
	}
	vc.model = m
	// The license assignment manager copies vcsim's package-level
	// EvalLicense into an assignment for every host added, in the task's
	// own goroutine, while another lab's Model.Create appends to it: no
	// lock of ours can order the two. capturectl never asks for license
	// assignments, so the lab's vCenter does not keep them.
	lamRef := types.ManagedObjectReference{Type: "LicenseAssignmentManager", Value: "LicenseAssignmentManager"}
	if lam, isHandler := m.Map().Get(lamRef).(simulator.RegisterObject); isHandler {
		m.Map().RemoveHandler(lam)
	}
	// Before any client can ask for a host's ManagedMethodExecuter.
	m.Map().AddHandler(&esxcliHook{vc: vc, n: n})

	m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	m.Service.Listen = &url.URL{Host: opts.Addr, User: url.UserPassword(opts.Username, opts.Password)}
	vc.server = m.Service.NewServer()
	vcsimMu.Unlock()
	vc.url = &url.URL{Scheme: "https", Host: vc.server.URL.Host, Path: vc.server.URL.Path}
	info := vc.server.CertificateInfo()
	vc.sha256, vc.sha1 = info.ThumbprintSHA256, info.ThumbprintSHA1
	if vc.caFile, err = vc.server.CertificateFile(); err != nil {
		return nil, fmt.Errorf("lab: vcenter: write CA file: %w", err)
	}
	if vc.dsDir, err = os.MkdirTemp("", "capturectl-vcsim-ds-"); err != nil {
		return nil, fmt.Errorf("lab: vcenter: datastore directory: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := vc.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("lab: vcenter: connect to vcsim: %w", err)
	}
	defer func() {
		_ = session.NewManager(c).Logout(context.Background())
		c.CloseIdleConnections()
	}()
	b := &vcBuilder{vc: vc, n: n, cfg: cfg, c: c, sctx: m.Service.Context, hosts: map[string]*object.HostSystem{}, nets: map[string]types.ManagedObjectReference{},
		dvsUUID: map[string]string{}, dvpgKey: map[string]string{}}
	if err := b.build(ctx); err != nil {
		return nil, fmt.Errorf("lab: vcenter: %w", err)
	}
	ok = true
	return vc, nil
}

// connect logs in to the vCenter trusting its certificate as a CA (a
// pinned thumbprint would first try a verified handshake, which the server
// logs as a bad certificate).
func (vc *VCenter) connect(ctx context.Context) (*vim25.Client, error) {
	sc := soap.NewClient(vc.URL(), false)
	if err := sc.SetRootCAs(vc.CertificateFile()); err != nil {
		return nil, err
	}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := session.NewManager(c).Login(ctx, url.UserPassword(vc.user, vc.password)); err != nil {
		c.CloseIdleConnections()
		return nil, err
	}
	return c, nil
}

// URL is the SDK endpoint, https://127.0.0.1:PORT/sdk, without credentials.
func (vc *VCenter) URL() *url.URL { u := *vc.url; return &u }

// Username is the login name.
func (vc *VCenter) Username() string { return vc.user }

// Password is the login password.
func (vc *VCenter) Password() string { return vc.password }

// Thumbprint is the SHA-256 thumbprint of the server certificate in the
// form govc prints and GOVC_TLS_KNOWN_HOSTS takes (colon-separated
// uppercase hex).
func (vc *VCenter) Thumbprint() string { return vc.sha256 }

// ThumbprintSHA1 is the certificate's SHA-1 thumbprint (older clients).
func (vc *VCenter) ThumbprintSHA1() string { return vc.sha1 }

// CertificateFile is a PEM file with the server certificate, usable as
// GOVC_TLS_CA_CERTS; it is removed by Close.
func (vc *VCenter) CertificateFile() string { return vc.caFile }

// Close stops the server and removes its files. It is idempotent.
func (vc *VCenter) Close() {
	vc.closeOnce.Do(func() {
		if vc.server != nil {
			vc.server.Close()
		}
		if vc.model != nil {
			vc.model.Remove()
		}
		if vc.dsDir != "" {
			_ = os.RemoveAll(vc.dsDir)
		}
	})
}

func (vc *VCenter) setHost(moid, name string) {
	vc.mu.Lock()
	vc.hostByMoid[moid] = name
	vc.mu.Unlock()
}

func (vc *VCenter) hostName(moid string) (string, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	name, ok := vc.hostByMoid[moid]
	return name, ok
}

// selfSignedCert makes a fresh ECDSA certificate for 127.0.0.1, ::1 and
// localhost, so the thumbprint pinned by clients is this run's own.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "capturectl lab vCenter", Organization: []string{"capturectl lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ---------------------------------------------------------------------------
// Building the inventory

type vcBuilder struct {
	vc    *VCenter
	n     *Network
	cfg   *Config
	c     *vim25.Client
	sctx  *simulator.Context
	dc    *object.Datacenter
	dirs  *object.DatacenterFolders
	hosts map[string]*object.HostSystem
	nets  map[string]types.ManagedObjectReference // portgroup name -> Network
	// distributed switches by name: their UUID, and the key of each of
	// their portgroups
	dvsUUID map[string]string
	dvpgKey map[string]string
}

func (b *vcBuilder) build(ctx context.Context) error {
	dc, err := find.NewFinder(b.c).Datacenter(ctx, vcenterDatacenter)
	if err != nil {
		return fmt.Errorf("find datacenter: %w", err)
	}
	b.dc = dc
	if b.dirs, err = dc.Folders(ctx); err != nil {
		return fmt.Errorf("datacenter folders: %w", err)
	}
	for i := range b.cfg.Hosts {
		if err := b.addHost(ctx, &b.cfg.Hosts[i]); err != nil {
			return fmt.Errorf("host %s: %w", b.cfg.Hosts[i].Name, err)
		}
	}
	for i := range b.cfg.Hosts {
		hc := &b.cfg.Hosts[i]
		if err := b.addPortgroups(ctx, hc); err != nil {
			return fmt.Errorf("host %s: %w", hc.Name, err)
		}
	}
	for i := range b.cfg.DistributedSwitches {
		d := &b.cfg.DistributedSwitches[i]
		if err := b.addDVS(ctx, d); err != nil {
			return fmt.Errorf("distributed switch %s: %w", d.Name, err)
		}
	}
	for i := range b.cfg.Hosts {
		hc := &b.cfg.Hosts[i]
		for j := range hc.VMs {
			if err := b.addVM(ctx, hc, &hc.VMs[j]); err != nil {
				return fmt.Errorf("host %s: VM %s: %w", hc.Name, hc.VMs[j].Name, err)
			}
		}
	}
	for i := range b.cfg.Hosts {
		if err := b.seedHost(&b.cfg.Hosts[i]); err != nil {
			return fmt.Errorf("host %s: %w", b.cfg.Hosts[i].Name, err)
		}
		b.addAccess(&b.cfg.Hosts[i])
	}
	b.removeUnusedDefaultNetwork()
	return nil
}

// taskResult waits for a task that creates an object and returns the
// object; what names the step in errors.
func taskResult(ctx context.Context, what string) func(*object.Task, error) (types.ManagedObjectReference, error) {
	return func(task *object.Task, err error) (types.ManagedObjectReference, error) {
		if err != nil {
			return types.ManagedObjectReference{}, fmt.Errorf("%s: %w", what, err)
		}
		res, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return types.ManagedObjectReference{}, fmt.Errorf("%s: %w", what, err)
		}
		ref, ok := res.Result.(types.ManagedObjectReference)
		if !ok {
			return types.ManagedObjectReference{}, fmt.Errorf("%s: unexpected result %T", what, res.Result)
		}
		return ref, nil
	}
}

func (b *vcBuilder) addHost(ctx context.Context, hc *HostConfig) error {
	spec := types.HostConnectSpec{HostName: hc.Name, Force: true}
	ref, err := taskResult(ctx, "add standalone host")(b.dirs.HostFolder.AddStandaloneHost(ctx, spec, true, nil, nil))
	if err != nil {
		return err
	}
	h := object.NewHostSystem(b.c, ref)
	b.hosts[hc.Name] = h
	b.vc.setHost(ref.Value, hc.Name)
	dss, err := h.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return fmt.Errorf("datastore system: %w", err)
	}
	if _, err := dss.CreateLocalDatastore(ctx, vcenterDatastore, b.vc.dsDir); err != nil {
		return fmt.Errorf("create datastore %s: %w", vcenterDatastore, err)
	}
	return nil
}

// addPortgroups creates one Network entity per portgroup name through
// AddPortGroup (the first host with the name) and attaches the host to it.
func (b *vcBuilder) addPortgroups(ctx context.Context, hc *HostConfig) error {
	h := b.hosts[hc.Name]
	hs := b.simHost(h.Reference())
	ns := b.simNetworkSystem(hs)
	// AddPortGroup looks the vSwitch up by name in networkInfo.
	b.sctx.WithLock(ns, func() {
		ns.NetworkInfo.Vswitch = nil
		for _, sc := range hc.VSwitches {
			if sc.Distributed == nil {
				ns.NetworkInfo.Vswitch = append(ns.NetworkInfo.Vswitch, types.HostVirtualSwitch{Name: sc.Name})
			}
		}
	})
	api := object.NewHostNetworkSystem(b.c, ns.Reference())
	var refs []types.ManagedObjectReference
	for _, sc := range hc.VSwitches {
		if sc.Distributed != nil {
			continue // addDVS
		}
		for _, pc := range sc.Portgroups {
			if _, ok := b.nets[pc.Name]; !ok {
				err := api.AddPortGroup(ctx, types.HostPortGroupSpec{Name: pc.Name, VlanId: int32(pc.VLAN), VswitchName: sc.Name})
				if err != nil {
					return fmt.Errorf("add portgroup %s: %w", pc.Name, err)
				}
				net, err := find.NewFinder(b.c).Network(ctx, "/"+vcenterDatacenter+"/network/"+pc.Name)
				if err != nil {
					return fmt.Errorf("find network of portgroup %s: %w", pc.Name, err)
				}
				b.nets[pc.Name] = net.Reference()
			}
			ref := b.nets[pc.Name]
			if !slices.Contains(refs, ref) {
				refs = append(refs, ref)
			}
			netObj, ok := b.sctx.Map.Get(ref).(*mo.Network)
			if !ok {
				return fmt.Errorf("network %s: unexpected simulator type %T", pc.Name, b.sctx.Map.Get(ref))
			}
			b.sctx.WithLock(netObj, func() {
				if !slices.Contains(netObj.Host, h.Reference()) {
					netObj.Host = append(netObj.Host, h.Reference())
				}
			})
		}
	}
	cr, ok := b.sctx.Map.Get(*hs.Parent).(*mo.ComputeResource)
	if !ok {
		return fmt.Errorf("compute resource: unexpected simulator type %T", b.sctx.Map.Get(*hs.Parent))
	}
	b.sctx.WithLock(cr, func() { cr.Network = slices.Clone(refs) })
	b.sctx.WithLock(hs, func() { hs.Network = slices.Clone(refs) })
	return nil
}

// addDVS creates a distributed switch with its portgroups through the API
// and adds its member hosts; the hosts' proxy switches are seeded with
// config.network (seedHost).
func (b *vcBuilder) addDVS(ctx context.Context, d *DVSConfig) error {
	spec := &types.VMwareDVSConfigSpec{
		DVSConfigSpec: types.DVSConfigSpec{
			Name:              d.Name,
			UplinkPortPolicy:  &types.DVSNameArrayUplinkPortPolicy{UplinkPortName: slices.Clone(d.Uplinks)},
			DefaultPortConfig: dvsPortSetting(0, d.Promiscuous, d.Teaming),
		},
		MaxMtu: int32(d.MTU),
	}
	ref, err := taskResult(ctx, "create")(b.dirs.NetworkFolder.CreateDVS(ctx, types.DVSCreateSpec{ConfigSpec: spec}))
	if err != nil {
		return err
	}
	dvs := object.NewDistributedVirtualSwitch(b.c, ref)
	var pgSpecs []types.DVPortgroupConfigSpec
	for _, pc := range d.Portgroups {
		promisc := d.Promiscuous
		if pc.Promiscuous != nil {
			promisc = *pc.Promiscuous
		}
		team := d.Teaming
		if pc.Teaming.Policy != "" {
			team.Policy = pc.Teaming.Policy
		}
		if len(pc.Teaming.Active)+len(pc.Teaming.Standby) > 0 {
			team.Active, team.Standby = pc.Teaming.Active, pc.Teaming.Standby
		}
		if pc.Teaming.NotifySwitches != nil {
			team.NotifySwitches = pc.Teaming.NotifySwitches
		}
		pgSpecs = append(pgSpecs, types.DVPortgroupConfigSpec{Name: pc.Name, NumPorts: 8,
			Type: string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding), DefaultPortConfig: dvsPortSetting(pc.VLAN, promisc, team)})
	}
	if len(pgSpecs) > 0 {
		task, err := dvs.AddPortgroup(ctx, pgSpecs)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("add portgroups: %w", err)
		}
	}
	var members []types.DistributedVirtualSwitchHostMemberConfigSpec
	for _, m := range d.Hosts {
		members = append(members, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd), Host: b.hosts[m.Host].Reference()})
	}
	simDVS := b.sctx.Map.Get(ref).(*simulator.DistributedVirtualSwitch)
	var version string
	b.sctx.WithLock(simDVS, func() { version = simDVS.Config.GetDVSConfigInfo().ConfigVersion })
	task, err := dvs.Reconfigure(ctx, &types.VMwareDVSConfigSpec{DVSConfigSpec: types.DVSConfigSpec{ConfigVersion: version, Host: members}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("add hosts: %w", err)
	}
	id := dvsIdent{pg: map[string]string{}}
	b.sctx.WithLock(simDVS, func() {
		b.dvsUUID[d.Name] = simDVS.Uuid
		id.uuid = simDVS.Uuid
		uplinkPGs := simDVS.Config.GetDVSConfigInfo().UplinkPortgroup
		for _, pgRef := range simDVS.Portgroup {
			pg := b.sctx.Map.Get(pgRef).(*simulator.DistributedVirtualPortgroup)
			b.nets[pg.Name] = pgRef
			b.dvpgKey[pg.Name] = pg.Key
			id.pg[pg.Name] = pg.Key
			if slices.Contains(uplinkPGs, pgRef) {
				id.uplinkPG = pg.Key
			}
		}
	})
	b.n.setDVSIdentity(d.Name, id) // what the members' esxcli prints
	return nil
}

// dvsPortSetting is a distributed port's configuration: VLAN, security
// and teaming, with the uplink order in uplink names.
func dvsPortSetting(vlan int, promisc bool, t TeamingConfig) *types.VMwareDVSPortSetting {
	notify := true
	if t.NotifySwitches != nil {
		notify = *t.NotifySwitches
	}
	return &types.VMwareDVSPortSetting{
		Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: int32(vlan)},
		SecurityPolicy: &types.DVSSecurityPolicy{
			AllowPromiscuous: &types.BoolPolicy{Value: types.NewBool(promisc)},
			MacChanges:       &types.BoolPolicy{Value: types.NewBool(false)},
			ForgedTransmits:  &types.BoolPolicy{Value: types.NewBool(false)},
		},
		UplinkTeamingPolicy: &types.VmwareUplinkPortTeamingPolicy{
			Policy:         &types.StringPolicy{Value: t.Policy.API()},
			ReversePolicy:  &types.BoolPolicy{Value: types.NewBool(true)},
			NotifySwitches: &types.BoolPolicy{Value: types.NewBool(notify)},
			RollingOrder:   &types.BoolPolicy{Value: types.NewBool(false)},
			UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{
				ActiveUplinkPort: slices.Clone(t.Active), StandbyUplinkPort: slices.Clone(t.Standby)},
		},
	}
}

func (b *vcBuilder) simHost(ref types.ManagedObjectReference) *simulator.HostSystem {
	return b.sctx.Map.Get(ref).(*simulator.HostSystem)
}

func (b *vcBuilder) simNetworkSystem(hs *simulator.HostSystem) *simulator.HostNetworkSystem {
	return b.sctx.Map.Get(*hs.ConfigManager.NetworkSystem).(*simulator.HostNetworkSystem)
}

func (b *vcBuilder) addVM(ctx context.Context, hc *HostConfig, vmc *VMConfig) error {
	h := b.hosts[hc.Name]
	pool, err := h.ResourcePool(ctx)
	if err != nil {
		return fmt.Errorf("resource pool: %w", err)
	}
	uuid := vmc.UUID
	if uuid == "" {
		uuid = vmUUID(hc.Name, vmc.Name)
	}
	var devices object.VirtualDeviceList
	for i, nc := range vmc.NICs {
		hw, err := net.ParseMAC(nc.MAC)
		if err != nil {
			return fmt.Errorf("vNIC %d: %w", i, err)
		}
		netRef, ok := b.nets[nc.Portgroup]
		if !ok {
			return fmt.Errorf("vNIC %d: no network for portgroup %s", i, nc.Portgroup)
		}
		nic := &types.VirtualVmxnet3{}
		card := nic.GetVirtualEthernetCard()
		card.Key = int32(-100 - i)
		card.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: nc.Portgroup},
			Network:                        &netRef,
		}
		if key, ok := b.dvpgKey[nc.Portgroup]; ok {
			// on a distributed portgroup: connected to the DVPort the
			// lab gave the vNIC (none while powered off)
			conn := types.DistributedVirtualSwitchPortConnection{PortgroupKey: key}
			for _, sc := range hc.VSwitches {
				if sc.Distributed != nil && slices.ContainsFunc(sc.Portgroups, func(p PortgroupConfig) bool { return p.Name == nc.Portgroup }) {
					conn.SwitchUuid = b.dvsUUID[sc.Name]
				}
			}
			ports, _ := b.n.Ports(hc.Name)
			for _, p := range ports {
				if p.VM.Name == vmc.Name && p.NIC == i {
					conn.PortKey = p.DVPortID
				}
			}
			card.Backing = &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{Port: conn}
		}
		card.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, Connected: !vmc.PoweredOff, AllowGuestControl: true}
		card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
		card.MacAddress = hw.String()
		card.DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", i+1), Summary: nc.Portgroup}
		devices = append(devices, nic)
	}
	changes, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return fmt.Errorf("device spec: %w", err)
	}
	spec := types.VirtualMachineConfigSpec{
		Name:         vmc.Name,
		GuestId:      string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		Uuid:         uuid,
		NumCPUs:      1,
		MemoryMB:     1024,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + vcenterDatastore + "]"},
		DeviceChange: changes,
	}
	ref, err := taskResult(ctx, "create")(b.dirs.VmFolder.CreateVM(ctx, spec, pool, h))
	if err != nil {
		return err
	}
	if !vmc.PoweredOff {
		task, err := object.NewVirtualMachine(b.c, ref).PowerOn(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("power on: %w", err)
		}
	}
	b.seedGuest(ref, vmc)
	return nil
}

// seedGuest gives a VM what VMware Tools would report: its IP addresses
// per vNIC while running, nothing while powered off. It also removes the
// duplicates vcsim leaves in vm.network when two vNICs share a network.
func (b *vcBuilder) seedGuest(ref types.ManagedObjectReference, vmc *VMConfig) {
	vm := b.sctx.Map.Get(ref).(*simulator.VirtualMachine)
	b.sctx.WithLock(vm, func() {
		var nets []types.ManagedObjectReference
		for _, r := range vm.Network {
			if !slices.Contains(nets, r) {
				nets = append(nets, r)
			}
		}
		vm.Network = nets
		if vmc.PoweredOff {
			vm.Guest.Net = nil
			return
		}
		var first string
		for i := range vm.Guest.Net {
			gn := &vm.Guest.Net[i]
			for _, nc := range vmc.NICs {
				hw, _ := net.ParseMAC(nc.MAC)
				if hw.String() != gn.MacAddress || nc.IP == "" {
					continue
				}
				p, err := netip.ParsePrefix(nc.IP)
				if err != nil {
					continue
				}
				ip := p.Addr().String()
				gn.IpAddress = []string{ip}
				gn.IpConfig = &types.NetIpConfigInfo{IpAddress: []types.NetIpConfigInfoIpAddress{{
					IpAddress: ip, PrefixLength: int32(p.Bits()), State: string(types.NetIpConfigInfoIpAddressStatusPreferred),
				}}}
				if first == "" {
					first = ip
				}
			}
		}
		vm.Guest.GuestState = string(types.VirtualMachineGuestStateRunning)
		vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
		vm.Guest.HostName = vmc.Name
		vm.Guest.IpAddress = first
		summary := types.VirtualMachineGuestSummary{}
		if vm.Summary.Guest != nil {
			summary = *vm.Summary.Guest
		}
		summary.HostName, summary.IpAddress = vmc.Name, first
		summary.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
		summary.ToolsRunningStatus = vm.Guest.ToolsRunningStatus
		vm.Summary.Guest = &summary
	})
}

// seedHost writes config.network, networkInfo and the product version.
func (b *vcBuilder) seedHost(hc *HostConfig) error {
	hs := b.simHost(b.hosts[hc.Name].Reference())
	ns := b.simNetworkSystem(hs)
	cfgNet, err := hostNetworkInfo(b.n, hc, b.dvsUUID)
	if err != nil {
		return err
	}
	nsNet, err := hostNetworkInfo(b.n, hc, b.dvsUUID) // a copy of its own: networkInfo is locked with ns
	if err != nil {
		return err
	}
	b.sctx.WithLock(hs, func() {
		hs.Config.Network = cfgNet
		if len(cfgNet.Vnic) > 0 {
			vmk := cfgNet.Vnic[0]
			for i := range hs.Config.VirtualNicManagerInfo.NetConfig {
				nc := &hs.Config.VirtualNicManagerInfo.NetConfig[i]
				for j := range nc.CandidateVnic {
					if nc.CandidateVnic[j].Device == vmk.Device {
						key := nc.CandidateVnic[j].Key
						nc.CandidateVnic[j] = vmk
						nc.CandidateVnic[j].Key = key
					}
				}
			}
		}
		if pv, ok := esxiBuilds[hc.Version]; ok {
			about := hs.Config.Product
			about.Version, about.Build = pv.version, pv.build
			about.FullName = fmt.Sprintf("VMware ESXi %s build-%s", pv.version, pv.build)
			hs.Config.Product = about
			sc := hs.Summary.Config
			sc.Product = &about
			hs.Summary.Config = sc
		}
	})
	b.sctx.WithLock(ns, func() {
		ns.NetworkInfo = nsNet
	})
	return nil
}

// removeUnusedDefaultNetwork removes vcsim's "VM Network" when no lab
// portgroup has that name (and another network remains: vcsim takes the
// datacenter's first network as a default for later host additions).
func (b *vcBuilder) removeUnusedDefaultNetwork() {
	const name = "VM Network"
	if _, used := b.nets[name]; used || len(b.nets) == 0 {
		return
	}
	dc := b.sctx.Map.Get(b.dc.Reference()).(*simulator.Datacenter)
	folder := b.sctx.Map.Get(dc.NetworkFolder).(*simulator.Folder)
	var ref types.ManagedObjectReference
	b.sctx.WithLock(folder, func() {
		for _, r := range folder.ChildEntity {
			if n, ok := b.sctx.Map.Get(r).(*mo.Network); ok && n.Name == name {
				ref = r
			}
		}
		if ref.Value != "" {
			simulator.RemoveReference(&folder.ChildEntity, ref)
		}
	})
	if ref.Value == "" {
		return
	}
	b.sctx.WithLock(dc, func() { simulator.RemoveReference(&dc.Network, ref) })
	b.sctx.Map.Remove(b.sctx, ref)
}

// ---------------------------------------------------------------------------
// config.network from the Network model

// hostNetworkInfo builds a host's config.network as ESXi reports it, from
// the Network's live state (NIC link, VM ports) and the host's topology;
// dvsUUID gives the UUID of each distributed switch by name.
func hostNetworkInfo(n *Network, hc *HostConfig, dvsUUID map[string]string) (*types.HostNetworkInfo, error) {
	ports, err := n.Ports(hc.Name)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hostBy[hc.Name]
	if h == nil {
		return nil, fmt.Errorf("lab: unknown host %q", hc.Name)
	}
	info := &types.HostNetworkInfo{
		DnsConfig: &types.HostDnsConfig{HostName: hc.Name, DomainName: "lab", VirtualNicDevice: "vmk0"},
	}
	for i, nic := range h.nicOrder {
		pn := types.PhysicalNic{
			Key:    "key-vim.host.PhysicalNic-" + nic.name,
			Device: nic.name,
			Pci:    fmt.Sprintf("0000:%02x:00.%d", 3+i/2, i%2),
			Driver: nic.driver,
			Mac:    nic.mac.String(),
			Spec:   types.PhysicalNicSpec{Ip: &types.HostIpConfig{}},
			ValidLinkSpecification: []types.PhysicalNicLinkInfo{
				{SpeedMb: int32(nic.speed), Duplex: true},
			},
			AutoNegotiateSupported:       types.NewBool(true),
			ResourcePoolSchedulerAllowed: types.NewBool(true),
		}
		if nic.up {
			pn.LinkSpeed = &types.PhysicalNicLinkInfo{SpeedMb: int32(nic.speed), Duplex: true}
		}
		info.Pnic = append(info.Pnic, pn)
	}
	numPorts := int32(4352)
	if hc.Version >= "6.7" {
		numPorts = 4736
	}
	for _, vs := range h.vswitches {
		if vs.dvs != nil {
			info.ProxySwitch = append(info.ProxySwitch, proxySwitch(vs, dvsUUID[vs.name], numPorts))
			continue
		}
		vsKey := "key-vim.host.VirtualSwitch-" + vs.name
		var uplinks, pnicKeys, pgKeys []string
		for _, u := range vs.uplinks {
			uplinks = append(uplinks, u.nic.name)
			pnicKeys = append(pnicKeys, "key-vim.host.PhysicalNic-"+u.nic.name)
		}
		notify := true
		if vs.cfg.Teaming.NotifySwitches != nil {
			notify = *vs.cfg.Teaming.NotifySwitches
		}
		spec := types.HostVirtualSwitchSpec{
			NumPorts: 128,
			Policy: fullPolicy(vs.cfg.Promiscuous, team{policy: vs.cfg.Teaming.Policy,
				active: vs.cfg.Teaming.Active, standby: vs.cfg.Teaming.Standby, notify: notify}),
			Mtu: int32(vs.mtu),
		}
		if len(uplinks) > 0 {
			spec.Bridge = &types.HostVirtualSwitchBondBridge{
				NicDevice:                   uplinks,
				Beacon:                      &types.HostVirtualSwitchBeaconConfig{Interval: 1},
				LinkDiscoveryProtocolConfig: &types.LinkDiscoveryProtocolConfig{Protocol: "cdp", Operation: "listen"},
			}
		}
		// vmk0 sits on "Management Network": ESXi numbers it after the
		// uplinks and their shadow ports (33554436 with one uplink).
		var vmk *types.HostVirtualNic
		var vmkPort types.HostPortGroupPort
		if id, mac, ok := vs.vmk0(); ok {
			pg := vs.portgroups["Management Network"]
			portKey := fmt.Sprintf("key-vim.host.PortGroup.Port-%d", id)
			vmk = &types.HostVirtualNic{
				Device:    "vmk0",
				Key:       "key-vim.host.VirtualNic-vmk0",
				Portgroup: pg.name,
				Port:      portKey,
				Spec: types.HostVirtualNicSpec{
					Ip:                  &types.HostIpConfig{IpAddress: hc.Management, SubnetMask: "255.255.255.0"},
					Mac:                 mac,
					Portgroup:           pg.name,
					Mtu:                 int32(vs.mtu),
					TsoEnabled:          types.NewBool(true),
					NetStackInstanceKey: "defaultTcpipStack",
				},
			}
			vmkPort = types.HostPortGroupPort{Key: portKey, Mac: []string{mac}, Type: "host"}
			info.Vnic = append(info.Vnic, *vmk)
		}
		used := 1 + len(vs.uplinks)
		for _, pg := range vs.pgOrder {
			pgKey := "key-vim.host.PortGroup-" + pg.name
			pgKeys = append(pgKeys, pgKey)
			hp := types.HostPortGroup{
				Key:            pgKey,
				Vswitch:        vsKey,
				Spec:           types.HostPortGroupSpec{Name: pg.name, VlanId: int32(pg.vlan), VswitchName: vs.name, Policy: overridePolicy(pg.cfg)},
				ComputedPolicy: *fullPolicy(pg.promisc, pg.team),
			}
			if vmk != nil && vmk.Portgroup == pg.name {
				hp.Port = append(hp.Port, vmkPort)
				used++
			}
			for _, p := range ports {
				if p.VSwitch == vs.name && p.Portgroup == pg.name {
					hp.Port = append(hp.Port, types.HostPortGroupPort{
						Key:  fmt.Sprintf("key-vim.host.PortGroup.Port-%d", p.PortID),
						Mac:  []string{p.MAC},
						Type: string(types.PortGroupConnecteeTypeVirtualMachine),
					})
					used++
				}
			}
			info.Portgroup = append(info.Portgroup, hp)
		}
		info.Vswitch = append(info.Vswitch, types.HostVirtualSwitch{
			Name:              vs.name,
			Key:               vsKey,
			NumPorts:          numPorts,
			NumPortsAvailable: numPorts - int32(used),
			Mtu:               int32(vs.mtu),
			Portgroup:         pgKeys,
			Pnic:              pnicKeys,
			Spec:              spec,
		})
	}
	return info, nil
}

// proxySwitch is a host's proxy switch of a distributed switch: its
// uplink names with the vmnic behind each.
func proxySwitch(vs *vswitch, uuid string, numPorts int32) types.HostProxySwitch {
	ps := types.HostProxySwitch{
		DvsUuid:           uuid,
		DvsName:           vs.name,
		Key:               uuid,
		NumPorts:          numPorts,
		NumPortsAvailable: numPorts - int32(len(vs.uplinks)+len(vs.ports)),
		Mtu:               int32(vs.mtu),
	}
	backing := &types.DistributedVirtualSwitchHostMemberPnicBacking{}
	for i, u := range vs.uplinks {
		key := uplinkDVPortKey(vs, i)
		ps.Pnic = append(ps.Pnic, "key-vim.host.PhysicalNic-"+u.nic.name)
		ps.UplinkPort = append(ps.UplinkPort, types.KeyValue{Key: key, Value: vs.dvs.UplinkOf[u.nic.name]})
		backing.PnicSpec = append(backing.PnicSpec, types.DistributedVirtualSwitchHostMemberPnicSpec{PnicDevice: u.nic.name, UplinkPortKey: key})
	}
	ps.Spec = types.HostProxySwitchSpec{Backing: backing}
	return ps
}

// fullPolicy is a complete network policy (a vSwitch's, or a portgroup's
// computed one). Reverse policy is always on: ESXi applies the teaming
// policy to inbound frames (fixed since API 5.1).
func fullPolicy(promisc bool, t team) *types.HostNetworkPolicy {
	return &types.HostNetworkPolicy{
		Security: &types.HostNetworkSecurityPolicy{
			AllowPromiscuous: types.NewBool(promisc),
			MacChanges:       types.NewBool(true),
			ForgedTransmits:  types.NewBool(true),
		},
		NicTeaming: &types.HostNicTeamingPolicy{
			Policy:         t.policy.API(),
			ReversePolicy:  types.NewBool(true),
			NotifySwitches: types.NewBool(t.notify),
			RollingOrder:   types.NewBool(false),
			FailureCriteria: &types.HostNicFailureCriteria{
				CheckSpeed:        "minimum",
				Speed:             10,
				CheckDuplex:       types.NewBool(false),
				FullDuplex:        types.NewBool(false),
				CheckErrorPercent: types.NewBool(false),
				CheckBeacon:       types.NewBool(false),
			},
			NicOrder: &types.HostNicOrderPolicy{ActiveNic: slices.Clone(t.active), StandbyNic: slices.Clone(t.standby)},
		},
		OffloadPolicy: &types.HostNetOffloadCapabilities{
			CsumOffload:     types.NewBool(true),
			TcpSegmentation: types.NewBool(true),
			ZeroCopyXmit:    types.NewBool(true),
		},
		ShapingPolicy: &types.HostNetworkTrafficShapingPolicy{Enabled: types.NewBool(false)},
	}
}

// overridePolicy is a portgroup's spec.policy: only what the portgroup
// sets itself, the rest nil (inherited from the vSwitch), as ESXi reports
// a portgroup without overrides.
func overridePolicy(pc *PortgroupConfig) types.HostNetworkPolicy {
	p := types.HostNetworkPolicy{
		Security:      &types.HostNetworkSecurityPolicy{},
		NicTeaming:    &types.HostNicTeamingPolicy{FailureCriteria: &types.HostNicFailureCriteria{}},
		OffloadPolicy: &types.HostNetOffloadCapabilities{},
		ShapingPolicy: &types.HostNetworkTrafficShapingPolicy{},
	}
	if pc.Promiscuous != nil {
		p.Security.AllowPromiscuous = types.NewBool(*pc.Promiscuous)
	}
	if pc.Teaming.Policy != "" {
		p.NicTeaming.Policy = pc.Teaming.Policy.API()
	}
	if pc.Teaming.NotifySwitches != nil {
		p.NicTeaming.NotifySwitches = types.NewBool(*pc.Teaming.NotifySwitches)
	}
	if len(pc.Teaming.Active) > 0 || len(pc.Teaming.Standby) > 0 {
		p.NicTeaming.NicOrder = &types.HostNicOrderPolicy{ActiveNic: slices.Clone(pc.Teaming.Active), StandbyNic: slices.Clone(pc.Teaming.Standby)}
	}
	return p
}
