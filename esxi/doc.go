// Package esxi is capturectl's side of a live ESXi host and its vCenter: it
// finds out where a VM's traffic enters and leaves a vSwitch, and it runs
// commands on the hosts for the capture stage.
//
// It holds:
//
//   - the govmomi connection to vCenter or a single ESXi host (URL, TLS
//     verification through CAs or pinned thumbprints) and the inventory
//     discovery that turns a VM name into Target values: host, VM, vNIC, MAC,
//     VLAN, vSwitch, teaming policy, uplinks, port ID and team uplink;
//   - the decoding of switches, port groups and their teaming policies from
//     inventory objects, exported (inventory.go) for package audit, which
//     reads the whole inventory in one pass and must see the policies as
//     discovery does;
//   - the SSH client for ESXi hosts (known_hosts, agent, keys, password and
//     keyboard-interactive login, context-aware dialling, one connection with
//     many channels) and the running of remote commands;
//   - lenient parsers for the text that ESXi commands print, so that
//     discovery can fall back to (or cross-check with) the host's own view:
//     esxcli network vm list, esxcli network vm port list, esxcli network
//     vswitch standard list, the failover policy of a standard vSwitch or
//     port group, esxcli network vswitch standard portgroup list, esxcli
//     network nic list, esxcli vm process list and net-stats -l (see
//     esxcli_text.go).
//
// The parsers accept what real hosts and real copies of their output look
// like across builds 5.5 to 8.0: an echoed command or shell prompt before the
// output, CRLF line ends, trailing spaces present or lost, older column sets,
// and keys this package does not know (kept in an Extra map). They report
// text they cannot make sense of as a *ParseError naming the line.
//
// Package esxi does not correlate captures, decide verdicts, run the
// inventory audit's checks (package audit) or write reports, and it does
// not import the emulated lab (lab/...); the lab's writers of the same
// formats live in lab/internal/esxfmt and are checked against the same
// real transcripts in testdata/transcripts.
package esxi
