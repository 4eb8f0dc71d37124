package fakeledger_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

var admin = fakeledger.Identity{MSPID: "Org1MSP", Name: "admin", OU: "admin"}

func compositeKey(t *testing.T, attrs ...string) string {
	t.Helper()
	k, err := shim.CreateCompositeKey("thing", attrs)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keys lists what a partial composite key query and its paginated form return.
func keys(t *testing.T, stub shim.ChaincodeStubInterface) (plain, paged []string) {
	t.Helper()
	drain := func(it shim.StateQueryIteratorInterface) []string {
		out := []string{}
		for it.HasNext() {
			kv, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, kv.Key)
		}
		return out
	}
	it, err := stub.GetStateByPartialCompositeKey("thing", nil)
	if err != nil {
		t.Fatal(err)
	}
	pit, _, err := stub.GetStateByPartialCompositeKeyWithPagination("thing", nil, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return drain(it), drain(pit)
}

func get(t *testing.T, stub shim.ChaincodeStubInterface, key string) string {
	t.Helper()
	v, err := stub.GetState(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func must[R any](t *testing.T) func(R, error) R {
	return func(r R, err error) R {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// seed commits "old" = "committed" and the composite key thing/0 in one transaction.
func seed(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := fakeledger.NewStub()
	must[any](t)(fakeledger.Submit(stub, admin, func(ctx fakeledger.Ctx) (any, error) {
		if err := ctx.GetStub().PutState("old", []byte("committed")); err != nil {
			return nil, err
		}
		return nil, ctx.GetStub().PutState(compositeKey(t, "0"), []byte("zero"))
	}))
	return stub
}

func TestAWriteIsInvisibleInItsOwnTransactionAndVisibleInTheNext(t *testing.T) {
	stub := seed(t)
	k1 := compositeKey(t, "1")
	must[any](t)(fakeledger.Submit(stub, admin, func(ctx fakeledger.Ctx) (any, error) {
		s := ctx.GetStub()
		for _, err := range []error{
			s.PutState("new", []byte("v")),
			s.PutState(k1, []byte("one")),
			s.PutState("old", []byte("overwritten")),
			s.DelState(compositeKey(t, "0")),
			s.PutPrivateData("coll", "secret", []byte("s")),
			s.SetEvent("Changed", []byte("payload")),
		} {
			if err != nil {
				return nil, err
			}
		}
		// Fabric: reads return the state committed before this transaction.
		if v := get(t, s, "new"); v != "" {
			t.Errorf("GetState saw this transaction's own write: %q", v)
		}
		if v := get(t, s, "old"); v != "committed" {
			t.Errorf("GetState of an overwritten key = %q, want the committed %q", v, "committed")
		}
		if v := get(t, s, compositeKey(t, "0")); v != "zero" {
			t.Errorf("a key deleted in this transaction read %q, want the committed %q", v, "zero")
		}
		want := []string{compositeKey(t, "0")}
		if plain, paged := keys(t, s); !slices.Equal(plain, want) || !slices.Equal(paged, want) {
			t.Errorf("composite key queries saw this transaction's writes: %q, paginated %q; want %q", plain, paged, want)
		}
		if v, _ := s.GetPrivateData("coll", "secret"); v != nil {
			t.Errorf("GetPrivateData saw this transaction's own write: %q", v)
		}
		if len(stub.Events) != 0 {
			t.Errorf("an event was delivered before its transaction committed: %v", stub.Events)
		}
		return nil, nil
	}))

	// The next transaction sees every write of the committed one.
	next := fakeledger.Query(stub, admin).GetStub()
	if v := get(t, next, "new"); v != "v" {
		t.Errorf("the next transaction read %q for a committed write", v)
	}
	if v := get(t, next, "old"); v != "overwritten" {
		t.Errorf("the next transaction read %q for an overwritten key", v)
	}
	if v := get(t, next, compositeKey(t, "0")); v != "" {
		t.Errorf("a deleted key still reads %q", v)
	}
	want := []string{k1}
	if plain, paged := keys(t, next); !slices.Equal(plain, want) || !slices.Equal(paged, want) {
		t.Errorf("composite key queries after commit: %q, paginated %q; want %q", plain, paged, want)
	}
	if v, _ := next.GetPrivateData("coll", "secret"); string(v) != "s" {
		t.Errorf("committed private data reads %q", v)
	}
	if string(stub.Events["Changed"]) != "payload" {
		t.Errorf("the committed transaction's event was not delivered: %v", stub.Events)
	}
}

func TestAFailedTransactionChangesNothing(t *testing.T) {
	stub := seed(t)
	state, private, events := maps.Clone(stub.State), len(stub.Private), maps.Clone(stub.Events)
	refused := errors.New("refused")
	r, err := fakeledger.Submit(stub, admin, func(ctx fakeledger.Ctx) (string, error) {
		s := ctx.GetStub()
		_ = s.PutState("new", []byte("v"))
		_ = s.PutState("old", []byte("overwritten"))
		_ = s.DelState(compositeKey(t, "0"))
		_ = s.PutState(compositeKey(t, "1"), []byte("one"))
		_ = s.PutPrivateData("coll", "secret", []byte("s"))
		_ = s.SetEvent("Changed", []byte("payload"))
		return "partial", refused
	})
	if !errors.Is(err, refused) || r != "partial" {
		t.Fatalf("Submit must return what the transaction returned, got %q, %v", r, err)
	}
	if !maps.EqualFunc(stub.State, state, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("a failed transaction changed the world state: %q, was %q", stub.State, state)
	}
	if len(stub.Private) != private {
		t.Errorf("a failed transaction wrote private data: %v", stub.Private)
	}
	if !maps.EqualFunc(stub.Events, events, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("a failed transaction's event was delivered: %v", stub.Events)
	}
	next := fakeledger.Query(stub, admin).GetStub()
	if v := get(t, next, "new"); v != "" {
		t.Errorf("the next transaction read %q written by a failed one", v)
	}
	if plain, _ := keys(t, next); !slices.Equal(plain, []string{compositeKey(t, "0")}) {
		t.Errorf("composite keys after a failed transaction: %q", plain)
	}
}

func TestAQueryNeverCommits(t *testing.T) {
	stub := seed(t)
	s := fakeledger.Query(stub, admin).GetStub()
	if err := s.PutState("new", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEvent("Changed", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := stub.State["new"]; ok || len(stub.Events) != 0 {
		t.Fatalf("an evaluated transaction changed the ledger: %q %v", stub.State, stub.Events)
	}
}

func TestEachSubmitIsATransactionWithOneEventAndItsOwnID(t *testing.T) {
	stub := fakeledger.NewStub()
	id := func(ctx fakeledger.Ctx) (string, error) {
		_ = ctx.GetStub().SetEvent("First", []byte("1"))
		_ = ctx.GetStub().SetEvent("Second", []byte("2"))
		return ctx.GetStub().GetTxID(), nil
	}
	fail := func(ctx fakeledger.Ctx) (string, error) { return ctx.GetStub().GetTxID(), errors.New("no") }
	ids := []string{must[string](t)(fakeledger.Submit(stub, admin, id))}
	failed, _ := fakeledger.Submit(stub, admin, fail)
	ids = append(ids, failed, must[string](t)(fakeledger.Submit(stub, admin, id)))
	if !slices.Equal(ids, []string{"tx1", "tx2", "tx3"}) {
		t.Errorf("transaction ids %q, want tx1 tx2 tx3", ids)
	}
	// Fabric carries one event per transaction: the last one set.
	if _, ok := stub.Events["First"]; ok || string(stub.Events["Second"]) != "2" {
		t.Errorf("events %v, want only Second", stub.Events)
	}
}
