package ledgerutil_test

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

type vote struct {
	MSPID string `json:"mspId"`
}

var reader = fakeledger.Admin("Org1MSP")

// stored writes raw under the composite key vote/<parts>.
func stored(t *testing.T, stub *fakeledger.Stub, raw string, parts ...string) {
	t.Helper()
	_, err := fakeledger.Submit(stub, reader, func(ctx fakeledger.Ctx) (struct{}, error) {
		k, err := ledgerutil.Key(ctx, "vote", parts...)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, ctx.GetStub().PutState(k, []byte(raw))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestListRecordsDecodesEveryRecordUnderThePrefixInKeyOrder(t *testing.T) {
	stub := fakeledger.NewStub()
	stored(t, stub, `{"mspId":"Org2MSP"}`, "p1", "Org2MSP")
	stored(t, stub, `{"mspId":"Org1MSP"}`, "p1", "Org1MSP")
	stored(t, stub, `{"mspId":"Org3MSP"}`, "p2", "Org3MSP")
	got, err := ledgerutil.ListRecords[*vote](fakeledger.Query(stub, reader), "vote", []string{"p1"}, "listing votes")
	if err != nil || len(got) != 2 || got[0].MSPID != "Org1MSP" || got[1].MSPID != "Org2MSP" {
		t.Fatalf("%+v %v", got, err)
	}
	none, err := ledgerutil.ListRecords[vote](fakeledger.Query(stub, reader), "vote", []string{"p9"}, "listing votes")
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("an empty listing must be an empty, non-nil list: %#v %v", none, err)
	}
}

func TestListRecordsRefusesACorruptRecordAsInternal(t *testing.T) {
	stub := fakeledger.NewStub()
	stored(t, stub, `{"mspId":"Org1MSP"}`, "p1", "Org1MSP")
	stored(t, stub, `{"mspId":`, "p1", "Org2MSP")
	_, err := ledgerutil.ListRecords[vote](fakeledger.Query(stub, reader), "vote", []string{"p1"}, "listing votes")
	if ledgerutil.CodeOf(err) != ledgerutil.Internal {
		t.Fatalf("want INTERNAL, got %v", err)
	}
}
