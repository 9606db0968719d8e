// Package lab is an emulated ESXi lab: a network model of ESXi hosts, their
// vSwitches and a physical switch, served as real clients reach ESXi — one
// SSH server per host answering pktcap-uw, esxcli and net-stats, and
// govmomi's vcsim as the vCenter — so that capturectl, govc, OpenSSH and
// tshark can run against it as against real hosts. Everything listens on
// 127.0.0.1.
//
// # What it emulates
//
//   - Hosts (HostConfig): a version from 5.5 to 8.0 that sets what differs
//     between builds (uname and the SSH version string, pktcap-uw's console
//     layout and default uplink point name, esxcli's layout), physical NICs,
//     VMs with vNICs (MAC, IP, world ID), a management address, and an SSH
//     server (lab/internal/sshsrv) that logs root in as ESXi does
//     (keyboard-interactive or key; failed logins lock root as the release
//     does: 10 for 2 minutes on 5.5/6.0, 5 for 15 minutes from 6.5 on)
//     with a host key kept in Options.StateDir; its SSH service can be
//     stopped (ssh.service: stopped, SetSSHService; the port then refuses
//     connections) and the host put in lockdown (lockdown: normal|strict,
//     SetLockdown; root's logins are refused), both shown by the lab's
//     vCenter (a HostServiceSystem with TSM-SSH, config.lockdownMode).
//     Commands run in a
//     busybox-ash subset with a per-host process table and files
//     (lab/internal/shell, whose package doc lists what it supports).
//   - Standard vSwitches: uplinks vmnicN, portgroups with VLAN, promiscuous
//     mode and teaming (srcport, srcmac, loadbased, explicit, iphash; active
//     and standby order; notify switches), VM ports numbered as ESXi numbers
//     them (50331657 = 0x03000009), one team uplink per port chosen from the
//     policy, pinned in the topology or changed at run time
//     (Network.SetTeamUplink, Network.SetLink).
//   - Distributed switches (Config.DistributedSwitches): uplink names,
//     distributed portgroups, and on each member host a proxy switch with
//     the host's vmnics behind the uplink names, forwarding like a standard
//     vSwitch; ports have DVPort IDs, the proxy switch is DvsPortset-N.
//   - Forwarding (forwarding.go): from an uplink, UplinkRcv and PortInput,
//     destination ports by VLAN and MAC (broadcast, multicast and
//     promiscuous ports included), PortOutput, the reverse teaming filter
//     (not for iphash, whose LAG sends one copy), /Net/ReversePathFwdCheckPromisc
//     (HostConfig.ReversePathFwdCheckPromisc), VnicRx without the VLAN tag;
//     from a VM, VnicTx, PortInput, local delivery, then the team uplink's
//     PortOutput and UplinkSnd. Hops add fixed microsecond latencies (a
//     mirrored copy lags 16 µs, as in the article's capture).
//   - The physical switch (pswitch.go): access and trunk ports cabled to host
//     NICs or to stations, per-VLAN MAC learning, flooding, static MAC
//     entries, static LAGs (one copy per LAG, member by hash) and mirror
//     (SPAN) sessions whose destination port carries only mirrored frames.
//   - Guests and traffic: each vNIC and station has a small IPv4 stack that
//     answers ARP and ICMP echo; Network.Ping, Broadcast, SendUDP, SendRaw
//     and Generate (UDP at a rate, hundreds of thousands of frames per
//     second) send from any VM or station; the topology's Traffic runs in
//     the background unless Options.NoTraffic. RecordOffline writes large
//     per-point pcap files on a virtual clock, for benchmarks.
//   - Capture points (taps.go): UplinkRcv, UplinkSnd, PortInput, PortOutput,
//     VnicRx, VnicTx and the host-wide Drop point, to which
//     Network.Subscribe attaches a buffered Tap; a full buffer drops and
//     counts frames, as pktcap-uw's kernel buffer does.
//   - pktcap-uw (pktcapuw.go): the real options and output formats through
//     package pktcap (console text, pcap or pcapng to stdout with -o -, or
//     a file on the host; banner and summary on stderr), -c counts, the
//     flow filters, drops when the reader is slow (HostConfig.CaptureBuffer)
//     reported in the summary, no time limit, and a process that outlives
//     its SSH channel until a write fails.
//   - esxcli and net-stats (esxcli.go): network vm list, network vm port
//     list -w, network vswitch standard list, network vswitch standard
//     [portgroup] policy failover get, network vswitch standard portgroup
//     list, network nic list, vm process list, net-stats -l, and vsish's
//     teamUplink node of a port, in the layouts of real transcripts
//     (lab/internal/esxfmt).
//   - vCenter (vcenter.go, with Options.VCenter or StartVCenter): vcsim over
//     HTTPS with a generated certificate, serving the same hosts, vSwitches,
//     proxy switches, portgroups, policies and VMs (seeded into vcsim's
//     objects, since its API cannot build vSwitch teaming), and answering
//     esxcli network vm list, network vm port list and vm process list
//     through the API from the live model (vcenter_esxcli.go).
//   - Adversity (knobs.go, DESIGN.md §7), in the topology and changeable
//     at run time: a host's clock (HostConfig.Clock: offset and drift;
//     pktcap-uw's timestamps, date, ps and file times follow it;
//     Network.SetHostClock), its management link as capturectl sees it
//     (HostConfig.ManagementLink: latency and jitter each way, bandwidth;
//     Lab.SetManagementLink), capture drop bursts besides a full
//     CaptureBuffer (HostConfig.DropBursts, Network.DropBurst), late
//     capture starts (HostConfig.CaptureStartDelay), and loss
//     on physical switch ports (SwitchPortConfig.Loss, seeded by
//     Config.Seed; Network.SetPortLoss).
//   - Ground truth (truth.go): with Network.RecordTruth every frame the
//     VMs and stations send carries a unique tag (FrameID reads it from a
//     capture) and the network records each copy's fate — arrivals,
//     PortOutput, VnicRx, where and why it stopped, which captures
//     dropped it (Network.Fate, Network.PortFate).
//   - Faults on a running Lab: CutConnections (SSH dropped mid-stream),
//     SetSlowLink (SSH output bandwidth), SetRefuseAuth, ChangeHostKey and
//     SetUnreachable; link state (Network.SetLink) and team uplink changes.
//
// # What it does not emulate
//
//   - Captures at vmknics: pktcap-uw --vmk fails (the lab carries no
//     vmknic traffic; vmk0 exists in the inventory only), and so do
//     --dvfilter, --lifID and capture points other than the seven above.
//   - Reverse-teaming drops at the Drop point: whether ESXi shows them there
//     is unknown, so the lab does not; Drop sees only frames no uplink could
//     send and the ReversePathFwdCheckPromisc drops.
//   - Other ESXi commands: net-dvs, lsof, esxcfg-vswitch, esxcfg-nics,
//     esxcfg-vmknic, vim-cmd, tcpdump-uw, nc, vmkping and localcli answer
//     that the lab does not emulate them (exit 127), as do esxcli commands a
//     real host has near the emulated ones (dvs vmware list, LACP, security
//     and shaping policies, ip interface, nic get/stats, system version and
//     hostname get); other esxcli commands are unknown, net-stats answers
//     only -l and vsish only the teamUplink node.
//   - LACP (static LAGs only); guest stacks beyond ARP and ICMP echo over
//     IPv4 (SendRaw injects any frame, which is forwarded but not
//     answered); powering VMs on or off at run time.
//   - Changes through the vSphere API: they stay in vcsim's objects (as
//     vcsim makes them; its Update* methods are not implemented) and do not
//     reach the network model.
//
// # Starting it
//
// LoadConfig or ParseConfig reads a topology (YAML, configs/ has examples;
// unknown fields and bad values fail with file:line); Start builds its
// Network, serves every host over SSH (and the vCenter with
// Options.VCenter) and returns a Lab; Close stops everything. Lab.Hosts
// says how to reach each host, Lab.KnownHosts gives a known_hosts file and
// Lab.Env the environment that points capturectl and govc at the lab.
// NewNetwork builds the model alone, without servers, for tests that
// subscribe to taps directly.
//
// `capturectl lab serve [-c FILE] [--state DIR]` runs Start for a topology
// file or an embedded config and prints that environment; demo and check
// run it in process. Tests use lab/labtest, which starts a lab for a test
// and cleans it up.
package lab
