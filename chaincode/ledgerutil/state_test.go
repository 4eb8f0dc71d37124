package ledgerutil_test

import (
	"bytes"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func TestGetExistingRefusesAMissingRecordWithItsMessage(t *testing.T) {
	stub := fakeledger.NewStub()
	stored(t, stub, `{"mspId":"Org1MSP"}`, "p1", "Org1MSP")
	ctx := fakeledger.Query(stub, reader)
	k, _ := ledgerutil.Key(ctx, "vote", "p1", "Org1MSP")
	var v vote
	if err := ledgerutil.GetExisting(ctx, k, &v, "no vote of %s", "Org1MSP"); err != nil || v.MSPID != "Org1MSP" {
		t.Fatalf("%+v %v", v, err)
	}
	missing, _ := ledgerutil.Key(ctx, "vote", "p1", "Org2MSP")
	err := ledgerutil.GetExisting(ctx, missing, &v, "no vote of %s", "Org2MSP")
	if err == nil || err.Error() != "NOT_FOUND: no vote of Org2MSP" {
		t.Fatalf("got %v", err)
	}
}

func TestPutJSONWithEventAnnouncesExactlyTheStoredBytes(t *testing.T) {
	stub := fakeledger.NewStub()
	_, err := fakeledger.Submit(stub, reader, func(ctx fakeledger.Ctx) (struct{}, error) {
		return struct{}{}, ledgerutil.PutJSONWithEvent(ctx, "k", vote{MSPID: "Org1MSP"}, "VoteCast")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(`{"mspId":"Org1MSP"}`)
	if !bytes.Equal(stub.State["k"], want) || !bytes.Equal(stub.Events["VoteCast"], want) {
		t.Fatalf("state %s, event %s", stub.State["k"], stub.Events["VoteCast"])
	}
}
