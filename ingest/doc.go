// Package ingest turns saved captures into the capture points and the one
// keyed, time-ordered stream of frames that package correlate judges. It
// reads pcap files (one point each, named by the caller), pcapng files (one
// point per interface, named after the point as capturectl writes them,
// esx02/vmnic2/rx or esx02/50331657/VnicRx, or by the caller; interfaces of
// one name across the sections of captures joined with cat are one point)
// and pktcap-uw console text as operators paste it (a point per session and
// capture point, named by the session's banner wherever the merge of
// stderr and stdout put it; the hops of --trace PATHs as points
// trace/POINT; frames tcpdump-uw printed with -xx or -XX). Any of them may
// be gzip-compressed.
//
// For each point it works out what the correlator needs to judge fairly:
// the live interval (the start and end a pcapng's interface statistics
// record, else the first to the last frame widened by the window), the gaps
// between joined captures, the drop count and whether one was reported at
// all, and the snap length (frames are keyed over the shortest).
//
// [Open] reads what it needs of the inputs up front and checks the naming
// of every point, so that mistakes show before the long pass. [Set.Correlate]
// (or [Set.Feed] into a correlator of one's own) then reads the frames: one
// goroutine per input reads and keys them in batches, and the caller's
// goroutine merges them in time order into the correlator, so memory is
// bounded by the batches, not by the captures. A pcapng's interfaces are read
// in one pass however they are interleaved; when the merge waits for frames
// further in the file than the batches hold (a file that is not
// interleaved, as mergecap -a writes), the interface in the way is handed to
// a reader of its own, which reads the file again. A capture cut short (a
// trace killed with -9, cut in the middle of a block) is read up to the cut.
//
// It does not decide verdicts (package correlate does), render reports, or
// capture live (package session does). An input is opened more than once,
// so it must be a file or something [Input.Open] can reopen: [Spool] makes
// standard input or a pipe one, through a temporary file.
package ingest
