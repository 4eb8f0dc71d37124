// Package fakeledger fakes the lowest layer under the contracts for unit tests:
// the chaincode stub (an in-memory world state) and the caller's identity.
package fakeledger

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// Stub keeps world state in a map; methods the contracts do not use panic.
type Stub struct {
	shim.ChaincodeStubInterface
	State     map[string][]byte
	Private   map[string]map[string][]byte
	Transient map[string][]byte
	TxID      string
	Time      time.Time
	Events    map[string][]byte
}

// NewStub returns an empty world state at a fixed transaction time.
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

func (s *Stub) GetState(key string) ([]byte, error) { return s.State[key], nil }

func (s *Stub) PutState(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	s.State[key] = append([]byte(nil), value...)
	return nil
}

func (s *Stub) DelState(key string) error { delete(s.State, key); return nil }

func (s *Stub) GetTxID() string { return s.TxID }

func (s *Stub) GetTxTimestamp() (*timestamppb.Timestamp, error) { return timestamppb.New(s.Time), nil }

func (s *Stub) SetEvent(name string, payload []byte) error {
	s.Events[name] = append([]byte(nil), payload...)
	return nil
}

func (s *Stub) GetTransient() (map[string][]byte, error) { return s.Transient, nil }

func (s *Stub) PutPrivateData(collection, key string, value []byte) error {
	if s.Private[collection] == nil {
		s.Private[collection] = map[string][]byte{}
	}
	s.Private[collection][key] = append([]byte(nil), value...)
	return nil
}

// GetStateByPartialCompositeKeyWithPagination pages through keys in order; the
// bookmark is the first key of the next page.
func (s *Stub) GetStateByPartialCompositeKeyWithPagination(objectType string, attrs []string, pageSize int32,
	bookmark string) (shim.StateQueryIteratorInterface, *peer.QueryResponseMetadata, error) {
	it, err := s.GetStateByPartialCompositeKey(objectType, attrs)
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

func (s *Stub) CreateCompositeKey(objectType string, attributes []string) (string, error) {
	return shim.CreateCompositeKey(objectType, attributes)
}

func (s *Stub) GetStateByPartialCompositeKey(objectType string, attrs []string) (shim.StateQueryIteratorInterface, error) {
	prefix, err := shim.CreateCompositeKey(objectType, attrs)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	for k := range s.State {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	it := &iterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Key: k, Value: s.State[k]})
	}
	return it, nil
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

// Context binds a stub and a caller the way the contract API does for a real proposal.
func Context(stub *Stub, who Identity) *contractapi.TransactionContext {
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(stub)
	ctx.SetClientIdentity(who)
	return ctx
}
