package governance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// verifyConfigSignature checks a ConfigSignature the way the orderer will weigh it:
// a valid signature over signature_header || config_update by the certificate in the
// header. That certificate must be the transaction creator's own, so the peer's MSP
// has already validated it against the channel's copy of the org's MSP.
func verifyConfigSignature(raw, update []byte, creatorMSP string, creator *x509.Certificate) error {
	var sig common.ConfigSignature
	if err := proto.Unmarshal(raw, &sig); err != nil || len(sig.SignatureHeader) == 0 || len(sig.Signature) == 0 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "configSignature must be a common.ConfigSignature with a header and a signature")
	}
	var header common.SignatureHeader
	if err := proto.Unmarshal(sig.SignatureHeader, &header); err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "signature header is corrupt: %v", err)
	}
	var id msp.SerializedIdentity
	if err := proto.Unmarshal(header.Creator, &id); err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "signature header's creator is not a SerializedIdentity: %v", err)
	}
	if id.Mspid != creatorMSP {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "the signature is by an identity of %s, but %s is recording it: each org records its own signature", id.Mspid, creatorMSP)
	}
	block, _ := pem.Decode(id.IdBytes)
	if block == nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "signature header's creator holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "signature header's certificate does not parse: %v", err)
	}
	if creator == nil || !bytes.Equal(cert.Raw, creator.Raw) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "the signature is by %q, not by the admin recording it: sign with the identity that submits", cert.Subject.CommonName)
	}
	if !verify(cert, append(append([]byte{}, sig.SignatureHeader...), update...), sig.Signature) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the signature does not verify over signature_header || config_update with %q's key", cert.Subject.CommonName)
	}
	return nil
}

type ecdsaSignature struct{ R, S *big.Int }

// verify checks ECDSA (SHA-256, low S, as Fabric's MSP demands) or Ed25519 signatures.
func verify(cert *x509.Certificate, message, signature []byte) bool {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		var rs ecdsaSignature
		rest, err := asn1.Unmarshal(signature, &rs)
		if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
			return false
		}
		if rs.S.Cmp(new(big.Int).Rsh(pub.Curve.Params().N, 1)) > 0 {
			return false // high S: Fabric refuses these
		}
		digest := sha256.Sum256(message)
		return ecdsa.Verify(pub, digest[:], rs.R, rs.S)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, message, signature)
	default:
		return false
	}
}
