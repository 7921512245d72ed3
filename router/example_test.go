package router_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// Wiring a router, offline: a simulated OpenRouter, a catalog refreshed from
// it, a plan for a prompt, then its stream.
func Example() {
	sim, err := openroutertest.Start(openroutertest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	cfg := router.DefaultConfig()
	cfg.BaseURL = sim.URL() // or OpenRouter's, with cfg.APIKey set
	r, err := router.New(cfg, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := r.Catalog().Refresh(ctx); err != nil {
		panic(err)
	}
	plan, err := r.Plan(ctx, bot.PlanRequest{
		Identity:  "console:alice",
		Messages:  []bot.ChatMessage{{Role: bot.RoleUser, Content: "hello!"}},
		Available: 15_000,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Tier, plan.Model, plan.Fallbacks)
	res, err := r.Stream(ctx, bot.ChatRequest{Plan: plan, User: "console:alice"}, func(string) {})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Text[:strings.Index(res.Text, "!")+1])
	// Output:
	// fast google/gemini-2.5-flash-lite [openai/gpt-4.1-nano mistralai/mistral-small-3.2-24b-instruct]
	// [simulated google/gemini-2.5-flash-lite] You said: hello!
}
