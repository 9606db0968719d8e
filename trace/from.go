package trace

import (
	"context"

	"github.com/capturectl/capturectl/esxi"
)

// WithFrom makes cfg (one receiving vNIC, as MultiConfig built it) a trace
// of the whole path from the sender the query names (ResolveFrom): the
// plan becomes PathPlan's on both ends' hosts, with cfg.Plan's filter,
// snap length, duration and count, and with poll the sender's team uplink
// is re-read as the receiver's is. A sender outside the inventory leaves
// the plan as it was (Result.FromNote says so). The notes say what the
// plan left out; an impossible plan is ErrPlan.
func WithFrom(ctx context.Context, client *esxi.Client, cfg Config, query string, poll bool) (Config, []PathNote, error) {
	from, err := ResolveFrom(ctx, client, query)
	if err != nil {
		return cfg, nil, err
	}
	cfg.From = from
	if from.Target == nil {
		return cfg, nil, nil
	}
	base := cfg.Plan
	base.Points = nil
	plan, notes, err := PathPlan(cfg.Target, *from.Target, base, 0)
	if err != nil {
		return cfg, notes, err
	}
	cfg.Plan = plan
	if poll {
		from.TeamUplink = Rediscover(client, query, -1)
	}
	return cfg, notes, nil
}
