package shell

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzRun checks that no script makes the parser or the interpreter panic or
// hang past its context, and that Close then stops everything it started.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		`echo $$; exec pktcap-uw -o -`,
		`sleep 100 & kill -9 $!; wait`,
		`a=$((1/0)); echo ${x?unset}`,
		`f() { f; }; f`,
		`while :; do echo y; done | true`,
		`cat <<EOF
$(echo hi) ${HOME%/}
EOF`,
		`[ ( 1 -eq 1 ) -o ! x ]; printf '%d %q %*s' a`,
		`eval 'eval "$0"'; set -- a b; shift 3; echo "$@" $*`,
		`exec 3>&1 9<&- 1>&-; echo x`,
		`timeout -t 1 -s 0 sh -c 'kill -l 300; ps -cPuC'`,
		`x=$((1<<70)) y=$((-9223372036854775807-1)); echo $((y/-1)) $((y%-1)) $((2**-1))`,
		`set -- a b; x=e\ f; echo "x$@y" {a,b} ~root ~x/ ${u:-a\ b} ${x%\ *} /t*/ $((x=2, x<<63))`,
		`printf '%99999999s|%b|%c|%' x 'a\c' yz; echo -e '\0101\c'; read -r a b; echo "$a$b"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		h := NewHost("esx01", NewProcTable(firstPID, nil), nil, map[string]Command{
			"pktcap-uw": func(ctx context.Context, p *Proc, args []string) int {
				<-ctx.Done()
				return 0
			},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		var out, errb bytes.Buffer
		h.Run(ctx, script, bytes.NewReader([]byte("input line\n")), &out, &errb)
		cancel()
		closed := make(chan struct{})
		go func() {
			h.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close did not return for script %q", script)
		}
	})
}
