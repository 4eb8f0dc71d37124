package registry

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const (
	modelKeyType      = "model"
	policyKeyType     = "modelpolicy"
	voteKeyType       = "modelpolicyvote"
	confidentialField = "confidential"
	maxReasonLen      = 256
	maxLineageNodes   = 512
)

var getJSON = ledgerutil.GetJSON

// Contract is the Registry contract; rounds reads finalized federated rounds (nil: no
// round model can be registered).
type Contract struct {
	contractapi.Contract
	rounds RoundSource
}

// New returns the contract under its public name.
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Registry"}} }

func modelKey(ctx contractapi.TransactionContextInterface, name, version string) (string, error) {
	return ledgerutil.Key(ctx, modelKeyType, name, version)
}

func actor(ctx contractapi.TransactionContextInterface, who caller.Identity) (Actor, error) {
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return Actor{}, err
	}
	return Actor{MSPID: who.MSPID, Subject: who.Subject, At: now, TxID: ctx.GetStub().GetTxID()}, nil
}

// ImplicitCollection is the org's own private data collection.
func ImplicitCollection(mspID string) string { return "_implicit_org_" + mspID }

// Register records a new model version. The caller needs role=trainer or must be an org
// admin; its org comes from its certificate and must be among the training orgs. Other
// training orgs must confirm (ConfirmTraining) before the version can be approved; a
// round model (fed-<task>@r<n>) must match its finalized round instead.
func (c *Contract) Register(ctx contractapi.TransactionContextInterface, request string) (*ModelVersion, error) {
	who, err := caller.WithRoleOrAdmin(ctx, "trainer", "Register")
	if err != nil {
		return nil, err
	}
	req, err := decodeRegistration(request)
	if err != nil {
		return nil, err
	}
	if err := c.checkProvenance(ctx, req, who.MSPID); err != nil {
		return nil, err
	}
	key, err := modelKey(ctx, req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	if err := refuseExisting(ctx, key, req); err != nil {
		return nil, err
	}
	for _, parent := range req.Parents {
		if _, err := c.Get(ctx, parent); err != nil {
			return nil, ledgerutil.Context(err, "parent "+parent)
		}
	}
	by, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	m := &ModelVersion{RegistrationRequest: *req, RegisteredBy: by, Status: StatusRegistered}
	if req.Round == "" {
		m.PendingConfirmations = slices.DeleteFunc(slices.Clone(req.TrainingOrgs), func(org string) bool { return org == who.MSPID })
	}
	m.normalize()
	return m, c.save(ctx, key, m, "ModelRegistered")
}

// checkProvenance: the training orgs are members including the caller's, and a round
// model matches its round.
func (c *Contract) checkProvenance(ctx contractapi.TransactionContextInterface, req *RegistrationRequest, callerMSP string) error {
	if err := checkTrainingOrgs(ctx, req, callerMSP); err != nil {
		return err
	}
	if req.Round == "" && !strings.HasPrefix(req.Name, roundModelPrefix) {
		return nil
	}
	if err := c.checkRoundModel(ctx, req, callerMSP); err != nil {
		return err
	}
	return sameTaskLine(ctx, req)
}

func decodeRegistration(request string) (*RegistrationRequest, error) {
	if len(request) > MaxRequestBytes {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "registration is %d bytes; the limit is %d (put large provenance in the manifest)",
			len(request), MaxRequestBytes)
	}
	var req RegistrationRequest
	if err := ledgerutil.DecodeStrict([]byte(request), "registration", &req); err != nil {
		return nil, err
	}
	return &req, req.validate()
}

// checkTrainingOrgs: the caller's org trains the version, and every training org is a member.
func checkTrainingOrgs(ctx contractapi.TransactionContextInterface, req *RegistrationRequest, callerMSP string) error {
	if !slices.Contains(req.TrainingOrgs, callerMSP) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "trainingOrgs %v must include the caller's organization %s", req.TrainingOrgs, callerMSP)
	}
	_, members, err := requiredApprovals(ctx, req.Name)
	if err != nil {
		return err
	}
	for _, org := range req.TrainingOrgs {
		if !slices.Contains(members, org) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "training org %s is not a consortium member (members: %v)", org, members)
		}
	}
	return nil
}

// refuseExisting: a version is registered once. The same request again is ALREADY_DONE
// (a retry whose first try took effect); other content under that name@version is a
// CONFLICT, since a version's provenance never changes.
func refuseExisting(ctx contractapi.TransactionContextInterface, key string, req *RegistrationRequest) error {
	var existing ModelVersion
	found, err := getJSON(ctx, key, &existing)
	if err != nil || !found {
		return err
	}
	if sameRegistration(&existing.RegistrationRequest, req) {
		return ledgerutil.Refuse(ledgerutil.AlreadyDone, "model %s version %s is already registered with this request (transaction %s)",
			req.Name, req.Version, existing.RegisteredBy.TxID)
	}
	return ledgerutil.Refuse(ledgerutil.Conflict, "model %s version %s is already registered with other content (transaction %s)",
		req.Name, req.Version, existing.RegisteredBy.TxID)
}

// sameRegistration compares two requests as stored (absent lists are stored empty).
func sameRegistration(a, b *RegistrationRequest) bool {
	canonical := func(r RegistrationRequest) string {
		if r.Parents == nil {
			r.Parents = []string{}
		}
		if r.Datasets == nil {
			r.Datasets = []DatasetFingerprint{}
		}
		raw, _ := json.Marshal(r) // a decoded request always encodes
		return string(raw)
	}
	return canonical(*a) == canonical(*b)
}

// Approve records the caller org's approval; org admins only, once per org per version:
// approving again returns the version unchanged, with no second event.
func (c *Contract) Approve(ctx contractapi.TransactionContextInterface, ref string) (*ModelVersion, error) {
	who, err := caller.Admin(ctx, "Approve")
	if err != nil {
		return nil, err
	}
	m, key, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	if m.Status == StatusRevoked || m.Status == StatusDeprecated {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s is %s and cannot be approved", ref, m.Status)
	}
	if len(m.PendingConfirmations) > 0 {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%s names %v as training orgs, which have not confirmed (ConfirmTraining); it cannot be approved before",
			ref, m.PendingConfirmations)
	}
	if slices.ContainsFunc(m.Approvals, func(a Actor) bool { return a.MSPID == who.MSPID }) {
		return m, nil
	}
	need, members, err := requiredApprovals(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member and cannot approve", who.MSPID)
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	m.Approvals = append(m.Approvals, a)
	current := 0 // approvals of orgs that left the consortium no longer count
	for _, approval := range m.Approvals {
		if slices.Contains(members, approval.MSPID) {
			current++
		}
	}
	if m.Status == StatusRegistered && current >= need {
		m.Status = StatusApproved
		m.ApprovedAt = a.At
	}
	return m, c.save(ctx, key, m, "ModelApproved")
}

// VoteDeploymentPolicy is an org admin's vote for the approval rule of a model name;
// the rule takes effect when a majority of members voted for it.
func (c *Contract) VoteDeploymentPolicy(ctx contractapi.TransactionContextInterface, name, rule string) (*DeploymentPolicy, error) {
	who, err := caller.Admin(ctx, "VoteDeploymentPolicy")
	if err != nil {
		return nil, err
	}
	if err := ledgerutil.Check("model name", name, ledgerutil.ModelNamePattern); err != nil {
		return nil, err
	}
	if err := checkRule(rule); err != nil {
		return nil, err
	}
	_, members, err := requiredApprovals(ctx, name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member and cannot vote", who.MSPID)
	}
	if _, err := threshold(rule, len(members)); err != nil {
		return nil, err
	}
	voteKey, err := ledgerutil.Key(ctx, voteKeyType, name, who.MSPID)
	if err != nil {
		return nil, err
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	if _, err := ledgerutil.PutJSON(ctx, voteKey, PolicyVote{ModelName: name, Rule: rule, Voter: a}); err != nil {
		return nil, err
	}
	voters, err := policyVoters(ctx, name, rule, members, who.MSPID)
	if err != nil {
		return nil, err
	}
	current, err := policyFor(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(voters) < len(members)/2+1 {
		return current, nil
	}
	policy := &DeploymentPolicy{ModelName: name, Rule: rule, Voters: voters, At: a.At, TxID: a.TxID}
	key, err := ledgerutil.Key(ctx, policyKeyType, name)
	if err != nil {
		return nil, err
	}
	return policy, ledgerutil.PutJSONWithEvent(ctx, key, policy, "DeploymentPolicyChanged")
}

// policyVoters are the members whose committed vote for name is rule, and the caller,
// whose vote this transaction writes (a transaction does not read its own writes).
func policyVoters(ctx contractapi.TransactionContextInterface, name, rule string, members []string, callerMSP string) ([]string, error) {
	voters := []string{}
	for _, org := range members {
		k, err := ledgerutil.Key(ctx, voteKeyType, name, org)
		if err != nil {
			return nil, err
		}
		var v PolicyVote
		found, err := getJSON(ctx, k, &v)
		if err != nil {
			return nil, err
		}
		if (found && v.Rule == rule) || org == callerMSP {
			voters = append(voters, org)
		}
	}
	return voters, nil
}

// GetDeploymentPolicy returns the rule in force for a model name.
func (c *Contract) GetDeploymentPolicy(ctx contractapi.TransactionContextInterface, name string) (*DeploymentPolicy, error) {
	return policyFor(ctx, name)
}

func (c *Contract) load(ctx contractapi.TransactionContextInterface, ref string) (*ModelVersion, string, error) {
	name, version, err := SplitRef(ref)
	if err != nil {
		return nil, "", err
	}
	key, err := modelKey(ctx, name, version)
	if err != nil {
		return nil, "", err
	}
	var m ModelVersion
	if err := ledgerutil.GetExisting(ctx, key, &m, "model %s is not registered", ref); err != nil {
		return nil, "", err
	}
	m.normalize()
	return &m, key, nil
}

func (c *Contract) save(ctx contractapi.TransactionContextInterface, key string, m *ModelVersion, event string) error {
	return ledgerutil.PutJSONWithEvent(ctx, key, m, event)
}
