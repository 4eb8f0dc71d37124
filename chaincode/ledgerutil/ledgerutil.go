// Package ledgerutil holds the small, deterministic helpers every contract uses.
package ledgerutil

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// TxTime is the proposal's timestamp: the same on every endorser, unlike a clock.
func TxTime(ctx contractapi.TransactionContextInterface) (string, error) {
	ts, err := ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return "", Context(err, "reading the transaction time")
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano), nil
}

// Key builds a composite key; Fabric refuses attributes that are not valid UTF-8 or
// hold U+0000, which only a caller's argument can bring in.
func Key(ctx contractapi.TransactionContextInterface, kind string, parts ...string) (string, error) {
	k, err := ctx.GetStub().CreateCompositeKey(kind, parts)
	if err != nil {
		return "", Refuse(Invalid, "%s key %q: %v", kind, parts, err)
	}
	return k, nil
}

// GetJSON reads key into v; found is false when the key has no value.
func GetJSON(ctx contractapi.TransactionContextInterface, key string, v any) (bool, error) {
	raw, err := ctx.GetStub().GetState(key)
	if err != nil {
		return false, Context(err, "reading the ledger")
	}
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, Refuse(Internal, "record %q is corrupt: %v", key, err)
	}
	return true, nil
}

// GetExisting reads key into v, refusing NOT_FOUND (the message formatted from format
// and args) when the key has no value.
func GetExisting(ctx contractapi.TransactionContextInterface, key string, v any, format string, args ...any) error {
	found, err := GetJSON(ctx, key, v)
	if err != nil {
		return err
	}
	if !found {
		return Refuse(NotFound, format, args...)
	}
	return nil
}

// PutJSON writes v under key; encoding/json orders struct fields and map keys, so
// every endorser writes the same bytes.
func PutJSON(ctx contractapi.TransactionContextInterface, key string, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, Context(err, "encoding a record")
	}
	if err := ctx.GetStub().PutState(key, raw); err != nil {
		return nil, Context(err, "writing the ledger")
	}
	return raw, nil
}

// PutJSONWithEvent writes v under key and emits the same bytes as the transaction's
// event, so a listener sees exactly the record that was stored.
func PutJSONWithEvent(ctx contractapi.TransactionContextInterface, key string, v any, event string) error {
	raw, err := PutJSON(ctx, key, v)
	if err != nil {
		return err
	}
	return ctx.GetStub().SetEvent(event, raw)
}

// DecodeStrict parses exactly one JSON value into v and refuses unknown fields.
func DecodeStrict(raw []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Refuse(Invalid, "%s is not valid: %v", what, err)
	}
	if dec.More() {
		return Refuse(Invalid, "%s must be a single JSON object", what)
	}
	return nil
}

// DecodeRecord parses a stored record (from a range query or history), refusing
// corrupt state as INTERNAL.
func DecodeRecord(key string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return Refuse(Internal, "record %q is corrupt: %v", key, err)
	}
	return nil
}
