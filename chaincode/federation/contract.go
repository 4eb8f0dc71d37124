package federation

import (
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

const (
	taskKeyType      = "fedtask"
	commitKeyType    = "fedcommit"
	aggregateKeyType = "fedaggregate"
	roundKeyType     = "fedround"
	maxParticipants  = 256
)

// Commitment is one participant's update for one round: its digest first, then revealed.
type Commitment struct {
	Participant Participant `json:"participant"`
	Digest      string      `json:"digest"`
	Samples     int64       `json:"samples"`
	Revealed    bool        `json:"revealed"`
	URI         string      `json:"uri"`
	TxID        string      `json:"txId"`
}

// AggregatePost is one org's aggregate digest, with its scores and flags per participant.
type AggregatePost struct {
	MSPID   string           `json:"mspId"`
	Digest  string           `json:"digest"`
	Scores  map[string]int64 `json:"scores"`
	Flagged []string         `json:"flagged"`
	TxID    string           `json:"txId"`
}

// RoundResult is how a round ended.
type RoundResult struct {
	TaskID          string           `json:"taskId"`
	Round           int              `json:"round"`
	Status          string           `json:"status"` // FINALIZED or CLOSED
	Reason          string           `json:"reason"`
	AggregateDigest string           `json:"aggregateDigest"`
	Agreeing        []string         `json:"agreeing"`
	Disagreeing     []string         `json:"disagreeing"`
	Rewards         map[string]int64 `json:"rewards"`
	Slashed         []string         `json:"slashed"`
	TxID            string           `json:"txId"`
}

// Contract is the Federation contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract {
	c := &Contract{}
	c.Name = "Federation"
	return c
}

func (c *Contract) load(ctx contractapi.TransactionContextInterface, id string) (*Task, string, error) {
	k, err := ledgerutil.Key(ctx, taskKeyType, id)
	if err != nil {
		return nil, "", err
	}
	var t Task
	found, err := ledgerutil.GetJSON(ctx, k, &t)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", ledgerutil.Refuse(ledgerutil.NotFound, "no federated task %q", id)
	}
	return &t, k, nil
}

func (c *Contract) save(ctx contractapi.TransactionContextInterface, k string, t *Task, event string) error {
	raw, err := ledgerutil.PutJSON(ctx, k, t)
	if err != nil {
		return err
	}
	return ctx.GetStub().SetEvent(event, raw)
}

// CreateTask opens a task; the creator's org escrows the rewards of every round.
func (c *Contract) CreateTask(ctx contractapi.TransactionContextInterface, request string) (*Task, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.RequireAdmin("CreateTask"); err != nil {
		return nil, err
	}
	var req TaskRequest
	if err := ledgerutil.DecodeStrict([]byte(request), "task", &req); err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	if _, err := registry.New().Get(ctx, req.InitialModel); err != nil {
		return nil, ledgerutil.Context(err, "initial model")
	}
	k, err := ledgerutil.Key(ctx, taskKeyType, req.ID)
	if err != nil {
		return nil, err
	}
	var existing Task
	if found, err := ledgerutil.GetJSON(ctx, k, &existing); err != nil || found {
		if err == nil {
			err = existingTask(&existing, &req, who.MSPID)
		}
		return nil, err
	}
	escrow := req.RewardPerRound * int64(req.Rounds) // both bounded by validate: no overflow
	if err := token.Move(ctx, who.MSPID, -escrow); err != nil {
		return nil, ledgerutil.Context(err, fmt.Sprintf("escrowing %d rounds of rewards", req.Rounds))
	}
	t := &Task{TaskRequest: req, Creator: who.MSPID, Status: StatusEnrolling, Participants: []Participant{}, Escrow: escrow}
	return t, c.save(ctx, k, t, "TaskCreated")
}

// existingTask: a task id is used once. The same request by the same org again is
// ALREADY_DONE (its first try took effect, the escrow is not taken twice); anything
// else under that id is a CONFLICT.
func existingTask(t *Task, req *TaskRequest, creator string) error {
	if t.TaskRequest == *req && t.Creator == creator {
		return ledgerutil.Refuse(ledgerutil.AlreadyDone, "task %s already exists with this request", req.ID)
	}
	return ledgerutil.Refuse(ledgerutil.Conflict, "task %s already exists (created by %s with other terms)", req.ID, t.Creator)
}

// Join enrolls the calling trainer; its org stakes the task's stake. Joining again
// returns the task unchanged: no second stake, no second event.
func (c *Contract) Join(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.RequireRole("trainer", "Join"); err != nil {
		return nil, err
	}
	t, k, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, ok := t.participant(who.MSPID, who.Subject); ok {
		return t, nil
	}
	if t.Status != StatusEnrolling {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s; joining is only possible before it starts", id, t.Status)
	}
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member", who.MSPID)
	}
	if len(t.Participants) >= maxParticipants {
		return nil, ledgerutil.Refuse(ledgerutil.Exhausted, "task %s has the most participants a task may have (%d)", id, maxParticipants)
	}
	if err := token.Move(ctx, who.MSPID, -t.Stake); err != nil {
		return nil, ledgerutil.Context(err, "staking")
	}
	t.Escrow += t.Stake
	t.Participants = append(t.Participants, Participant{MSPID: who.MSPID, Subject: who.Subject})
	return t, c.save(ctx, k, t, "ParticipantJoined")
}

// Start begins round 1 once enough participants joined; any participant's org admin or the creator may.
func (c *Contract) Start(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	t, k, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin || (who.MSPID != t.Creator && !slices.Contains(t.orgs(), who.MSPID)) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "only an admin of the creator or of a participating org may start task %s", id)
	}
	if t.Status != StatusEnrolling {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is already %s", id, t.Status)
	}
	if len(t.Participants) < t.MinParticipants {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "task %s has %d of the %d participants it needs", id, len(t.Participants), t.MinParticipants)
	}
	now, err := txNow(ctx)
	if err != nil {
		return nil, err
	}
	t.Status, t.Round = StatusRunning, 1
	t.enterPhase(PhaseCommit, now)
	return t, c.save(ctx, k, t, "RoundStarted")
}

// checkPhase refuses (WRONG_PHASE) unless the task is in `round` and `phase` and the
// phase's deadline has not passed at this transaction's time.
func checkPhase(ctx contractapi.TransactionContextInterface, t *Task, round int, phase string) error {
	now, err := txNow(ctx)
	if err != nil {
		return err
	}
	if t.Status != StatusRunning || t.Round != round || t.Phase != phase {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is in round %d, phase %s (%s); this needs round %d, phase %s", t.ID, t.Round, t.Phase, t.Status, round, phase)
	}
	if t.pastDeadline(now) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "the %s phase of round %d ended at %s", phase, round, t.PhaseDeadline)
	}
	return nil
}

func commitKey(ctx contractapi.TransactionContextInterface, id string, round int, p Participant) (string, error) {
	return ledgerutil.Key(ctx, commitKeyType, id, fmt.Sprintf("%06d", round), p.MSPID, p.Subject)
}

// Commit records the digest of the caller's encoded update; one key per participant per
// round, so concurrent commits never conflict. Committing the same digest and samples
// again returns the commitment unchanged (no second event), in any phase; a different
// commitment for a round is a CONFLICT: commit-reveal only works if it cannot change.
func (c *Contract) Commit(ctx contractapi.TransactionContextInterface, id string, round int, digest string, samples int64) (*Commitment, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	i, ok := t.participant(who.MSPID, who.Subject)
	if !ok {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s/%s is not a participant of task %s", who.MSPID, who.Subject, id)
	}
	if err := ledgerutil.CheckDigest("digest", digest); err != nil {
		return nil, err
	}
	if samples < 1 || samples > 1<<30 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "samples must be 1 to %d, got %d", 1<<30, samples)
	}
	k, err := commitKey(ctx, id, round, t.Participants[i])
	if err != nil {
		return nil, err
	}
	var prior Commitment
	if found, err := ledgerutil.GetJSON(ctx, k, &prior); err != nil || found {
		if err == nil && (prior.Digest != digest || prior.Samples != samples) {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "%s already committed %s (%d samples) for round %d; a commitment cannot change",
				t.Participants[i].Key(), prior.Digest, prior.Samples, round)
		}
		if err == nil {
			return &prior, nil
		}
		return nil, err
	}
	if t.Participants[i].Slashed {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s/%s is not an active participant of task %s", who.MSPID, who.Subject, id)
	}
	if err := checkPhase(ctx, t, round, PhaseCommit); err != nil {
		return nil, err
	}
	cm := &Commitment{Participant: t.Participants[i], Digest: digest, Samples: samples, TxID: ctx.GetStub().GetTxID()}
	raw, err := ledgerutil.PutJSON(ctx, k, cm)
	if err != nil {
		return nil, err
	}
	return cm, ctx.GetStub().SetEvent("UpdateCommitted", raw)
}

// Reveal publishes where the committed update can be fetched; the digest must match.
// Revealing the same digest and uri again returns the commitment unchanged (no second
// event); another uri after a reveal is a CONFLICT, since others may be fetching it.
func (c *Contract) Reveal(ctx contractapi.TransactionContextInterface, id string, round int, digest, uri string) (*Commitment, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if len(uri) == 0 || len(uri) > 512 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "uri must be 1 to 512 characters")
	}
	k, err := commitKey(ctx, id, round, Participant{MSPID: who.MSPID, Subject: who.Subject})
	if err != nil {
		return nil, err
	}
	var cm Commitment
	found, err := ledgerutil.GetJSON(ctx, k, &cm)
	if err != nil {
		return nil, err
	}
	if found && cm.Revealed {
		if cm.Digest == digest && cm.URI == uri {
			return &cm, nil
		}
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "already revealed %s at %s in round %d", cm.Digest, cm.URI, round)
	}
	if err := checkPhase(ctx, t, round, PhaseReveal); err != nil {
		return nil, err
	}
	if !found {
		return nil, ledgerutil.Refuse(ledgerutil.NotFound, "%s/%s committed nothing in round %d", who.MSPID, who.Subject, round)
	}
	if cm.Digest != digest {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "revealed digest %s does not match the commitment %s", digest, cm.Digest)
	}
	cm.Revealed, cm.URI = true, uri
	raw, err := ledgerutil.PutJSON(ctx, k, cm)
	if err != nil {
		return nil, err
	}
	return &cm, ctx.GetStub().SetEvent("UpdateRevealed", raw)
}

// Commitments lists a round's commitments, by participant.
func (c *Contract) Commitments(ctx contractapi.TransactionContextInterface, id string, round int) ([]*Commitment, error) {
	iter, err := ctx.GetStub().GetStateByPartialCompositeKey(commitKeyType, []string{id, fmt.Sprintf("%06d", round)})
	if err != nil {
		return nil, ledgerutil.Context(err, "listing commitments")
	}
	defer iter.Close()
	out := []*Commitment{}
	for iter.HasNext() {
		kv, err := iter.Next()
		if err != nil {
			return nil, ledgerutil.Context(err, "listing commitments")
		}
		var cm Commitment
		if err := ledgerutil.DecodeRecord(kv.Key, kv.Value, &cm); err != nil {
			return nil, err
		}
		out = append(out, &cm)
	}
	return out, nil
}

// GetTask returns a task.
func (c *Contract) GetTask(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	t, _, err := c.load(ctx, id)
	return t, err
}

// GetRound returns how a round ended.
func (c *Contract) GetRound(ctx contractapi.TransactionContextInterface, id string, round int) (*RoundResult, error) {
	k, err := ledgerutil.Key(ctx, roundKeyType, id, fmt.Sprintf("%06d", round))
	if err != nil {
		return nil, err
	}
	var r RoundResult
	found, err := ledgerutil.GetJSON(ctx, k, &r)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ledgerutil.Refuse(ledgerutil.NotFound, "round %d of task %s has not ended", round, id)
	}
	return &r, nil
}
