package federation

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

// Advance moves a round on: COMMIT ends when every active participant committed or its
// deadline passed, REVEAL likewise; AGGREGATE finalizes the round once a majority of
// participating orgs posted the same digest, or closes it at its deadline without one.
// Anyone may call it; the ledger's state and time decide.
func (c *Contract) Advance(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	t, k, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRunning {
		return nil, fmt.Errorf("task %s is %s", id, t.Status)
	}
	now, err := txNow(ctx)
	if err != nil {
		return nil, err
	}
	commitments, err := c.Commitments(ctx, id, t.Round)
	if err != nil {
		return nil, err
	}
	revealed := 0
	for _, cm := range commitments {
		if cm.Revealed {
			revealed++
		}
	}
	switch t.Phase {
	case PhaseCommit:
		if len(commitments) < len(t.active()) && !t.pastDeadline(now) {
			return nil, fmt.Errorf("%d of %d participants committed and the phase ends at %s", len(commitments), len(t.active()), t.PhaseDeadline)
		}
		if len(commitments) < t.MinParticipants {
			return t, c.closeRound(ctx, k, t, now, fmt.Sprintf("only %d of the %d required participants committed before %s", len(commitments), t.MinParticipants, t.PhaseDeadline))
		}
		t.enterPhase(PhaseReveal, now)
	case PhaseReveal:
		if revealed < len(commitments) && !t.pastDeadline(now) {
			return nil, fmt.Errorf("%d of %d commitments revealed and the phase ends at %s", revealed, len(commitments), t.PhaseDeadline)
		}
		if revealed < t.MinParticipants {
			return t, c.closeRound(ctx, k, t, now, fmt.Sprintf("only %d of the %d required participants revealed before %s", revealed, t.MinParticipants, t.PhaseDeadline))
		}
		t.enterPhase(PhaseAggregate, now)
	case PhaseAggregate:
		posts, err := c.aggregates(ctx, id, t.Round)
		if err != nil {
			return nil, err
		}
		if digest, agreeing := quorum(t, posts); digest != "" {
			_, err := c.finalize(ctx, k, t, now, digest, agreeing, posts)
			return t, err
		}
		if !t.pastDeadline(now) {
			return nil, fmt.Errorf("%d of %d organizations posted an aggregate, no quorum yet, and the aggregate phase ends at %s", len(posts), len(t.orgs()), t.PhaseDeadline)
		}
		return t, c.closeRound(ctx, k, t, now, "no quorum of organizations posted the same aggregate before the deadline")
	}
	return t, c.save(ctx, k, t, "PhaseChanged")
}

// PostAggregate records the caller org's aggregate digest, scores and flags under its own
// key, so posts from several orgs at once never conflict; Advance finalizes the round once
// a majority of participating orgs posted the same digest.
func (c *Contract) PostAggregate(ctx contractapi.TransactionContextInterface, id string, round int, digest, scores string, flagged []string) (*AggregatePost, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	who, _, err := c.requirePhase(ctx, t, round, PhaseAggregate)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin && who.Role != "trainer" {
		return nil, fmt.Errorf("an org admin or trainer must post the aggregate")
	}
	if !slices.Contains(t.orgs(), who.MSPID) {
		return nil, fmt.Errorf("%s has no active participant in task %s", who.MSPID, id)
	}
	if err := ledgerutil.CheckDigest("digest", digest); err != nil {
		return nil, err
	}
	post := AggregatePost{MSPID: who.MSPID, Digest: digest, Scores: map[string]int64{}, Flagged: flagged, TxID: ctx.GetStub().GetTxID()}
	if err := ledgerutil.DecodeStrict([]byte(scores), "scores", &post.Scores); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, p := range t.active() {
		known[p.Key()] = true
	}
	for name, score := range post.Scores {
		if !known[name] || score < 0 {
			return nil, fmt.Errorf("score for %q: participants are %v and scores must not be negative", name, t.active())
		}
	}
	for _, f := range flagged {
		if !known[f] {
			return nil, fmt.Errorf("flagged %q is not an active participant", f)
		}
	}
	pk, err := ctx.GetStub().CreateCompositeKey(aggregateKeyType, []string{id, fmt.Sprintf("%06d", round), who.MSPID})
	if err != nil {
		return nil, err
	}
	var prior AggregatePost
	if found, err := ledgerutil.GetJSON(ctx, pk, &prior); err != nil || found {
		if err == nil {
			err = fmt.Errorf("%s already posted an aggregate for round %d", who.MSPID, round)
		}
		return nil, err
	}
	raw, err := ledgerutil.PutJSON(ctx, pk, post)
	if err != nil {
		return nil, err
	}
	return &post, ctx.GetStub().SetEvent("AggregatePosted", raw)
}

// Aggregates lists the posts of a round's participating orgs, by MSP ID.
func (c *Contract) Aggregates(ctx contractapi.TransactionContextInterface, id string, round int) ([]AggregatePost, error) {
	return c.aggregates(ctx, id, round)
}

// quorum is the digest a majority of participating orgs posted, with those posts.
func quorum(t *Task, posts []AggregatePost) (string, []AggregatePost) {
	counts := map[string]int{}
	for _, p := range posts {
		counts[p.Digest]++
	}
	for _, p := range posts { // posts are in MSP ID order, so the choice is deterministic
		if counts[p.Digest] >= len(t.orgs())/2+1 {
			agreeing := []AggregatePost{}
			for _, q := range posts {
				if q.Digest == p.Digest {
					agreeing = append(agreeing, q)
				}
			}
			return p.Digest, agreeing
		}
	}
	return "", nil
}

func (c *Contract) aggregates(ctx contractapi.TransactionContextInterface, id string, round int) ([]AggregatePost, error) {
	iter, err := ctx.GetStub().GetStateByPartialCompositeKey(aggregateKeyType, []string{id, fmt.Sprintf("%06d", round)})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	out := []AggregatePost{}
	for iter.HasNext() {
		kv, err := iter.Next()
		if err != nil {
			return nil, err
		}
		var p AggregatePost
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// finalize settles a round the quorum agreed on: participants flagged by a majority of
// the agreeing orgs, and those who committed but never revealed, lose their stake to the
// reward pool; the rest share the round's reward by their median score.
func (c *Contract) finalize(ctx contractapi.TransactionContextInterface, k string, t *Task, now time.Time, digest string, agreeing, posts []AggregatePost) (*RoundResult, error) {
	commitments, err := c.Commitments(ctx, t.ID, t.Round)
	if err != nil {
		return nil, err
	}
	result := &RoundResult{TaskID: t.ID, Round: t.Round, Status: "FINALIZED", AggregateDigest: digest,
		Agreeing: []string{}, Disagreeing: []string{}, Rewards: map[string]int64{}, Slashed: []string{}, TxID: ctx.GetStub().GetTxID()}
	for _, p := range posts {
		if p.Digest == digest {
			result.Agreeing = append(result.Agreeing, p.MSPID)
		} else {
			result.Disagreeing = append(result.Disagreeing, p.MSPID)
		}
	}
	revealed := map[string]bool{}
	for _, cm := range commitments {
		if cm.Revealed {
			revealed[cm.Participant.Key()] = true
		} else {
			result.Slashed = append(result.Slashed, cm.Participant.Key())
		}
	}
	for _, p := range t.active() {
		flags := 0
		for _, a := range agreeing {
			if slices.Contains(a.Flagged, p.Key()) {
				flags++
			}
		}
		if flags >= len(agreeing)/2+1 && !slices.Contains(result.Slashed, p.Key()) {
			result.Slashed = append(result.Slashed, p.Key())
		}
	}
	slices.Sort(result.Slashed)
	honest := []string{}
	var total int64
	scores := map[string]int64{}
	for _, p := range t.active() {
		if !revealed[p.Key()] || slices.Contains(result.Slashed, p.Key()) {
			continue
		}
		values := []int64{}
		for _, a := range agreeing {
			values = append(values, a.Scores[p.Key()])
		}
		slices.Sort(values)
		scores[p.Key()] = values[len(values)/2]
		total += scores[p.Key()]
		honest = append(honest, p.Key())
	}
	pool := t.RewardPerRound
	for _, key := range result.Slashed {
		i := slices.IndexFunc(t.Participants, func(p Participant) bool { return p.Key() == key })
		t.Participants[i].Slashed = true
		pool += t.Stake // the slashed stake joins this round's rewards
	}
	var paid int64
	deltas := map[string]int64{}
	for i, key := range honest {
		share := pool / int64(max(len(honest), 1))
		if total > 0 {
			share = pool * scores[key] / total
		}
		if i == len(honest)-1 {
			share = pool - paid // integer remainders go to the last, so nothing is lost
		}
		result.Rewards[key] = share
		paid += share
		msp, _, _ := strings.Cut(key, "/")
		deltas[msp] += share
	}
	// What is not paid (no honest participant) stays in escrow and returns to the creator.
	t.Escrow -= paid
	if err := c.endRound(ctx, k, t, now, result, deltas); err != nil {
		return nil, err
	}
	return result, nil
}

func (c *Contract) closeRound(ctx contractapi.TransactionContextInterface, k string, t *Task, now time.Time, reason string) error {
	result := &RoundResult{TaskID: t.ID, Round: t.Round, Status: "CLOSED", Reason: reason, Agreeing: []string{},
		Disagreeing: []string{}, Rewards: map[string]int64{}, Slashed: []string{}, TxID: ctx.GetStub().GetTxID()}
	return c.endRound(ctx, k, t, now, result, map[string]int64{})
}

// endRound records the result and starts the next round, or ends the task and returns
// the remaining stakes and unspent rewards. Token movements are summed per org and
// applied once each: a transaction does not read its own writes back.
func (c *Contract) endRound(ctx contractapi.TransactionContextInterface, k string, t *Task, now time.Time, result *RoundResult, deltas map[string]int64) error {
	rk, err := ctx.GetStub().CreateCompositeKey(roundKeyType, []string{t.ID, fmt.Sprintf("%06d", t.Round)})
	if err != nil {
		return err
	}
	raw, err := ledgerutil.PutJSON(ctx, rk, result)
	if err != nil {
		return err
	}
	if err := ctx.GetStub().SetEvent("Round"+capitalized(result.Status), raw); err != nil {
		return err
	}
	if t.Round < t.Rounds && len(t.active()) >= t.MinParticipants {
		t.Round++
		t.enterPhase(PhaseCommit, now)
	} else {
		t.Status, t.Phase, t.PhaseDeadline = StatusDone, "", ""
		for _, p := range t.active() {
			deltas[p.MSPID] += t.Stake
			t.Escrow -= t.Stake
		}
		deltas[t.Creator] += t.Escrow
		t.Escrow = 0
	}
	orgs := make([]string, 0, len(deltas))
	for msp := range deltas {
		orgs = append(orgs, msp)
	}
	slices.Sort(orgs)
	for _, msp := range orgs {
		if deltas[msp] == 0 {
			continue
		}
		if err := token.Move(ctx, msp, deltas[msp]); err != nil {
			return err
		}
	}
	_, err = ledgerutil.PutJSON(ctx, k, t)
	return err
}

func capitalized(status string) string {
	if status == "FINALIZED" {
		return "Finalized"
	}
	return "Closed"
}
