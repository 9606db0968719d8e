package trace

// Several vNICs in one run (trace --vm a --vm b, --portgroup NAME): which
// vNICs, the shared plan and its per-host limit, and the Config.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vmware/govmomi/property"
	vview "github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/esxi"
	"github.com/capturectl/capturectl/session"
)

// Chosen is one traced vNIC and how to find it again (to re-read its team
// uplink while the trace runs).
type Chosen struct {
	Target esxi.Target
	// Query and NIC find it again through Discover and Select.
	Query string
	NIC   int
}

// ErrNoVM: a port group has no VM with a vNIC on it.
var ErrNoVM = errors.New("no VM")

// Choose discovers the vNICs of a run: for each query the vNIC at index nic
// (nic < 0: the one the query names by MAC or IP address, else the first),
// then with a portgroup every vNIC of every VM on that port group (standard
// or distributed), by VM name. A vNIC named twice is traced once.
func Choose(ctx context.Context, client *esxi.Client, queries []string, nic int, portgroup string) ([]Chosen, error) {
	var out []Chosen
	seen := map[string]bool{}
	add := func(c Chosen) {
		key := c.Target.VMRef + "/" + c.Target.NIC
		if !seen[key] {
			seen[key] = true
			out = append(out, c)
		}
	}
	for _, q := range queries {
		targets, err := client.Discover(ctx, q, esxi.DiscoverOptions{})
		if err != nil {
			return nil, err
		}
		i, err := Select(targets, q, nic)
		if err != nil {
			return nil, err
		}
		add(Chosen{Target: targets[i], Query: q, NIC: i})
	}
	if portgroup == "" {
		return out, nil
	}
	refs, err := VMsOnPortgroup(ctx, client, portgroup)
	if err != nil {
		return nil, err
	}
	found := 0
	for _, ref := range refs {
		q := "VirtualMachine:" + ref
		targets, err := client.Discover(ctx, q, esxi.DiscoverOptions{})
		if err != nil {
			return nil, fmt.Errorf("trace: --portgroup %s: %w", portgroup, err)
		}
		for i, t := range targets {
			if t.Portgroup == portgroup {
				add(Chosen{Target: t, Query: q, NIC: i})
				found++
			}
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("trace: --portgroup %q: %w has a vNIC on it (port group names are case-sensitive; capturectl discover shows a VM's)", portgroup, ErrNoVM)
	}
	return out, nil
}

// VMsOnPortgroup lists the managed object IDs of the VMs with a vNIC on the
// port group (a standard port group's Network or a distributed port group)
// called name, ordered by VM name.
func VMsOnPortgroup(ctx context.Context, client *esxi.Client, name string) ([]string, error) {
	vim := client.Vim()
	v, err := vview.NewManager(vim).CreateContainerView(ctx, vim.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("trace: VMs: %w", err)
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "network"}, &vms); err != nil {
		return nil, fmt.Errorf("trace: VMs: %w", err)
	}
	// the networks' names, by type (each decodes into its own kind)
	byType := map[string][]types.ManagedObjectReference{}
	seen := map[types.ManagedObjectReference]bool{}
	for _, vm := range vms {
		for _, n := range vm.Network {
			if !seen[n] {
				seen[n] = true
				byType[n.Type] = append(byType[n.Type], n)
			}
		}
	}
	names := map[types.ManagedObjectReference]string{}
	pc := property.DefaultCollector(vim)
	for typ, refs := range byType {
		var err error
		switch typ { // mo.Network and its kinds have a Name of their own
		case "DistributedVirtualPortgroup":
			var pgs []mo.DistributedVirtualPortgroup
			err = pc.Retrieve(ctx, refs, []string{"name"}, &pgs)
			for _, p := range pgs {
				names[p.Self] = p.Name
			}
		case "OpaqueNetwork":
			var ns []mo.OpaqueNetwork
			err = pc.Retrieve(ctx, refs, []string{"name"}, &ns)
			for _, n := range ns {
				names[n.Self] = n.Name
			}
		default:
			var ns []mo.Network
			err = pc.Retrieve(ctx, refs, []string{"name"}, &ns)
			for _, n := range ns {
				names[n.Self] = n.Name
			}
		}
		if err != nil {
			return nil, fmt.Errorf("trace: networks: %w", err)
		}
	}
	var on []mo.VirtualMachine
	for _, vm := range vms {
		if slices.ContainsFunc(vm.Network, func(n types.ManagedObjectReference) bool { return names[n] == name }) {
			on = append(on, vm)
		}
	}
	if len(on) == 0 {
		return nil, fmt.Errorf("trace: --portgroup %q: %w has a vNIC on it (port group names are case-sensitive)", name, ErrNoVM)
	}
	slices.SortFunc(on, func(a, b mo.VirtualMachine) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Self.Value, b.Self.Value))
	})
	out := make([]string, len(on))
	for i, vm := range on {
		out[i] = vm.Self.Value
	}
	return out, nil
}

// MaxPointsPerHost is how many points one host captures at once: one SSH
// connection per host carries a channel per point, and OpenSSH's sshd
// (ESXi's) allows MaxSessions (10 by default) per connection; capturectl
// keeps one for its control commands and one spare (session's default).
const MaxPointsPerHost = 8

// ErrTooManyPoints: a plan needs more points on a host than one SSH
// connection carries.
var ErrTooManyPoints = errors.New("too many capture points on one host")

// CheckHostLimit refuses a plan with more than max points on one host
// (max <= 0: MaxPointsPerHost), saying why and what to do, before anything
// connects.
func CheckHostLimit(p session.Plan, max int) error {
	if max <= 0 {
		max = MaxPointsPerHost
	}
	n := map[string]int{}
	var order []string
	for _, pt := range p.Points {
		if n[pt.Host] == 0 {
			order = append(order, pt.Host)
		}
		n[pt.Host]++
	}
	var over []string
	for _, h := range order {
		if n[h] > max {
			over = append(over, fmt.Sprintf("%s needs %d", h, n[h]))
		}
	}
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("trace: %w: %s; at most %d per host, one pktcap-uw per point, each a channel of the host's one SSH connection "+
		"(sshd's MaxSessions: 10 by default, 1 on hosts hardened by the DISA STIG); trace fewer vNICs per host in one run: %w",
		ErrTooManyPoints, strings.Join(over, ", "), max, ErrPlan)
}

// MultiConfig is the Config of a run over several vNICs: the first is
// Target, the others Also, the plan PlanFor theirs (checked against the
// per-host limit), and with poll each one's team uplink re-read through
// client.
func MultiConfig(client *esxi.Client, chosen []Chosen, base session.Plan, poll bool) (Config, error) {
	if len(chosen) == 0 {
		return Config{}, fmt.Errorf("trace: no vNIC to trace")
	}
	targets := Targets(chosen)
	var plan session.Plan
	var err error
	if len(chosen) == 1 {
		plan, err = DefaultPlan(targets[0], base)
	} else {
		plan, err = PlanFor(targets, base)
	}
	if err != nil {
		return Config{}, err
	}
	if err := CheckHostLimit(plan, 0); err != nil {
		return Config{}, err
	}
	cfg := Config{Target: targets[0], Plan: plan}
	rediscover := func(c Chosen) func(context.Context) (string, error) {
		if !poll || client == nil {
			return nil
		}
		return Rediscover(client, c.Query, c.NIC)
	}
	cfg.TeamUplink = rediscover(chosen[0])
	for _, c := range chosen[1:] {
		cfg.Also = append(cfg.Also, Also{Target: c.Target, TeamUplink: rediscover(c)})
	}
	return cfg, nil
}

// Targets are the chosen vNICs' targets.
func Targets(cs []Chosen) []esxi.Target {
	out := make([]esxi.Target, len(cs))
	for i, c := range cs {
		out[i] = c.Target
	}
	return out
}

// Targets are a Config's traced vNICs in order: Target, then Also.
func (c Config) Targets() []esxi.Target {
	out := []esxi.Target{c.Target}
	for _, a := range c.Also {
		out = append(out, a.Target)
	}
	return out
}

// VMs are a Result's vNICs in order, with their correlations.
func (r *Result) VMs() []VMResult {
	out := []VMResult{{Target: r.Target, Correlation: r.Correlation}}
	return append(out, r.Also...)
}

// Filtered: some vNIC of the run, or the path (Config.From), had frames
// filtered by reverse teaming.
func (r *Result) Filtered() bool {
	for _, v := range r.VMs() {
		if v.Correlation != nil && v.Correlation.Filtered() {
			return true
		}
	}
	if r.Path != nil {
		for _, t := range r.Path.Totals {
			if t[correlate.PathFiltered] > 0 {
				return true
			}
		}
	}
	return false
}

// HostPlan is what a run captures on one host (capturectl --dry-run).
type HostPlan struct {
	Host   string
	Points []PointPlan
}

// PointPlan is one point of a plan: its name, the exact pktcap-uw command
// the session runs for it, and the vNICs ("VM NIC") whose verdicts use it.
type PointPlan struct {
	Name, Command string
	For           []string
}

// Describe is c's plan by host, in plan order.
func Describe(c Config) []HostPlan {
	users := map[string][]string{}
	for _, t := range c.Targets() {
		p, err := DefaultPlan(t, session.Plan{})
		if err != nil {
			continue
		}
		for _, pt := range p.Points {
			users[pt.Name()] = append(users[pt.Name()], t.VM+" "+t.NIC)
		}
	}
	var out []HostPlan
	at := map[string]int{}
	for _, pt := range c.Plan.Points {
		k, ok := at[pt.Host]
		if !ok {
			k, at[pt.Host] = len(out), len(out)
			out = append(out, HostPlan{Host: pt.Host})
		}
		out[k].Points = append(out[k].Points, PointPlan{Name: pt.Name(), Command: pt.Options(c.Plan.Filter, c.Plan.Snaplen).Command(), For: users[pt.Name()]})
	}
	return out
}

// Batches groups vNICs into runs of one host each (the first run of a host
// where its vNICs appear first), each within the per-host point limit, so
// that the vNICs of a host share its uplink captures (audit --verify).
// Order is kept within a host.
func Batches(chosen []Chosen) [][]Chosen {
	var out [][]Chosen
	open := map[string]int{} // host -> its open batch
	for _, c := range chosen {
		h := c.Target.Host
		if k, ok := open[h]; ok {
			try := append(append([]Chosen(nil), out[k]...), c)
			if fits(try) {
				out[k] = try
				continue
			}
		}
		open[h] = len(out)
		out = append(out, []Chosen{c})
	}
	return out
}

// fits: the vNICs' shared plan is within the per-host limit.
func fits(cs []Chosen) bool {
	p, err := PlanFor(Targets(cs), session.Plan{})
	return err == nil && CheckHostLimit(p, 0) == nil
}

// Outcome is one vNIC's part of RunBatches.
type Outcome struct {
	Correlation *correlate.Result
	Err         error
}

// RunBatches traces chosen in Batches (a host's vNICs in one run sharing
// its uplink captures), at most parallel runs at once, each with base's
// duration and filters, its session options from opts (for the run's
// targets), and each vNIC's team uplink re-read through client. start is
// called as each run starts. The outcomes are in chosen's order.
func RunBatches(ctx context.Context, client *esxi.Client, chosen []Chosen, base session.Plan, parallel int,
	opts func([]esxi.Target) (session.Options, error), start func([]Chosen)) []Outcome {
	out := make([]Outcome, len(chosen))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	k := 0
	for _, batch := range Batches(chosen) {
		slots := out[k : k+len(batch)]
		k += len(batch)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if start != nil {
				start(batch)
			}
			res, err := runBatch(ctx, client, batch, base, opts)
			for i := range slots {
				if err != nil {
					slots[i].Err = err
				} else {
					slots[i].Correlation = res.VMs()[i].Correlation
				}
			}
		})
	}
	wg.Wait()
	return out
}

func runBatch(ctx context.Context, client *esxi.Client, batch []Chosen, base session.Plan, opts func([]esxi.Target) (session.Options, error)) (*Result, error) {
	cfg, err := MultiConfig(client, batch, base, true)
	if err != nil {
		return nil, err
	}
	if cfg.Session, err = opts(cfg.Targets()); err != nil {
		return nil, err
	}
	return Run(ctx, cfg)
}
