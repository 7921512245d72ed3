package slack_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

// benchWindow is the fake's minute in BenchmarkConcurrentAnswers: Slack's
// limits scaled ten times (chat.update's 50 a minute per workspace is 50
// per 6 s), so the chat.update run takes seconds, not minutes; every
// ratio stays what it is in real time.
const benchWindow = 6 * time.Second

// BenchmarkConcurrentAnswers is 300 mentions at once in one workspace (30
// channels, 10 each), answered by the real adapter against the fake with
// Slack's documented limits enforced (slacktest.DocumentedLimits, on a
// minute of benchWindow), once with native streams and once with
// chat.update. One iteration is the whole burst; it reports the wall time
// until the last answer is finished, in the fake's minutes and as a
// multiple of the model's own time (the simulator's time for one answer).
func BenchmarkConcurrentAnswers(b *testing.B) {
	for _, native := range []bool{true, false} {
		name := "native"
		if !native {
			name = "chat.update"
		}
		b.Run(name, func(b *testing.B) { benchConcurrent(b, native) })
	}
}

func benchConcurrent(b *testing.B, native bool) {
	const answers, channels = 300, 30
	for range b.N {
		b.StopTimer()
		fake := slacktest.MustStart(b, slacktest.Options{NoEcho: true})
		fake.Enforce(slacktest.DocumentedLimits(), benchWindow)
		var mu sync.Mutex
		var model time.Duration // the longest the simulator took for one answer
		st := stacktest.MustOpen(b, stacktest.Options{
			Sim: openroutertest.Options{Latency: 200 * time.Millisecond, TokensPerSecond: 100, OnServed: func(s openroutertest.Served) {
				mu.Lock()
				model = max(model, s.End.Sub(s.Start))
				mu.Unlock()
			}},
			EditInterval: time.Second, // the engine's default pace
		})
		ad, err := slack.New(slack.Options{
			BotToken: fake.BotToken, AppToken: fake.AppToken, APIURL: fake.APIURL(),
			Commands: st.Commands, Handler: st.Engine, History: stacktest.History,
			UpdatesPerMinute: int(float64(slack.DefaultUpdatesPerMinute) * float64(time.Minute) / float64(benchWindow)),
			NativeStreaming:  native,
		})
		if err != nil {
			b.Fatal(err)
		}
		stop := stacktest.Go(b, ad.Run)
		for !ad.Connected() {
			time.Sleep(5 * time.Millisecond)
		}
		var ds []*slacktest.Delivery
		for i := range answers {
			user := fmt.Sprintf("UB%04d", i)
			fake.SetUser(user, user)
			msg, mention := fake.MentionEvents(slacktest.Post{User: user, Channel: fmt.Sprintf("CB%02d", i%channels), Text: "Tell me about the sea."})
			ds = append(ds, msg, mention)
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fake.Deliver(d, 0); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		ad.Wait()
		st.Engine.Drain(context.Background())
		elapsed := time.Since(start)
		b.StopTimer()
		stop()

		done := 0
		for c := range channels {
			for _, m := range fake.BotMessages(fmt.Sprintf("CB%02d", c)) {
				if v := m.Visible(); m.ThreadTS != "" && !m.Streaming && len(v) > 0 && containsCharged(v) {
					done++
				}
			}
		}
		if done != answers {
			b.Fatalf("%d of %d answers finished", done, answers)
		}
		mu.Lock()
		modelTime := model
		mu.Unlock()
		b.ReportMetric(elapsed.Seconds(), "s/burst")
		b.ReportMetric(elapsed.Seconds()/benchWindow.Seconds(), "fake-minutes/burst")
		b.ReportMetric(elapsed.Seconds()/modelTime.Seconds(), "x-model-time")
		rl := 0
		for _, c := range fake.Calls("") {
			if c.Status == 429 {
				rl++
			}
		}
		b.ReportMetric(float64(rl), "429s/burst")
	}
}

func containsCharged(s string) bool {
	for i := 0; i+7 <= len(s); i++ {
		if s[i:i+7] == "charged" {
			return true
		}
	}
	return false
}
