package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func setTLSEnv(t *testing.T, cert, key, ca string) {
	t.Setenv("CHAINCODE_TLS_CERT_FILE", cert)
	t.Setenv("CHAINCODE_TLS_KEY_FILE", key)
	t.Setenv("CHAINCODE_TLS_CLIENT_CA_FILE", ca)
}

func TestWithoutTLSMaterialTheServerRefusesToStart(t *testing.T) {
	setTLSEnv(t, "", "", "")
	if _, err := tlsProperties(false); err == nil {
		t.Fatal("no TLS material and no -insecure-dev: want an error, got a server without TLS")
	}
}

func TestWithoutAClientRootTheServerRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setTLSEnv(t, cert, key, "")
	for _, dev := range []bool{false, true} {
		if _, err := tlsProperties(dev); err == nil || !strings.Contains(err.Error(), "CHAINCODE_TLS_CLIENT_CA_FILE") {
			t.Fatalf("no client root (insecure-dev=%t): want an error naming it, got %v", dev, err)
		}
	}
}

func TestOnlyTheDevFlagTurnsTLSOff(t *testing.T) {
	setTLSEnv(t, "", "", "")
	props, err := tlsProperties(true)
	if err != nil || !props.Disabled {
		t.Fatalf("-insecure-dev without material: want TLS off, got %+v, %v", props, err)
	}
}

func TestAllThreeFilesGiveTLSWithClientAuth(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{}
	for _, n := range []string{"cert", "key", "ca"} {
		paths[n] = filepath.Join(dir, n)
		if err := os.WriteFile(paths[n], []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setTLSEnv(t, paths["cert"], paths["key"], paths["ca"])
	props, err := tlsProperties(false)
	if err != nil || props.Disabled || string(props.ClientCACerts) != "ca" || string(props.Key) != "key" {
		t.Fatalf("want TLS with the peer's certificate as client root, got %+v, %v", props, err)
	}
}
