package registry

import (
	"strconv"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// DefaultRule applies to every model name without a voted policy.
const DefaultRule = "MAJORITY"

// DeploymentPolicy is how many member orgs must approve a version of a model.
type DeploymentPolicy struct {
	ModelName string   `json:"modelName"`
	Rule      string   `json:"rule"`
	Voters    []string `json:"voters"`
	At        string   `json:"at"`
	TxID      string   `json:"txId"`
}

// PolicyVote is one org's vote for a model name's rule.
type PolicyVote struct {
	ModelName string `json:"modelName"`
	Rule      string `json:"rule"`
	Voter     Actor  `json:"voter"`
}

func checkRule(rule string) error {
	return ledgerutil.Check("deployment rule", rule, ledgerutil.DeploymentRulePattern)
}

// threshold is the number of approvals a rule needs among `members` organizations.
func threshold(rule string, members int) (int, error) {
	if members < 1 {
		return 0, ledgerutil.Refuse(ledgerutil.Conflict, "the consortium has no members yet")
	}
	switch rule {
	case "MAJORITY":
		return members/2 + 1, nil
	case "ALL":
		return members, nil
	case "ANY":
		return 1, nil
	}
	m := ledgerutil.Pattern(ledgerutil.AtLeastPolicyPattern).FindStringSubmatch(rule)
	if m == nil {
		return 0, checkRule(rule)
	}
	n, _ := strconv.Atoi(m[1])
	if n > members {
		return 0, ledgerutil.Refuse(ledgerutil.Invalid, "rule %s needs %d approvals but the consortium has %d members", rule, n, members)
	}
	return n, nil
}

// policyFor returns the voted policy of a model name, or the default.
func policyFor(ctx contractapi.TransactionContextInterface, name string) (*DeploymentPolicy, error) {
	key, err := ledgerutil.Key(ctx, policyKeyType, name)
	if err != nil {
		return nil, err
	}
	var p DeploymentPolicy
	found, err := getJSON(ctx, key, &p)
	if err != nil {
		return nil, err
	}
	if !found {
		return &DeploymentPolicy{ModelName: name, Rule: DefaultRule, Voters: []string{}}, nil
	}
	return &p, nil
}

// requiredApprovals is the threshold for a model name under today's membership.
func requiredApprovals(ctx contractapi.TransactionContextInterface, name string) (int, []string, error) {
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return 0, nil, err
	}
	p, err := policyFor(ctx, name)
	if err != nil {
		return 0, nil, err
	}
	n, err := threshold(p.Rule, len(members))
	return n, members, err
}
