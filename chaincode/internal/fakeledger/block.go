package fakeledger

import (
	"strings"
	"time"
)

// Validation codes, as Fabric's committer names them.
const (
	Valid             = "VALID"
	EndorsementFailed = "ENDORSEMENT_FAILED" // the contract refused: never ordered
	MVCCReadConflict  = "MVCC_READ_CONFLICT"
	PhantomRead       = "PHANTOM_READ_CONFLICT"
)

// Proposal is one transaction of a block: who submits it and what it calls. At, when
// set, is when it was endorsed (its timestamp and the endorser's clock): a transaction
// endorsed earlier and held back until this block, against the same committed state.
type Proposal struct {
	Who  Identity
	Call func(Ctx) error
	At   time.Time
}

// P is a Proposal, for lists.
func P(who Identity, call func(Ctx) error) Proposal { return Proposal{Who: who, Call: call} }

// Outcome is what became of one proposal of a block.
type Outcome struct {
	TxID string
	Code string // Valid, EndorsementFailed, MVCCReadConflict or PhantomRead
	Err  error  // the contract's refusal when Code is EndorsementFailed
}

// Block endorses every proposal against the same committed state (as clients do when
// they submit at once), orders the endorsed ones as given into one block, and validates
// them in that order like Fabric's committer: a transaction is invalid if a key it read
// was written by an earlier valid transaction of the block (MVCC_READ_CONFLICT), or a
// key inside a range it queried was (PHANTOM_READ_CONFLICT). Valid ones are committed.
func (s *Stub) Block(proposals ...Proposal) []Outcome {
	out := make([]Outcome, len(proposals))
	txs := make([]*txStub, len(proposals))
	for i, p := range proposals {
		tx := s.begin()
		s.next()
		if !p.At.IsZero() {
			tx.time, tx.clock = p.At, p.At
		}
		out[i] = Outcome{TxID: tx.id, Code: Valid}
		if err := p.Call(bind(tx, p.Who)); err != nil {
			out[i].Code, out[i].Err = EndorsementFailed, err
			continue
		}
		txs[i] = tx
	}
	written := map[string]bool{}
	for i, tx := range txs {
		if tx == nil {
			continue
		}
		if code := tx.conflict(written); code != "" {
			out[i].Code = code
			continue
		}
		tx.commit()
		for k := range tx.writes {
			written[k] = true
		}
	}
	return out
}

// conflict is why Fabric would invalidate this transaction after the keys written by
// the earlier valid transactions of its block, or "" if it is valid.
func (t *txStub) conflict(written map[string]bool) string {
	for k := range written {
		if t.reads[k] {
			return MVCCReadConflict
		}
		for _, prefix := range t.ranges {
			if strings.HasPrefix(k, prefix) {
				return PhantomRead
			}
		}
	}
	return ""
}
