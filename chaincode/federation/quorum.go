package federation

import (
	"encoding/json"
	"slices"
)

// An assessment counts only where a quorum of the round's organizations posted exactly
// the same one: the same aggregate digest, the same score for every update, the same
// flags and the same missing updates. Honest agents compute all of it with integer
// arithmetic from the same bytes, so they agree; an org that posts anything else, to
// raise its own participants' scores or lower another's, is simply not counted. So no
// score, flag or digest is ever set by one org: with two orgs agreeing it is what both
// posted, and a median (which one of two may drag to either end) is not needed.

// assessmentOf is the part of a post the quorum compares (encoding/json sorts the map).
func assessmentOf(p *AggregatePost) string {
	raw, _ := json.Marshal(struct {
		Digest  string           `json:"digest"`
		Scores  map[string]int64 `json:"scores"`
		Flagged []string         `json:"flagged"`
		Missing []string         `json:"missing"`
	}{p.Digest, p.Scores, p.Flagged, p.Missing})
	return string(raw)
}

// quorumSize is a majority of the round's organizations, and never fewer than two.
func quorumSize(orgs []string) int { return max(2, len(orgs)/2+1) }

// verdict is the quorum's assessment of a round (nil without one), with who agreed.
type verdict struct {
	agreed      *AggregatePost
	agreeing    []string
	disagreeing []string
}

// quorum finds the assessment a quorum of the round's orgs posted; at most one can have
// a majority, so late posts never change it. Posts are in MSP ID order.
func quorum(posts []AggregatePost, roundOrgs []string) verdict {
	counts := map[string]int{}
	for i := range posts {
		if slices.Contains(roundOrgs, posts[i].MSPID) {
			counts[assessmentOf(&posts[i])]++
		}
	}
	v := verdict{agreeing: []string{}, disagreeing: []string{}}
	for i := range posts {
		if v.agreed == nil && counts[assessmentOf(&posts[i])] >= quorumSize(roundOrgs) {
			v.agreed = &posts[i]
		}
	}
	for i := range posts {
		if v.agreed != nil && assessmentOf(&posts[i]) == assessmentOf(v.agreed) {
			v.agreeing = append(v.agreeing, posts[i].MSPID)
		} else {
			v.disagreeing = append(v.disagreeing, posts[i].MSPID)
		}
	}
	return v
}
