// Package fakeledger fakes the lowest layer under the contracts for unit tests:
// the chaincode stub (an in-memory world state) and the caller's identity.
//
// It keeps Fabric's transaction semantics, because contracts that rely on anything
// else work in unit tests and fail on a real network:
//
//   - reads (GetState, GetPrivateData, range and partial composite key queries) see
//     the state committed before the transaction, never the transaction's own writes;
//   - writes (PutState, DelState, PutPrivateData) and the event are buffered and
//     applied only when the transaction succeeds (Submit with a nil error); a
//     transaction that returns an error leaves the ledger and the events unchanged;
//   - a transaction carries one event: a second SetEvent replaces the first;
//   - the proposal's timestamp (Stub.Time) is the client's, and may differ from the
//     endorsing peer's own clock (Stub.Clock);
//   - a block of transactions (Stub.Block) is simulated against the same committed
//     state and validated in order, as Fabric's MVCC check does: a transaction whose
//     reads (keys or key ranges) an earlier valid one in the block wrote is invalid.
package fakeledger

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Ctx is the context every contract function takes.
type Ctx = contractapi.TransactionContextInterface

// Stub is the ledger behind the fake: the committed world state, private data and
// events, and what the next transaction is proposed with. Transactions run through
// Submit (committed on success) or Query (never committed).
type Stub struct {
	State     map[string][]byte            // committed world state
	Private   map[string]map[string][]byte // committed private data, by collection
	Transient map[string][]byte            // transient data of the next transactions
	TxID      string                       // id of the next transaction; Submit moves it on
	Time      time.Time                    // proposal timestamp of the next transactions
	Clock     time.Time                    // the endorsing peer's own clock; zero: the same as Time
	Events    map[string][]byte            // payload of the last committed event of each name
	submitted int
}

// NewStub returns an empty ledger whose first transaction is "tx1" at a fixed time.
func NewStub() *Stub {
	return &Stub{
		State:     map[string][]byte{},
		Private:   map[string]map[string][]byte{},
		Transient: map[string][]byte{},
		TxID:      "tx1",
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Events:    map[string][]byte{},
	}
}

// Submit runs f as one submitted transaction by who: f reads the committed state,
// and its writes and event are applied only if it returns no error. Every call is a
// new transaction with its own id (Stub.TxID, then "tx<n+1>" after the n-th).
func Submit[R any](s *Stub, who Identity, f func(Ctx) (R, error)) (R, error) {
	tx := s.begin()
	s.next()
	r, err := f(bind(tx, who))
	if err == nil {
		tx.commit()
	}
	return r, err
}

// Query returns the context of an evaluated transaction by who (Fabric's
// evaluateTransaction): it reads the committed state, and whatever it writes is
// discarded. Use it for queries; use Submit for anything that must commit.
func Query(s *Stub, who Identity) *contractapi.TransactionContext {
	return bind(s.begin(), who)
}

// next moves the transaction id on.
func (s *Stub) next() {
	s.submitted++
	s.TxID = fmt.Sprintf("tx%d", s.submitted+1)
}

func bind(tx *txStub, who Identity) *contractapi.TransactionContext {
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(tx)
	ctx.SetClientIdentity(who)
	return ctx
}

func (s *Stub) begin() *txStub {
	return &txStub{
		ledger:    s,
		id:        s.TxID,
		time:      s.Time,
		clock:     s.Clock,
		transient: maps.Clone(s.Transient),
		writes:    map[string][]byte{},
		private:   map[string]map[string][]byte{},
		reads:     map[string]bool{},
	}
}

// txStub is the chaincode stub of one transaction; methods the contracts do not use
// panic (the embedded interface is nil).
type txStub struct {
	shim.ChaincodeStubInterface
	ledger    *Stub
	id        string
	time      time.Time
	clock     time.Time
	transient map[string][]byte
	writes    map[string][]byte            // nil value: deleted
	private   map[string]map[string][]byte // collection -> key -> value
	event     *peer.ChaincodeEvent
	reads     map[string]bool // keys read: the read set Fabric validates
	ranges    []string        // key prefixes of range queries: checked for phantoms
}

// commit applies the transaction's writes and event to the ledger.
func (t *txStub) commit() {
	for k, v := range t.writes {
		if v == nil {
			delete(t.ledger.State, k)
		} else {
			t.ledger.State[k] = v
		}
	}
	for coll, kvs := range t.private {
		if t.ledger.Private[coll] == nil {
			t.ledger.Private[coll] = map[string][]byte{}
		}
		maps.Copy(t.ledger.Private[coll], kvs)
	}
	if t.event != nil {
		t.ledger.Events[t.event.EventName] = t.event.Payload
	}
}

// GetState returns the committed value: like Fabric, it does not see this
// transaction's own PutState or DelState.
func (t *txStub) GetState(key string) ([]byte, error) {
	t.reads[key] = true
	return slices.Clone(t.ledger.State[key]), nil
}

func (t *txStub) PutState(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	t.writes[key] = append([]byte{}, value...)
	return nil
}

func (t *txStub) DelState(key string) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	t.writes[key] = nil
	return nil
}

func (t *txStub) GetTxID() string { return t.id }

func (t *txStub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return timestamppb.New(t.time), nil
}

// EndorserTime is the endorsing peer's own clock (Stub.Clock, or the proposal time when
// unset); contracts may compare it with the proposal time, never write it.
func (t *txStub) EndorserTime() time.Time {
	if t.clock.IsZero() {
		return t.time
	}
	return t.clock
}

// SetEvent sets the transaction's one event, replacing any set before, as Fabric does.
func (t *txStub) SetEvent(name string, payload []byte) error {
	if name == "" {
		return fmt.Errorf("event name can not be empty string")
	}
	t.event = &peer.ChaincodeEvent{EventName: name, Payload: append([]byte(nil), payload...)}
	return nil
}

func (t *txStub) GetTransient() (map[string][]byte, error) { return t.transient, nil }

// GetPrivateData returns the committed value; it does not see this transaction's
// own PutPrivateData.
func (t *txStub) GetPrivateData(collection, key string) ([]byte, error) {
	return slices.Clone(t.ledger.Private[collection][key]), nil
}

func (t *txStub) PutPrivateData(collection, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	if t.private[collection] == nil {
		t.private[collection] = map[string][]byte{}
	}
	t.private[collection][key] = append([]byte{}, value...)
	return nil
}

func (t *txStub) CreateCompositeKey(objectType string, attributes []string) (string, error) {
	return shim.CreateCompositeKey(objectType, attributes)
}

// GetStateByPartialCompositeKey iterates over the committed keys in order; this
// transaction's own writes are not in it.
func (t *txStub) GetStateByPartialCompositeKey(objectType string, attrs []string) (shim.StateQueryIteratorInterface, error) {
	prefix, err := shim.CreateCompositeKey(objectType, attrs)
	if err != nil {
		return nil, err
	}
	t.ranges = append(t.ranges, prefix)
	keys := []string{}
	for k := range t.ledger.State {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	it := &iterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Key: k, Value: slices.Clone(t.ledger.State[k])})
	}
	return it, nil
}

// GetStateByPartialCompositeKeyWithPagination pages through committed keys in order;
// the bookmark is the first key of the next page.
func (t *txStub) GetStateByPartialCompositeKeyWithPagination(objectType string, attrs []string, pageSize int32,
	bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	it, err := t.GetStateByPartialCompositeKey(objectType, attrs)
	if err != nil {
		return nil, nil, err
	}
	all := it.(*iterator).kvs
	start := 0
	for start < len(all) && bookmark != "" && all[start].Key < bookmark {
		start++
	}
	end := min(start+int(pageSize), len(all))
	next := ""
	if end < len(all) {
		next = all[end].Key
	}
	return &iterator{kvs: all[start:end]}, &peer.QueryResponseMetadata{FetchedRecordsCount: int32(end - start), Bookmark: next}, nil
}

type iterator struct {
	kvs []*queryresult.KV
	pos int
}

func (i *iterator) HasNext() bool                  { return i.pos < len(i.kvs) }
func (i *iterator) Close() error                   { return nil }
func (i *iterator) Next() (*queryresult.KV, error) { i.pos++; return i.kvs[i.pos-1], nil }

// Identity is a caller with an MSP, a NodeOU and certificate attributes.
type Identity struct {
	MSPID string
	Name  string
	OU    string
	Attrs map[string]string
}

func (i Identity) GetID() (string, error)    { return "x509::CN=" + i.Name, nil }
func (i Identity) GetMSPID() (string, error) { return i.MSPID, nil }

func (i Identity) GetAttributeValue(name string) (string, bool, error) {
	v, ok := i.Attrs[name]
	return v, ok, nil
}

func (i Identity) AssertAttributeValue(name, value string) error {
	if v, ok := i.Attrs[name]; !ok || v != value {
		return fmt.Errorf("attribute %s is not %s", name, value)
	}
	return nil
}

func (i Identity) GetX509Certificate() (*x509.Certificate, error) {
	return &x509.Certificate{Subject: pkix.Name{CommonName: i.Name, OrganizationalUnit: []string{i.OU, "org1"}}}, nil
}
