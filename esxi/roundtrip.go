package esxi

import (
	"context"
	"time"
)

// RoundTrip measures the connection's round trip: one SSH global request
// that wants a reply (keepalive@openssh.com, which every server answers,
// if only to refuse it). It does not wait past ctx.
func (c *SSHClient) RoundTrip(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
