// Command fabricml-chaincode serves the fabricml contracts as an external chaincode service.
package main

import (
	"log"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/attestation"
	"github.com/fabricml/fabricml/chaincode/conformance"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/federation"
	"github.com/fabricml/fabricml/chaincode/governance"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

func main() {
	ccid, address := os.Getenv("CHAINCODE_ID"), os.Getenv("CHAINCODE_SERVER_ADDRESS")
	if ccid == "" || address == "" {
		log.Fatal("CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must be set (package ID and host:port to listen on)")
	}
	// The org whose peer this server serves; the Conformance contract behaves per org.
	localMSPID := os.Getenv("CHAINCODE_LOCAL_MSPID")
	cc, err := contractapi.NewChaincode(consortium.New(), registry.New(), attestation.New(), federation.New(), token.New(), governance.New(), conformance.New(localMSPID))
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
	log.Printf("fabricml chaincode %s serving %s on %s (tls=%t)", consortium.Version, ccid, address, !tls.Disabled)
	if err := server.Start(); err != nil {
		log.Fatalf("chaincode server stopped: %v", err)
	}
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
