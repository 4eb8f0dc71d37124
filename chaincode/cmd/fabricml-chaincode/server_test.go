package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type keyPair struct {
	cert, key []byte
	parsed    *x509.Certificate
	signer    *ecdsa.PrivateKey
}

// issue makes a certificate for cn, signed by parent (self-signed CA when nil).
func issue(t *testing.T, cn string, parent *keyPair) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	signerCert, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		signerCert, signerKey = parent.parsed, parent.signer
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return keyPair{
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), parsed, key,
	}
}

// handshake: whether a client with `client` completes TLS with the server and reads from it.
func handshake(t *testing.T, server *tls.Config, ca, client keyPair) bool {
	t.Helper()
	listener, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	go func() {
		conn, err := listener.Accept()
		if err == nil {
			_, _ = conn.Write([]byte("x"))
			conn.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.cert)
	pair, _ := tls.X509KeyPair(client.cert, client.key)
	conn, err := tls.Dial("tcp", listener.Addr().String(), &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
	if err != nil {
		return false
	}
	defer conn.Close()
	_, err = conn.Read(make([]byte, 1)) // TLS 1.3: a refused client certificate shows here
	return err == nil
}

func TestTheChaincodeServerTakesItsPeerOnly(t *testing.T) {
	ca := issue(t, "tlsca.org1", nil)
	server, peer, artifacts := issue(t, "chaincode", &ca), issue(t, "peer0", &ca), issue(t, "artifacts", &ca)
	cfg, err := serverTLS{Cert: server.cert, Key: server.key, ClientCA: ca.cert, Peer: peer.cert}.config()
	if err != nil {
		t.Fatal(err)
	}
	if !handshake(t, cfg, ca, peer) {
		t.Fatal("the peer's own TLS certificate was refused")
	}
	if handshake(t, cfg, ca, artifacts) {
		t.Fatal("another TLS key of the org (the artifact store's) was served as if it were the peer")
	}
}

func setTLSEnv(t *testing.T, values ...string) {
	for i, name := range tlsFiles {
		t.Setenv(name, values[i])
	}
}

func TestWithoutTLSMaterialTheServerRefusesToStart(t *testing.T) {
	setTLSEnv(t, "", "", "", "")
	if _, err := loadServerTLS(false); err == nil {
		t.Fatal("no TLS material and no -insecure-dev: want an error, got a server without TLS")
	}
	if material, err := loadServerTLS(true); err != nil || material != nil {
		t.Fatalf("-insecure-dev without material: want no TLS, got %v, %v", material, err)
	}
}

func TestPartOfTheMaterialIsNeverEnough(t *testing.T) {
	dir := t.TempDir()
	files := make([]string, len(tlsFiles))
	for i := range files {
		files[i] = filepath.Join(dir, tlsFiles[i])
		if err := os.WriteFile(files[i], []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setTLSEnv(t, files[0], files[1], files[2], "")
	for _, dev := range []bool{false, true} {
		if _, err := loadServerTLS(dev); err == nil || !strings.Contains(err.Error(), "CHAINCODE_TLS_PEER_CERT_FILE") {
			t.Fatalf("no peer certificate (insecure-dev=%t): want an error naming it, got %v", dev, err)
		}
	}
	setTLSEnv(t, files...)
	if material, err := loadServerTLS(false); err != nil || string(material.Peer) != "pem" {
		t.Fatalf("all four files: want them loaded, got %v, %v", material, err)
	}
}
