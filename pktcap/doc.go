// Package pktcap knows the formats of VMware ESXi's pktcap-uw: the capture
// point names, the command line (typed [Options] to argv and back, validated
// so that no value can become shell syntax), the flow filters and their
// matching, the console text format (a lenient streaming parser and an exact
// writer per ESXi build [Style]), the banner and summary lines with the
// stream each goes to, and pcap/pcapng: writing with gopacket's pcapgo,
// reading with [PcapReader] (pcap) and [NgScanner] (pcapng), which parse
// records in place (no copy or allocation per packet) and are checked
// against pcapgo by differential tests and fuzzers; [CaptureReader] reads
// either format, pcap through PcapReader and pcapng through pcapgo's
// NgReader.
//
// It does no I/O beyond the io.Reader and io.Writer values it is given: it
// does not run pktcap-uw, open SSH sessions or files, or decide verdicts.
//
// Where the behaviour of the real tool is not documented the choice made here
// is marked "assumption" in the doc comment of the name concerned.
package pktcap
