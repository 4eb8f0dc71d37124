package main

import (
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/attestation"
	"github.com/fabricml/fabricml/chaincode/conformance"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/federation"
	"github.com/fabricml/fabricml/chaincode/governance"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

// The contract API refuses contracts whose types it cannot describe; catch that here.
func TestEveryContractBuildsIntoOneChaincode(t *testing.T) {
	cc, err := contractapi.NewChaincode(consortium.New(), registry.New(), attestation.New(), federation.New(), token.New(), governance.New(), conformance.New("Org1MSP"))
	if err != nil {
		t.Fatal(err)
	}
	if cc.DefaultContract != "Consortium" {
		t.Fatalf("default contract is %q", cc.DefaultContract)
	}
}
