package federation

import (
	"math/big"
	"slices"
)

// shares splits a round's pool among the rewarded participants, organization first, so
// that an org's share does not grow with the number of identities it enrolls: each org
// is weighted by the mean score of its rewarded participants, and its share is split
// evenly among them. Every share is >= 0 and they add up to the pool exactly (integer
// remainders go to the last org and the last participant, in MSP ID and joining order).
func shares(pool int64, rewarded []Participant, scores map[string]int64) map[string]int64 {
	byOrg := map[string][]string{}
	for _, p := range rewarded {
		byOrg[p.MSPID] = append(byOrg[p.MSPID], p.Key())
	}
	names := orgs(rewarded)
	weight := map[string]int64{}
	var total int64 // at most 256 x MaxScore
	for _, msp := range names {
		var sum int64
		for _, k := range byOrg[msp] {
			sum += scores[k]
		}
		weight[msp] = sum / int64(len(byOrg[msp]))
		total += weight[msp]
	}
	out := map[string]int64{}
	var paid int64
	for i, msp := range names {
		share := pool / int64(len(names))
		if total > 0 {
			share = mulDiv(pool, weight[msp], total)
		}
		if i == len(names)-1 {
			share = pool - paid
		}
		paid += share
		split(out, byOrg[msp], share)
	}
	return out
}

// split divides an org's share evenly among its participants, the remainder to the last.
func split(out map[string]int64, keys []string, share int64) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	each := share / int64(len(keys))
	for i, k := range keys {
		out[k] = each
		if i == len(keys)-1 {
			out[k] = share - each*int64(len(keys)-1)
		}
	}
}

// mulDiv is a*b/c without overflowing the product (a, b >= 0, c > 0, b <= c: result <= a).
func mulDiv(a, b, c int64) int64 {
	r := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	return r.Quo(r, big.NewInt(c)).Int64()
}
