package bot

import (
	"context"
	"time"
)

// MaxAmount bounds every admin amount (top-up, grant, deduct): positive and
// at most 10^12 balance tokens, so a typo cannot mint an absurd balance.
const MaxAmount int64 = 1_000_000_000_000

// EntryKind is the kind of an append-only ledger row.
type EntryKind string

// Ledger row kinds. A user's balance is the sum of the amounts of their rows.
const (
	EntrySignup EntryKind = "signup" // the signup bonus, once per user
	EntryTopUp  EntryKind = "topup"  // an admin or the host added paid tokens
	EntryGrant  EntryKind = "grant"  // an admin gave tokens (not counted as a top-up)
	EntryDeduct EntryKind = "deduct" // an admin removed tokens (never below zero)
	EntryCharge EntryKind = "charge" // a settled model call
	EntryRefund EntryKind = "refund" // tokens given back for a charge
)

// ActorSystem is the actor of rows the bot writes on its own.
const ActorSystem Identity = "system"

// User is one identity's account.
type User struct {
	Identity  Identity
	Blocked   bool
	CreatedAt time.Time
}

// Entry is one append-only ledger row. Amount is signed: credits are
// positive, charges and deductions negative.
type Entry struct {
	ID           int64
	Identity     Identity
	Kind         EntryKind
	Amount       int64
	Key          string   // unique idempotency key
	Actor        Identity // admin identity or ActorSystem
	Note         string
	Model        string // charges only
	Usage        Usage  // charges only
	GenerationID string // charges only
	CreatedAt    time.Time
}

// Hold reserves part of a balance for a call in flight. Until it is settled or
// released, the held amount cannot be spent by anything else.
type Hold struct {
	ID        int64
	Identity  Identity
	Amount    int64
	Key       string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Charge is what Settle charges for a hold: Amount balance tokens (capped at
// the hold's amount), with the model and usage kept as metadata.
type Charge struct {
	Amount       int64
	Model        string
	Usage        Usage
	GenerationID string // when set, a second settle with the same id charges nothing
	Note         string
}

// Balance is what a user has: Balance is the sum of their rows, Held the sum
// of their open holds, Available what a new request may reserve.
type Balance struct {
	Identity  Identity
	Balance   int64
	Held      int64
	Available int64
	ToppedUp  int64 // lifetime total of top-ups
	Blocked   bool
	Free      FreeUse
	CreatedAt time.Time
}

// YourBalance starts a refusal with what the user has. While answers are in
// progress it says both figures ("Your balance is 600 tokens, 598 of them
// held for answers in progress, so 2 are available"): the available figure
// alone reads as a balance that vanished.
func YourBalance(available, held int64) string {
	available = max(available, 0)
	if held <= 0 {
		return "Your balance is " + FormatTokens(available) + " tokens"
	}
	return "Your balance is " + FormatTokens(available+held) + " tokens, " + FormatTokens(held) +
		" of them held for answers in progress, so " + FormatTokens(available) + " are available"
}

// FreeUse is a user's daily free-tier allowance in one period.
type FreeUse struct {
	Period    string // the day, "2026-11-22", in the configured timezone
	Used      int
	Limit     int
	ResetsAt  time.Time // when the next period starts
	Remaining int
}

// Adjustment is an admin's change to a balance.
type Adjustment struct {
	Identity Identity
	Amount   int64    // positive; 1..MaxAmount
	Key      string   // idempotency key, e.g. the platform interaction id
	Actor    Identity // who did it
	Note     string
}

// ModelSpend is one model's share of a user's spend over a period.
type ModelSpend struct {
	Model            string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	Charged          int64
}

// VerifyReport is the result of checking the ledger's invariants.
type VerifyReport struct {
	Users    int
	Entries  int
	Holds    int
	Problems []string // empty when everything holds
}

// OK reports whether no invariant was broken.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Users is the part of the ledger every event needs, and all the Engine
// takes: it ensures the user of each event and reads a new user's balance
// for the welcome.
type Users interface {
	// EnsureUser returns the user, creating it with the signup bonus on first
	// contact; created is true only for the one call that created it.
	EnsureUser(ctx context.Context, id Identity) (u User, created bool, err error)

	// Balance returns the user's balance, holds and today's free use.
	// ENOTFOUND when the user does not exist.
	Balance(ctx context.Context, id Identity) (Balance, error)
}

// Ledger holds every user's token balance. Implementations must never lose,
// double or overspend a token, under concurrency, retries and crashes.
type Ledger interface {
	Users

	// Reserve holds amount tokens for a call. EINSUFFICIENT (nothing written)
	// when balance minus open holds is less than amount; ENOTFOUND for an
	// unknown user; EUNAUTHORIZED for a blocked one. A repeated key returns
	// the hold created by the first call.
	Reserve(ctx context.Context, id Identity, amount int64, key string) (Hold, error)

	// Settle charges c.Amount (at most the hold's amount) and releases the
	// rest. Idempotent: settling a hold twice charges once and returns the
	// first charge. ENOTFOUND for an unknown hold; ECONFLICT when the hold
	// was released or expired before it was settled.
	Settle(ctx context.Context, holdID int64, c Charge) (Entry, error)

	// Release frees a hold without charging. Releasing twice is a no-op.
	Release(ctx context.Context, holdID int64) error

	// ReleaseExpired frees every hold whose expiry is before now and returns
	// how many it freed.
	ReleaseExpired(ctx context.Context, now time.Time) (int, error)

	// OpenHolds returns how many holds are open and the tokens they hold.
	OpenHolds(ctx context.Context) (count int, tokens int64, err error)

	// UseFree counts one free-tier request for today. ERATELIMIT, with when
	// the allowance comes back, once the day's allowance is used.
	UseFree(ctx context.Context, id Identity, now time.Time) (FreeUse, error)

	// ReturnFree gives back one free request of the period (a free request
	// that failed before any output costs nothing).
	ReturnFree(ctx context.Context, id Identity, period string) error

	// FreeStatus returns today's free use without counting a request.
	FreeStatus(ctx context.Context, id Identity, now time.Time) (FreeUse, error)

	// TopUp, Grant and Deduct change a balance on an admin's behalf.
	// EINVALID for amounts outside 1..MaxAmount; ENOTFOUND for an unknown
	// user; EINSUFFICIENT when a deduction would go below zero. A repeated
	// key changes nothing and returns applied=false with the first entry.
	TopUp(ctx context.Context, a Adjustment) (e Entry, applied bool, err error)
	Grant(ctx context.Context, a Adjustment) (e Entry, applied bool, err error)
	Deduct(ctx context.Context, a Adjustment) (e Entry, applied bool, err error)

	// SetBlocked blocks or unblocks a user. ENOTFOUND for an unknown user.
	SetBlocked(ctx context.Context, id Identity, blocked bool, actor Identity) error

	// History returns the user's last limit rows, newest first.
	History(ctx context.Context, id Identity, limit int) ([]Entry, error)

	// SpendByModel returns the user's charges since a time, grouped by model,
	// most charged first.
	SpendByModel(ctx context.Context, id Identity, since time.Time) ([]ModelSpend, error)

	// Verify checks that every balance equals the sum of its rows, no hold is
	// negative and no hold belongs to a missing user.
	Verify(ctx context.Context) (VerifyReport, error)
}
