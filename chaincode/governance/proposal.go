package governance

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Proposal kinds: what a channel config update may do, one kind per proposal.
const (
	KindAddOrg          = "add-org"
	KindRemoveOrg       = "remove-org"
	KindPolicy          = "policy"
	KindConsenterAdd    = "consenter-add"
	KindConsenterRemove = "consenter-remove"
)

// Kinds lists every proposal kind.
var Kinds = []string{KindAddOrg, KindRemoveOrg, KindPolicy, KindConsenterAdd, KindConsenterRemove}

// Proposal states.
const (
	StatusOpen     = "open"     // collecting signatures
	StatusApplied  = "applied"  // every recorded outcome names the same config block
	StatusDisputed = "disputed" // members recorded different outcomes: look at the blocks
)

// Bounds on what a proposal may carry.
const (
	MaxUpdateBytes  = 512 * 1024
	MaxSummaryRunes = 1000
)

var (
	mspIDPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)
	configPathPattern  = regexp.MustCompile(`^/Channel(/[A-Za-z0-9._-]{1,249}){1,4}$`)
	consenterPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5}$`)
	fingerprintPattern = regexp.MustCompile(`^[A-Za-z0-9:-]{4,128}$`)
	uriPattern         = regexp.MustCompile(`^[ -~]{1,512}$`)
	// Tokens in a summary that name an org, a consenter or a config path.
	mspTokenPattern       = regexp.MustCompile(`\b[A-Za-z0-9][A-Za-z0-9-]*MSP\b`)
	consenterTokenPattern = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}\b`)
	pathTokenPattern      = regexp.MustCompile(`/Channel(/[A-Za-z0-9._-]+)*`)
)

// Bundle is a newcomer's public bundle as its sponsor saw it: the digest of the
// bundle file and the fingerprint read out of band with the newcomer.
type Bundle struct {
	Digest      string `json:"digest"`
	Fingerprint string `json:"fingerprint"`
	URI         string `json:"uri,omitempty" metadata:",optional"`
}

// ProposalRequest is what a member org's admin submits to Propose.
type ProposalRequest struct {
	Kind         string  `json:"kind"`
	Subject      string  `json:"subject"`      // MSP ID, config path or consenter host:port
	Summary      string  `json:"summary"`      // plain language; must name the subject
	ConfigUpdate string  `json:"configUpdate"` // base64 common.ConfigUpdate: what every signer signs
	Bundle       *Bundle `json:"bundle,omitempty" metadata:",optional"`
}

// validate checks the request's own fields and returns the decoded update bytes.
func (r *ProposalRequest) validate() ([]byte, error) {
	if !slices.Contains(Kinds, r.Kind) {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "kind %q is unknown; allowed: %s", r.Kind, strings.Join(Kinds, ", "))
	}
	if err := checkSubject(r.Kind, r.Subject); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(r.Summary); n == 0 || n > MaxSummaryRunes {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "summary must be 1 to %d characters, got %d", MaxSummaryRunes, n)
	}
	if err := checkSummary(r.Kind, r.Subject, r.Summary); err != nil {
		return nil, err
	}
	if err := r.checkBundle(); err != nil {
		return nil, err
	}
	if base64.StdEncoding.DecodedLen(len(r.ConfigUpdate)) > MaxUpdateBytes+3 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configUpdate is larger than %d bytes", MaxUpdateBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(r.ConfigUpdate)
	if err != nil || len(raw) == 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configUpdate must be the ConfigUpdate bytes in standard base64")
	}
	return raw, nil
}

func checkSubject(kind, subject string) error {
	switch kind {
	case KindAddOrg, KindRemoveOrg:
		if !mspIDPattern.MatchString(subject) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "subject of %s must be an MSP ID (letters, digits, '.', '-'; up to 64), got %q", kind, subject)
		}
	case KindPolicy:
		if !configPathPattern.MatchString(subject) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "subject of policy must be a config path like /Channel/Application/Admins, got %q", subject)
		}
	default:
		if !consenterPattern.MatchString(subject) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "subject of %s must be the consenter's host:port, got %q", kind, subject)
		}
	}
	return nil
}

// checkSummary refuses a summary that does not name the subject, or names another
// org, consenter or config path of the kind the proposal is about.
func checkSummary(kind, subject, summary string) error {
	if !strings.Contains(summary, subject) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "summary must name the proposal's subject %s", subject)
	}
	tokens := pathTokenPattern
	switch kind {
	case KindAddOrg, KindRemoveOrg:
		tokens = mspTokenPattern
	case KindConsenterAdd, KindConsenterRemove:
		tokens = consenterTokenPattern
	}
	for _, t := range tokens.FindAllString(summary, -1) {
		if t != subject {
			return ledgerutil.Refuse(ledgerutil.Invalid, "summary names %s, but this %s proposal is about %s only", t, kind, subject)
		}
	}
	return nil
}

func (r *ProposalRequest) checkBundle() error {
	if r.Kind != KindAddOrg {
		if r.Bundle != nil {
			return ledgerutil.Refuse(ledgerutil.Invalid, "only an add-org proposal sponsors a bundle")
		}
		return nil
	}
	if r.Bundle == nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "an add-org proposal must sponsor the newcomer's public bundle (digest and fingerprint)")
	}
	if err := ledgerutil.CheckDigest("bundle.digest", r.Bundle.Digest); err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "%v", err)
	}
	if !fingerprintPattern.MatchString(r.Bundle.Fingerprint) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "bundle.fingerprint must be 4 to 128 letters, digits, ':' or '-', got %q", r.Bundle.Fingerprint)
	}
	if r.Bundle.URI != "" && !uriPattern.MatchString(r.Bundle.URI) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "bundle.uri must be up to 512 printable ASCII characters")
	}
	return nil
}

// Signature is one org's ConfigSignature over the proposal's config update.
type Signature struct {
	MSPID           string `json:"mspId"`
	Subject         string `json:"subject"`         // common name of the admin who signed
	ConfigSignature string `json:"configSignature"` // base64 common.ConfigSignature, ready to assemble
	SignedAt        string `json:"signedAt"`
	TxID            string `json:"txId"`
}

// Outcome is one org's report of where the update was applied.
type Outcome struct {
	MSPID        string `json:"mspId"`
	Subject      string `json:"subject"`
	BlockNumber  uint64 `json:"blockNumber"`
	UpdateDigest string `json:"updateDigest"` // of the ConfigUpdate found in that config block
	RecordedAt   string `json:"recordedAt"`
	TxID         string `json:"txId"`
}

// OrgDefinition is what a reviewer needs about the MSP an add-org update defines.
type OrgDefinition struct {
	Groups             []string `json:"groups"` // config groups the org is added to
	MSPName            string   `json:"mspName"`
	RootCertDigests    []string `json:"rootCertDigests"`    // SHA-256 of each root CA certificate (PEM)
	TLSRootCertDigests []string `json:"tlsRootCertDigests"` // SHA-256 of each TLS root CA certificate (PEM)
	NodeOUs            bool     `json:"nodeOUs"`
}

// Proposal is a recorded channel config update and the signatures collected for it.
type Proposal struct {
	ID              string         `json:"id"`
	Kind            string         `json:"kind"`
	Subject         string         `json:"subject"`
	Summary         string         `json:"summary"`
	Channel         string         `json:"channel"`
	UpdateDigest    string         `json:"updateDigest"`                                // SHA-256 of the ConfigUpdate bytes
	ConfigUpdate    string         `json:"configUpdate,omitempty" metadata:",optional"` // base64; left out of listings
	Changes         []string       `json:"changes"`                                     // what the update changes, derived by the chaincode
	Consenters      []string       `json:"consenters,omitempty" metadata:",optional"`   // consenter set after a consenter-* update
	Org             *OrgDefinition `json:"org,omitempty" metadata:",optional"`          // the org an add-org update defines
	Bundle          *Bundle        `json:"bundle,omitempty" metadata:",optional"`
	Proposer        string         `json:"proposer"` // MSP ID of the proposing org
	ProposerSubject string         `json:"proposerSubject"`
	ProposedAt      string         `json:"proposedAt"`
	TxID            string         `json:"txId"`
	Status          string         `json:"status"`
	Signatures      []Signature    `json:"signatures"`
	Outcomes        []Outcome      `json:"outcomes"`
}
