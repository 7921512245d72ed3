package router_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/stack/stacktest"
)

const rich = bot.MaxAmount // a balance that affords anything

var cat = "https://example.org/cat.png"

func TestClassifier(t *testing.T) {
	r := MustFullRouter(t, nil)
	longDoc := strings.Repeat("The committee met again to discuss the annual report and its many appendices. ", 2500)
	codeTalk := []bot.ChatMessage{user("```go\nfunc main() { fmt.Println(\"hi\") }\n```\nwhy does this not compile?"), assistant("You need to import fmt.")}
	for _, tt := range []struct {
		name   string
		msgs   []bot.ChatMessage
		tier   string
		reason string
	}{
		{"Greeting", []bot.ChatMessage{user("hi!")}, router.TierFast, "classifier: fast"},
		{"ChitChat", []bot.ChatMessage{system("You are a friendly bot."), user("How are you doing today?")}, router.TierFast, "classifier: fast"},
		{"CodeFences", []bot.ChatMessage{user("```python\ndef add(a, b):\n    return a + b\n```\nCan you add type hints?")}, router.TierCode, "a code fence"},
		{"CodeWords", []bot.ChatMessage{user("Can you write a Python function that parses a CSV file into a list of dicts?")}, router.TierCode, "classifier: code"},
		{"StackTrace", []bot.ChatMessage{user("I get a NullPointerException with this stack trace when the app starts, what is wrong")}, router.TierCode, "classifier: code"},
		{"Proof", []bot.ChatMessage{user("Prove that the square root of 2 is irrational.")}, router.TierReasoning, "classifier: reasoning"},
		{"Equation", []bot.ChatMessage{user("Solve 3x + 5 = 20 and explain each step.")}, router.TierReasoning, "1 equation"},
		{"StepByStep", []bot.ChatMessage{user("Think step by step: if a train leaves at 3pm going 60 km/h, when does it arrive 150 km away?")}, router.TierReasoning, "classifier: reasoning"},
		{"Probability", []bot.ChatMessage{user("What is the probability of rolling two sixes with two dice?")}, router.TierReasoning, "classifier: reasoning"},
		{"LongDocument", []bot.ChatMessage{user("Summarise this report:\n" + longDoc)}, router.TierLong, "long prompt"},
		{"Image", []bot.ChatMessage{{Role: bot.RoleUser, Content: "what is in this picture?", Images: []string{cat}}}, router.TierVision, "image"},
		{"ImageOnly", []bot.ChatMessage{{Role: bot.RoleUser, Images: []string{cat}}}, router.TierVision, "image"},
		{"Essay", []bot.ChatMessage{user("Tell me about the history of the Hanseatic League, how it rose, which cities belonged to it, how trade worked between them and why it declined in the end. I am especially interested in the role of Lübeck and in how the league dealt with the kings of Denmark.")}, router.TierGeneral, "classifier: general"},
		{"LongChitChat", []bot.ChatMessage{user("hi"), assistant("hello"), user("how are you"), assistant("fine"), user("nice"), assistant("yes"), user("what now?")}, router.TierFast, "a follow-up"},
		{"FollowUpInCodeTalk", append(slices.Clone(codeTalk), user("and in Rust?")), router.TierCode, "a follow-up to code"},
		{"FunctionOfTheLiver", []bot.ChatMessage{user("What is the function of the liver?")}, router.TierFast, "classifier: fast"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.Plan(context.Background(), bot.PlanRequest{Messages: tt.msgs, Available: rich})
			if err != nil {
				t.Fatal(err)
			}
			if p.Tier != tt.tier || !strings.Contains(p.Reasons[0], tt.reason) || !strings.Contains(p.Reasons[0], "→ "+tt.tier+" tier") {
				t.Fatalf("tier=%s reasons=%q, want %s (%q)", p.Tier, p.Reasons, tt.tier, tt.reason)
			}
			checkPlan(t, r, p, tt.msgs, bot.PlanRequest{Available: rich})
		})
	}
}

// checkPlan asserts the hard constraints of a plan against the catalog.
func checkPlan(t *testing.T, r *router.Router, p bot.Plan, msgs []bot.ChatMessage, req bot.PlanRequest) {
	t.Helper()
	images := false
	for _, m := range p.Messages {
		images = images || len(m.Images) > 0
	}
	if len(p.Messages) == 0 || p.Messages[len(p.Messages)-1].Content != msgs[len(msgs)-1].Content {
		t.Fatalf("the latest message was not kept: %v", p.Messages)
	}
	if p.PromptTokens != router.EstimatePrompt(p.Messages) {
		t.Fatalf("prompt tokens=%d, want %d", p.PromptTokens, router.EstimatePrompt(p.Messages))
	}
	if p.MaxTokens < 1 || len(p.Reasons) == 0 {
		t.Fatalf("plan=%+v", p)
	}
	free := true
	for _, id := range p.Candidates() {
		m, err := r.Catalog().Lookup(id)
		if err != nil {
			t.Fatalf("candidate %s is not in the catalog: %v", id, err)
		}
		free = free && m.Free()
		check := []bot.Model{m}
		if m.Router() {
			if len(p.AutoModels) == 0 {
				t.Fatalf("%s planned without allowed models", id)
			}
			check = nil
			for _, a := range p.AutoModels {
				am, err := r.Catalog().Lookup(a)
				if err != nil {
					t.Fatalf("allowed model %s: %v", a, err)
				}
				check = append(check, am)
			}
		}
		for _, m := range check {
			if images && !m.Vision() {
				t.Fatalf("an image planned onto text-only %s", m.ID)
			}
			if req.Tools && !m.Tools() {
				t.Fatalf("tools planned onto %s", m.ID)
			}
			if p.PromptTokens+p.MaxTokens > m.ContextLength {
				t.Fatalf("%s: prompt %d + max_tokens %d > context %d", m.ID, p.PromptTokens, p.MaxTokens, m.ContextLength)
			}
			if m.MaxCompletionTokens > 0 && p.MaxTokens > m.MaxCompletionTokens {
				t.Fatalf("%s: max_tokens %d > max completion %d", m.ID, p.MaxTokens, m.MaxCompletionTokens)
			}
			if est := r.Config().Billing.Estimate(m, p.PromptTokens, p.MaxTokens); est > p.Cost {
				t.Fatalf("%s: worst case %d above the plan's cost %d", m.ID, est, p.Cost)
			}
		}
	}
	if p.Free != free {
		t.Fatalf("free=%t, want %t", p.Free, free)
	}
	if !p.Free && p.Cost > max(req.Available, 0) {
		t.Fatalf("cost %d exceeds the available %d", p.Cost, req.Available)
	}
	if p.Free && p.Cost != 0 {
		t.Fatalf("a free plan costs %d", p.Cost)
	}
}

// Over the full catalog, every model the user may name either gets a plan
// that meets every hard constraint or a clear EINVALID.
func TestConstraintsFullCatalog(t *testing.T) {
	r := MustFullRouter(t, nil)
	big := strings.Repeat("word ", 40_000) // ~67k tokens estimated
	prompts := map[string][]bot.ChatMessage{
		"text":  {system("Be brief."), user("Explain photosynthesis.")},
		"image": {system("Be brief."), {Role: bot.RoleUser, Content: "What is this?", Images: []string{cat, cat}}},
		"big":   {user(big), assistant("ok"), user("Now summarise it.")},
	}
	for _, m := range r.Catalog().Models() {
		for name, msgs := range prompts {
			for _, tools := range []bool{false, true} {
				req := bot.PlanRequest{Messages: msgs, Model: m.ID, Available: rich, FreeRemaining: 10, Tools: tools}
				p, err := r.Plan(context.Background(), req)
				if err != nil {
					if bot.ErrorCode(err) != bot.EINVALID {
						t.Fatalf("%s/%s: %v", m.ID, name, err)
					}
					if name == "image" && !m.Vision() && !strings.Contains(bot.ErrorMessage(err), "cannot read images. Models that can: ") {
						t.Fatalf("%s: %q", m.ID, bot.ErrorMessage(err))
					}
					continue
				}
				if name == "image" && !m.Vision() && !m.Router() {
					t.Fatalf("an image planned onto text-only %s", m.ID)
				}
				if p.Model != m.ID || len(p.Fallbacks) != 0 || p.Tier != router.TierChosen {
					t.Fatalf("%s: plan=%+v", m.ID, p)
				}
				checkPlan(t, r, p, msgs, req)
			}
		}
	}
	// The auto router, with and without images and balance.
	for name, msgs := range prompts {
		for _, avail := range []int64{0, 300, 2_000, rich} {
			req := bot.PlanRequest{Messages: msgs, Available: avail, FreeRemaining: 3}
			p, err := r.Plan(context.Background(), req)
			if err != nil {
				t.Fatalf("%s/%d: %v", name, avail, err)
			}
			checkPlan(t, r, p, msgs, req)
		}
	}
}

// withoutModels returns the fixture catalog minus some ids.
func withoutModels(t testing.TB, drop func(id string) bool) []byte {
	t.Helper()
	b, err := os.ReadFile(fullCatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var kept []json.RawMessage
	for _, raw := range doc.Data {
		var m struct {
			ID string `json:"id"`
		}
		json.Unmarshal(raw, &m)
		if !drop(m.ID) {
			kept = append(kept, raw)
		}
	}
	out, _ := json.Marshal(map[string]any{"data": kept})
	return out
}

// The catalog changes every week: with every configured candidate gone,
// the router still plans from what is left, and warns once per tier.
func TestMissingTierCandidates(t *testing.T) {
	configured := map[string]bool{}
	for _, ids := range router.DefaultTiers() {
		for _, id := range ids {
			configured[id] = true
		}
	}
	var logs stacktest.SyncBuffer
	cfg := testConfig("http://127.0.0.1:1/api/v1")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := router.NewCatalog(cfg)
	if err := c.Load(withoutModels(t, func(id string) bool { return configured[id] })); err != nil {
		t.Fatal(err)
	}
	r, err := router.New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, msgs := range [][]bot.ChatMessage{
		{user("hi!")},
		{user("Can you write a Python function that parses a CSV file?")},
		{user("Prove that there are infinitely many primes.")},
		{user("Tell me about the history of the Hanseatic League, how it rose, which cities belonged to it, how trade worked between them and why it declined in the end, and about Lübeck.")},
		{user("Summarise:\n" + strings.Repeat("A long report sentence goes here. ", 6000))},
		{{Role: bot.RoleUser, Content: "what is this?", Images: []string{cat}}},
	} {
		for range 2 {
			for _, avail := range []int64{rich, 0} {
				req := bot.PlanRequest{Messages: msgs, Available: avail, FreeRemaining: 5}
				p, err := r.Plan(context.Background(), req)
				if err != nil {
					t.Fatalf("%q: %v", msgs[0].Content[:min(20, len(msgs[0].Content))], err)
				}
				for _, id := range p.Candidates() {
					if configured[id] {
						t.Fatalf("planned the removed %s", id)
					}
				}
				if !slices.ContainsFunc(p.Reasons, func(s string) bool { return strings.Contains(s, "from the catalog") }) {
					t.Fatalf("reasons=%q do not say the model came from the catalog", p.Reasons)
				}
				checkPlan(t, r, p, msgs, req)
			}
		}
	}
	for _, tier := range []string{"fast", "code", "reasoning", "general", "long", "vision", "free"} {
		if n := strings.Count(logs.String(), "tier="+tier+" "); n != 1 {
			t.Fatalf("tier %s warned %d times, want once:\n%s", tier, n, logs.String())
		}
	}
}

func TestPlan(t *testing.T) {
	r := MustFullRouter(t, nil)
	ctx := context.Background()
	plan := func(req bot.PlanRequest) (bot.Plan, error) {
		t.Helper()
		p, err := r.Plan(ctx, req)
		if err == nil {
			checkPlan(t, r, p, req.Messages, req)
		}
		return p, err
	}

	t.Run("EmptyPrompt", func(t *testing.T) {
		for _, msgs := range [][]bot.ChatMessage{nil, {user("")}, {user(" \n\t ")}, {system("hi")}} {
			if _, err := plan(bot.PlanRequest{Messages: msgs, Available: rich}); bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(bot.ErrorMessage(err), "empty") {
				t.Fatalf("%v: err=%v", msgs, err)
			}
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		req := bot.PlanRequest{Messages: []bot.ChatMessage{user("Write a Go function that reverses a string.")}, Available: 50_000}
		a, _ := plan(req)
		b, _ := plan(req)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("plans differ:\n%+v\n%+v", a, b)
		}
	})
	t.Run("UnknownModel", func(t *testing.T) {
		_, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hi")}, Model: "openai/gpt-5-minni", Available: rich})
		if bot.ErrorCode(err) != bot.ENOTFOUND || !strings.Contains(bot.ErrorMessage(err), "openai/gpt-5-mini") {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ImageToTextOnlyModel", func(t *testing.T) {
		_, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "what is it?", Images: []string{cat}}}, Model: "deepseek/deepseek-v3.2", Available: rich})
		msg := bot.ErrorMessage(err)
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(msg, "deepseek/deepseek-v3.2 cannot read images") || !strings.Contains(msg, "google/gemini-2.5-flash") {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ToolsToModelWithoutTools", func(t *testing.T) {
		_, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("call the weather tool")}, Model: "liquid/lfm2-8b-a1b", Tools: true, Available: rich})
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(bot.ErrorMessage(err), "does not support tools") {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("RoutingSuffixKept", func(t *testing.T) {
		p, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hi")}, Model: "openai/gpt-5-mini:nitro", Available: rich})
		if err != nil || p.Model != "openai/gpt-5-mini:nitro" || p.Tier != router.TierChosen {
			t.Fatalf("plan=%+v err=%v", p, err)
		}
	})
	t.Run("OpenRouterAuto", func(t *testing.T) {
		p, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hi")}, Model: router.AutoModel, Available: rich})
		if err != nil {
			t.Fatal(err)
		}
		if p.Model != router.AutoModel || len(p.AutoModels) == 0 || p.Cost <= 0 {
			t.Fatalf("plan=%+v: openrouter/auto is priced as its dearest allowed model, never from -1", p)
		}
		var worst int64
		for _, id := range p.AutoModels {
			m, _ := r.Catalog().Lookup(id)
			worst = max(worst, r.Config().Billing.Estimate(m, p.PromptTokens, p.MaxTokens))
		}
		if p.Cost != worst {
			t.Fatalf("cost=%d, want the max over allowed models %d", p.Cost, worst)
		}
		// With an image, only vision models are allowed.
		p, err = plan(bot.PlanRequest{Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "?", Images: []string{cat}}}, Model: router.AutoModel, Available: rich})
		if err != nil || slices.Contains(p.AutoModels, "deepseek/deepseek-v3.2") {
			t.Fatalf("allowed=%v err=%v", p.AutoModels, err)
		}
	})
	t.Run("LowBalanceLowersMaxTokens", func(t *testing.T) {
		req := bot.PlanRequest{Messages: []bot.ChatMessage{user("Tell me a story about a dragon and a knight who become friends and open a bakery together in a small town.")}, Model: "openai/gpt-5-mini", Available: 1_000}
		p, err := plan(req)
		if err != nil {
			t.Fatal(err)
		}
		if p.MaxTokens >= 1024 || p.MaxTokens < 64 || p.Cost > 1_000 {
			t.Fatalf("max_tokens=%d cost=%d", p.MaxTokens, p.Cost)
		}
		if !slices.ContainsFunc(p.Reasons, func(s string) bool { return strings.Contains(s, "what the balance of 1000 tokens affords") }) {
			t.Fatalf("reasons=%q", p.Reasons)
		}
	})
	t.Run("BrokeGoesFree", func(t *testing.T) {
		p, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("Write a Python function that adds two numbers.")}, Available: 3, FreeRemaining: 4})
		if err != nil {
			t.Fatal(err)
		}
		if p.Tier != router.TierFree || !p.Free || p.Cost != 0 || !slices.ContainsFunc(p.Reasons, func(s string) bool { return strings.Contains(s, "→ free tier (4 free requests left today)") }) {
			t.Fatalf("plan=%+v", p)
		}
		// An image still needs a vision model, also for free.
		p, err = plan(bot.PlanRequest{Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "?", Images: []string{cat}}}, Available: 0, FreeRemaining: 4})
		if err != nil || p.Tier != router.TierFree {
			t.Fatalf("plan=%+v err=%v", p, err)
		}
	})
	t.Run("BrokeAndNoFreeLeft", func(t *testing.T) {
		_, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hello")}, Available: 3, FreeRemaining: 0})
		msg := bot.ErrorMessage(err)
		if bot.ErrorCode(err) != bot.EINSUFFICIENT || !strings.Contains(msg, "Your balance is 3 tokens") || !strings.Contains(msg, "needs about") || !strings.Contains(msg, "Ask an admin for a top-up") {
			t.Fatalf("err=%v", err)
		}
		_, err = plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hello")}, Model: "anthropic/claude-opus-4.6", Available: 3})
		if bot.ErrorCode(err) != bot.EINSUFFICIENT || !strings.Contains(bot.ErrorMessage(err), "anthropic/claude-opus-4.6 needs about") {
			t.Fatalf("err=%v", err)
		}
		// Held by answers in progress: both figures, not a vanished balance.
		_, err = plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("hello")}, Available: 2, Held: 598, FreeRemaining: 0})
		if want := "Your balance is 600 tokens, 598 of them held for answers in progress, so 2 are available"; !strings.Contains(bot.ErrorMessage(err), want) {
			t.Fatalf("err=%v, want it to say %q", err, want)
		}
	})
	t.Run("TrimsToTheContext", func(t *testing.T) {
		var msgs []bot.ChatMessage
		msgs = append(msgs, system("You are helpful."))
		for i := range 40 {
			msgs = append(msgs, user(strings.Repeat("question ", 200)+string(rune('a'+i%26))), assistant(strings.Repeat("answer ", 200)))
		}
		msgs = append(msgs, user("So what do you think?"))
		p, err := plan(bot.PlanRequest{Messages: msgs, Model: "google/gemma-2-9b-it", Available: rich})
		if err != nil {
			t.Fatal(err)
		}
		if p.Dropped == 0 || p.Messages[0].Role != bot.RoleSystem || len(p.Messages) != len(msgs)-p.Dropped {
			t.Fatalf("dropped=%d messages=%d", p.Dropped, len(p.Messages))
		}
		if p.PromptTokens+p.MaxTokens > 8192 {
			t.Fatalf("prompt %d + max_tokens %d > 8192", p.PromptTokens, p.MaxTokens)
		}
		// The kept turns are the newest ones.
		if got, want := p.Messages[len(p.Messages)-2].Content, msgs[len(msgs)-2].Content; got != want {
			t.Fatal("the newest turns were dropped")
		}
	})
	t.Run("MaxTurns", func(t *testing.T) {
		r := MustFullRouter(t, func(c *router.Config) { c.MaxTurns = 3 })
		msgs := []bot.ChatMessage{system("s"), user("1"), assistant("2"), user("3"), assistant("4"), user("5")}
		p, err := r.Plan(ctx, bot.PlanRequest{Messages: msgs, Available: rich})
		if err != nil || p.Dropped != 2 || len(p.Messages) != 4 {
			t.Fatalf("dropped=%d messages=%v err=%v", p.Dropped, p.Messages, err)
		}
	})
	t.Run("MessageLargerThanEveryContext", func(t *testing.T) {
		huge := strings.Repeat("x", 7_000_000) // ~2.3M tokens
		_, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user(huge)}, Available: rich})
		msg := bot.ErrorMessage(err)
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(msg, "2.3M tokens") || !strings.Contains(msg, "2M tokens") {
			t.Fatalf("err=%v", err)
		}
		_, err = plan(bot.PlanRequest{Messages: []bot.ChatMessage{user(strings.Repeat("y", 60_000))}, Model: "google/gemma-2-9b-it", Available: rich})
		msg = bot.ErrorMessage(err)
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(msg, "20k tokens") || !strings.Contains(msg, "holds 8.1k tokens") {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("LongDocumentToAMillionTokenModel", func(t *testing.T) {
		doc := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 30_000) // ~570k tokens
		p, err := plan(bot.PlanRequest{Messages: []bot.ChatMessage{user("Summarise:\n" + doc)}, Available: rich})
		if err != nil {
			t.Fatal(err)
		}
		if p.Tier != router.TierLong || p.Dropped != 0 {
			t.Fatalf("plan tier=%s dropped=%d reasons=%q", p.Tier, p.Dropped, p.Reasons)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := router.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := router.DefaultConfig()
	bad.Provider.Sort = "fastest"
	bad.Provider.DataCollection = "maybe"
	bad.BaseURL = "ftp://x"
	bad.MaxTokens = -1
	bad.Tiers = map[string][]string{"turbo": {"a/b"}, "code": {"not an id"}}
	hot := 3.0
	bad.Temperature = &hot
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`router.provider.sort = "fastest": must be one of price, throughput, latency, exacto`,
		`router.provider.data_collection = "maybe": must be one of allow, deny`,
		`openrouter.base_url = "ftp://x"`,
		`router.max_tokens = -1`,
		`router.tiers.turbo`,
		`router.tiers.code = "not an id"`,
		`router.temperature = 3: must be between 0 and 2`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := router.New(bad, nil); err == nil {
		t.Fatal("New accepted a bad config")
	}
}

func TestTrimKeepsAUserTurnFirst(t *testing.T) {
	r := MustFullRouter(t, func(c *router.Config) { c.MaxTurns = 2 })
	msgs := []bot.ChatMessage{system("s"), user("1"), assistant("2"), user("3"), assistant("4"), user("5")}
	p, err := r.Plan(context.Background(), bot.PlanRequest{Messages: msgs, Available: rich})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) < 2 || p.Messages[1].Role != bot.RoleUser || p.Messages[len(p.Messages)-1].Content != "5" {
		t.Fatalf("messages=%v", p.Messages)
	}
}
