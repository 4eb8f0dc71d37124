package federation

import (
	"fmt"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// digestRecord says who committed a digest, so that no update is committed twice.
type digestRecord struct {
	Participant string `json:"participant"`
	Round       int    `json:"round"`
}

// Commit records the digest of the caller's encoded update for a round, its (advisory)
// sample count and the URI where it will publish the bytes once the round's commitments
// are closed. One key per participant per round: concurrent commitments never conflict.
// Committing the same again returns the commitment unchanged (no second event), in any
// phase; anything else for that round is a CONFLICT: commit-reveal works only if a
// commitment cannot change. A digest already committed in this task, by anyone in any
// round, is a replay and a CONFLICT.
func (c *Contract) Commit(ctx contractapi.TransactionContextInterface, id string, round int, digest string, samples int64, uri string) (*Commitment, error) {
	t, _, now, err := c.loadNow(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := committer(ctx, t, digest, samples, uri)
	if err != nil {
		return nil, err
	}
	k, err := commitKey(ctx, id, round, p)
	if err != nil {
		return nil, err
	}
	var prior Commitment
	if found, err := ledgerutil.GetJSON(ctx, k, &prior); err != nil || found {
		if err == nil && (prior.Digest != digest || prior.Samples != samples || prior.URI != uri) {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "%s already committed %s (%d samples, %s) for round %d; a commitment cannot change",
				p.Key(), prior.Digest, prior.Samples, prior.URI, round)
		}
		if err == nil {
			return &prior, nil
		}
		return nil, err
	}
	if err := c.committable(ctx, t, p, round, now); err != nil {
		return nil, err
	}
	if err := claimDigest(ctx, id, digest, p, round); err != nil {
		return nil, err
	}
	cm := &Commitment{TaskID: id, Round: round, Participant: Participant{MSPID: p.MSPID, Subject: p.Subject}, Digest: digest,
		Samples: samples, URI: uri, CommittedAt: stamp(now), TxID: ctx.GetStub().GetTxID()}
	return cm, ledgerutil.PutJSONWithEvent(ctx, k, cm, "UpdateCommitted")
}

// committer checks the caller and the arguments' form; it returns the caller's record.
func committer(ctx contractapi.TransactionContextInterface, t *Task, digest string, samples int64, uri string) (Participant, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return Participant{}, err
	}
	i, ok := t.participant(who.MSPID, who.Subject)
	if !ok {
		return Participant{}, ledgerutil.Refuse(ledgerutil.Forbidden, "%s/%s is not a participant of task %s", who.MSPID, who.Subject, t.ID)
	}
	if err := ledgerutil.CheckDigest("digest", digest); err != nil {
		return Participant{}, err
	}
	if samples < 1 || samples > MaxSamples {
		return Participant{}, ledgerutil.Refuse(ledgerutil.Invalid, "samples must be 1 to %d, got %d (the count is advisory: aggregation never trusts it)", MaxSamples, samples)
	}
	if len(uri) == 0 || len(uri) > 512 {
		return Participant{}, ledgerutil.Refuse(ledgerutil.Invalid, "uri must be 1 to 512 characters, got %d", len(uri))
	}
	return t.Participants[i], nil
}

// committable: the caller takes part in the round and its commit phase is open, which
// needs the previous round's commitments closed. The reads here fix the round's state
// for Fabric's validation: none of them is written by another commitment of the round.
func (c *Contract) committable(ctx contractapi.TransactionContextInterface, t *Task, p Participant, round int, now time.Time) error {
	if t.Status != StatusRunning {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s", t.ID, t.Status)
	}
	if round < 1 || round > t.Rounds {
		return ledgerutil.Refuse(ledgerutil.Invalid, "round must be 1 to %d, got %d", t.Rounds, round)
	}
	ms, err := members(ctx, t)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Key() == p.Key() && !m.activeIn(round) {
			return ledgerutil.Refuse(ledgerutil.Forbidden, "%s is out of task %s since round %d (%s)", p.Key(), t.ID, m.OutRound, m.Out)
		}
	}
	deadline, err := commitDeadline(ctx, t, ms, round, now)
	if err != nil {
		return err
	}
	if now.After(deadline) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "the commit phase of round %d ended at %s", round, stamp(deadline))
	}
	return closedToLateCommits(ctx, t, round)
}

// commitDeadline of a round. Round r's follows round r-1's close, read from round r-1's
// commitments, not from its settlement: that is off the critical path and may land in
// the same block as these commitments.
func commitDeadline(ctx contractapi.TransactionContextInterface, t *Task, ms []Participant, round int, now time.Time) (time.Time, error) {
	if round == 1 {
		started, err := parseStamp(t.StartedAt)
		return started.Add(seconds(t.CommitSeconds)), err
	}
	prev, err := settledView(ctx, t, ms, round-1, fmt.Sprintf("round %d cannot take commitments before", round))
	if err != nil {
		return time.Time{}, err
	}
	if !prev.closed(t, now) {
		return time.Time{}, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d participants committed to round %d, open until %s; round %d's commitments follow",
			len(prev.commits), len(prev.active), round-1, stamp(prev.times.Commit), round)
	}
	_, _, next := t.afterClose(prev.times.Close)
	return next, nil
}

// closedToLateCommits reads the keys that close a round's commitments (every org's post
// and the round's result) and refuses once one exists; a held-back commitment whose
// read of them is outdated is invalidated by Fabric at commit time.
func closedToLateCommits(ctx contractapi.TransactionContextInterface, t *Task, round int) error {
	for _, msp := range orgs(t.Participants) {
		k, err := postKey(ctx, t.ID, round, msp)
		if err != nil {
			return err
		}
		if err := absent(ctx, k, fmt.Sprintf("%s already posted its assessment of round %d: its commitments are closed", msp, round)); err != nil {
			return err
		}
	}
	rk, err := roundKey(ctx, t.ID, round)
	if err != nil {
		return err
	}
	return absent(ctx, rk, fmt.Sprintf("round %d of task %s is settled", round, t.ID))
}

// claimDigest refuses a digest committed before in this task (a replay) and records it.
func claimDigest(ctx contractapi.TransactionContextInterface, id, digest string, p Participant, round int) error {
	k, err := ledgerutil.Key(ctx, digestKeyType, id, digest)
	if err != nil {
		return err
	}
	var prior digestRecord
	found, err := ledgerutil.GetJSON(ctx, k, &prior)
	if err != nil {
		return err
	}
	if found {
		return ledgerutil.Refuse(ledgerutil.Conflict, "update %s was already committed by %s in round %d of task %s: a replay", digest, prior.Participant, prior.Round, id)
	}
	_, err = ledgerutil.PutJSON(ctx, k, digestRecord{Participant: p.Key(), Round: round})
	return err
}
