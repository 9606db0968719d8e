// Package session runs a capture: pktcap-uw at several capture points on
// one or more ESXi hosts at once, streamed back over SSH, merged into one
// pcapng and handed to a consumer (the correlator) frame by frame, and
// always cleaned up on the hosts.
//
// A Plan names the points (Point: an uplink's receive or transmit side, a
// vSwitch port's PortOutput, VnicRx, VnicTx or PortInput, or a host's Drop
// point; DefaultPoints gives every uplink's receive side plus PortOutput
// and VnicRx of a VM port), one flow filter, the snap length and the limit
// (duration, frame count, or until the context is cancelled). Start opens
// one SSH connection per host and one channel per point, starts every
// point at once and records when each point's stream began and when it was
// stopped (the common live window and the start skew are in the Result).
// Each point runs "pktcap-uw ... -o -": stdout is its pcap stream, read
// with pktcap.CaptureReader (pktcap's own in-place pcap parser; text a
// wrapper printed before the stream is skipped with a warning); stderr
// carries the banner and the summary with the drop count. The pcapng output has one interface per point, named like
// "esx01/vmnic2/rx" and "esx01/50331657/VnicRx", is flushed after every
// frame (a file cut short is valid up to its last frame) and gets
// interface statistics (start, end, drops) at the end; per-point pcaps are
// optional.
//
// Cleanup cannot be skipped: every remote pktcap-uw's PID is learnt before
// it starts ("echo $$; exec pktcap-uw ..."), and whatever ends the capture
// (its limit, Stop, a cancelled context for Ctrl-C or SIGTERM, an error, a
// lost connection, which is dialled again) the session stops every point
// with kill -INT, then -TERM and -9, under a fresh timeout, checking with
// ps by PID and command line. Each point leaves a lease under /tmp naming
// its PID, start time, run and command line; a watchdog started with it
// stops it on the host itself once the run's dead-man deadline passes,
// which capturectl pushes forward while it lives, so a capturectl killed
// with SIGKILL leaves nothing running for long. Cleanup (and every new run
// on the host) stops what expired leases name, and only that: never a
// host-wide kill. The remote commands run in ESXi's busybox ash and in
// Debian's busybox ash alike (see remote.go).
//
// Package session does not decide verdicts or discover hosts and ports
// (see package esxi for the SSH client and discovery), and it writes no
// files of its own: outputs are writers its caller gives.
package session
