// Package ledgerutil holds the small, deterministic helpers every contract uses.
package ledgerutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// TxTime is the proposal's timestamp: the same on every endorser, unlike a clock.
func TxTime(ctx contractapi.TransactionContextInterface) (string, error) {
	ts, err := ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return "", err
	}
	return ts.AsTime().UTC().Format(time.RFC3339Nano), nil
}

// GetJSON reads key into v; found is false when the key has no value.
func GetJSON(ctx contractapi.TransactionContextInterface, key string, v any) (bool, error) {
	raw, err := ctx.GetStub().GetState(key)
	if err != nil || raw == nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("record %q is corrupt: %w", key, err)
	}
	return true, nil
}

// PutJSON writes v under key; encoding/json orders struct fields and map keys, so
// every endorser writes the same bytes.
func PutJSON(ctx contractapi.TransactionContextInterface, key string, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return raw, ctx.GetStub().PutState(key, raw)
}

// DecodeStrict parses exactly one JSON value into v and refuses unknown fields.
func DecodeStrict(raw []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s is not valid: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("%s must be a single JSON object", what)
	}
	return nil
}

var digestPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckDigest refuses anything but a SHA-256 in lowercase hex, naming the field.
func CheckDigest(field, value string) error {
	if !digestPattern.MatchString(value) {
		return fmt.Errorf("%s must be 64 lowercase hex characters (SHA-256), got %q", field, value)
	}
	return nil
}
