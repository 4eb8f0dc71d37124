package federation

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// PostAggregate records the caller org's assessment of a round under its own key: the
// digest of the new global model it computed, a score (0 to MaxScore) for every usable
// update, the participants it flags and those whose update it could not get. It reads
// no other org's post, so the posts of a round never conflict; the round is decided
// once a quorum of orgs posted the same assessment (see Settle). Posting the same again
// returns the post unchanged (no second event), in any phase; another post by the same
// org for a round is a CONFLICT: the quorum counts one post per org.
func (c *Contract) PostAggregate(ctx contractapi.TransactionContextInterface, id string, round int, digest, scores string, flagged, missing []string) (*AggregatePost, error) {
	t, _, now, err := c.loadNow(ctx, id)
	if err != nil {
		return nil, err
	}
	post, err := newPost(ctx, id, round, digest, scores, flagged, missing)
	if err != nil {
		return nil, err
	}
	post.PostedAt = stamp(now)
	pk, err := postKey(ctx, id, round, post.MSPID)
	if err != nil {
		return nil, err
	}
	var prior AggregatePost
	if found, err := ledgerutil.GetJSON(ctx, pk, &prior); err != nil || found {
		if err == nil && !samePost(&prior, post) {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "%s already posted an assessment of round %d (%s, transaction %s)", post.MSPID, round, prior.Digest, prior.TxID)
		}
		if err == nil {
			return &prior, nil
		}
		return nil, err
	}
	if err := c.postable(ctx, t, post, now); err != nil {
		return nil, err
	}
	return post, ledgerutil.PutJSONWithEvent(ctx, pk, post, "AggregatePosted")
}

// newPost checks the caller and the arguments' form, and builds the post.
func newPost(ctx contractapi.TransactionContextInterface, id string, round int, digest, scores string, flagged, missing []string) (*AggregatePost, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin && who.Role != "trainer" {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "an org admin or trainer must post the assessment")
	}
	if err := ledgerutil.CheckDigest("digest", digest); err != nil {
		return nil, err
	}
	post := &AggregatePost{TaskID: id, Round: round, MSPID: who.MSPID, Digest: digest, Scores: map[string]int64{},
		Flagged: sortedSet(flagged), Missing: sortedSet(missing), TxID: ctx.GetStub().GetTxID()}
	if err := ledgerutil.DecodeStrict([]byte(scores), "scores", &post.Scores); err != nil {
		return nil, err
	}
	if len(post.Flagged) != len(flagged) || len(post.Missing) != len(missing) {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "flagged %v and missing %v must not name anyone twice", flagged, missing)
	}
	return post, nil
}

// postable: the round's commitments are closed, its aggregate window open, the caller's
// org takes part in it, and the assessment is about its updates.
func (c *Contract) postable(ctx contractapi.TransactionContextInterface, t *Task, post *AggregatePost, now time.Time) error {
	v, err := c.runningView(ctx, t, post.Round, "the participants of the next round are known only then")
	if err != nil {
		return err
	}
	if !slices.Contains(orgs(v.active), post.MSPID) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s has no participant in round %d of task %s", post.MSPID, post.Round, t.ID)
	}
	if err := openForPosts(t, v, now); err != nil {
		return err
	}
	if len(post.Missing) > 0 && !t.passed(now, v.times.Reveal) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "an update may be reported missing only once the reveal window that ends at %s has run its full length", stamp(v.times.Reveal))
	}
	if err := checkAssessment(v, post); err != nil {
		return err
	}
	rk, err := roundKey(ctx, t.ID, post.Round)
	if err != nil {
		return err
	}
	return absent(ctx, rk, fmt.Sprintf("round %d of task %s is settled", post.Round, t.ID))
}

// runningView is a round of a running task whose predecessor is settled.
func (c *Contract) runningView(ctx contractapi.TransactionContextInterface, t *Task, round int, why string) (*roundView, error) {
	if t.Status != StatusRunning {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s", t.ID, t.Status)
	}
	if round < 1 || round > t.Rounds {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "round must be 1 to %d, got %d", t.Rounds, round)
	}
	ms, err := members(ctx, t)
	if err != nil {
		return nil, err
	}
	return settledView(ctx, t, ms, round, why)
}

// openForPosts: the commitments closed with enough of them, and the aggregate window is open.
func openForPosts(t *Task, v *roundView, now time.Time) error {
	if !v.closed(t, now) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d participants committed to round %d and its commitments are open until %s",
			len(v.commits), len(v.active), v.round, stamp(v.times.Commit))
	}
	if n := len(v.commits); n < t.MinParticipants {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "only %d of the %d required participants committed to round %d: it closes without an aggregate; call Settle",
			n, t.MinParticipants, v.round)
	}
	if now.After(v.times.Aggregate) {
		return ledgerutil.Refuse(ledgerutil.WrongPhase, "the aggregate phase of round %d ended at %s", v.round, stamp(v.times.Aggregate))
	}
	return nil
}

// checkAssessment: a score (0 to MaxScore) for exactly the usable updates (committed and
// not missing), and flags and missing updates naming the round's committers only.
func checkAssessment(v *roundView, post *AggregatePost) error {
	committed := slices.Sorted(maps.Keys(v.commits))
	for _, name := range slices.Concat(post.Missing, post.Flagged) {
		if !slices.Contains(committed, name) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "%q is not a participant that committed to round %d (they are %v)", name, v.round, committed)
		}
	}
	usable := slices.DeleteFunc(slices.Clone(committed), func(k string) bool { return slices.Contains(post.Missing, k) })
	if got := slices.Sorted(maps.Keys(post.Scores)); !slices.Equal(got, usable) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "scores must name exactly the usable updates %v (committed, not missing), got %v", usable, got)
	}
	for _, name := range usable {
		if s := post.Scores[name]; s < 0 || s > MaxScore {
			return ledgerutil.Refuse(ledgerutil.Invalid, "score %d for %q: scores must be 0 to %d", s, name, MaxScore)
		}
	}
	return nil
}

// samePost: the same digest, scores, flags and missing updates.
func samePost(a, b *AggregatePost) bool {
	return a.Digest == b.Digest && maps.Equal(a.Scores, b.Scores) && slices.Equal(a.Flagged, b.Flagged) && slices.Equal(a.Missing, b.Missing)
}

// sortedSet sorts a list and drops repeats (an empty list for none).
func sortedSet(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(append([]string{}, out...))
}
