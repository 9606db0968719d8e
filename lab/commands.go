package lab

import "github.com/capturectl/capturectl/lab/internal/shell"

// commands are the ESXi commands an emulated host adds to its busybox shell.
func (h *labHost) commands() map[string]shell.Command {
	return map[string]shell.Command{
		"pktcap-uw": h.pktcapUW,
		"esxcli":    h.esxcli,
		"net-stats": h.netStats,
		"vsish":     h.vsish,
	}
}
