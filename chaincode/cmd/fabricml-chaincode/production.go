//go:build !conformance

package main

import "github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

// contracts of the production build: no test contract, so no client can write
// arbitrary state, another org's private data or its own transient data.
func contracts() []contractapi.ContractInterface { return productionContracts() }
