package attestation

import (
	"crypto/sha256"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Merkle proofs follow RFC 6962/9162: leaves are hashed with a 0x00 prefix, inner
// nodes with 0x01, so a leaf can never pose as a node. The Python client builds the
// same trees.

func leafHash(data []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, data...))
	return h[:]
}

func nodeHash(left, right []byte) []byte {
	buf := make([]byte, 0, 1+len(left)+len(right))
	buf = append(buf, 1)
	buf = append(buf, left...)
	buf = append(buf, right...)
	h := sha256.Sum256(buf)
	return h[:]
}

// rootFromProof recomputes the root that an inclusion proof for leaf leads to.
func rootFromProof(leaf []byte, index, size uint64, path [][]byte) ([]byte, error) {
	if size == 0 || index >= size {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "proof index is outside its tree")
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range path {
		if sn == 0 {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "proof is longer than its tree")
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			if fn&1 == 0 {
				for fn != 0 && fn&1 == 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "proof is shorter than its tree")
	}
	return r, nil
}
