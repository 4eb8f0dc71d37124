package main

import (
	"slices"

	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// The contract API refuses contracts whose types it cannot describe; catch that here.
func TestEveryContractBuildsIntoOneChaincode(t *testing.T) {
	served := contracts()
	cc, err := contractapi.NewChaincode(served...)
	if err != nil {
		t.Fatal(err)
	}
	if cc.DefaultContract != "Consortium" {
		t.Fatalf("default contract is %q", cc.DefaultContract)
	}
	for _, want := range []string{"Consortium", "Registry", "Attestation", "Federation", "Token", "Governance"} {
		if !slices.Contains(names(served), want) {
			t.Fatalf("contract %s is not served: %v", want, names(served))
		}
	}
}
