package governance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer/etcdraft"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Where the consenter set lives: Raft in ConsensusType's metadata, BFT in Orderers.
const (
	consensusTypePath = ordererPath + "/ConsensusType"
	orderersPath      = ordererPath + "/Orderers"
)

// checkConsenters: the delta changes only the consenter set, which after the update
// holds the subject (consenter-add) or not (consenter-remove), without duplicates.
// The chaincode sees the new set only; each signer compares it with its own copy of
// the current config before signing.
func checkConsenters(kind, subject string, d *decodedUpdate) ([]string, error) {
	if len(d.delta) != 1 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "a %s proposal changes only the consenter set; this update changes %d elements: %s",
			kind, len(d.delta), strings.Join(d.changes(), "; "))
	}
	e := d.delta[0]
	if e.kind != kindValue || d.isNew(e) || (e.path != consensusTypePath && e.path != orderersPath) {
		return nil, unexpected(kind, subject, d, e)
	}
	if e.modPolicy != defaultModPolicy {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update sets the mod_policy of %s to %q", e.path, e.modPolicy)
	}
	var set []string
	var err error
	if e.path == consensusTypePath {
		set, err = raftConsenters(e.value)
	} else {
		set, err = bftConsenters(e.value)
	}
	if err != nil {
		return nil, err
	}
	for i, c := range set {
		if slices.Contains(set[i+1:], c) {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the consenter set lists %s twice", c)
		}
	}
	has := slices.Contains(set, subject)
	if kind == KindConsenterAdd && !has {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update's consenter set [%s] does not include %s", strings.Join(set, ", "), subject)
	}
	if kind == KindConsenterRemove && has {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update's consenter set still includes %s", subject)
	}
	if len(set) == 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the update leaves the channel without consenters")
	}
	return set, nil
}

func raftConsenters(v *common.ConfigValue) ([]string, error) {
	var ct orderer.ConsensusType
	if err := proto.Unmarshal(v.Value, &ct); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "ConsensusType is corrupt: %v", err)
	}
	if ct.Type != "etcdraft" || ct.State != orderer.ConsensusType_STATE_NORMAL {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "ConsensusType must stay etcdraft in normal state, got %q in %s: a consensus migration is not a consenter change", ct.Type, ct.State)
	}
	var meta etcdraft.ConfigMetadata
	if err := proto.Unmarshal(ct.Metadata, &meta); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "Raft metadata is corrupt: %v", err)
	}
	set := make([]string, len(meta.Consenters))
	for i, c := range meta.Consenters {
		if len(c.ClientTlsCert) == 0 || len(c.ServerTlsCert) == 0 {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "consenter %s:%d has no TLS certificates", c.Host, c.Port)
		}
		set[i] = fmt.Sprintf("%s:%d", c.Host, c.Port)
	}
	return set, nil
}

func bftConsenters(v *common.ConfigValue) ([]string, error) {
	var o common.Orderers
	if err := proto.Unmarshal(v.Value, &o); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "Orderers is corrupt: %v", err)
	}
	set := make([]string, len(o.ConsenterMapping))
	for i, c := range o.ConsenterMapping {
		if len(c.Identity) == 0 || len(c.ClientTlsCert) == 0 || len(c.ServerTlsCert) == 0 {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "consenter %s:%d lacks its identity or TLS certificates", c.Host, c.Port)
		}
		set[i] = fmt.Sprintf("%s:%d", c.Host, c.Port)
	}
	return set, nil
}
