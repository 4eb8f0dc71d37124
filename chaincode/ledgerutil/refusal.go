package ledgerutil

import (
	"errors"
	"fmt"
)

// Code names why a contract refused a call; clients branch on it, never on the wording.
// On the wire a refusal reads "CODE: message" (the peer adds its own prefix in front).
type Code string

// The codes every contract uses. Keep this list in step with fabricml.gateway.refusals.
const (
	NotFound    Code = "NOT_FOUND"    // the thing named does not exist
	Conflict    Code = "CONFLICT"     // it exists, or the state does not allow this now
	AlreadyDone Code = "ALREADY_DONE" // the same call already took effect (idempotent retries see this)
	WrongPhase  Code = "WRONG_PHASE"  // a task or claim is not in the phase this needs
	Forbidden   Code = "FORBIDDEN"    // the caller's identity may not do this
	Invalid     Code = "INVALID"      // an argument is malformed or out of range
	Exhausted   Code = "EXHAUSTED"    // not enough tokens, stake or capacity
	Internal    Code = "INTERNAL"     // stored state is corrupt or the ledger failed
)

// Codes lists every code, in a stable order (the cross-language test reads it).
var Codes = []Code{NotFound, Conflict, AlreadyDone, WrongPhase, Forbidden, Invalid, Exhausted, Internal}

// Refusal is a coded, human-readable refusal.
type Refusal struct {
	Code    Code
	Message string
}

func (r *Refusal) Error() string { return string(r.Code) + ": " + r.Message }

// Refuse builds a coded refusal with a formatted message.
func Refuse(code Code, format string, args ...any) error {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf is the code of the refusal inside err, or Internal for any other error.
func CodeOf(err error) Code {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return Internal
}

// Context prefixes err's message and keeps its code in front, so "NOT_FOUND: initial
// model: no model version x" still starts with its code. Uncoded errors become Internal.
func Context(err error, prefix string) error {
	if err == nil {
		return nil
	}
	var r *Refusal
	if errors.As(err, &r) {
		return &Refusal{Code: r.Code, Message: prefix + ": " + r.Message}
	}
	return &Refusal{Code: Internal, Message: prefix + ": " + err.Error()}
}
