package lab

import (
	"context"
	"fmt"

	"github.com/capturectl/capturectl/lab/internal/shell"
)

// commands are the ESXi commands an emulated host adds to its busybox shell.
func (h *labHost) commands() map[string]shell.Command {
	cmds := map[string]shell.Command{
		"pktcap-uw": h.pktcapUW,
		"esxcli":    h.esxcli,
		"net-stats": h.netStats,
		"vsish":     h.vsish,
	}
	for _, name := range notEmulated {
		cmds[name] = func(_ context.Context, p *shell.Proc, _ []string) int {
			fmt.Fprintf(p.Stderr(), "%s: a real ESXi host has this command; the lab does not emulate it (see the capturectl README for what it answers)\n", name)
			return 127
		}
	}
	return cmds
}

// notEmulated are ESXi commands people use around packet captures that
// the lab does not answer: saying "not found" would teach that real hosts
// lack them.
var notEmulated = []string{"net-dvs", "lsof", "esxcfg-vswitch", "esxcfg-nics", "esxcfg-vmknic", "vim-cmd", "tcpdump-uw", "nc", "vmkping", "localcli"}
