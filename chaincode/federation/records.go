package federation

import (
	"fmt"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Each kind of record has its own key, so that the transactions of a round write
// disjoint keys and read none that another transaction of the same block writes.
const (
	taskKeyType      = "fedtask"      // terms and participants: written before the start only
	stateKeyType     = "fedstate"     // escrow and settled rounds: written by Settle
	memberKeyType    = "fedmember"    // one participant's stake and standing: written when it changes
	commitKeyType    = "fedcommit"    // one participant's commitment for one round
	digestKeyType    = "feddigest"    // which participant committed a digest: replays are refused
	aggregateKeyType = "fedaggregate" // one org's assessment of one round
	roundKeyType     = "fedround"     // how a round was settled
)

// Commitment is one participant's update for one round: the digest of its encoded
// bytes, the (advisory) sample count, and where the bytes are published once the
// round's commitments are closed.
type Commitment struct {
	TaskID      string      `json:"taskId"`
	Round       int         `json:"round"`
	Participant Participant `json:"participant"`
	Digest      string      `json:"digest"`
	Samples     int64       `json:"samples"`
	URI         string      `json:"uri"`
	CommittedAt string      `json:"committedAt"`
	TxID        string      `json:"txId"`
}

// AggregatePost is one org's assessment of a round: the digest of the new global model
// it computed, a score for each usable update, the participants it flags and those
// whose update it could not get.
type AggregatePost struct {
	TaskID   string           `json:"taskId"`
	Round    int              `json:"round"`
	MSPID    string           `json:"mspId"`
	Digest   string           `json:"digest"`
	Scores   map[string]int64 `json:"scores"`
	Flagged  []string         `json:"flagged"`
	Missing  []string         `json:"missing"`
	PostedAt string           `json:"postedAt"`
	TxID     string           `json:"txId"`
}

// RoundResult is how a round was settled.
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
	Missing         []string         `json:"missing"`
	Penalized       map[string]int64 `json:"penalized"` // missed the commit phase: the tokens it cost
	Dropped         []string         `json:"dropped"`
	Pool            int64            `json:"pool"`     // reward, carried pool, slashed stakes and penalties
	Carried         int64            `json:"carried"`  // what was not paid, for the next round
	Forfeits        map[string]int64 `json:"forfeits"` // at the task's end: unpaid stakes and penalties, to those who kept to the protocol
	CommitClose     string           `json:"commitClose"`
	SettledAt       string           `json:"settledAt"`
	TaskDone        bool             `json:"taskDone"`
	TxID            string           `json:"txId"`
}

// TaskState is what the task holds and how far it is settled; only lifecycle calls and
// Settle write it, never the commitments and posts of a round.
type TaskState struct {
	TaskID       string `json:"taskId"`
	Escrow       int64  `json:"escrow"`     // every token the task holds: stakes + rewardLeft + carry + forfeit
	RewardLeft   int64  `json:"rewardLeft"` // escrowed rewards of the rounds not settled yet
	Carry        int64  `json:"carry"`      // rewards of rounds that paid no one: the creator's, for the next round
	Forfeit      int64  `json:"forfeit"`    // slashed stakes and penalties no one was paid from yet
	SettledRound int    `json:"settledRound"`
	Done         bool   `json:"done"`
	Reason       string `json:"reason"`
}

func roundPart(round int) string { return fmt.Sprintf("%06d", round) }

func (c *Contract) load(ctx contractapi.TransactionContextInterface, id string) (*Task, string, error) {
	k, err := ledgerutil.Key(ctx, taskKeyType, id)
	if err != nil {
		return nil, "", err
	}
	var t Task
	if err := ledgerutil.GetExisting(ctx, k, &t, "no federated task %q", id); err != nil {
		return nil, "", err
	}
	return &t, k, nil
}

func loadState(ctx contractapi.TransactionContextInterface, id string) (*TaskState, error) {
	k, err := ledgerutil.Key(ctx, stateKeyType, id)
	if err != nil {
		return nil, err
	}
	var s TaskState
	found, err := ledgerutil.GetJSON(ctx, k, &s)
	if err == nil && !found {
		err = ledgerutil.Refuse(ledgerutil.Internal, "task %s has no state record", id)
	}
	return &s, err
}

func saveState(ctx contractapi.TransactionContextInterface, s *TaskState) error {
	k, err := ledgerutil.Key(ctx, stateKeyType, s.TaskID)
	if err == nil {
		_, err = ledgerutil.PutJSON(ctx, k, s)
	}
	return err
}

func memberKey(ctx contractapi.TransactionContextInterface, id string, p Participant) (string, error) {
	return ledgerutil.Key(ctx, memberKeyType, id, p.MSPID, p.Subject)
}

// members reads every participant's record, in joining order.
func members(ctx contractapi.TransactionContextInterface, t *Task) ([]Participant, error) {
	out := make([]Participant, 0, len(t.Participants))
	for _, p := range t.Participants {
		k, err := memberKey(ctx, t.ID, p)
		if err != nil {
			return nil, err
		}
		var m Participant
		found, err := ledgerutil.GetJSON(ctx, k, &m)
		if err == nil && !found {
			err = ledgerutil.Refuse(ledgerutil.Internal, "participant %s of task %s has no record", p.Key(), t.ID)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func saveMember(ctx contractapi.TransactionContextInterface, id string, p Participant) error {
	k, err := memberKey(ctx, id, p)
	if err == nil {
		_, err = ledgerutil.PutJSON(ctx, k, p)
	}
	return err
}

func commitKey(ctx contractapi.TransactionContextInterface, id string, round int, p Participant) (string, error) {
	return ledgerutil.Key(ctx, commitKeyType, id, roundPart(round), p.MSPID, p.Subject)
}

func postKey(ctx contractapi.TransactionContextInterface, id string, round int, msp string) (string, error) {
	return ledgerutil.Key(ctx, aggregateKeyType, id, roundPart(round), msp)
}

func roundKey(ctx contractapi.TransactionContextInterface, id string, round int) (string, error) {
	return ledgerutil.Key(ctx, roundKeyType, id, roundPart(round))
}

// roundResult reads how a round was settled; found is false before it is.
func roundResult(ctx contractapi.TransactionContextInterface, id string, round int) (*RoundResult, bool, error) {
	k, err := roundKey(ctx, id, round)
	if err != nil {
		return nil, false, err
	}
	var r RoundResult
	found, err := ledgerutil.GetJSON(ctx, k, &r)
	return &r, found, err
}

// settled reads a round's result, which the caller's step needs (WRONG_PHASE before it).
func settled(ctx contractapi.TransactionContextInterface, id string, round int, why string) (*RoundResult, error) {
	r, found, err := roundResult(ctx, id, round)
	if err == nil && !found {
		err = ledgerutil.Refuse(ledgerutil.WrongPhase, "round %d of task %s is not settled yet, and %s: call Settle(%s, %d)", round, id, why, id, round)
	}
	if err == nil && r.TaskDone {
		err = ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s ended with round %d", id, round)
	}
	return r, err
}

// absent refuses (WRONG_PHASE) when a record exists. Reading a key that must still be
// absent puts it in the transaction's read set: if another transaction writes it first,
// Fabric invalidates this one. That is how a commitment proposed in time but held back
// can never land after a post of its round, nor a post after its round's settlement.
func absent(ctx contractapi.TransactionContextInterface, key, why string) error {
	raw, err := ctx.GetStub().GetState(key)
	if err != nil {
		return ledgerutil.Context(err, "reading the ledger")
	}
	if raw != nil {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "%s", why)
	}
	return nil
}
