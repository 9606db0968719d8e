package shell_test

import (
	"context"
	"os"

	"github.com/capturectl/capturectl/lab/internal/shell"
)

func ExampleHost_Run() {
	h := shell.NewHost("esx01", shell.NewProcTable(2099871, nil), shell.NewFS(nil), nil)
	defer h.Close()
	h.Run(context.Background(), `echo $$; kill 1; nosuch; uname -s`, nil, os.Stdout, os.Stdout)
	// Output:
	// 2099871
	// sh: can't kill pid 1: No such process
	// sh: nosuch: not found
	// VMkernel
}
