package main

import (
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/federation"
	"github.com/fabricml/fabricml/chaincode/registry"
)

// federationRound tells the Registry how a round ended, from the Federation state in
// this same chaincode (the Federation contract imports the Registry, not the reverse).
func federationRound(ctx contractapi.TransactionContextInterface, task string, round int) (*registry.FinalRound, error) {
	fed := federation.New()
	t, err := fed.GetTask(ctx, task)
	if err != nil {
		return nil, err
	}
	r, err := fed.GetRound(ctx, task, round)
	if err != nil {
		return nil, err
	}
	orgs := []string{}
	for _, p := range t.Participants {
		if !slices.Contains(orgs, p.MSPID) {
			orgs = append(orgs, p.MSPID)
		}
	}
	return &registry.FinalRound{
		Finalized: r.Status == "FINALIZED", AggregateDigest: r.AggregateDigest,
		Agreeing: slices.Clone(r.Agreeing), ParticipantOrgs: orgs,
	}, nil
}
