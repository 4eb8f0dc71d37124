package federation

import (
	"fmt"
	"maps"
	"math/big"
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
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s", id, t.Status)
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
			return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d participants committed and the phase ends at %s", len(commitments), len(t.active()), t.PhaseDeadline)
		}
		if len(commitments) < t.MinParticipants {
			return t, c.closeRound(ctx, k, t, now, fmt.Sprintf("only %d of the %d required participants committed before %s", len(commitments), t.MinParticipants, t.PhaseDeadline))
		}
		t.enterPhase(PhaseReveal, now)
	case PhaseReveal:
		if revealed < len(commitments) && !t.pastDeadline(now) {
			return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d commitments revealed and the phase ends at %s", revealed, len(commitments), t.PhaseDeadline)
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
			return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d organizations posted an aggregate, no quorum yet, and the aggregate phase ends at %s", len(posts), len(t.orgs()), t.PhaseDeadline)
		}
		return t, c.closeRound(ctx, k, t, now, "no quorum of organizations posted the same aggregate before the deadline")
	}
	return t, c.save(ctx, k, t, "PhaseChanged")
}

// PostAggregate records the caller org's aggregate digest, scores and flags under its own
// key, so posts from several orgs at once never conflict; Advance finalizes the round once
// a majority of participating orgs posted the same digest. Posting the same digest, scores
// and flags again returns the post unchanged (no second event), in any phase; another post
// by the same org for a round is a CONFLICT: the quorum counts one post per org.
func (c *Contract) PostAggregate(ctx contractapi.TransactionContextInterface, id string, round int, digest, scores string, flagged []string) (*AggregatePost, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin && who.Role != "trainer" {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "an org admin or trainer must post the aggregate")
	}
	if err := ledgerutil.CheckDigest("digest", digest); err != nil {
		return nil, err
	}
	post := AggregatePost{MSPID: who.MSPID, Digest: digest, Scores: map[string]int64{}, Flagged: flagged, TxID: ctx.GetStub().GetTxID()}
	if err := ledgerutil.DecodeStrict([]byte(scores), "scores", &post.Scores); err != nil {
		return nil, err
	}
	pk, err := ledgerutil.Key(ctx, aggregateKeyType, id, fmt.Sprintf("%06d", round), who.MSPID)
	if err != nil {
		return nil, err
	}
	var prior AggregatePost
	if found, err := ledgerutil.GetJSON(ctx, pk, &prior); err != nil || found {
		if err == nil && !samePost(&prior, &post) {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "%s already posted an aggregate for round %d (%s, transaction %s)", who.MSPID, round, prior.Digest, prior.TxID)
		}
		if err == nil {
			return &prior, nil
		}
		return nil, err
	}
	if !slices.Contains(t.orgs(), who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s has no active participant in task %s", who.MSPID, id)
	}
	if err := checkPhase(ctx, t, round, PhaseAggregate); err != nil {
		return nil, err
	}
	if err := checkAssessment(t, post.Scores, flagged); err != nil {
		return nil, err
	}
	raw, err := ledgerutil.PutJSON(ctx, pk, post)
	if err != nil {
		return nil, err
	}
	return &post, ctx.GetStub().SetEvent("AggregatePosted", raw)
}

// samePost: the same digest, scores and set of flagged participants.
func samePost(a, b *AggregatePost) bool {
	fa, fb := slices.Clone(a.Flagged), slices.Clone(b.Flagged)
	slices.Sort(fa)
	slices.Sort(fb)
	return a.Digest == b.Digest && maps.Equal(a.Scores, b.Scores) && slices.Equal(fa, fb)
}

// checkAssessment: scores (0 to MaxScore) and flags name active participants only.
func checkAssessment(t *Task, scores map[string]int64, flagged []string) error {
	known := map[string]bool{}
	for _, p := range t.active() {
		known[p.Key()] = true
	}
	names := make([]string, 0, len(scores))
	for name := range scores {
		names = append(names, name)
	}
	slices.Sort(names) // the first bad score is the same on every endorser
	for _, name := range names {
		if score := scores[name]; !known[name] || score < 0 || score > MaxScore {
			return ledgerutil.Refuse(ledgerutil.Invalid, "score %d for %q: participants are %v and scores must be 0 to %d", score, name, t.active(), MaxScore)
		}
	}
	for _, f := range flagged {
		if !known[f] {
			return ledgerutil.Refuse(ledgerutil.Invalid, "flagged %q is not an active participant", f)
		}
	}
	return nil
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
		return nil, ledgerutil.Context(err, "listing aggregates")
	}
	defer iter.Close()
	out := []AggregatePost{}
	for iter.HasNext() {
		kv, err := iter.Next()
		if err != nil {
			return nil, ledgerutil.Context(err, "listing aggregates")
		}
		var p AggregatePost
		if err := ledgerutil.DecodeRecord(kv.Key, kv.Value, &p); err != nil {
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
			share = mulDiv(pool, scores[key], total)
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
	rk, err := ledgerutil.Key(ctx, roundKeyType, t.ID, fmt.Sprintf("%06d", t.Round))
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
			return ledgerutil.Context(err, "settling round "+fmt.Sprint(t.Round))
		}
	}
	_, err = ledgerutil.PutJSON(ctx, k, t)
	return err
}

// mulDiv is a*b/c without overflowing the product (a, b >= 0, c > 0, result <= a).
func mulDiv(a, b, c int64) int64 {
	r := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	return r.Quo(r, big.NewInt(c)).Int64()
}

func capitalized(status string) string {
	if status == "FINALIZED" {
		return "Finalized"
	}
	return "Closed"
}
