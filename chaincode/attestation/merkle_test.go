package attestation

import (
	"encoding/hex"
	"testing"
)

// The vector comes from the Python client (fabricml.attest.merkle): both sides must
// agree on every root, or anchored receipts could not be verified on-chain.
func TestAProofFromThePythonClientLeadsToTheSameRoot(t *testing.T) {
	path := [][]byte{}
	for _, h := range []string{
		"b564f396b5a3c430bab37c05d579c629a9f41c2b257b0b3eaccd3b6a66bc431f",
		"8835b5cb017fff1283ebe8c0536d1a7b4e17ae4afa7940d5f9d813c939a35daf",
		"4e2c96882cded1739669c612a1a616f60b5e2baf86436202aae7905841300d2c",
	} {
		b, _ := hex.DecodeString(h)
		path = append(path, b)
	}
	r, err := rootFromProof(leafHash([]byte("receipt-5")), 5, 7, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(r); got != "2ef0a400bf2475990ace7f1c3ca79abd009f464524f7bc8de9cabf915b1c274b" {
		t.Fatalf("root %s differs from the Python client's", got)
	}
	if r, _ := rootFromProof(leafHash([]byte("receipt-4")), 5, 7, path); hex.EncodeToString(r) == "2ef0a400bf2475990ace7f1c3ca79abd009f464524f7bc8de9cabf915b1c274b" {
		t.Fatal("a different leaf verified")
	}
	if _, err := rootFromProof(leafHash([]byte("receipt-5")), 5, 7, path[:2]); err == nil {
		t.Fatal("a truncated proof was accepted")
	}
	if _, err := rootFromProof(leafHash([]byte("receipt-5")), 9, 7, path); err == nil {
		t.Fatal("an index outside the tree was accepted")
	}
}

func TestCanonicalJSONSortsKeysAndKeepsHTMLCharacters(t *testing.T) {
	raw, err := canonical(map[string]any{"b": "<&>", "a": 1})
	if err != nil || string(raw) != `{"a":1,"b":"<&>"}` {
		t.Fatalf("got %s %v", raw, err)
	}
}
