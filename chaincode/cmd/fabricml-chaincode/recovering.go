package main

import (
	"fmt"
	"log"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
)

// recovering turns a panic inside one transaction into an error response, so one
// bad call cannot take the organization's chaincode server down.
type recovering struct {
	shim.Chaincode
}

func (r recovering) Init(stub shim.ChaincodeStubInterface) (resp *peer.Response) {
	defer recoverInto(stub, &resp)
	return r.Chaincode.Init(stub)
}

func (r recovering) Invoke(stub shim.ChaincodeStubInterface) (resp *peer.Response) {
	defer recoverInto(stub, &resp)
	return r.Chaincode.Invoke(stub)
}

func recoverInto(stub shim.ChaincodeStubInterface, resp **peer.Response) {
	if p := recover(); p != nil {
		log.Printf("transaction %s panicked: %v", stub.GetTxID(), p)
		*resp = shim.Error(fmt.Sprintf("chaincode panic: %v", p))
	}
}
