package registry

import (
	"slices"
	"unicode/utf8"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func checkReason(reason string) error {
	if n := utf8.RuneCountInString(reason); n == 0 || n > maxReasonLen {
		return ledgerutil.Refuse(ledgerutil.Invalid, "a reason of 1 to %d characters is required", maxReasonLen)
	}
	return nil
}

// loadWithReason loads ref for a change of its status, once the reason is acceptable.
func (c *Contract) loadWithReason(ctx contractapi.TransactionContextInterface, ref, reason string) (*ModelVersion, string, error) {
	if err := checkReason(reason); err != nil {
		return nil, "", err
	}
	return c.load(ctx, ref)
}

// memberAdmin is the caller, if it is an admin of a consortium member.
func memberAdmin(ctx contractapi.TransactionContextInterface, action string) (caller.Identity, []string, error) {
	who, err := caller.Admin(ctx, action)
	if err != nil {
		return who, nil, err
	}
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return who, nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return who, nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member and cannot %s", who.MSPID, action)
	}
	return who, members, nil
}

// Revoke is the caller org's vote, with a reason, to withdraw a version for good; the
// version is revoked once a majority of the consortium's members voted. Voting again
// returns the version unchanged. An org that only wants to stop its own use suspends.
func (c *Contract) Revoke(ctx contractapi.TransactionContextInterface, ref, reason string) (*ModelVersion, error) {
	who, members, err := memberAdmin(ctx, "Revoke")
	if err != nil {
		return nil, err
	}
	m, key, err := c.loadWithReason(ctx, ref, reason)
	if err != nil {
		return nil, err
	}
	if m.Status == StatusRevoked {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s is already revoked (transaction %s)", ref, m.Revocation.TxID)
	}
	if slices.ContainsFunc(m.RevocationVotes, func(v StatusChange) bool { return v.MSPID == who.MSPID }) {
		return m, nil
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	vote := StatusChange{Actor: a, Reason: reason}
	m.RevocationVotes = append(m.RevocationVotes, vote)
	votes := 0
	for _, v := range m.RevocationVotes {
		if slices.Contains(members, v.MSPID) { // votes of orgs that left no longer count
			votes++
		}
	}
	if votes < len(members)/2+1 {
		return m, c.save(ctx, key, m, "ModelRevocationVoted")
	}
	m.Status, m.Revocation = StatusRevoked, &vote
	return m, c.save(ctx, key, m, "ModelRevoked")
}

// Deprecate retires a version; only an admin of an org that trained it (and confirmed) may.
func (c *Contract) Deprecate(ctx contractapi.TransactionContextInterface, ref, reason string) (*ModelVersion, error) {
	who, err := caller.Admin(ctx, "Deprecate")
	if err != nil {
		return nil, err
	}
	m, key, err := c.loadWithReason(ctx, ref, reason)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Status == StatusRevoked:
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s is already revoked (transaction %s)", ref, m.Revocation.TxID)
	case !m.confirmedTrainer(who.MSPID):
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "only an admin of a training org that confirmed it (%v, pending %v) may deprecate %s",
			m.TrainingOrgs, m.PendingConfirmations, ref)
	case m.Status == StatusDeprecated:
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s is already deprecated", ref)
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	m.Status, m.Deprecation = StatusDeprecated, &StatusChange{Actor: a, Reason: reason}
	return m, c.save(ctx, key, m, "ModelDeprecated")
}

// ConfirmTraining is a named training org's confirmation, by its admin or a trainer,
// that it trained this version as registered (its datasets included); until every
// named org confirmed, the version cannot be approved. Confirming again (or as the
// registering org) returns the version unchanged.
func (c *Contract) ConfirmTraining(ctx contractapi.TransactionContextInterface, ref string) (*ModelVersion, error) {
	who, err := caller.WithRoleOrAdmin(ctx, "trainer", "ConfirmTraining")
	if err != nil {
		return nil, err
	}
	m, key, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(m.TrainingOrgs, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s does not name %s as a training org (%v)", ref, who.MSPID, m.TrainingOrgs)
	}
	if !slices.Contains(m.PendingConfirmations, who.MSPID) {
		return m, nil
	}
	if m.Status == StatusRevoked {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s is revoked", ref)
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	m.Confirmations = append(m.Confirmations, a)
	m.PendingConfirmations = slices.DeleteFunc(m.PendingConfirmations, func(org string) bool { return org == who.MSPID })
	return m, c.save(ctx, key, m, "ModelTrainingConfirmed")
}
