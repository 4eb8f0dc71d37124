package registry

import (
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

// A storage URI must be somewhere other members can fetch from, not one machine's path.
func TestStorageURIsMustBeReachableByOtherMembers(t *testing.T) {
	for _, uri := range []string{"file:///home/me/.fabricml/artifacts/org1", "https:///no-host", "http://plain.example/x"} {
		stub := consortiumOfThree(t)
		_, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) {
			return New().Register(ctx, request("m", "1", func(r *RegistrationRequest) { r.StorageURIs = []string{uri} }))
		})
		if err == nil || !strings.Contains(err.Error(), "storage URI") {
			t.Fatalf("%s was accepted: %v", uri, err)
		}
	}
}
