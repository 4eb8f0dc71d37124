package ledgerutil

import (
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// ListRecords decodes every record under a partial composite key, in key order; what
// names the listing in a ledger error ("listing members"). A corrupt record is INTERNAL.
func ListRecords[T any](ctx contractapi.TransactionContextInterface, kind string, attrs []string, what string) ([]T, error) {
	iter, err := ctx.GetStub().GetStateByPartialCompositeKey(kind, attrs)
	if err != nil {
		return nil, Context(err, what)
	}
	return DecodeAll[T](iter, what)
}

// DecodeAll drains a range iterator (one page of a paginated query included), decoding
// every record in its order, and closes it. The answer is never nil: an empty listing
// is an empty JSON array, as the contract API's schema check wants.
func DecodeAll[T any](iter shim.StateQueryIteratorInterface, what string) ([]T, error) {
	defer iter.Close()
	out := []T{}
	for iter.HasNext() {
		kv, err := iter.Next()
		if err != nil {
			return nil, Context(err, what)
		}
		var v T
		if err := DecodeRecord(kv.Key, kv.Value, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
