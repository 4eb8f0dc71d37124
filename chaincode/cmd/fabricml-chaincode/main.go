// Command fabricml-chaincode serves the fabricml contracts as an external chaincode service.
package main

import (
	"crypto/tls"
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
	material, err := loadServerTLS(*insecureDev)
	if err != nil {
		log.Fatalf("loading TLS material: %v", err)
	}
	var tlsConfig *tls.Config
	if material != nil {
		if tlsConfig, err = material.config(); err != nil {
			log.Fatalf("loading TLS material: %v", err)
		}
	}
	server := &shim.ChaincodeServer{CCID: ccid, Address: address, CC: recovering{cc}}
	log.Printf("fabricml chaincode %s serving %s on %s (tls=%t), contracts %v", consortium.Version, ccid, address, tlsConfig != nil, names(served))
	if err := serve(server, tlsConfig); err != nil {
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

// tlsFiles are the environment variables that name the server's TLS material.
var tlsFiles = []string{"CHAINCODE_TLS_CERT_FILE", "CHAINCODE_TLS_KEY_FILE", "CHAINCODE_TLS_CLIENT_CA_FILE", "CHAINCODE_TLS_PEER_CERT_FILE"}

// loadServerTLS reads the server's TLS key, the TLS CA and the one client it serves (its
// peer's TLS certificate). Without them the server does not start: one without TLS or client
// auth serves whoever connects, so that takes the explicit -insecure-dev flag (nil, nil).
func loadServerTLS(insecureDev bool) (*serverTLS, error) {
	material := make([][]byte, len(tlsFiles))
	var missing []string
	for i, name := range tlsFiles {
		path := os.Getenv(name)
		if path == "" {
			missing = append(missing, name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		material[i] = data
	}
	if len(missing) == len(tlsFiles) && insecureDev {
		return nil, nil
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not set: the server needs its TLS key, the TLS CA and its peer's certificate (or -insecure-dev, without TLS, for development only)", strings.Join(missing, ", "))
	}
	return &serverTLS{Cert: material[0], Key: material[1], ClientCA: material[2], Peer: material[3]}, nil
}
