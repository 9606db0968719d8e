package lab

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The lab's vCenter view of each host's SSH service and lockdown mode.
//
// vcsim (govmomi v0.56.0) has no HostServiceSystem: every host gets one
// here, at configManager.serviceSystem, whose serviceInfo lists TSM-SSH
// (label "SSH", policy "off" as ESXi installs it) running or not as the
// lab's SSH server is, and whose StartService/StopService start and stop
// that server (a stopped service refuses connections, as ESXi's port 22
// does). config.lockdownMode follows the host's lockdown mode.

// SSHServiceKey is the key of ESXi's SSH service in HostServiceSystem.
const SSHServiceKey = "TSM-SSH"

// hostAccess is what the vCenter asks the lab about a host's SSH service
// and lockdown mode (the Lab implements it).
type hostAccess interface {
	sshRunning(host string) bool
	setSSHRunning(host string, running bool) error
	lockdownMode(host string) string
}

// labServiceSystem is one host's HostServiceSystem.
type labServiceSystem struct {
	mo.HostServiceSystem
	host   string
	access hostAccess
}

func sshServiceInfo(running bool) types.HostServiceInfo {
	return types.HostServiceInfo{Service: []types.HostService{
		{Key: "DCUI", Label: "Direct Console UI", Running: true, Policy: "on"},
		{Key: "TSM", Label: "ESXi Shell", Running: false, Policy: "off"},
		{Key: SSHServiceKey, Label: "SSH", Running: running, Policy: "off"},
	}}
}

func (s *labServiceSystem) set(ctx *simulator.Context, key string, running bool) soap.HasFault {
	if key != SSHServiceKey {
		return &methods.StartServiceBody{Fault_: simulator.Fault(fmt.Sprintf("service %s is not emulated", key), &types.NotFound{})}
	}
	if err := s.access.setSSHRunning(s.host, running); err != nil {
		return &methods.StartServiceBody{Fault_: simulator.Fault(err.Error(), &types.HostConfigFault{})}
	}
	s.ServiceInfo = sshServiceInfo(running)
	return nil
}

// StartService starts a host service (only TSM-SSH is emulated).
func (s *labServiceSystem) StartService(ctx *simulator.Context, req *types.StartService) soap.HasFault {
	if f := s.set(ctx, req.Id, true); f != nil {
		return f
	}
	return &methods.StartServiceBody{Res: &types.StartServiceResponse{}}
}

// StopService stops a host service (only TSM-SSH is emulated).
func (s *labServiceSystem) StopService(ctx *simulator.Context, req *types.StopService) soap.HasFault {
	if f := s.set(ctx, req.Id, false); f != nil {
		return &methods.StopServiceBody{Fault_: f.Fault()}
	}
	return &methods.StopServiceBody{Res: &types.StopServiceResponse{}}
}

// RefreshServices re-reads the services' state.
func (s *labServiceSystem) RefreshServices(ctx *simulator.Context, req *types.RefreshServices) soap.HasFault {
	s.ServiceInfo = sshServiceInfo(s.access.sshRunning(s.host))
	return &methods.RefreshServicesBody{Res: &types.RefreshServicesResponse{}}
}

// addAccess gives the host a service system and its lockdown mode.
func (b *vcBuilder) addAccess(hc *HostConfig) {
	access := b.vc.access
	if access == nil {
		return
	}
	hs := b.simHost(b.hosts[hc.Name].Reference())
	ss := &labServiceSystem{host: hc.Name, access: access}
	ss.Self = types.ManagedObjectReference{Type: "HostServiceSystem", Value: "serviceSystem-" + hs.Self.Value}
	ss.ServiceInfo = sshServiceInfo(access.sshRunning(hc.Name))
	b.sctx.Map.Put(ss)
	ref := ss.Self
	b.sctx.WithLock(hs, func() {
		hs.ConfigManager.ServiceSystem = &ref
		hs.Config.LockdownMode = lockdownAPI(access.lockdownMode(hc.Name))
	})
	b.vc.mu.Lock()
	b.vc.serviceSystems[hc.Name] = ss
	b.vc.hostSystems[hc.Name] = hs
	b.vc.mu.Unlock()
}

// lockdownAPI is a topology lockdown mode as the API names it.
func lockdownAPI(mode string) types.HostLockdownMode {
	switch mode {
	case "normal":
		return types.HostLockdownModeLockdownNormal
	case "strict":
		return types.HostLockdownModeLockdownStrict
	}
	return types.HostLockdownModeLockdownDisabled
}

// syncAccess makes the API show a host's SSH service and lockdown mode
// after the lab changed them.
func (vc *VCenter) syncAccess(host string) {
	vc.mu.Lock()
	ss, hs := vc.serviceSystems[host], vc.hostSystems[host]
	vc.mu.Unlock()
	if ss == nil || vc.access == nil {
		return
	}
	ctx := vc.model.Service.Context
	ctx.WithLock(ss, func() { ss.ServiceInfo = sshServiceInfo(vc.access.sshRunning(host)) })
	ctx.WithLock(hs, func() { hs.Config.LockdownMode = lockdownAPI(vc.access.lockdownMode(host)) })
}
