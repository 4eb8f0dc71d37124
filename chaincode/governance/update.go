package governance

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Element kinds, as Fabric's config map names them.
const (
	kindGroup  = "group"
	kindValue  = "value"
	kindPolicy = "policy"
)

// rootGroup is the name Fabric gives the channel's root config group.
const rootGroup = "Channel"

// configIDPattern is Fabric's rule for a config element's name (configtx.validateConfigID).
var configIDPattern = regexp.MustCompile(`^[a-zA-Z0-9.\-_]{1,249}$`)

// element is one group, value or policy of a config tree, addressed by its path.
type element struct {
	kind      string
	path      string // e.g. /Channel/Application/Org4MSP
	version   uint64
	modPolicy string
	group     *common.ConfigGroup
	value     *common.ConfigValue
	policy    *common.ConfigPolicy
}

func (e element) key() string { return e.kind + " " + e.path }

// parent is the path of the group that holds the element.
func (e element) parent() string { return e.path[:strings.LastIndex(e.path, "/")] }

// name is the element's own key inside its parent group.
func (e element) name() string { return e.path[strings.LastIndex(e.path, "/")+1:] }

// decodedUpdate is a ConfigUpdate with its read and write sets flattened, and the
// delta Fabric's orderer will authorize: write-set elements that are new or whose
// version differs from the read set (configtx.computeDeltaSet).
type decodedUpdate struct {
	channel string
	read    map[string]element
	write   map[string]element
	delta   []element // ordered by key, so every endorser sees the same order
}

// decodeUpdate parses ConfigUpdate bytes; protobuf decoding is deterministic.
func decodeUpdate(raw []byte) (*decodedUpdate, error) {
	var u common.ConfigUpdate
	if err := proto.Unmarshal(raw, &u); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configUpdate is not a common.ConfigUpdate: %v", err)
	}
	if u.WriteSet == nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configUpdate has no write set")
	}
	read, err := flatten(u.ReadSet)
	if err != nil {
		return nil, ledgerutil.Context(err, "read set")
	}
	write, err := flatten(u.WriteSet)
	if err != nil {
		return nil, ledgerutil.Context(err, "write set")
	}
	d := &decodedUpdate{channel: u.ChannelId, read: read, write: write}
	for _, k := range sortedKeys(write) {
		w := write[k]
		if r, ok := read[k]; ok && r.version == w.version {
			continue
		}
		d.delta = append(d.delta, w)
	}
	if len(d.delta) == 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configUpdate changes nothing (its delta set is empty)")
	}
	return d, nil
}

// flatten maps every element of a config tree by kind and path, as configtx.mapConfig does.
func flatten(root *common.ConfigGroup) (map[string]element, error) {
	out := map[string]element{}
	if root == nil {
		return out, nil
	}
	return out, walk(out, "/"+rootGroup, root)
}

func walk(out map[string]element, path string, g *common.ConfigGroup) error {
	out[kindGroup+" "+path] = element{kind: kindGroup, path: path, version: g.Version, modPolicy: g.ModPolicy, group: g}
	for name, child := range g.Groups {
		if err := checkName(name, path); err != nil {
			return err
		}
		if child == nil {
			return ledgerutil.Refuse(ledgerutil.Invalid, "group %s/%s is empty", path, name)
		}
		if err := walk(out, path+"/"+name, child); err != nil {
			return err
		}
	}
	for name, v := range g.Values {
		if err := checkName(name, path); err != nil {
			return err
		}
		if v == nil {
			return ledgerutil.Refuse(ledgerutil.Invalid, "value %s/%s is empty", path, name)
		}
		p := path + "/" + name
		out[kindValue+" "+p] = element{kind: kindValue, path: p, version: v.Version, modPolicy: v.ModPolicy, value: v}
	}
	for name, pol := range g.Policies {
		if err := checkName(name, path); err != nil {
			return err
		}
		if pol == nil {
			return ledgerutil.Refuse(ledgerutil.Invalid, "policy %s/%s is empty", path, name)
		}
		p := path + "/" + name
		out[kindPolicy+" "+p] = element{kind: kindPolicy, path: p, version: pol.Version, modPolicy: pol.ModPolicy, policy: pol}
	}
	return nil
}

func checkName(name, parent string) error {
	if !configIDPattern.MatchString(name) || name == "." || name == ".." {
		return ledgerutil.Refuse(ledgerutil.Invalid, "config element %q under %s has an illegal name", name, parent)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isNew reports whether a delta element is created by the update (version 0, not read).
func (d *decodedUpdate) isNew(e element) bool {
	_, read := d.read[e.key()]
	return e.version == 0 && !read
}

// childGroups lists the sub-group names a write-set group carries, sorted.
func childGroups(e element) []string {
	if e.group == nil {
		return nil
	}
	return sortedKeys(e.group.Groups)
}

// changes describes the delta for reviewers, one line per change, ordered by path.
// Elements inside a group the update creates are described by that group's line.
func (d *decodedUpdate) changes() []string {
	lines := []string{}
	for _, e := range d.delta {
		if d.insideNewGroup(e) {
			continue
		}
		switch {
		case d.isNew(e):
			lines = append(lines, fmt.Sprintf("add %s %s", e.kind, e.path))
		case e.kind == kindGroup:
			lines = append(lines, fmt.Sprintf("set members of group %s to [%s] (mod_policy %s)",
				e.path, strings.Join(childGroups(e), ", "), e.modPolicy))
		default:
			lines = append(lines, fmt.Sprintf("update %s %s to version %d (mod_policy %s)", e.kind, e.path, e.version, e.modPolicy))
		}
	}
	return lines
}

// insideNewGroup reports whether an element sits below a group the update creates.
func (d *decodedUpdate) insideNewGroup(e element) bool {
	for p := e.parent(); strings.Count(p, "/") >= 1; p = p[:strings.LastIndex(p, "/")] {
		if g, ok := d.write[kindGroup+" "+p]; ok && d.isNew(g) {
			return true
		}
	}
	return false
}
