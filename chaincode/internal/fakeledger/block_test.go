package fakeledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

func put(key, value string) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error { return ctx.GetStub().PutState(key, []byte(value)) }
}

func readThenPut(read, key string) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error {
		if _, err := ctx.GetStub().GetState(read); err != nil {
			return err
		}
		return ctx.GetStub().PutState(key, []byte("x"))
	}
}

func codes(outcomes []fakeledger.Outcome) []string {
	out := []string{}
	for _, o := range outcomes {
		out = append(out, o.Code)
	}
	return out
}

// Fabric validates a block in order: a transaction that read a key an earlier valid
// one wrote, or queried a range an earlier one wrote into, is invalid; disjoint
// transactions are all valid; a refused proposal is never ordered.
func TestABlockIsValidatedInOrderLikeFabricsCommitter(t *testing.T) {
	stub := seed(t)
	scan := func(ctx fakeledger.Ctx) error {
		it, err := ctx.GetStub().GetStateByPartialCompositeKey("thing", nil)
		if err != nil {
			return err
		}
		_ = it.Close()
		return ctx.GetStub().PutState("scanned", []byte("1"))
	}
	got := codes(stub.Block(
		fakeledger.P(admin, put("a", "1")),
		fakeledger.P(admin, readThenPut("a", "b")),          // read a, which the first wrote
		fakeledger.P(admin, readThenPut("old", "c")),        // disjoint: valid
		fakeledger.P(admin, put(compositeKey(t, "5"), "5")), // writes into the range below
		fakeledger.P(admin, scan),
		fakeledger.P(admin, func(fakeledger.Ctx) error { return errors.New("refused") }),
		fakeledger.P(admin, readThenPut("b", "d")), // b was written by an invalid tx: valid
	))
	want := []string{fakeledger.Valid, fakeledger.MVCCReadConflict, fakeledger.Valid, fakeledger.Valid,
		fakeledger.PhantomRead, fakeledger.EndorsementFailed, fakeledger.Valid}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
	for k, want := range map[string]string{"a": "1", "b": "", "c": "x", "d": "x", "scanned": ""} {
		if string(stub.State[k]) != want {
			t.Errorf("%s = %q after the block, want %q", k, stub.State[k], want)
		}
	}
}

func TestTheEndorsersClockIsThePeersNotTheProposals(t *testing.T) {
	stub := fakeledger.NewStub()
	clock := func(ctx fakeledger.Ctx) time.Time {
		return ctx.GetStub().(interface{ EndorserTime() time.Time }).EndorserTime()
	}
	if got := clock(fakeledger.Query(stub, admin)); !got.Equal(stub.Time) {
		t.Fatalf("an unset clock reads %v, want the proposal time %v", got, stub.Time)
	}
	stub.Clock = stub.Time.Add(-time.Minute)
	if got := clock(fakeledger.Query(stub, admin)); !got.Equal(stub.Clock) {
		t.Fatalf("the endorser's clock reads %v, want %v", got, stub.Clock)
	}
}
