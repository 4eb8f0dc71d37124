// Command fabricml-chaincode serves the fabricml contracts as an external chaincode service.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

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
	insecureDev := flag.Bool("insecure-dev", false, "serve without TLS and client auth when no TLS material is set (development only)")
	flag.Parse()
	tls, err := tlsProperties(*insecureDev)
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

// tlsProperties loads the server's TLS key and the one client root it trusts (its peer's
// TLS certificate). Without them the server does not start: a chaincode server without TLS
// or client auth serves whoever connects, so that takes the explicit -insecure-dev flag.
func tlsProperties(insecureDev bool) (shim.TLSProperties, error) {
	files := []string{"CHAINCODE_TLS_CERT_FILE", "CHAINCODE_TLS_KEY_FILE", "CHAINCODE_TLS_CLIENT_CA_FILE"}
	material := make([][]byte, len(files))
	var missing []string
	for i, name := range files {
		path := os.Getenv(name)
		if path == "" {
			missing = append(missing, name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return shim.TLSProperties{}, fmt.Errorf("%s: %w", name, err)
		}
		material[i] = data
	}
	if len(missing) == len(files) && insecureDev {
		return shim.TLSProperties{Disabled: true}, nil
	}
	if len(missing) > 0 {
		return shim.TLSProperties{}, fmt.Errorf("%s not set: the server needs its TLS key and its peer's certificate (or -insecure-dev, without TLS, for development only)", strings.Join(missing, ", "))
	}
	return shim.TLSProperties{Cert: material[0], Key: material[1], ClientCACerts: material[2]}, nil
}
