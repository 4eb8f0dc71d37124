package federation

import (
	"fmt"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

// CreateTask opens a task; the creator's org escrows the rewards of every round.
func (c *Contract) CreateTask(ctx contractapi.TransactionContextInterface, request string) (*Task, error) {
	who, err := caller.Admin(ctx, "CreateTask")
	if err != nil {
		return nil, err
	}
	var req TaskRequest
	if err := ledgerutil.DecodeStrict([]byte(request), "task", &req); err != nil {
		return nil, err
	}
	req.withDefaults()
	if err := req.validate(); err != nil {
		return nil, err
	}
	now, err := proposalTime(ctx, req.ClockSkewSeconds)
	if err != nil {
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
	escrow := req.RewardPerRound * int64(req.Rounds) // bounded by validate
	if err := token.Move(ctx, who.MSPID, -escrow); err != nil {
		return nil, ledgerutil.Context(err, fmt.Sprintf("escrowing %d rounds of rewards", req.Rounds))
	}
	if err := saveState(ctx, &TaskState{TaskID: req.ID, Escrow: escrow, RewardLeft: escrow}); err != nil {
		return nil, err
	}
	t := &Task{TaskRequest: req, Creator: who.MSPID, Status: StatusEnrolling, CreatedAt: stamp(now), Participants: []Participant{}}
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

func (c *Contract) save(ctx contractapi.TransactionContextInterface, k string, t *Task, event string) error {
	return ledgerutil.PutJSONWithEvent(ctx, k, t, event)
}

// loadNow loads a task and checks the proposal's timestamp against the endorser's clock.
func (c *Contract) loadNow(ctx contractapi.TransactionContextInterface, id string) (*Task, string, time.Time, error) {
	t, k, err := c.load(ctx, id)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	now, err := proposalTime(ctx, t.ClockSkewSeconds)
	return t, k, now, err
}

// loadAsCaller is loadNow for a transaction that acts as its caller: who calls is read
// (and refused) first.
func (c *Contract) loadAsCaller(ctx contractapi.TransactionContextInterface, id string) (caller.Identity, *Task, string, time.Time, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return caller.Identity{}, nil, "", time.Time{}, err
	}
	t, k, now, err := c.loadNow(ctx, id)
	return who, t, k, now, err
}

// enrolling refuses (WRONG_PHASE) unless the task is enrolling and its enrollment open.
func (t *Task) enrolling(now time.Time, action string) error {
	if t.Status != StatusEnrolling {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s; %s is only possible before it starts", t.ID, t.Status, action)
	}
	end, err := t.enrollDeadline()
	if err != nil {
		return err
	}
	if now.After(end) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "the enrollment of task %s ended at %s; anyone may Close it", t.ID, stamp(end))
	}
	return nil
}

func (t *Task) enrollDeadline() (time.Time, error) {
	created, err := parseStamp(t.CreatedAt)
	return created.Add(seconds(t.EnrollSeconds)), err
}

// Join enrolls the calling trainer; its org stakes the task's stake. Joining again
// returns the task unchanged: no second stake, no second event. An org enrolls at most
// maxPerOrg identities, so sybils cannot outnumber the other orgs.
func (c *Contract) Join(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, err := caller.WithRole(ctx, "trainer", "Join")
	if err != nil {
		return nil, err
	}
	t, k, now, err := c.loadNow(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, ok := t.participant(who.MSPID, who.Subject); ok {
		return t, nil
	}
	if err := t.enrolling(now, "joining"); err != nil {
		return nil, err
	}
	if err := c.admissible(ctx, t, who.MSPID); err != nil {
		return nil, err
	}
	st, err := loadState(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := token.Move(ctx, who.MSPID, -t.Stake); err != nil {
		return nil, ledgerutil.Context(err, "staking")
	}
	if st.Escrow, err = token.Add(st.Escrow, t.Stake); err != nil {
		return nil, err
	}
	p := Participant{MSPID: who.MSPID, Subject: who.Subject, Stake: t.Stake}
	t.Participants = append(t.Participants, p)
	if err := saveMember(ctx, id, p); err != nil {
		return nil, err
	}
	if err := saveState(ctx, st); err != nil {
		return nil, err
	}
	return t, c.save(ctx, k, t, "ParticipantJoined")
}

// admissible: a member org with room for one more participant, in a task with room.
func (c *Contract) admissible(ctx contractapi.TransactionContextInterface, t *Task, msp string) error {
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(members, msp) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member", msp)
	}
	if len(t.Participants) >= maxParticipants {
		return ledgerutil.Refuse(ledgerutil.Exhausted, "task %s has the most participants a task may have (%d)", t.ID, maxParticipants)
	}
	if n := countOf(t.Participants, msp); n >= t.MaxPerOrg {
		return ledgerutil.Refuse(ledgerutil.Exhausted, "task %s takes at most %d participant(s) per organization and %s has %d", t.ID, t.MaxPerOrg, msp, n)
	}
	return nil
}

// Leave withdraws the calling participant before the task starts; its stake comes back.
func (c *Contract) Leave(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, t, k, now, err := c.loadAsCaller(ctx, id)
	if err != nil {
		return nil, err
	}
	i, ok := t.participant(who.MSPID, who.Subject)
	if !ok {
		return nil, ledgerutil.Refuse(ledgerutil.NotFound, "%s/%s is not a participant of task %s", who.MSPID, who.Subject, id)
	}
	if err := t.enrolling(now, "leaving"); err != nil {
		return nil, err
	}
	st, err := loadState(ctx, id)
	if err != nil {
		return nil, err
	}
	p := t.Participants[i]
	if err := token.Move(ctx, p.MSPID, p.Stake); err != nil {
		return nil, ledgerutil.Context(err, "refunding the stake")
	}
	st.Escrow -= p.Stake
	mk, err := memberKey(ctx, id, p)
	if err != nil {
		return nil, err
	}
	if err := ctx.GetStub().DelState(mk); err != nil {
		return nil, ledgerutil.Context(err, "writing the ledger")
	}
	t.Participants = slices.Delete(t.Participants, i, i+1)
	if err := saveState(ctx, st); err != nil {
		return nil, err
	}
	return t, c.save(ctx, k, t, "ParticipantLeft")
}

// Start begins round 1 once enough participants of at least two orgs joined; an admin
// of the creator or of a participating org may.
func (c *Contract) Start(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, t, k, now, err := c.loadAsCaller(ctx, id)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin || (who.MSPID != t.Creator && !slices.Contains(orgs(t.Participants), who.MSPID)) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "only an admin of the creator or of a participating org may start task %s", id)
	}
	if err := t.enrolling(now, "starting"); err != nil {
		return nil, err
	}
	if len(t.Participants) < t.MinParticipants || len(orgs(t.Participants)) < 2 {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "task %s has %d of the %d participants it needs, from %d organization(s) of the 2 it needs",
			id, len(t.Participants), t.MinParticipants, len(orgs(t.Participants)))
	}
	t.Status, t.StartedAt = StatusRunning, stamp(now)
	return t, c.save(ctx, k, t, "RoundStarted")
}
