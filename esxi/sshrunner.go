package esxi

import (
	"context"
	"sync"
)

// SSHRunner is a CommandRunner over SSH (DiscoverOptions.SSH): one
// connection per host, dialled when first needed and kept until Close.
type SSHRunner struct {
	// Dial connects to a host (e.g. Dial with the user's SSHConfig).
	Dial func(ctx context.Context, host string) (*SSHClient, error)

	mu      sync.Mutex
	clients map[string]*SSHClient
}

// Run runs cmd on host and returns its standard output.
func (r *SSHRunner) Run(ctx context.Context, host, cmd string) (string, error) {
	c, err := r.client(ctx, host)
	if err != nil {
		return "", err
	}
	out, _, err := c.Run(ctx, cmd)
	return string(out), err
}

func (r *SSHRunner) client(ctx context.Context, host string) (*SSHClient, error) {
	r.mu.Lock()
	c := r.clients[host]
	r.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := r.Dial(ctx, host)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if have := r.clients[host]; have != nil { // a concurrent Run dialled too
		c.Close()
		return have, nil
	}
	if r.clients == nil {
		r.clients = map[string]*SSHClient{}
	}
	r.clients[host] = c
	return c, nil
}

// Close closes every connection.
func (r *SSHRunner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		c.Close()
	}
	r.clients = nil
}
