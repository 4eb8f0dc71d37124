package main

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/attestation"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/federation"
	"github.com/fabricml/fabricml/chaincode/governance"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

// productionContracts are what every build serves; the Registry reads finalized rounds
// from the Federation contract's state in the same chaincode.
func productionContracts() []contractapi.ContractInterface {
	return []contractapi.ContractInterface{
		consortium.New(), registry.NewWithRounds(federationRound), attestation.New(), federation.New(), token.New(), governance.New(),
	}
}
