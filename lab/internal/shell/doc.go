// Package shell emulates the command shell of an ESXi host for the lab: a
// subset of busybox ash (the shell ESXi gives SSH sessions) interpreting
// scripts parsed by mvdan.cc/sh/v3/syntax (POSIX mode), over a per-host
// virtual process table (ESXi worlds and cartels, with realistic 7-digit
// IDs) and a small in-memory filesystem (so files under /tmp persist between
// SSH sessions).
//
// Word expansion (quotes, parameters, $(...), $((...)), field splitting,
// globbing against the host's FS), pattern matching, read's field splitting
// and printf formats are mvdan.cc/sh/v3/expand and .../pattern; this package
// gives them the shell's variables and special parameters, runs command
// substitutions as its own processes, and keeps the executor, the process
// table, descriptors, redirections and built-ins. It does not use the
// library's interp, which hard-codes $$ to the PID of the Go process.
//
// What it does, as busybox ash and ESXi do:
//   - words: '...', "...", \, $VAR, ${VAR}, ${VAR:-x} and the other POSIX
//     forms, ${#VAR}, $$, $!, $?, $#, $@, $*, $0..$9, $(...), `...`,
//     $((...)), ~ and ~root, field splitting on IFS, pathname globbing;
//     no brace expansion (ash has none);
//   - lists ; && || !, pipelines (one process per element), & (a new process,
//     stdin /dev/null, $! set), wait, { }, ( ), if, while, until, for, case,
//     functions, redirections > >> < <> >& <& N>&M here-documents;
//   - the last simple command of a shell that exits afterwards replaces the
//     shell (ash's EV_EXIT): `sh -c 'echo $$; pktcap-uw ...'` and
//     `sh -c 'echo $$; exec pktcap-uw ...'` both run pktcap-uw with the PID
//     that $$ printed; exec does so explicitly;
//   - built-ins (no new PID): : true false echo printf test [ kill wait exec
//     export unset cd pwd exit shift set read return break continue eval;
//     programs (a new PID each): sh cat sleep ps rm mkdir mv ls timeout uname
//     vmware date hostname grep (with -A N, for `ps -c | grep pktcap-uw` and
//     `esxcli ... | grep -A 8 'Port ID' | grep 'Team Uplink'`) head tail wc
//     sort uniq cut awk (the filters operators pipe esxcli, net-stats and ps
//     through, e.g. VMware KB 2051814's `... | awk '{print $1}' | sort -u`;
//     they take the common options and refuse the rest; awk runs rules
//     "PATTERN {print ITEMS}"), plus the Commands the lab registers
//     (pktcap-uw, esxcli, ...). Messages and exit statuses follow busybox 1.29 (ESXi
//     6.7/7.0): `sh: X: not found` (127), `sh: can't kill pid N: No such
//     process`, `timeout -t SECS [-s SIG] PROG` only;
//   - signals: a Command that calls Proc.Signals handles them itself; one
//     that does not dies of HUP/INT/TERM/PIPE...; SIGKILL removes a process
//     from the table at once. Nothing is killed when an SSH channel closes;
//     background processes outlive the shell that started them.
//
// What it does not do: job control, traps, shell options (set -e and
// friends are refused, not ignored), aliases, non-whitespace IFS field
// rules (a::b is two fields), printf's %e %f %g %X, precisions, * widths and
// 'C arguments (expand.Format has none), a fatal arithmetic error (ash exits;
// here the command fails with status 1), file permissions and ownership, sizes
// limits of the /tmp ramdisk, ps options other than -c -P -u -C -v (the
// others are refused with a message), and real timing of world creation.
// See ps.go for what is verbatim and what is inferred in the ps layout.
package shell
