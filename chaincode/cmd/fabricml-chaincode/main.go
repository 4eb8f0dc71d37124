// Command fabricml-chaincode serves the fabricml contracts as an external chaincode service.
package main

import (
	"log"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/consortium"
)

func main() {
	ccid, address := os.Getenv("CHAINCODE_ID"), os.Getenv("CHAINCODE_SERVER_ADDRESS")
	if ccid == "" || address == "" {
		log.Fatal("CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must be set (package ID and host:port to listen on)")
	}
	served := contracts()
	cc, err := contractapi.NewChaincode(served...)
	if err != nil {
		log.Fatalf("building chaincode: %v", err)
	}
	cc.Info.Title = "fabricml"
	cc.Info.Version = consortium.Version
	tls, err := tlsProperties()
	if err != nil {
		log.Fatalf("loading TLS material: %v", err)
	}
	server := &shim.ChaincodeServer{CCID: ccid, Address: address, CC: recovering{cc}, TLSProps: tls}
	log.Printf("fabricml chaincode %s serving %s on %s (tls=%t), contracts %v", consortium.Version, ccid, address, !tls.Disabled, names(served))
	if err := server.Start(); err != nil {
		log.Fatalf("chaincode server stopped: %v", err)
	}
}

func names(served []contractapi.ContractInterface) []string {
	out := make([]string, len(served))
	for i, c := range served {
		out[i] = c.GetName()
	}
	return out
}

// tlsProperties turns on TLS (and client auth) when the network tooling hands us key material.
func tlsProperties() (shim.TLSProperties, error) {
	certFile, keyFile := os.Getenv("CHAINCODE_TLS_CERT_FILE"), os.Getenv("CHAINCODE_TLS_KEY_FILE")
	if certFile == "" {
		return shim.TLSProperties{Disabled: true}, nil
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	props := shim.TLSProperties{Cert: cert, Key: key}
	if caFile := os.Getenv("CHAINCODE_TLS_CLIENT_CA_FILE"); caFile != "" {
		if props.ClientCACerts, err = os.ReadFile(caFile); err != nil {
			return shim.TLSProperties{}, err
		}
	}
	return props, nil
}
