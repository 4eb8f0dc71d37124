package federation

import (
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// The proposal timestamp is the client's choice; a Fabric peer refuses it only beyond
// peer.authentication.timewindow (15 minutes by default), far too coarse for deadlines.
// Every deadline in this contract is compared with it, so every endorser first refuses
// a proposal whose timestamp is more than the task's clock skew away from its own clock.
// This is the one use of a clock in the contracts, and it is safe for determinism: it
// can only refuse, never change what a transaction writes, so endorsers that agree to
// endorse write the same bytes. A proposal needs the endorsement policy's peers (under
// MAJORITY, a majority of orgs), so lying about time needs a colluding majority.
//
// With every accepted timestamp within skew s of an honest clock, a deadline D passed
// for certain once a proposal time is past D + 2s: then every honest clock is past D.
// So a window closes "by time" only then, and what was accepted on time was proposed
// before any honest clock passed D + s: no phase ends early for anyone whose clock is
// right, and no one is penalised for a phase that was cut short.

// endorserClock is implemented by the unit-test ledger; a peer uses its own clock.
type endorserClock interface{ EndorserTime() time.Time }

// proposalTime returns the proposal's timestamp after the endorser checked it against
// its own clock (INVALID when it is further away than skewSeconds).
func proposalTime(ctx contractapi.TransactionContextInterface, skewSeconds int64) (time.Time, error) {
	now, err := txTime(ctx)
	if err != nil {
		return time.Time{}, err
	}
	local := time.Now().UTC()
	if c, ok := ctx.GetStub().(endorserClock); ok {
		local = c.EndorserTime().UTC()
	}
	skew := time.Duration(skewSeconds) * time.Second
	if d := now.Sub(local); d > skew || d < -skew {
		return time.Time{}, ledgerutil.Refuse(ledgerutil.Invalid, "the proposal's timestamp %s is %s away from this endorser's clock (%s); at most %ds is allowed: set the client's clock right",
			stamp(now), d.Round(time.Millisecond), stamp(local), skewSeconds)
	}
	return now, nil
}

func txTime(ctx contractapi.TransactionContextInterface) (time.Time, error) {
	ts, err := ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return time.Time{}, ledgerutil.Context(err, "reading the transaction time")
	}
	return ts.AsTime().UTC(), nil
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// margin is two clock skews: a deadline passed for certain once a proposal is past it by more.
func (t *Task) margin() time.Duration { return 2 * seconds(t.ClockSkewSeconds) }

// passed reports whether deadline passed for certain at proposal time now.
func (t *Task) passed(now, deadline time.Time) bool { return now.After(deadline.Add(t.margin())) }

func stamp(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

func parseStamp(s string) (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, ledgerutil.Refuse(ledgerutil.Internal, "stored time %q is corrupt: %v", s, err)
	}
	return at, nil
}
