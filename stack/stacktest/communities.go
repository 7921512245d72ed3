package stacktest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/scheduler"
)

// runCommunities is the part of the behaviour suite about communities
// that run their own orchat (DESIGN.md "Communities"): a community admin
// of the platform's choosing changes the settings, and members see them
// apply.
func runCommunities(t *testing.T, start func(t *testing.T, opts Options) (Harness, *Stack)) {
	t.Run("NonAdminSettingsRefusedAndNothingChanges", func(t *testing.T) {
		h, st := start(t, Options{})
		seen := h.Command(t, "bob", "settings persona set", map[string]string{"text": "You are a pirate."})
		if !anyText(seen, "can use /settings") {
			t.Fatalf("a member's /settings was not refused: %s", dump(seen))
		}
		seen = h.Command(t, "bob", "settings budget daily", map[string]string{"tokens": "1"})
		if !anyText(seen, "can use /settings") {
			t.Fatalf("a member's /settings budget was not refused: %s", dump(seen))
		}
		if rows := communitySettings(t, st, h); len(rows) != 0 {
			t.Fatalf("a refused /settings changed %+v", rows)
		}
		h.Mention(t, "alice", "hello")
		if sp := st.LastSystemPrompt(); !strings.HasPrefix(sp, "You are orchat on") {
			t.Fatalf("the system prompt is %q, want the host's", sp)
		}
	})

	t.Run("PersonaReachesTheModel", func(t *testing.T) {
		h, st := start(t, Options{})
		admin := h.CommunityAdmin()
		seen := h.Command(t, admin, "settings persona set", map[string]string{"text": "You are Polly, a pirate who greets {user} by name."})
		if m := find(t, seen, "Done: persona"); !m.Private {
			t.Errorf("the admin's confirmation was public: %+v", m)
		}
		find(t, h.Mention(t, "alice", "hello there"), "simulated")
		sp := st.LastSystemPrompt()
		if !strings.HasPrefix(sp, "You are Polly, a pirate who greets ") || strings.Contains(sp, "{user}") {
			t.Fatalf("the next answer's system prompt is %q, want the persona with {user} filled in", sp)
		}
		show := h.Command(t, admin, "settings show", nil)
		m := find(t, show, "You are Polly")
		if !strings.Contains(m.Text, "community") || !strings.Contains(m.Text, "host default") {
			t.Fatalf("/settings show does not say where each setting comes from:\n%s", m.Text)
		}
		find(t, h.Command(t, admin, "settings persona clear", nil), "back to the host default")
		h.Mention(t, "alice", "hello again")
		if sp := st.LastSystemPrompt(); !strings.HasPrefix(sp, "You are orchat on") {
			t.Fatalf("after persona clear the system prompt is %q, want the host's", sp)
		}
	})

	t.Run("DeniedModelRefused", func(t *testing.T) {
		h, st := start(t, Options{})
		admin := h.CommunityAdmin()
		find(t, h.Command(t, admin, "settings models deny", map[string]string{"list": "openai/*"}), "Done: models deny")
		h.Mention(t, "alice", "hi")
		before := st.Balance(t, h.Identity("alice"))
		seen := h.Command(t, "alice", "ask", map[string]string{"prompt": "hello", "model": "openai/gpt-5-mini"})
		if !anyText(seen, "openai/gpt-5-mini is not allowed here") {
			t.Fatalf("a denied model was not refused: %s", dump(seen))
		}
		seen = h.Command(t, "alice", "compare", map[string]string{"prompt": "hello", "models": "openai/gpt-5-mini,google/gemini-2.5-flash"})
		if !anyText(seen, "openai/gpt-5-mini is not allowed here") {
			t.Fatalf("a compare with a denied model was not refused: %s", dump(seen))
		}
		if got := st.Balance(t, h.Identity("alice")); got != before {
			t.Fatalf("refusals changed the balance from %d to %d", before, got)
		}
		for _, r := range st.Requests() {
			if strings.HasPrefix(r.Model, "openai/") {
				t.Fatalf("a denied model was called upstream: %s", r.Model)
			}
		}
	})

	t.Run("BlindCompareHidesNamesUntilTheVote", func(t *testing.T) {
		// The simulator's own words name the model; these answers do not.
		faults := map[string]openroutertest.Fault{
			"google/gemini-2.5-flash": {Answer: "The sea is wide and grey."},
			"openai/gpt-5-mini":       {Answer: "Waves fold into foam."},
		}
		h, st := start(t, Options{Sim: openroutertest.Options{Faults: faults}})
		admin := h.CommunityAdmin()
		find(t, h.Command(t, admin, "settings compare blind", map[string]string{"state": "on"}), "Done: compare blind")
		seen := h.Command(t, "bob", "compare", map[string]string{"prompt": "Write about the sea"})
		cmp := find(t, seen, "Waves fold into foam")
		for _, name := range []string{"gemini", "gpt-5", "openai", "google"} {
			if strings.Contains(strings.ToLower(cmp.Text+" "+cmp.Footer+" "+strings.Join(cmp.Buttons, " ")), name) {
				t.Fatalf("a blind compare shows %q before the vote:\n%s\n-- %s", name, cmp.Text, cmp.Footer)
			}
		}
		id := regexp.MustCompile(`\bc[0-9a-f]{8}\b`).FindString(cmp.Text + " " + cmp.Footer)
		if id == "" {
			t.Fatalf("no compare id shown: %q %q", cmp.Text, cmp.Footer)
		}
		voted := find(t, h.Vote(t, "alice", id, "A"), "Your vote for A")
		if !voted.Private || !strings.Contains(voted.Text, "A google/gemini-2.5-flash") || !strings.Contains(voted.Text, "B openai/gpt-5-mini") {
			t.Fatalf("the vote did not reveal the models to the voter, privately: %+v", voted)
		}
		pairs, err := st.Store.Pairs(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(pairs) != 1 || pairs[0].BlindAWins+pairs[0].BlindBWins != 1 {
			t.Fatalf("the blind vote was not marked: %+v", pairs)
		}
	})

	t.Run("DailyBudgetRefusesWithResetTime", func(t *testing.T) {
		h, st := start(t, Options{})
		admin := h.CommunityAdmin()
		find(t, h.Command(t, admin, "settings budget daily", map[string]string{"tokens": "100"}), "Done: budget daily")
		h.Mention(t, "alice", "hi") // a free model may answer: the budget leaves too little for a paid one
		before := st.Balance(t, h.Identity("alice"))
		seen := h.Command(t, "alice", "ask", map[string]string{"prompt": "hello", "model": "openai/gpt-5-mini"})
		m := find(t, seen, "daily budget")
		for _, want := range []string{"100 tokens", "resets at", "free models still work"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("the budget refusal %q lacks %q", m.Text, want)
			}
		}
		if got := st.Balance(t, h.Identity("alice")); got != before {
			t.Fatalf("the refusal changed the balance from %d to %d", before, got)
		}
	})

	t.Run("AllowanceRefillsAtItsPeriod", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
		h, st := start(t, Options{Clock: clock})
		admin := h.CommunityAdmin()
		find(t, h.Command(t, "admin", "topup", map[string]string{"user": "community", "amount": "100000"}), "Added 100,000 tokens to the pool")
		find(t, h.Command(t, admin, "settings allowance", map[string]string{"rule": "20000 every 1d"}), "Done: allowance")
		alice := h.Identity("alice")
		find(t, h.Mention(t, "alice", "hello"), "simulated") // alice is a member now
		st.RunJob(t, scheduler.JobAllowances)
		if got := st.Balance(t, alice); got != 20_000 {
			t.Fatalf("after the period's refill alice has %d, want 20,000", got)
		}
		find(t, h.Mention(t, "alice", "tell me a story"), "simulated")
		spent := st.Balance(t, alice)
		if spent >= 20_000 {
			t.Fatalf("alice's answer cost nothing: %d", spent)
		}
		st.RunJob(t, scheduler.JobAllowances)
		if got := st.Balance(t, alice); got != spent {
			t.Fatalf("a second run in the same period changed alice's balance to %d, want %d", got, spent)
		}
		clock.Advance(24 * time.Hour)
		st.RunJob(t, scheduler.JobAllowances)
		if got := st.Balance(t, alice); got != 20_000 {
			t.Fatalf("the next period alice has %d, want 20,000", got)
		}
		pool := find(t, h.Command(t, admin, "settings pool", nil), "Pool of")
		if !strings.Contains(pool.Text, "allowance") {
			t.Fatalf("/settings pool does not list the allowance rows:\n%s", pool.Text)
		}
	})
}

// communitySettings returns what the store holds for the harness's
// community.
func communitySettings(t *testing.T, st *Stack, h Harness) []bot.Setting {
	t.Helper()
	rows, err := st.Store.CommunitySettings(context.Background(), h.Community())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
