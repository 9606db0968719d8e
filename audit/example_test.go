package audit_test

import (
	"context"
	"fmt"

	"github.com/capturectl/capturectl/audit"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

// Audit an inventory (here vcsim's default vCenter model, which has no
// promiscuous port groups) and list what was found. A program that
// connects with esxi.Connect passes its client's Vim().
func ExampleRun() {
	simulator.Test(func(ctx context.Context, c *vim25.Client) {
		res, err := audit.Run(ctx, c, audit.Options{Datacenter: "DC0"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d hosts, %d switches and port groups, %d findings\n", len(res.Hosts), len(res.Objects), len(res.Findings))
		for _, f := range res.Findings {
			fmt.Println(f.ID, f.Severity, f.Path, f.Fix)
		}
	})
	// Output:
	// 4 hosts, 12 switches and port groups, 0 findings
}
