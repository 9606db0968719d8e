// Package esxfmt writes the text that ESXi's esxcli and net-stats print, byte
// for byte, so that the emulated lab hosts can answer
//
//	esxcli network vm list
//	esxcli network vm port list -w WORLDID
//	esxcli network vswitch standard list
//	esxcli network vswitch standard policy failover get -v VSWITCH
//	esxcli network vswitch standard portgroup policy failover get -p PORTGROUP
//	esxcli network vswitch standard portgroup list
//	esxcli network nic list
//	esxcli vm process list
//	net-stats -l
//
// from plain structs of its own. It does not parse (capturectl's parsers are
// in package esxi, which this package does not import), run commands or know
// the lab's network model.
//
// The layout rules are esxcli's own (VMware's Formatters.py in the esxcli
// Python package, checked against real transcripts in
// testdata/transcripts/esxcli):
//
//   - table commands: header row, dashes row, one row per item; each column
//     as wide as its widest cell or header; two spaces between columns;
//     integer columns (World ID, Num Ports, Speed, MTU, Active Clients,
//     VLAN ID) right-aligned, header included; other columns left-aligned,
//     the last one not padded; trailing spaces removed from each row. Which
//     width the dashes under a left-aligned last column have, and whether
//     that column is padded after all (one pre-7.0 copy), depend on the
//     build: see Layout. localcli, esxcli's local twin, prints one unbroken
//     row of dashes and left-aligns every header (Layout.Localcli).
//   - simple (block) commands: an optional unindented header line (the
//     vSwitch name, the VM's display name), then "   Key: value" per field,
//     lists joined with ", ", one blank line between blocks and none at the
//     end. An empty value is printed as "Key: " with the trailing space: the
//     formatter writes "Key: " + value, and the copies that keep trailing
//     whitespace (three of five transcripts) show it; the other copies lost
//     it.
//   - net-stats -l: the printf layout "%-16s %4s %7s %-16s %-18s %s".
//
// Every writer ends its output with a newline, as the command does, and
// refuses values containing a line break (they would forge extra lines).
package esxfmt
