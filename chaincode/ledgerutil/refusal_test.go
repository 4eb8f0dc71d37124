package ledgerutil

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestARefusalReadsCodeColonMessage(t *testing.T) {
	err := Refuse(NotFound, "no task %q", "t1")
	if err.Error() != `NOT_FOUND: no task "t1"` {
		t.Fatalf("got %q", err.Error())
	}
	if CodeOf(err) != NotFound {
		t.Fatalf("code %s", CodeOf(err))
	}
}

func TestContextKeepsTheCodeInFront(t *testing.T) {
	err := Context(Refuse(NotFound, "no model version x"), "initial model")
	if err.Error() != "NOT_FOUND: initial model: no model version x" {
		t.Fatalf("got %q", err.Error())
	}
	wrapped := fmt.Errorf("outer: %w", Refuse(Forbidden, "no"))
	if CodeOf(wrapped) != Forbidden {
		t.Fatalf("errors.As should find the refusal, got %s", CodeOf(wrapped))
	}
	if CodeOf(errors.New("disk on fire")) != Internal {
		t.Fatal("an uncoded error is internal")
	}
	if !strings.HasPrefix(Context(errors.New("boom"), "reading").Error(), "INTERNAL: reading: boom") {
		t.Fatal("an uncoded error gets the internal code")
	}
}
