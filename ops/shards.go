package ops

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// shardGauges show the Discord shards this process serves.
type shardGauges struct {
	once   sync.Once
	owned  prometheus.Gauge
	count  prometheus.Gauge
	served *prometheus.GaugeVec
}

// DiscordShards publishes the Discord shards this process serves, of
// count: orchat_discord_shards_owned (how many), orchat_discord_shards
// (the count) and orchat_discord_shard_served{shard} (1 for each shard
// served here, 0 for the others), so that summed over the processes each
// shard shows 1: 0 is a shard nobody serves, 2 one served twice.
func (m *Metrics) DiscordShards(owned []int, count int) {
	g := &m.shards
	g.once.Do(func() {
		g.owned = prometheus.NewGauge(prometheus.GaugeOpts{Name: "orchat_discord_shards_owned", Help: "Discord gateway shards this process serves."})
		g.count = prometheus.NewGauge(prometheus.GaugeOpts{Name: "orchat_discord_shards", Help: "Discord gateway shards of the bot, over every process."})
		g.served = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "orchat_discord_shard_served", Help: "1 for each Discord shard this process serves, 0 for the others."}, []string{"shard"})
		m.reg.MustRegister(g.owned, g.count, g.served)
	})
	g.owned.Set(float64(len(owned)))
	g.count.Set(float64(count))
	in := map[int]bool{}
	for _, id := range owned {
		in[id] = true
	}
	for id := range count {
		v := 0.0
		if in[id] {
			v = 1
		}
		g.served.WithLabelValues(strconv.Itoa(id)).Set(v)
	}
}
