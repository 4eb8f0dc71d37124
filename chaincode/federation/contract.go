// Package federation coordinates federated training rounds without a trusted server:
// stakes, commitments to updates, a quorum of organizations on each round's assessment
// (the deterministic aggregate's digest, scores, flags), rewards per organization and
// slashing, settled off the critical path. A round needs two blocks: the commitments,
// then the assessments; phases change implicitly when everyone acted or a deadline
// passed for certain (see clock.go), and no transaction of a round reads what another
// transaction of the same block writes.
package federation

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// Contract is the Federation contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Federation"}} }
