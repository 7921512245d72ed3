package bot

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ModelPolicy is which models members may use in a community or channel
// (/settings models allow, deny, max-price). Ask, compare, the auto router
// and model autocomplete all apply it.
type ModelPolicy struct {
	// Allow, when not empty, lists what is allowed: model ids (a routing
	// suffix such as :nitro is ignored), patterns such as anthropic/*,
	// ":free" for every free model, or a tier name (fast, general, code,
	// reasoning, long, vision, free) for the models configured in it.
	Allow []string
	// Deny lists what is refused, in the same words; it wins over Allow.
	Deny []string
	// MaxPricePerM, when positive, refuses models whose prompt or
	// completion price is above it in USD per million tokens (free models
	// always pass; routers, whose price varies, never do).
	MaxPricePerM float64
	// Tiers are the auto router's tiers, for the entries naming one.
	Tiers map[string][]string
}

// TierNames are the auto router's tiers, as a policy may name them.
var TierNames = []string{"fast", "general", "code", "reasoning", "long", "vision", "free"}

// routing suffixes a policy looks through (router.routingSuffixes).
var policySuffixes = []string{":nitro", ":floor", ":online", ":thinking", ":exacto"}

func policyBase(id string) string {
	if i := strings.LastIndexByte(id, ':'); i > 0 && slices.Contains(policySuffixes, id[i:]) {
		return id[:i]
	}
	return id
}

// Permits reports whether m may be used; why says, in words for the
// member, what refused it.
func (p *ModelPolicy) Permits(m Model) (ok bool, why string) {
	if p == nil {
		return true, ""
	}
	if e, hit := p.match(p.Deny, m); hit {
		return false, fmt.Sprintf("the admins deny %s here", e)
	}
	if len(p.Allow) > 0 {
		if _, hit := p.match(p.Allow, m); !hit {
			return false, fmt.Sprintf("only %s are allowed here", strings.Join(p.Allow, ", "))
		}
	}
	if p.MaxPricePerM > 0 && !m.Free() {
		if m.Router() {
			return false, fmt.Sprintf("its price varies, and models here may cost at most $%s per million tokens", formatPerM(p.MaxPricePerM))
		}
		if hi := max(m.PromptPrice, m.CompletionPrice) * 1e6; hi > p.MaxPricePerM+1e-9 {
			return false, fmt.Sprintf("it costs up to $%s per million tokens, and models here may cost at most $%s", formatPerM(hi), formatPerM(p.MaxPricePerM))
		}
	}
	return true, ""
}

// match returns the first entry of list that names m.
func (p *ModelPolicy) match(list []string, m Model) (string, bool) {
	id := policyBase(m.ID)
	for _, e := range list {
		le := strings.ToLower(e)
		switch {
		case le == ":free" || le == "free-models":
			if m.Free() {
				return e, true
			}
		case slices.Contains(TierNames, le):
			for _, t := range p.Tiers[le] {
				if policyBase(t) == id {
					return e, true
				}
			}
		case strings.ContainsAny(le, "*?["):
			if ok, _ := path.Match(le, strings.ToLower(id)); ok {
				return e, true
			}
		case strings.EqualFold(policyBase(e), id):
			return e, true
		}
	}
	return "", false
}

// String writes the rules for /settings show.
func (p *ModelPolicy) String() string {
	if p == nil {
		return "every model"
	}
	var parts []string
	if len(p.Allow) > 0 {
		parts = append(parts, "only "+strings.Join(p.Allow, ", "))
	}
	if len(p.Deny) > 0 {
		parts = append(parts, "not "+strings.Join(p.Deny, ", "))
	}
	if p.MaxPricePerM > 0 {
		parts = append(parts, "at most $"+formatPerM(p.MaxPricePerM)+" per million tokens")
	}
	return strings.Join(parts, "; ")
}

func formatPerM(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}
