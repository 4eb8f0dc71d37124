// Package testkit holds the ledgers the contracts' unit tests start from. It imports
// only the Consortium contract, so every other contract's tests can use it.
package testkit

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

// Consortium is a fresh ledger where each admin's org has joined the consortium, in order.
func Consortium(t testing.TB, admins ...fakeledger.Identity) *fakeledger.Stub {
	t.Helper()
	stub := fakeledger.NewStub()
	for _, a := range admins {
		fakeledger.Must(t, stub, a, func(ctx fakeledger.Ctx) (*consortium.Member, error) { return consortium.New().Join(ctx, a.MSPID) })
	}
	return stub
}
