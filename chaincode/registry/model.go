// Package registry is the model registry: versions with their training provenance,
// multi-org approval under a deployment policy, revocation, lineage and history.
package registry

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// MaxRequestBytes bounds a registration: only hashes and small metadata go on-chain.
const MaxRequestBytes = 4096

const (
	StatusRegistered = "registered"
	StatusApproved   = "approved"
	StatusRevoked    = "revoked"
	StatusDeprecated = "deprecated"
)

// storageSchemes are where other members can fetch a version's files from; no local paths.
var storageSchemes = []string{"https", "ipfs", "s3"}

// Weights identifies the model's files the way OpenSSF model-signing does: a
// SHA-256 per file and a root digest over them in path order.
type Weights struct {
	Digest string `json:"digest"`
	Files  int    `json:"files"`
}

// DatasetFingerprint describes training data without revealing it.
type DatasetFingerprint struct {
	Name         string `json:"name"`
	Digest       string `json:"digest"`
	Rows         int64  `json:"rows"`
	SchemaDigest string `json:"schemaDigest"`
}

// CodeCommit is the source the training code came from.
type CodeCommit struct {
	Repository string `json:"repository"`
	Commit     string `json:"commit"`
	Dirty      bool   `json:"dirty"`
}

// RegistrationRequest is what a trainer submits; the full provenance manifest lives
// in the artifact store under ManifestDigest.
type RegistrationRequest struct {
	Name           string               `json:"name"`
	Version        string               `json:"version"`
	ManifestDigest string               `json:"manifestDigest"`
	Weights        Weights              `json:"weights"`
	Datasets       []DatasetFingerprint `json:"datasets"`
	Code           CodeCommit           `json:"code"`
	Parents        []string             `json:"parents"`
	Round          string               `json:"round"`
	TrainingOrgs   []string             `json:"trainingOrgs"`
	StorageURIs    []string             `json:"storageUris"`
	Metrics        map[string]float64   `json:"metrics"`
	// ConfidentialDigest is the SHA-256 of confidential provenance that the registering
	// org then stores with PutConfidential in its own private collection ("" if none).
	ConfidentialDigest string `json:"confidentialDigest" metadata:",optional"`
	// AggregateDigest is the digest of the federated round's agreed aggregate; a round
	// model (Round set) must declare the one the Federation contract finalized.
	AggregateDigest string `json:"aggregateDigest" metadata:",optional"`
}

// Actor is who did something, and when, in which transaction.
type Actor struct {
	MSPID   string `json:"mspId"`
	Subject string `json:"subject"`
	At      string `json:"at"`
	TxID    string `json:"txId"`
}

// StatusChange records a revocation or deprecation.
type StatusChange struct {
	Actor
	Reason string `json:"reason"`
}

// ModelVersion is the on-chain record of one registered version.
type ModelVersion struct {
	RegistrationRequest
	RegisteredBy Actor         `json:"registeredBy"`
	Status       string        `json:"status"`
	Approvals    []Actor       `json:"approvals"`
	ApprovedAt   string        `json:"approvedAt"`
	Revocation   *StatusChange `json:"revocation,omitempty" metadata:",optional"`
	Deprecation  *StatusChange `json:"deprecation,omitempty" metadata:",optional"`
	// PendingConfirmations are the training orgs, other than the registering one, that
	// have not yet confirmed they trained this version; it cannot be approved before.
	PendingConfirmations []string `json:"pendingConfirmations"`
	// Confirmations are those training orgs' confirmations.
	Confirmations []Actor `json:"confirmations"`
	// RevocationVotes are the member orgs' votes to revoke; a majority revokes.
	RevocationVotes []StatusChange `json:"revocationVotes"`
}

// normalize gives a record read from the ledger empty lists where older records have none.
func (m *ModelVersion) normalize() {
	for _, list := range []*[]string{&m.Parents, &m.PendingConfirmations} {
		if *list == nil {
			*list = []string{}
		}
	}
	if m.Datasets == nil {
		m.Datasets = []DatasetFingerprint{}
	}
	if m.Approvals == nil {
		m.Approvals = []Actor{}
	}
	if m.Confirmations == nil {
		m.Confirmations = []Actor{}
	}
	if m.RevocationVotes == nil {
		m.RevocationVotes = []StatusChange{}
	}
}

// confirmedTrainer: the registering org and every training org that confirmed.
func (m *ModelVersion) confirmedTrainer(msp string) bool {
	return slices.Contains(m.TrainingOrgs, msp) && !slices.Contains(m.PendingConfirmations, msp)
}

// Ref is "name@version".
func (m *ModelVersion) Ref() string { return m.Name + "@" + m.Version }

// SplitRef parses "name@version".
func SplitRef(ref string) (string, string, error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok || !ledgerutil.Matches(name, ledgerutil.ModelNamePattern) || !ledgerutil.Matches(version, ledgerutil.ModelVersionPattern) {
		return "", "", ledgerutil.Refuse(ledgerutil.Invalid,
			"model reference %q must be name@version (name: lowercase letters, digits, . _ -; version: letters, digits, . + _ -)", ref)
	}
	return name, version, nil
}

// validate checks every field it can without reading the ledger; every refusal is INVALID.
func (r *RegistrationRequest) validate() error {
	checks := []func() error{r.validateIdentity, r.validateDatasets, r.validateSource, r.validateLineage, r.validateMetadata}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (r *RegistrationRequest) validateIdentity() error {
	for _, c := range []struct{ field, value, pattern string }{
		{"name", r.Name, ledgerutil.ModelNamePattern},
		{"version", r.Version, ledgerutil.ModelVersionPattern},
		{"manifestDigest", r.ManifestDigest, ledgerutil.DigestPattern},
		{"weights.digest", r.Weights.Digest, ledgerutil.DigestPattern},
	} {
		if err := ledgerutil.Check(c.field, c.value, c.pattern); err != nil {
			return err
		}
	}
	if r.Weights.Files < 1 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "weights.files must be at least 1, got %d", r.Weights.Files)
	}
	if r.ConfidentialDigest != "" {
		return ledgerutil.CheckDigest("confidentialDigest", r.ConfidentialDigest)
	}
	return nil
}

func (r *RegistrationRequest) validateDatasets() error {
	if len(r.Datasets) > 16 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "at most 16 datasets, got %d", len(r.Datasets))
	}
	for i, d := range r.Datasets {
		for _, c := range []struct{ field, value, pattern string }{
			{"name", d.Name, ledgerutil.LedgerIDPattern},
			{"digest", d.Digest, ledgerutil.DigestPattern},
			{"schemaDigest", d.SchemaDigest, ledgerutil.DigestPattern},
		} {
			if err := ledgerutil.Check(fmt.Sprintf("datasets[%d].%s", i, c.field), c.value, c.pattern); err != nil {
				return err
			}
		}
		if d.Rows < 0 {
			return ledgerutil.Refuse(ledgerutil.Invalid, "datasets[%d].rows must not be negative", i)
		}
	}
	return nil
}

func (r *RegistrationRequest) validateSource() error {
	if len(r.Code.Commit) > 0 {
		if err := ledgerutil.Check("code.commit", r.Code.Commit, ledgerutil.CommitHashPattern); err != nil {
			return err
		}
	}
	if len(r.Code.Repository) > 256 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "code.repository is longer than 256 characters")
	}
	for _, u := range r.StorageURIs {
		parsed, err := url.Parse(u)
		if err != nil || !slices.Contains(storageSchemes, parsed.Scheme) || parsed.Host == "" {
			return ledgerutil.Refuse(ledgerutil.Invalid, "storage URI %q is invalid; allowed schemes: https://, ipfs://, s3:// (with a host)", u)
		}
	}
	return nil
}

func (r *RegistrationRequest) validateLineage() error {
	if len(r.Parents) > 8 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "at most 8 parents, got %d", len(r.Parents))
	}
	for _, p := range r.Parents {
		if _, _, err := SplitRef(p); err != nil {
			return ledgerutil.Context(err, "parent")
		}
		if p == r.Name+"@"+r.Version {
			return ledgerutil.Refuse(ledgerutil.Invalid, "a version cannot be its own parent")
		}
	}
	if r.Round != "" {
		if _, _, err := splitRoundRef(r.Round); err != nil {
			return err
		}
		if err := ledgerutil.CheckDigest("aggregateDigest", r.AggregateDigest); err != nil {
			return ledgerutil.Context(err, "a round model declares its round's aggregate")
		}
	} else if r.AggregateDigest != "" {
		return ledgerutil.Refuse(ledgerutil.Invalid, "aggregateDigest belongs to round models only; this registration names no round")
	}
	if len(r.TrainingOrgs) == 0 || len(r.TrainingOrgs) > 32 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "trainingOrgs must list 1 to 32 MSP IDs")
	}
	for i, org := range r.TrainingOrgs {
		if slices.Contains(r.TrainingOrgs[:i], org) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "trainingOrgs lists %s twice", org)
		}
	}
	return nil
}

func (r *RegistrationRequest) validateMetadata() error {
	if len(r.Metrics) > 32 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "at most 32 metrics, got %d", len(r.Metrics))
	}
	names := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		names = append(names, k)
	}
	slices.Sort(names) // the first bad name is the same on every endorser
	for _, k := range names {
		if err := ledgerutil.Check("metric name", k, ledgerutil.LedgerIDPattern); err != nil {
			return err
		}
	}
	return nil
}
