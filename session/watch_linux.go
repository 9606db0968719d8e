package session

import (
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// WatchReader calls gone once the read end of the pipe or FIFO behind w
// (an *os.File or OutputFile; anything else is not watched) is closed (every reader went away), even while nothing is written to f: a
// capture whose filter matches nothing would otherwise only learn it at
// its end. It polls f for POLLERR, which Linux reports on a pipe's write
// end without readers. stop ends the watch and waits for it.
func WatchReader(w io.Writer, gone func()) (stop func()) {
	f := pipeOf(w)
	if f == nil {
		return func() {}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			var revents int16
			cerr := rc.Control(func(fd uintptr) {
				pfd := []unix.PollFd{{Fd: int32(fd)}}
				if n, err := unix.Poll(pfd, 200); err == nil && n > 0 {
					revents = pfd[0].Revents
				}
			})
			if cerr != nil { // the file was closed
				return
			}
			if revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				gone()
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done) }); wg.Wait() }
}
