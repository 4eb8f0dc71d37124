package governance

import (
	"slices"
	"strings"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Where membership lives in a channel config.
const (
	applicationPath = "/Channel/Application"
	ordererPath     = "/Channel/Orderer"
	// Fabric's configtxgen gives every group the relative mod_policy "Admins".
	defaultModPolicy = "Admins"
)

// findings is what the chaincode derived from an update, for the proposal record.
type findings struct {
	consenters []string
	org        *OrgDefinition
}

// checkKind refuses an update whose delta does something other than the proposal's
// kind and subject say. members are the consortium's recorded member MSP IDs.
func checkKind(kind, subject string, d *decodedUpdate, members []string) (findings, error) {
	switch kind {
	case KindAddOrg:
		org, err := checkAddOrg(subject, d, members)
		return findings{org: org}, err
	case KindRemoveOrg:
		return findings{}, checkRemoveOrg(subject, d, members)
	case KindPolicy:
		return findings{}, checkPolicy(subject, d)
	default:
		consenters, err := checkConsenters(kind, subject, d)
		return findings{consenters: consenters}, err
	}
}

// checkAddOrg: the delta adds group <subject> under Application (and optionally under
// Orderer), bumps those parents, keeps every recorded member, and nothing else.
func checkAddOrg(subject string, d *decodedUpdate, members []string) (*OrgDefinition, error) {
	if slices.Contains(members, subject) {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s is already a member of the consortium", subject)
	}
	added := []string{}
	for _, e := range d.delta {
		switch {
		case d.insideNewGroup(e):
			continue
		case e.kind == kindGroup && d.isNew(e) && e.name() == subject && (e.parent() == applicationPath || e.parent() == ordererPath):
			added = append(added, e.path)
		case e.kind == kindGroup && (e.path == applicationPath || e.path == ordererPath):
			if err := checkMembershipGroup(e, members, ""); err != nil {
				return nil, err
			}
		default:
			return nil, unexpected(KindAddOrg, subject, d, e)
		}
	}
	appGroup := applicationPath + "/" + subject
	if !slices.Contains(added, appGroup) {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update does not add group %s; it changes: %s", appGroup, strings.Join(d.changes(), "; "))
	}
	for _, path := range added {
		if _, ok := d.write[kindGroup+" "+d.parentOf(path)]; !ok || d.isNew(d.write[kindGroup+" "+d.parentOf(path)]) {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update adds %s without the existing group %s", path, d.parentOf(path))
		}
	}
	return checkOrgDefinition(subject, d, added)
}

func (d *decodedUpdate) parentOf(path string) string { return path[:strings.LastIndex(path, "/")] }

// checkRemoveOrg: the delta only rewrites the member lists of Application (and
// optionally Orderer) without the subject, keeping every other recorded member.
func checkRemoveOrg(subject string, d *decodedUpdate, members []string) error {
	if !slices.Contains(members, subject) {
		return ledgerutil.Refuse(ledgerutil.NotFound, "%s is not a recorded member of the consortium", subject)
	}
	touchedApplication := false
	for _, e := range d.delta {
		if e.kind != kindGroup || d.isNew(e) || (e.path != applicationPath && e.path != ordererPath) {
			return unexpected(KindRemoveOrg, subject, d, e)
		}
		if err := checkMembershipGroup(e, members, subject); err != nil {
			return err
		}
		touchedApplication = touchedApplication || e.path == applicationPath
	}
	if !touchedApplication {
		return ledgerutil.Refuse(ledgerutil.Invalid, "removing %s must rewrite the member list of %s", subject, applicationPath)
	}
	return nil
}

// checkMembershipGroup checks a bumped Application or Orderer group: its mod_policy
// stays the default, removed (if set) is gone, and no other recorded member is dropped.
func checkMembershipGroup(e element, members []string, removed string) error {
	if e.modPolicy != defaultModPolicy {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the update sets the mod_policy of %s to %q; a membership proposal may not change who may modify the group", e.path, e.modPolicy)
	}
	if err := checkKeepsRequired(e); err != nil {
		return err
	}
	children := childGroups(e)
	if removed != "" && slices.Contains(children, removed) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the update keeps %s in %s", removed, e.path)
	}
	if e.path != applicationPath {
		return nil
	}
	for _, m := range members {
		if m != removed && !slices.Contains(children, m) {
			return ledgerutil.Refuse(ledgerutil.Invalid, "the update also removes member %s from %s", m, e.path)
		}
	}
	return nil
}

// requiredElements are the policies and values Fabric needs in each membership group.
// A rewritten group drops whatever its write set leaves out, so these must all be there.
var requiredElements = map[string]struct{ policies, values []string }{
	applicationPath: {policies: []string{"Admins", "Endorsement", "LifecycleEndorsement", "Readers", "Writers"}, values: []string{"Capabilities"}},
	ordererPath:     {policies: []string{"Admins", "BlockValidation", "Readers", "Writers"}, values: []string{"BatchSize", "BatchTimeout", "Capabilities", "ConsensusType"}},
}

func checkKeepsRequired(e element) error {
	req := requiredElements[e.path]
	for _, name := range req.policies {
		if _, ok := e.group.Policies[name]; !ok {
			return ledgerutil.Refuse(ledgerutil.Invalid, "the update rewrites %s without its policy %s (it would be deleted)", e.path, name)
		}
	}
	for _, name := range req.values {
		if _, ok := e.group.Values[name]; !ok {
			return ledgerutil.Refuse(ledgerutil.Invalid, "the update rewrites %s without its value %s (it would be deleted)", e.path, name)
		}
	}
	return nil
}

// checkPolicy: the delta changes exactly one existing policy or value, at subject.
func checkPolicy(subject string, d *decodedUpdate) error {
	if len(d.delta) != 1 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "a policy proposal changes exactly one element; this update changes %d: %s", len(d.delta), strings.Join(d.changes(), "; "))
	}
	e := d.delta[0]
	if e.kind == kindGroup || d.isNew(e) || e.path != subject {
		return unexpected(KindPolicy, subject, d, e)
	}
	if e.path == consensusTypePath || e.path == orderersPath {
		return ledgerutil.Refuse(ledgerutil.Invalid, "%s holds the consenters: propose consenter-add or consenter-remove", e.path)
	}
	if e.modPolicy == "" {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the update leaves %s without a mod_policy", e.path)
	}
	return nil
}

func unexpected(kind, subject string, d *decodedUpdate, e element) error {
	return ledgerutil.Refuse(ledgerutil.Invalid, "a %s proposal for %s may not change %s %s; the update changes: %s",
		kind, subject, e.kind, e.path, strings.Join(d.changes(), "; "))
}
