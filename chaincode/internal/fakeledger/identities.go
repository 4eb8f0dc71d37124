package fakeledger

import (
	"fmt"
	"testing"
)

// The callers of the consortium's tests, as an org's Fabric CA enrolls them: the NodeOU
// decides admin or client, the role attribute what a client may do.

// Admin is an org's admin identity.
func Admin(msp string) Identity { return Identity{MSPID: msp, Name: "admin", OU: "admin"} }

// Admins are the admins of Org1MSP to Org<n>MSP, in that order.
func Admins(n int) []Identity {
	out := make([]Identity, n)
	for i := range out {
		out[i] = Admin(fmt.Sprintf("Org%dMSP", i+1))
	}
	return out
}

// WithRole is a client identity called name whose certificate carries role=role.
func WithRole(msp, name, role string) Identity {
	return Identity{MSPID: msp, Name: name, OU: "client", Attrs: map[string]string{"role": role}}
}

// Trainer is an org's trainer: a client called "trainer" with role=trainer.
func Trainer(msp string) Identity { return WithRole(msp, "trainer", "trainer") }

// User is an org's client without a role attribute.
func User(msp string) Identity { return Identity{MSPID: msp, Name: "user1", OU: "client"} }

// Must submits f as who (see Submit) and fails t if it returns an error.
func Must[R any](t testing.TB, s *Stub, who Identity, f func(Ctx) (R, error)) R {
	t.Helper()
	r, err := Submit(s, who, f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
