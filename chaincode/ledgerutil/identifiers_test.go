package ledgerutil

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every `Name = `regex“ line of identifiers.go (the shape the Python test parses) is a
// declared rule with words for its refusals.
func TestEveryDeclaredPatternIsCompiledAndDescribed(t *testing.T) {
	src, err := os.ReadFile("identifiers.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile("(?m)^\\t(\\w+Pattern) += `([^`]+)`$").FindAllStringSubmatch(string(src), -1)
	if len(lines) != len(allowed) {
		t.Fatalf("identifiers.go declares %d patterns in the parsed shape, %d are described", len(lines), len(allowed))
	}
	for _, m := range lines {
		if _, ok := allowed[m[2]]; !ok {
			t.Errorf("%s is not described in allowed", m[1])
		}
	}
}

func TestCheckNamesTheFieldTheValueAndTheRule(t *testing.T) {
	err := Check("task id", "t 1", LedgerIDPattern)
	want := `INVALID: task id must be 1-64 letters, digits, '.', '_', '-', got "t 1" (pattern ^[A-Za-z0-9_.-]{1,64}$)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if Check("task id", "t-1", LedgerIDPattern) != nil {
		t.Fatal("a good id was refused")
	}
	// Go's $ is the end of the text: a trailing newline never slips through.
	if Matches(strings.Repeat("a", 64)+"\n", DigestPattern) {
		t.Fatal("a digest with a trailing newline matched")
	}
}

func TestAnUndeclaredPatternPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an undeclared pattern was accepted")
		}
	}()
	Matches("x", `^x$`)
}
