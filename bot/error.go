package bot

import (
	"errors"
	"fmt"
)

// Error codes. They are for machines (tests, metrics, adapters choosing a
// colour); people read Error.Message.
const (
	EINVALID      = "invalid"      // the user's input is wrong; the message says how to fix it
	ENOTFOUND     = "not_found"    // a user, model, hold or compare that does not exist
	ECONFLICT     = "conflict"     // already done (a second vote, a reused key with other data)
	EUNAUTHORIZED = "unauthorized" // not allowed: not an admin, or blocked
	EINSUFFICIENT = "insufficient" // the balance cannot cover the request
	ERATELIMIT    = "rate_limit"   // too many requests; the message says when to retry
	EUNAVAILABLE  = "unavailable"  // an upstream (model, platform) failed; try again later
	EINTERNAL     = "internal"     // a bug or an unexpected failure; logged, shown as an apology
)

// Error is an error with a code for machines and a sentence for people.
// Only EINTERNAL errors are treated as bugs; every other code carries a message
// that is safe and useful to show to the user as it is.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("orchat error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// InternalMessage is what a user sees when something broke that is not their
// fault; the details go to the log with the request id.
const InternalMessage = "Sorry, something went wrong on our side. Nothing was charged for it; please try again."

// ErrorMessage returns the sentence to show a user for err: the message of
// the first *Error in its chain, or a generic apology for internal errors
// (whose details must not leak to users).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return InternalMessage
}
