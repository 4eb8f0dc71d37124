package ledgerutil

import (
	"fmt"
	"regexp"
)

// Every identifier and format rule the contracts apply, in one place. Keep each one a
// raw-string constant in this block: a Python test parses its Name = `regex` lines to check
// that the Python rules agree. Python must apply them with re.fullmatch, because its
// `$` also matches before a trailing newline (Go's does not).
const (
	// DigestPattern is a SHA-256 in lowercase hex.
	DigestPattern = `^[0-9a-f]{64}$`
	// LedgerIDPattern names tasks, claims, mint proposals, datasets and metrics.
	LedgerIDPattern = `^[A-Za-z0-9_.-]{1,64}$`
	// ModelNamePattern is the name part of name@version.
	ModelNamePattern = `^[a-z0-9][a-z0-9._-]{0,63}$`
	// ModelVersionPattern is the version part of name@version.
	ModelVersionPattern = `^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$`
	// CommitHashPattern is a git commit id, SHA-1 or SHA-256.
	CommitHashPattern = `^[0-9a-f]{40}([0-9a-f]{24})?$`
	// AmountPattern is a payout amount: a decimal with at most 2 decimals.
	AmountPattern = `^[0-9]{1,15}(\.[0-9]{1,2})?$`
	// RulePattern is a federated task's aggregation rule.
	RulePattern = `^(trust\+)?((nnm|bucket:[0-9]{1,2})\+)?(fedavg|median|trimmed:[0-9]{1,2}|krum:[0-9]{1,2}:[0-9]{1,2}|cc(:[0-9]{1,2})?|fltrust)(\+normbound)?$`
	// SafeTextPattern bounds the free text a receipt may carry.
	SafeTextPattern = `^[A-Za-z0-9@._:+\-/ ]{0,128}$`
	// DeploymentRulePattern is a model name's approval rule.
	DeploymentRulePattern = `^(MAJORITY|ALL|ANY|AT_LEAST_[1-9][0-9]?)$`
	// AtLeastPolicyPattern captures n in the AT_LEAST_<n> deployment rule.
	AtLeastPolicyPattern = `^AT_LEAST_([1-9][0-9]?)$`
)

// allowed says each rule in words, for refusals a person reads.
var allowed = map[string]string{
	DigestPattern:         "64 lowercase hex characters (SHA-256)",
	LedgerIDPattern:       "1-64 letters, digits, '.', '_', '-'",
	ModelNamePattern:      "1-64 lowercase letters, digits, '.', '_', '-', starting with a letter or digit",
	ModelVersionPattern:   "1-32 letters, digits, '.', '+', '_', '-', starting with a letter or digit",
	CommitHashPattern:     "a 40 or 64 character lowercase hex commit id",
	AmountPattern:         "a decimal with at most 15 digits and at most 2 decimals",
	RulePattern:           "[trust+][nnm+|bucket:<s>+](fedavg|median|trimmed:<k>|krum:<f>:<m>|cc[:<n>]|fltrust)[+normbound]",
	SafeTextPattern:       "at most 128 of A-Z a-z 0-9 @ . _ : + - / and space",
	DeploymentRulePattern: "MAJORITY, ALL, ANY, AT_LEAST_<n>",
	AtLeastPolicyPattern:  "AT_LEAST_<n> with n from 1 to 99",
}

// compiled holds every rule above compiled once; a typo in a pattern fails at start-up.
var compiled = func() map[string]*regexp.Regexp {
	out := make(map[string]*regexp.Regexp, len(allowed))
	for p := range allowed {
		out[p] = regexp.MustCompile(p)
	}
	return out
}()

// Pattern returns the compiled rule; it panics on a pattern not declared above, so
// every rule stays in this file.
func Pattern(pattern string) *regexp.Regexp {
	re, ok := compiled[pattern]
	if !ok {
		panic(fmt.Sprintf("ledgerutil: pattern %q is not declared in identifiers.go", pattern))
	}
	return re
}

// Matches reports whether value follows the rule.
func Matches(value, pattern string) bool { return Pattern(pattern).MatchString(value) }

// Check refuses (INVALID) a value that does not follow the rule, naming the field, the
// value and what is allowed.
func Check(field, value, pattern string) error {
	if Matches(value, pattern) {
		return nil
	}
	return Refuse(Invalid, "%s must be %s, got %q (pattern %s)", field, allowed[pattern], value, pattern)
}

// CheckDigest refuses anything but a SHA-256 in lowercase hex, naming the field.
func CheckDigest(field, value string) error { return Check(field, value, DigestPattern) }
