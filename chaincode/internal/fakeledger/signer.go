package fakeledger

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// Signer is a caller with a real P-256 key and a self-signed certificate, for the
// contracts that check what a caller signed with its own key (config signatures,
// inference receipts). Its certificate names it (CN) and its NodeOU (OU).
type Signer struct {
	MSPID string
	Key   *ecdsa.PrivateKey
	Cert  *x509.Certificate
	PEM   []byte // the certificate, PEM-encoded, as an MSP serializes it
	Attrs map[string]string
}

// serial makes every issued certificate distinct, as a CA's serial numbers are.
var serial atomic.Int64

// NewSigner issues a key and a certificate for name of msp with NodeOU ou.
func NewSigner(t testing.TB, msp, name, ou string, attrs map[string]string) *Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name, OrganizationalUnit: []string{ou}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{MSPID: msp, Key: key, Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Attrs: attrs}
}

func (s *Signer) GetID() (string, error)    { return "x509::CN=" + s.Cert.Subject.CommonName, nil }
func (s *Signer) GetMSPID() (string, error) { return s.MSPID, nil }

func (s *Signer) GetAttributeValue(name string) (string, bool, error) {
	v, ok := s.Attrs[name]
	return v, ok, nil
}

func (s *Signer) AssertAttributeValue(string, string) error      { return nil }
func (s *Signer) GetX509Certificate() (*x509.Certificate, error) { return s.Cert, nil }

// SubmitAs runs f as one submitted transaction (see Submit) whose caller is s.
func SubmitAs[R any](st *Stub, s *Signer, f func(Ctx) (R, error)) (R, error) {
	return Submit(st, Identity{MSPID: s.MSPID}, func(ctx Ctx) (R, error) {
		ctx.(*contractapi.TransactionContext).SetClientIdentity(s)
		return f(ctx)
	})
}
