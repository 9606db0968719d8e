package oracle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/capturectl/capturectl/lab"
	"github.com/capturectl/capturectl/scenario"
)

// Case is one generated scenario: a topology (YAML, through the lab's
// strict parser) and the scenario traced on it.
type Case struct {
	Seed     uint64
	Topology *lab.Config
	Scenario *scenario.Scenario
	// YAML is the topology as generated; Summary says in a line what the
	// case has (for reports).
	YAML    string
	Summary string
	// TeamChanges: the case changes the traced port's team uplink (by an
	// action, or a link flap that moves it).
	TeamChanges bool
}

// The traced VM and its neighbours in every generated topology.
const (
	tracedVM   = "target"
	tracedHost = "esx02"
)

// Generate makes the case of a seed: the same seed, the same case.
//
// Two hosts; esx02 holds the traced VM "target" (VLAN 100, promiscuous or
// not), a neighbour in its VLAN and one in VLAN 200; esx01 holds a VM of
// VLAN 100; two stations on access ports (VLAN 100 and 200). esx02's
// vSwitch has two or three uplinks and a random teaming policy; with IP
// hash its switch ports form a static LAG, otherwise a mirror may copy
// one uplink's frames to another (the article). Knobs: esx02's clock
// (offset, drift within capturectl's 100 ppm bound), its management link,
// a small capture buffer with load, drop bursts, loss on switch ports.
// Traffic: two to five of pings, broadcasts and UDP from everywhere to
// the target, from it, between others and in the other VLAN. Actions:
// team-uplink changes, link flaps, drop bursts, loss and link changes.
func Generate(seed uint64) (*Case, error) {
	r := rand.New(rand.NewPCG(seed, 0x0ac1e))
	c := &Case{Seed: seed}
	var sum []string
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }

	nUp := 2 + r.IntN(2)
	var uplinks []string
	for i := range nUp {
		uplinks = append(uplinks, fmt.Sprintf("vmnic%d", 2+i))
	}
	policy := pick("srcport", "srcport", "srcmac", "loadbased", "explicit", "iphash")
	lag := policy == "iphash"
	promisc := r.IntN(4) == 0
	pinned := ""
	if r.IntN(2) == 0 {
		pinned = uplinks[r.IntN(nUp)]
	}
	sum = append(sum, fmt.Sprintf("%s over %d uplinks", policy, nUp))
	if promisc {
		sum = append(sum, "promiscuous")
	}

	var b strings.Builder
	fmt.Fprintf(&b, "name: oracle-%d\nseed: %d\nhosts:\n", seed, seed)
	// esx01: the far VM
	fmt.Fprintf(&b, `  - name: esx01
    vswitches:
      - name: vSwitch1
        uplinks: [vmnic2, vmnic3]
        teaming: {policy: %s}
        portgroups: [{name: VLAN100, vlan: 100}]
    vms:
      - name: src1
        nics: [{portgroup: VLAN100, mac: "00:50:56:aa:00:01", ip: 192.168.100.11/24}]
`, pick("srcport", "srcmac", "explicit"))
	// esx02: the traced host, with its knobs
	fmt.Fprintf(&b, "  - name: %s\n", tracedHost)
	if r.IntN(3) > 0 {
		off := pick("-37s", "2.5s", "-800ms", "45ms", "-3s", "61s")
		drift := r.IntN(161) - 80
		fmt.Fprintf(&b, "    clock: {offset: %s, drift: %dppm}\n", off, drift)
		sum = append(sum, fmt.Sprintf("clock %s %dppm", off, drift))
	}
	if r.IntN(3) == 0 {
		lat := pick("5ms", "20ms", "40ms", "75ms")
		fmt.Fprintf(&b, "    managementLink: {latency: %s, jitter: %s}\n", lat, pick("0s", "1ms", "5ms"))
		sum = append(sum, "link "+lat)
	}
	load := false
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "    captureBuffer: %d\n", pick2(r, 16, 64, 256))
		load = true
		sum = append(sum, "small capture buffer")
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "    dropBursts: {every: %s, length: %s}\n", pick("500ms", "1s"), pick("10ms", "50ms"))
		sum = append(sum, "drop bursts")
	}
	if r.IntN(5) == 0 {
		fmt.Fprintf(&b, "    reversePathFwdCheckPromisc: true\n")
	}
	fmt.Fprintf(&b, `    vswitches:
      - name: vSwitch1
        uplinks: [%s]
        teaming: {policy: %s}
        portgroups:
          - {name: VLAN100, vlan: 100}
          - {name: MON, vlan: 100, promiscuous: %v}
          - {name: VLAN200, vlan: 200}
    vms:
`, strings.Join(uplinks, ", "), policy, promisc)
	tpg := "VLAN100"
	if promisc {
		tpg = "MON"
	}
	team := ""
	if pinned != "" {
		team = ", teamUplink: " + pinned
	}
	fmt.Fprintf(&b, `      - name: %s
        nics: [{portgroup: %s, mac: "00:50:56:bb:00:02", ip: 192.168.100.12/24%s}]
      - name: peer2
        nics: [{portgroup: VLAN100, mac: "00:50:56:bb:00:03", ip: 192.168.100.13/24}]
      - name: other200
        nics: [{portgroup: VLAN200, mac: "00:50:56:bb:00:04", ip: 192.168.200.14/24}]
`, tracedVM, tpg, team)
	fmt.Fprintf(&b, `stations:
  - {name: ext1, mac: "00:1b:21:00:00:01", ip: 192.168.100.201/24}
  - {name: ext2, mac: "00:1b:21:00:00:02", ip: 192.168.200.202/24}
switch:
  ports:
    - {name: p1, connect: esx01/vmnic2, vlans: [100, 200]}
    - {name: p2, connect: esx01/vmnic3, vlans: [100, 200]}
    - {name: e1, connect: "station:ext1", access: 100}
    - {name: e2, connect: "station:ext2", access: 200}
`)
	var swPorts []string
	for i, u := range uplinks {
		name := fmt.Sprintf("h%d", i+1)
		swPorts = append(swPorts, name)
		loss := ""
		if r.IntN(6) == 0 {
			loss = fmt.Sprintf(", loss: %.2f", 0.05+0.4*r.Float64())
			sum = append(sum, "loss on "+name)
		}
		fmt.Fprintf(&b, "    - {name: %s, connect: %s/%s, vlans: [100, 200]%s}\n", name, tracedHost, u, loss)
	}
	if lag {
		fmt.Fprintf(&b, "  lags: [{name: po1, ports: [%s]}]\n", strings.Join(swPorts, ", "))
		sum = append(sum, "LAG")
	} else if r.IntN(2) == 0 {
		src, dst := r.IntN(nUp), r.IntN(nUp-1)
		if dst >= src {
			dst++
		}
		fmt.Fprintf(&b, "  mirrors: [{name: m1, sources: [%s], direction: %s, destination: %s}]\n",
			swPorts[src], pick("tx", "both"), swPorts[dst])
		sum = append(sum, "mirror")
	}
	c.YAML = b.String()
	topo, err := lab.ParseConfig([]byte(c.YAML), fmt.Sprintf("oracle-%d.yaml", seed))
	if err != nil {
		return nil, fmt.Errorf("oracle: seed %d: generated topology: %w", seed, err)
	}
	c.Topology = topo

	dur := time.Duration(1500+r.IntN(1000)) * time.Millisecond
	sc := &scenario.Scenario{Name: fmt.Sprintf("oracle-%d", seed), VM: tracedVM, Duration: dur}
	every := func() time.Duration { return time.Duration(40+r.IntN(160)) * time.Millisecond }
	add := func(t lab.TrafficConfig) func() { return func() { sc.Traffic = append(sc.Traffic, t) } }
	ping := func(from, to string) func() {
		return func() {
			sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "ping", From: from, To: to, Interval: every()})
		}
	}
	kinds := []func(){
		ping("src1", tracedVM), ping("ext1", tracedVM), ping("peer2", tracedVM), ping(tracedVM, "ext1"),
		ping("src1", "peer2"), ping("ext2", "other200"),
		func() {
			add(lab.TrafficConfig{Kind: "broadcast", From: pick("ext1", "src1", "peer2"), To: "192.168.100.99", Interval: every()})()
		},
		func() {
			add(lab.TrafficConfig{Kind: "udp", From: pick("ext1", "src1"), To: tracedVM, Rate: 100 + r.IntN(900), Size: 100 + r.IntN(900)})()
		},
	}
	for range 2 + r.IntN(4) {
		kinds[r.IntN(len(kinds))]()
	}
	if load {
		sc.Traffic = append(sc.Traffic, lab.TrafficConfig{Kind: "udp", From: "ext1", To: tracedVM, Rate: 5000 + r.IntN(15000), Size: 100})
		sum = append(sum, "load")
	}
	at := func() time.Duration { return time.Duration(r.Int64N(int64(dur) * 8 / 10)) }
	for range r.IntN(4) {
		switch r.IntN(5) {
		case 0:
			u := uplinks[r.IntN(nUp)]
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetTeamUplink: &scenario.SetTeamUplink{VM: tracedVM, Uplink: u}})
			c.TeamChanges = true
			sum = append(sum, "team change")
		case 1:
			u := uplinks[r.IntN(nUp)]
			t0 := at()
			sc.Actions = append(sc.Actions, scenario.Action{At: t0, SetLink: &scenario.SetLink{Host: tracedHost, NIC: u, Up: false}},
				scenario.Action{At: t0 + (dur-t0)/2, SetLink: &scenario.SetLink{Host: tracedHost, NIC: u, Up: true}})
			c.TeamChanges = true
			sum = append(sum, "link flap")
		case 2:
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), DropBurst: &scenario.DropBurst{Host: tracedHost, Length: time.Duration(10+r.IntN(200)) * time.Millisecond}})
			sum = append(sum, "drop burst")
		case 3:
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetLoss: &scenario.SetLoss{Port: swPorts[r.IntN(nUp)], Loss: 0.5 * r.Float64()}})
			sum = append(sum, "loss change")
		case 4:
			l := &scenario.SetManagementLink{Host: tracedHost}
			l.Latency = time.Duration(r.IntN(60)) * time.Millisecond
			sc.Actions = append(sc.Actions, scenario.Action{At: at(), SetManagementLink: l})
			sum = append(sum, "link change")
		}
	}
	if r.IntN(4) == 0 {
		// late-starting points: each pktcap-uw on esx02 takes up to this
		// long to start (drawn last, so that adding it kept the other
		// cases of each seed as they were)
		d := time.Duration(50+r.IntN(400)) * time.Millisecond
		c.Topology.Hosts[1].CaptureStartDelay = d
		c.YAML += fmt.Sprintf("# esx02 captureStartDelay: %v\n", d)
		sum = append(sum, "late starts")
	}
	if err := sc.Validate(fmt.Sprintf("oracle-%d", seed)); err != nil {
		return nil, fmt.Errorf("oracle: seed %d: generated scenario: %w", seed, err)
	}
	c.Scenario = sc
	c.Summary = strings.Join(sum, ", ")
	return c, nil
}

func pick2(r *rand.Rand, xs ...int) int { return xs[r.IntN(len(xs))] }
