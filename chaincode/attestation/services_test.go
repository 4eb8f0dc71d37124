package attestation

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

// service is an inference identity with a real certificate and key, so receipts are
// signed and checked as on the network; it replaces the fake caller of a transaction.
type service struct {
	*fakeledger.Signer
	next uint64 // next receipt sequence
	seq  uint64 // last anchored batch
}

func newService(t *testing.T, msp string) *service {
	t.Helper()
	return &service{Signer: fakeledger.NewSigner(t, msp, "inference", "client", map[string]string{"role": "inference"}), next: 1}
}

// as runs f with the service as the caller.
func (s *service) as(f func(fakeledger.Ctx) error) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error {
		ctx.(*contractapi.TransactionContext).SetClientIdentity(s)
		return f(ctx)
	}
}

// receipt signs the next receipt for an answer of model on input.
func (s *service) receipt(t *testing.T, model, input, output string) Receipt {
	t.Helper()
	sum := sha256.Sum256(s.Cert.Raw)
	r := Receipt{Schema: "fabricml.receipt/v1", Model: model, ManifestDigest: hexOf("a"), InputDigest: input, OutputDigest: output,
		Service: ServiceID{MSPID: s.MSPID, Subject: "inference"}, CertificateDig: hex.EncodeToString(sum[:]), Sequence: s.next,
		Time: "2026-01-02T03:04:05Z"}
	s.next++
	return s.sign(t, r)
}

func (s *service) sign(t *testing.T, r Receipt) Receipt {
	t.Helper()
	body, err := r.body()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	r.Signature = base64.StdEncoding.EncodeToString(sig)
	return r
}

// anchor anchors one batch over receipts (declared for model and receipts first..last)
// and returns each receipt's inclusion proof.
func (s *service) anchor(t *testing.T, stub *fakeledger.Stub, model string, first uint64, receipts ...Receipt) []string {
	t.Helper()
	leaves := make([][]byte, len(receipts))
	for i := range receipts {
		leaf, err := receipts[i].leaf()
		if err != nil {
			t.Fatal(err)
		}
		leaves[i] = leaf
	}
	s.seq++
	req, _ := json.Marshal(BatchRequest{Sequence: s.seq, Model: model, Root: hex.EncodeToString(treeHash(leaves)), Count: uint64(len(leaves)),
		FirstReceipt: first, LastReceipt: first + uint64(len(leaves)) - 1})
	if _, err := fakeledger.SubmitAs(stub, s.Signer, func(ctx fakeledger.Ctx) (*Batch, error) {
		return New().AnchorBatch(ctx, string(req))
	}); err != nil {
		t.Fatal(err)
	}
	proofs := make([]string, len(leaves))
	for i := range leaves {
		proofs[i] = proofJSON(uint64(i), leaves)
	}
	return proofs
}

func jsonOf(r Receipt) string {
	raw, _ := json.Marshal(r)
	return string(raw)
}

// treeHash is RFC 6962's MTH over leaf hashes.
func treeHash(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	return nodeHash(treeHash(leaves[:k]), treeHash(leaves[k:]))
}

// split is the largest power of two below n.
func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// auditPath is RFC 6962's PATH(m, D[n]), bottom up.
func auditPath(m int, leaves [][]byte) [][]byte {
	if len(leaves) == 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		return append(auditPath(m, leaves[:k]), treeHash(leaves[k:]))
	}
	return append(auditPath(m-k, leaves[k:]), treeHash(leaves[:k]))
}

func proofJSON(index uint64, leaves [][]byte) string {
	path := []string{}
	for _, h := range auditPath(int(index), leaves) {
		path = append(path, hex.EncodeToString(h))
	}
	raw, _ := json.Marshal(Proof{Index: index, Size: uint64(len(leaves)), Path: path})
	return string(raw)
}

func TestTheTestTreesMatchTheContractsProofs(t *testing.T) {
	for n := 1; n <= 9; n++ {
		leaves := [][]byte{}
		for i := range n {
			leaves = append(leaves, leafHash([]byte(fmt.Sprint(i))))
		}
		for m := range n {
			r, err := rootFromProof(leaves[m], uint64(m), uint64(n), auditPath(m, leaves))
			if err != nil || hex.EncodeToString(r) != hex.EncodeToString(treeHash(leaves)) {
				t.Fatalf("n=%d m=%d: %v", n, m, err)
			}
		}
	}
}
