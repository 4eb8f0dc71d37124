// Package registry is the model registry: versions with their training provenance,
// multi-org approval under a deployment policy, revocation, lineage and history.
package registry

import (
	"fmt"
	"net/url"
	"regexp"
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

var (
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$`)
	keyPattern     = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	storageSchemes = []string{"https", "ipfs", "s3"} // where other members can fetch from; no local paths
)

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
}

// Ref is "name@version".
func (m *ModelVersion) Ref() string { return m.Name + "@" + m.Version }

// SplitRef parses "name@version".
func SplitRef(ref string) (string, string, error) {
	name, version, ok := strings.Cut(ref, "@")
	if !ok || !namePattern.MatchString(name) || !versionPattern.MatchString(version) {
		return "", "", fmt.Errorf("model reference %q must be name@version (name: lowercase letters, digits, . _ -; version: letters, digits, . + _ -)", ref)
	}
	return name, version, nil
}

// validate checks every field it can without reading the ledger.
func (r *RegistrationRequest) validate() error {
	if !namePattern.MatchString(r.Name) {
		return fmt.Errorf("name %q is invalid; allowed: 1-64 lowercase letters, digits, '.', '_', '-'", r.Name)
	}
	if !versionPattern.MatchString(r.Version) {
		return fmt.Errorf("version %q is invalid; allowed: 1-32 letters, digits, '.', '+', '_', '-'", r.Version)
	}
	if err := checkDigest("manifestDigest", r.ManifestDigest); err != nil {
		return err
	}
	if err := checkDigest("weights.digest", r.Weights.Digest); err != nil {
		return err
	}
	if r.Weights.Files < 1 {
		return fmt.Errorf("weights.files must be at least 1, got %d", r.Weights.Files)
	}
	if len(r.Datasets) > 16 {
		return fmt.Errorf("at most 16 datasets, got %d", len(r.Datasets))
	}
	for i, d := range r.Datasets {
		if !keyPattern.MatchString(d.Name) {
			return fmt.Errorf("datasets[%d].name %q is invalid; allowed: 1-64 letters, digits, '.', '_', '-'", i, d.Name)
		}
		if err := checkDigest(fmt.Sprintf("datasets[%d].digest", i), d.Digest); err != nil {
			return err
		}
		if err := checkDigest(fmt.Sprintf("datasets[%d].schemaDigest", i), d.SchemaDigest); err != nil {
			return err
		}
		if d.Rows < 0 {
			return fmt.Errorf("datasets[%d].rows must not be negative", i)
		}
	}
	if len(r.Code.Commit) > 0 && !regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`).MatchString(r.Code.Commit) {
		return fmt.Errorf("code.commit %q must be a 40 or 64 character hex commit id", r.Code.Commit)
	}
	if len(r.Code.Repository) > 256 {
		return fmt.Errorf("code.repository is longer than 256 characters")
	}
	if len(r.Parents) > 8 {
		return fmt.Errorf("at most 8 parents, got %d", len(r.Parents))
	}
	for _, p := range r.Parents {
		if _, _, err := SplitRef(p); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		if p == r.Name+"@"+r.Version {
			return fmt.Errorf("a version cannot be its own parent")
		}
	}
	if len(r.Round) > 128 {
		return fmt.Errorf("round reference is longer than 128 characters")
	}
	if len(r.TrainingOrgs) == 0 || len(r.TrainingOrgs) > 32 {
		return fmt.Errorf("trainingOrgs must list 1 to 32 MSP IDs")
	}
	for _, u := range r.StorageURIs {
		parsed, err := url.Parse(u)
		if err != nil || !slices.Contains(storageSchemes, parsed.Scheme) || parsed.Host == "" {
			return fmt.Errorf("storage URI %q is invalid; allowed schemes: https://, ipfs://, s3:// (with a host)", u)
		}
	}
	if r.ConfidentialDigest != "" {
		if err := checkDigest("confidentialDigest", r.ConfidentialDigest); err != nil {
			return err
		}
	}
	if len(r.Metrics) > 32 {
		return fmt.Errorf("at most 32 metrics, got %d", len(r.Metrics))
	}
	for k := range r.Metrics {
		if !keyPattern.MatchString(k) {
			return fmt.Errorf("metric name %q is invalid; allowed: 1-64 letters, digits, '.', '_', '-'", k)
		}
	}
	return nil
}

var checkDigest = ledgerutil.CheckDigest
