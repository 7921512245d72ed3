package bot

import (
	"context"
	"slices"
	"sync/atomic"
	"time"
)

// SettingsTTL is how long a process trusts the settings it read: a change
// made through this process applies at once; one made through another
// process sharing the ledger applies within this time.
const SettingsTTL = 5 * time.Second

// Communities is the one reader of community settings every part shares
// (the engine for admins and channels, the commands for personas, models
// and budgets, the adapters for model autocomplete): it resolves channel →
// community → host default over the store, with a short cache, and it
// decides who a community's admins are.
type Communities struct {
	store SettingsStore
	pools Pools
	cache *Cache[[]Setting]
	host  atomic.Pointer[HostDefaults]
}

var _ CommunityReader = (*Communities)(nil)

// NewCommunities reads settings from store (and pools from pools, for
// CommunityReader; nil is allowed), with host as the defaults, caching a
// community's settings for ttl on the clock now (nil: time.Now).
func NewCommunities(store SettingsStore, pools Pools, host HostDefaults, ttl time.Duration, now func() time.Time) *Communities {
	c := &Communities{store: store, pools: pools, cache: NewCache[[]Setting](10_000, ttl, now)}
	c.SetHost(host)
	return c
}

// SetHost replaces the host's defaults (a config reload): they apply to
// the next lookup.
func (c *Communities) SetHost(h HostDefaults) {
	h.Admins = slices.Clone(h.Admins)
	c.host.Store(&h)
}

// Host returns the host's defaults in force.
func (c *Communities) Host() HostDefaults { return *c.host.Load() }

// IsCommunity reports whether s is a community that may have settings
// (not a DM, not empty).
func IsCommunity(s string) bool { return ValidateCommunity(s) == nil }

// View returns the settings in force in a channel of a community. A place
// that is no community (a Discord DM) has the host's defaults only.
func (c *Communities) View(ctx context.Context, community, channel string) (CommunityView, error) {
	host := c.Host()
	if !IsCommunity(community) {
		return Resolve(community, channel, nil, host), nil
	}
	stored, ok := c.cache.Get(community)
	if !ok {
		var err error
		if stored, err = c.store.CommunitySettings(ctx, community); err != nil {
			return CommunityView{}, err
		}
		c.cache.Put(community, stored)
	}
	return Resolve(community, channel, stored, host), nil
}

// Pool returns the community's pool (zero without a Pools).
func (c *Communities) Pool(ctx context.Context, community string) (Pool, error) {
	if c.pools == nil {
		return Pool{Community: community}, nil
	}
	return c.pools.Pool(ctx, community)
}

// Set stores a change and makes it apply at once in this process.
func (c *Communities) Set(ctx context.Context, u SettingUpdate) (SettingChange, bool, error) {
	ch, changed, err := c.store.SetSetting(ctx, u)
	c.cache.Delete(u.Community)
	return ch, changed, err
}

// Changes returns the community's last limit setting changes, newest
// first.
func (c *Communities) Changes(ctx context.Context, community string, limit int) ([]SettingChange, error) {
	return c.store.SettingChanges(ctx, community, limit)
}

// IsHostAdmin reports whether id is one of the host's admins.
func (c *Communities) IsHostAdmin(id Identity) bool {
	return slices.Contains(c.Host().Admins, id)
}

// IsAdmin reports whether the event's user runs its community: a host
// admin anywhere; in a community, a user or role the community made its
// admin, or whom the platform says manages it (Discord: Manage Server or
// Administrator; Slack: a workspace admin or owner). The platform is asked
// last, as it may take a call.
func (c *Communities) IsAdmin(ctx context.Context, ev Event) (bool, error) {
	if c.IsHostAdmin(ev.Identity) {
		return true, nil
	}
	if !IsCommunity(ev.Community) {
		return false, nil
	}
	v, err := c.View(ctx, ev.Community, ev.SettingsChannel())
	if err != nil {
		return false, err
	}
	for _, a := range v.Admins() {
		if a == string(ev.Identity) {
			return true, nil
		}
		for _, r := range ev.Roles {
			if a == "role:"+r {
				return true, nil
			}
		}
	}
	if ev.ManagesCommunity != nil {
		return ev.ManagesCommunity(ctx)
	}
	return false, nil
}

// ModelPolicy returns the model rules in force in a channel (nil: none);
// the adapters filter their model autocomplete with it.
func (c *Communities) ModelPolicy(ctx context.Context, community, channel string) (*ModelPolicy, error) {
	v, err := c.View(ctx, community, channel)
	if err != nil {
		return nil, err
	}
	return v.Policy(), nil
}

// ModelRules is what an adapter needs to offer only allowed models
// (Communities implements it).
type ModelRules interface {
	ModelPolicy(ctx context.Context, community, channel string) (*ModelPolicy, error)
}

var _ ModelRules = (*Communities)(nil)
