package registry

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// roundModelPrefix starts every round model's name, and only theirs.
const roundModelPrefix = "fed-"

// FinalRound is what the registry needs to know of how a federated round ended.
type FinalRound struct {
	Finalized       bool
	AggregateDigest string
	Agreeing        []string // orgs that posted the agreed aggregate
	ParticipantOrgs []string // orgs with a participant in the task
}

// RoundSource reads a round's outcome from the Federation contract's state.
type RoundSource func(ctx contractapi.TransactionContextInterface, task string, round int) (*FinalRound, error)

// NewWithRounds returns the contract that accepts round models, checked against rounds.
func NewWithRounds(rounds RoundSource) *Contract {
	c := New()
	c.rounds = rounds
	return c
}

// RoundModelName is the registry name of a task's global models: what the agents use.
func RoundModelName(task string) string {
	name := strings.ToLower(roundModelPrefix + task)
	return name[:min(len(name), 64)]
}

// splitRoundRef parses "<task>/<round>".
func splitRoundRef(ref string) (string, int, error) {
	task, number, _ := strings.Cut(ref, "/")
	round, err := strconv.Atoi(number)
	if !ledgerutil.Matches(task, ledgerutil.LedgerIDPattern) || err != nil || round < 1 || round > 1000 || strconv.Itoa(round) != number {
		return "", 0, ledgerutil.Refuse(ledgerutil.Invalid, "round reference %q must be <task id>/<round 1-1000>", ref)
	}
	return task, round, nil
}

// checkRoundModel: a name starting with fed- is a round model, registered once its round
// is finalized, under the task's name and version r<round>, by the agreeing org that the
// agents choose as registrar (the first by MSP ID), declaring the agreed aggregate;
// its training orgs joined the task, which is their consent.
func (c *Contract) checkRoundModel(ctx contractapi.TransactionContextInterface, req *RegistrationRequest, callerMSP string) error {
	if req.Round == "" {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "model names starting with %q are reserved for federated round models; %s names no round", roundModelPrefix, req.Name)
	}
	task, round, _ := splitRoundRef(req.Round) // validated with the request
	if want := RoundModelName(task); req.Name != want || req.Version != "r"+strconv.Itoa(round) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the model of round %s is %s@r%d, not %s@%s", req.Round, want, round, req.Name, req.Version)
	}
	if c.rounds == nil {
		return ledgerutil.Refuse(ledgerutil.Internal, "this registry cannot read federated rounds")
	}
	r, err := c.rounds(ctx, task, round)
	if err != nil {
		return ledgerutil.Context(err, "round "+req.Round)
	}
	if !r.Finalized || len(r.Agreeing) == 0 {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "round %s ended without an agreed aggregate; it has no model", req.Round)
	}
	if req.AggregateDigest != r.AggregateDigest {
		return ledgerutil.Refuse(ledgerutil.Conflict, "round %s agreed on aggregate %s, the registration declares %s", req.Round, r.AggregateDigest, req.AggregateDigest)
	}
	if registrar := slices.Min(r.Agreeing); callerMSP != registrar {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "the model of round %s is registered by %s (the first agreeing org), not %s", req.Round, registrar, callerMSP)
	}
	for _, org := range req.TrainingOrgs {
		if !slices.Contains(r.ParticipantOrgs, org) {
			return ledgerutil.Refuse(ledgerutil.Forbidden, "training org %s has no participant in task %s", org, task)
		}
	}
	return nil
}

// sameTaskLine: every round model under one name comes from one task (task ids that
// differ only in case or beyond 60 characters share a name: the first keeps it).
func sameTaskLine(ctx contractapi.TransactionContextInterface, req *RegistrationRequest) error {
	task, _, _ := splitRoundRef(req.Round)
	iter, err := ctx.GetStub().GetStateByPartialCompositeKey(modelKeyType, []string{req.Name})
	if err != nil {
		return ledgerutil.Context(err, "listing versions of "+req.Name)
	}
	defer iter.Close()
	if !iter.HasNext() {
		return nil
	}
	kv, err := iter.Next()
	if err != nil {
		return ledgerutil.Context(err, "listing versions of "+req.Name)
	}
	var first ModelVersion
	if err := ledgerutil.DecodeRecord(kv.Key, kv.Value, &first); err != nil {
		return err
	}
	if other, _, _ := splitRoundRef(first.Round); other != task {
		return ledgerutil.Refuse(ledgerutil.Conflict, "%s holds the round models of task %s, not of task %s", req.Name, other, task)
	}
	return nil
}
