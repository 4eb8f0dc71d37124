package registry

import (
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Deployability says whether a version may serve, and why.
type Deployability struct {
	Ref            string `json:"ref"`
	Status         string `json:"status"`
	Deployable     bool   `json:"deployable"`
	Approvals      int    `json:"approvals"`
	Required       int    `json:"required"`
	Rule           string `json:"rule"`
	WeightsDigest  string `json:"weightsDigest"`
	ManifestDigest string `json:"manifestDigest"`
	// SuspendedBy are the orgs that suspended their own use of the version.
	SuspendedBy []string `json:"suspendedBy"`
}

// Page is one page of a listing; pass Bookmark back to get the next page.
type Page struct {
	Models   []*ModelVersion `json:"models"`
	Bookmark string          `json:"bookmark"`
}

// HistoryEntry is one committed change of a version's record.
type HistoryEntry struct {
	TxID      string        `json:"txId"`
	Timestamp string        `json:"timestamp"`
	Record    *ModelVersion `json:"record"`
}

// LineageEdge links a version to one of its parents.
type LineageEdge struct {
	Child  string `json:"child"`
	Parent string `json:"parent"`
}

// Lineage is the ancestry of a version: every ancestor, the edges between them, the
// datasets they were trained on and the federated rounds that produced them.
type Lineage struct {
	Root     string                          `json:"root"`
	Versions []*ModelVersion                 `json:"versions"`
	Edges    []LineageEdge                   `json:"edges"`
	Datasets map[string][]DatasetFingerprint `json:"datasets"`
	Rounds   map[string]string               `json:"rounds"`
}

// Get returns one version by name@version.
func (c *Contract) Get(ctx contractapi.TransactionContextInterface, ref string) (*ModelVersion, error) {
	m, _, err := c.load(ctx, ref)
	return m, err
}

// Deployable reports whether a version is approved under its policy and not withdrawn.
func (c *Contract) Deployable(ctx contractapi.TransactionContextInterface, ref string) (*Deployability, error) {
	m, _, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	need, _, err := requiredApprovals(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	p, err := policyFor(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	suspended, err := suspendedOrgs(ctx, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	return &Deployability{
		Ref: ref, Status: m.Status, Approvals: len(m.Approvals), Required: need, Rule: p.Rule,
		Deployable: m.Status == StatusApproved, WeightsDigest: m.Weights.Digest, ManifestDigest: m.ManifestDigest,
		SuspendedBy: suspended,
	}, nil
}

// List returns up to pageSize versions (of one model name, or all when name is ""),
// ordered by name and version; run it as an evaluation, not a submitted transaction.
func (c *Contract) List(ctx contractapi.TransactionContextInterface, name string, pageSize int, bookmark string) (*Page, error) {
	if pageSize < 1 || pageSize > 200 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "page size must be 1 to 200, got %d", pageSize)
	}
	attrs := []string{}
	if name != "" {
		if err := ledgerutil.Check("model name", name, ledgerutil.ModelNamePattern); err != nil {
			return nil, err
		}
		attrs = []string{name}
	}
	iter, meta, err := ctx.GetStub().GetStateByPartialCompositeKeyWithPagination(modelKeyType, attrs, int32(pageSize), bookmark)
	if err != nil {
		return nil, ledgerutil.Context(err, "listing models")
	}
	models, err := ledgerutil.DecodeAll[*ModelVersion](iter, "listing models")
	if err != nil {
		return nil, err
	}
	return &Page{Models: models, Bookmark: meta.GetBookmark()}, nil
}

// History returns every committed change of a version's record, oldest first.
func (c *Contract) History(ctx contractapi.TransactionContextInterface, ref string) ([]*HistoryEntry, error) {
	_, key, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	iter, err := ctx.GetStub().GetHistoryForKey(key)
	if err != nil {
		return nil, ledgerutil.Context(err, "reading the history of "+ref)
	}
	defer iter.Close()
	entries := []*HistoryEntry{}
	for iter.HasNext() {
		mod, err := iter.Next()
		if err != nil {
			return nil, ledgerutil.Context(err, "reading the history of "+ref)
		}
		var m ModelVersion
		if err := ledgerutil.DecodeRecord(ref+" at "+mod.TxId, mod.Value, &m); err != nil {
			return nil, err
		}
		entries = append(entries, &HistoryEntry{
			TxID: mod.TxId, Timestamp: mod.Timestamp.AsTime().UTC().Format(time.RFC3339Nano), Record: &m,
		})
	}
	// The history database returns newest first.
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	return entries, nil
}

// Lineage walks a version's parents breadth first, up to 512 versions.
func (c *Contract) Lineage(ctx contractapi.TransactionContextInterface, ref string) (*Lineage, error) {
	root, _, err := c.load(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &Lineage{Root: ref, Versions: []*ModelVersion{}, Edges: []LineageEdge{},
		Datasets: map[string][]DatasetFingerprint{}, Rounds: map[string]string{}}
	seen := map[string]bool{ref: true}
	queue := []*ModelVersion{root}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		out.Versions = append(out.Versions, m)
		out.Datasets[m.Ref()] = m.Datasets
		if m.Round != "" {
			out.Rounds[m.Ref()] = m.Round
		}
		for _, p := range m.Parents {
			out.Edges = append(out.Edges, LineageEdge{Child: m.Ref(), Parent: p})
			if seen[p] {
				continue
			}
			if len(seen) >= maxLineageNodes {
				return nil, ledgerutil.Refuse(ledgerutil.Exhausted, "lineage of %s has more than %d versions", ref, maxLineageNodes)
			}
			seen[p] = true
			parent, _, err := c.load(ctx, p)
			if err != nil {
				return nil, ledgerutil.Context(err, "lineage of "+ref)
			}
			queue = append(queue, parent)
		}
	}
	return out, nil
}
