//go:build conformance

package main

import (
	"os"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/conformance"
)

// contracts of the test build (go build -tags conformance) add the Conformance contract
// the Gateway client tests need; it behaves per org, so it learns whose peer it serves.
func contracts() []contractapi.ContractInterface {
	return append(productionContracts(), conformance.New(os.Getenv("CHAINCODE_LOCAL_MSPID")))
}
