package fakeledger

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Refusal is one call a contract must refuse, with the code the refusal must carry.
type Refusal struct {
	Name string
	Who  Identity
	Call func(Ctx) error
	Code ledgerutil.Code
}

// CheckRefusals submits each call on stub and fails t for any that is not refused
// with its code in front of the message ("CODE: ..."), or that changed the ledger.
func CheckRefusals(t testing.TB, stub *Stub, cases []Refusal) {
	t.Helper()
	for _, tc := range cases {
		state, events := maps.Clone(stub.State), maps.Clone(stub.Events)
		_, err := Submit(stub, tc.Who, func(ctx Ctx) (struct{}, error) { return struct{}{}, tc.Call(ctx) })
		switch {
		case err == nil:
			t.Errorf("%s: accepted, want a %s refusal", tc.Name, tc.Code)
		case ledgerutil.CodeOf(err) != tc.Code || !strings.HasPrefix(err.Error(), string(tc.Code)+": "):
			t.Errorf("%s: want %s, got %v", tc.Name, tc.Code, err)
		}
		if !maps.EqualFunc(state, stub.State, bytes.Equal) || !maps.EqualFunc(events, stub.Events, bytes.Equal) {
			t.Errorf("%s: a refused call changed the ledger", tc.Name)
		}
	}
}

// Unchanged runs a call that must succeed as an idempotent no-op: it fails t unless
// the call returns no error, writes nothing and emits no event.
func Unchanged[R any](t testing.TB, stub *Stub, who Identity, f func(Ctx) (R, error)) R {
	t.Helper()
	state := maps.Clone(stub.State)
	events := map[string][]byte{}
	stub.Events, events = events, stub.Events
	r, err := Submit(stub, who, f)
	if err != nil {
		t.Fatalf("the same call again must succeed unchanged: %v", err)
	}
	if !maps.EqualFunc(state, stub.State, bytes.Equal) || len(stub.Events) != 0 {
		t.Fatalf("the same call again changed the world state or emitted events %v", slices.Sorted(maps.Keys(stub.Events)))
	}
	stub.Events = events
	return r
}

// R is a Refusal case, for tables.
func R(name string, who Identity, call func(Ctx) error, code ledgerutil.Code) Refusal {
	return Refusal{Name: name, Who: who, Call: call, Code: code}
}
