package attestation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Receipt is what an inference service signs for every response.
type Receipt struct {
	Schema         string    `json:"schema"`
	Model          string    `json:"model"`
	ManifestDigest string    `json:"manifestDigest"`
	InputDigest    string    `json:"inputDigest"`
	OutputDigest   string    `json:"outputDigest"`
	Service        ServiceID `json:"service"`
	CertificateDig string    `json:"certificateDigest"`
	Sequence       uint64    `json:"sequence"`
	Time           string    `json:"time"`
	Signature      string    `json:"signature"`
}

// ServiceID names an inference service by its identity.
type ServiceID struct {
	MSPID   string `json:"mspId"`
	Subject string `json:"subject"`
}

// canonical is compact JSON with sorted keys and no HTML escaping: the same bytes
// the Python client hashes and signs.
func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// body is the signed part: every field but the signature.
func (r *Receipt) body() ([]byte, error) {
	m := map[string]any{}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "signature")
	return canonical(m)
}

// leaf is the Merkle leaf of the whole signed receipt.
func (r *Receipt) leaf() ([]byte, error) {
	raw, err := canonical(r)
	if err != nil {
		return nil, err
	}
	return leafHash(raw), nil
}

// validate checks the receipt's fields in a fixed order, so every endorser names the
// same first problem.
func (r *Receipt) validate() error {
	if r.Schema != "fabricml.receipt/v1" {
		return ledgerutil.Refuse(ledgerutil.Invalid, "receipt schema %q is not fabricml.receipt/v1", r.Schema)
	}
	text := map[string]string{"model": r.Model, "time": r.Time, "service.mspId": r.Service.MSPID, "service.subject": r.Service.Subject}
	digests := map[string]string{"manifestDigest": r.ManifestDigest, "inputDigest": r.InputDigest,
		"outputDigest": r.OutputDigest, "certificateDigest": r.CertificateDig}
	for _, rule := range []struct {
		fields  map[string]string
		pattern string
	}{{text, ledgerutil.SafeTextPattern}, {digests, ledgerutil.DigestPattern}} {
		names := make([]string, 0, len(rule.fields))
		for name := range rule.fields {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if err := ledgerutil.Check("receipt "+name, rule.fields[name], rule.pattern); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifySignature checks the receipt against the certificate of the identity now
// invoking the chaincode: a service can only attest its own receipts.
func (r *Receipt) verifySignature(cert *x509.Certificate) error {
	sum := sha256.Sum256(cert.Raw)
	if hex.EncodeToString(sum[:]) != r.CertificateDig {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "the receipt names certificate %s, not the caller's", r.CertificateDig)
	}
	key, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ledgerutil.Refuse(ledgerutil.Invalid, "receipts must be signed with an ECDSA key")
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "receipt signature is not base64: %v", err)
	}
	body, err := r.body()
	if err != nil {
		return ledgerutil.Context(err, "encoding the receipt")
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(key, digest[:], sig) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "receipt signature does not verify with the caller's certificate")
	}
	return nil
}
