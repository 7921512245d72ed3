package bot

import "math"

// Usage is what one model call consumed, as reported by the upstream.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	ReasoningTokens  int64
	// CostUSD is usage.cost (OpenRouter credits); CostReported says whether the
	// upstream sent it at all (zero is a valid cost for free models).
	CostUSD      float64
	CostReported bool
	// IsBYOK: with the user's own provider key, cost is only OpenRouter's fee
	// and UpstreamCostUSD is what the provider billed.
	IsBYOK          bool
	UpstreamCostUSD float64
}

// Billing converts upstream cost into balance tokens (DESIGN.md "Unit").
type Billing struct {
	// Mode is "cost" (one balance token is USDPerToken of upstream cost) or
	// "raw" (one balance token per prompt or completion token).
	Mode        string
	USDPerToken float64
}

// Billing modes.
const (
	BillingCost = "cost"
	BillingRaw  = "raw"
)

// FromUSD converts an amount in USD to balance tokens, rounding up so the
// bot never undercharges by a fraction; a tiny epsilon absorbs float noise
// (0.000093 USD is 93 tokens, not 94).
func (b Billing) FromUSD(usd float64) int64 {
	if usd <= 0 || b.USDPerToken <= 0 || math.IsNaN(usd) || math.IsInf(usd, 0) {
		return 0
	}
	v := math.Ceil(usd/b.USDPerToken - 1e-6)
	if v > float64(MaxAmount) {
		return MaxAmount
	}
	return int64(v)
}

// USD returns what the upstream billed for u in USD: usage.cost, plus the
// provider's bill when the call ran on the user's own key (BYOK).
func (u Usage) USD() float64 {
	c := u.CostUSD
	if u.IsBYOK {
		c += u.UpstreamCostUSD
	}
	return c
}

// Charge returns the balance tokens for a finished call on model m. In cost
// mode it uses the reported usage.cost when present, else the catalog price ×
// usage (never from a router's -1 price). Free models cost nothing.
func (b Billing) Charge(u Usage, m Model) int64 {
	if m.Free() {
		// A free model costs nothing, but what runs around it may (a web
		// search is billed even on free models).
		if b.Mode == BillingRaw {
			return 0
		}
		if u.CostReported {
			return b.FromUSD(u.USD())
		}
		return b.FromUSD(m.RequestPrice)
	}
	if b.Mode == BillingRaw {
		return clampTokens(u.PromptTokens + u.CompletionTokens)
	}
	if u.CostReported {
		return b.FromUSD(u.USD())
	}
	if m.Router() {
		return 0
	}
	return b.FromUSD(float64(u.PromptTokens)*m.PromptPrice + float64(u.CompletionTokens)*m.CompletionPrice + m.RequestPrice)
}

// Estimate returns the worst-case balance tokens for a call on m with the
// given prompt and completion tokens: the amount to hold before calling it.
func (b Billing) Estimate(m Model, promptTokens, completionTokens int) int64 {
	if m.Free() {
		if b.Mode == BillingRaw {
			return 0
		}
		return b.FromUSD(m.RequestPrice) // a web search, billed even on free models
	}
	if b.Mode == BillingRaw {
		return clampTokens(int64(promptTokens) + int64(completionTokens))
	}
	if m.Router() {
		return 0
	}
	return b.FromUSD(float64(promptTokens)*m.PromptPrice + float64(completionTokens)*m.CompletionPrice + m.RequestPrice)
}

func clampTokens(n int64) int64 {
	if n < 0 {
		return 0
	}
	if n > MaxAmount {
		return MaxAmount
	}
	return n
}
