package lab

import (
	"testing"

	"github.com/vmware/govmomi/cli"
	_ "github.com/vmware/govmomi/cli/esx"
	_ "github.com/vmware/govmomi/cli/host/esxcli"
	_ "github.com/vmware/govmomi/cli/host/portgroup"
	_ "github.com/vmware/govmomi/cli/host/vswitch"
	_ "github.com/vmware/govmomi/cli/object"
	_ "github.com/vmware/govmomi/cli/vm"
	_ "github.com/vmware/govmomi/simulator"
)

func TestZZProbe(t *testing.T) { _ = cli.Run }
