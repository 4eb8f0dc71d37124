// Package token keeps the consortium's token balances, used for stakes, rewards and
// slashing; new tokens are minted only when a majority of members voted for the same mint.
package token

import (
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const (
	balanceKeyType = "balance"
	mintKeyType    = "mint"
	supplyKeyType  = "supply"
)

// MaxAmount bounds the minted supply, and so every balance, stake, escrow and reward
// (each is a part of the supply): sums of them never overflow an int64, and crediting
// an account never fails for exceeding the cap.
const MaxAmount = int64(1) << 50

// Supply is how many tokens were ever minted; balances, stakes and escrows add up to it.
type Supply struct {
	Amount int64 `json:"amount"`
}

// Balance is an organization's token account.
type Balance struct {
	MSPID  string `json:"mspId"`
	Amount int64  `json:"amount"`
}

// MintProposal is minted once a majority of members voted for it.
type MintProposal struct {
	ID        string   `json:"id"`
	Recipient string   `json:"recipient"`
	Amount    int64    `json:"amount"`
	Voters    []string `json:"voters"`
	Minted    bool     `json:"minted"`
	MintedTx  string   `json:"mintedTx"`
}

// Contract is the Token contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Token"}} }

func balanceKey(ctx contractapi.TransactionContextInterface, msp string) (string, error) {
	return ledgerutil.Key(ctx, balanceKeyType, msp)
}

// BalanceOf returns an organization's balance (zero if it never held tokens).
func BalanceOf(ctx contractapi.TransactionContextInterface, msp string) (int64, error) {
	k, err := balanceKey(ctx, msp)
	if err != nil {
		return 0, err
	}
	var b Balance
	if _, err := ledgerutil.GetJSON(ctx, k, &b); err != nil {
		return 0, err
	}
	return b.Amount, nil
}

// Move adds delta (which may be negative) to an account, refusing to go below zero. It
// mints nothing: callers move tokens between accounts and escrows and keep their sum.
func Move(ctx contractapi.TransactionContextInterface, msp string, delta int64) error {
	if delta < -MaxAmount || delta > MaxAmount {
		return ledgerutil.Refuse(ledgerutil.Invalid, "a token movement of %d is outside ±%d", delta, MaxAmount)
	}
	current, err := BalanceOf(ctx, msp)
	if err != nil {
		return err
	}
	if current+delta < 0 {
		return ledgerutil.Refuse(ledgerutil.Exhausted, "%s holds %d tokens, %d are needed", msp, current, -delta)
	}
	if current+delta > MaxAmount {
		return ledgerutil.Refuse(ledgerutil.Exhausted, "balance of %s would exceed %d", msp, MaxAmount)
	}
	k, err := balanceKey(ctx, msp)
	if err != nil {
		return err
	}
	_, err = ledgerutil.PutJSON(ctx, k, Balance{MSPID: msp, Amount: current + delta})
	return err
}

// Add is a+b for two token amounts, refusing (INTERNAL: the state breaks the supply
// bound) a negative amount or a sum beyond MaxAmount.
func Add(a, b int64) (int64, error) {
	if a < 0 || b < 0 || a > MaxAmount || b > MaxAmount || a+b > MaxAmount {
		return 0, ledgerutil.Refuse(ledgerutil.Internal, "token amounts %d + %d leave 0 to %d", a, b, MaxAmount)
	}
	return a + b, nil
}

// MintedSupply returns how many tokens were minted (zero before the first mint).
func MintedSupply(ctx contractapi.TransactionContextInterface) (int64, error) {
	k, err := ledgerutil.Key(ctx, supplyKeyType)
	if err != nil {
		return 0, err
	}
	var s Supply
	if _, err := ledgerutil.GetJSON(ctx, k, &s); err != nil {
		return 0, err
	}
	return s.Amount, nil
}

// Mint creates amount tokens for msp; the supply never exceeds MaxAmount (EXHAUSTED).
// The contract's VoteMint calls it once a majority voted; tests seed balances with it.
func Mint(ctx contractapi.TransactionContextInterface, msp string, amount int64) error {
	if amount < 1 || amount > MaxAmount {
		return ledgerutil.Refuse(ledgerutil.Invalid, "amount must be 1 to %d, got %d", MaxAmount, amount)
	}
	supply, err := MintedSupply(ctx)
	if err != nil {
		return err
	}
	if supply > MaxAmount-amount {
		return ledgerutil.Refuse(ledgerutil.Exhausted, "minting %d would take the supply of %d beyond %d", amount, supply, MaxAmount)
	}
	k, err := ledgerutil.Key(ctx, supplyKeyType)
	if err != nil {
		return err
	}
	if _, err := ledgerutil.PutJSON(ctx, k, Supply{Amount: supply + amount}); err != nil {
		return err
	}
	return Move(ctx, msp, amount)
}

// GetSupply returns how many tokens were ever minted.
func (c *Contract) GetSupply(ctx contractapi.TransactionContextInterface) (*Supply, error) {
	amount, err := MintedSupply(ctx)
	if err != nil {
		return nil, err
	}
	return &Supply{Amount: amount}, nil
}

// GetBalance returns an organization's balance.
func (c *Contract) GetBalance(ctx contractapi.TransactionContextInterface, msp string) (*Balance, error) {
	amount, err := BalanceOf(ctx, msp)
	if err != nil {
		return nil, err
	}
	return &Balance{MSPID: msp, Amount: amount}, nil
}

// mintVoter checks a vote's arguments and that the caller is an admin of a member org;
// it returns the caller and the members.
func mintVoter(ctx contractapi.TransactionContextInterface, id, recipient string, amount int64) (caller.Identity, []string, error) {
	who, err := caller.Admin(ctx, "VoteMint")
	if err != nil {
		return who, nil, err
	}
	if err := ledgerutil.Check("proposal id", id, ledgerutil.LedgerIDPattern); err != nil {
		return who, nil, err
	}
	if amount < 1 || amount > MaxAmount {
		return who, nil, ledgerutil.Refuse(ledgerutil.Invalid, "amount must be 1 to %d, got %d", MaxAmount, amount)
	}
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return who, nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return who, nil, ledgerutil.Refuse(ledgerutil.Forbidden, "voter %s must be a consortium member", who.MSPID)
	}
	if !slices.Contains(members, recipient) {
		return who, nil, ledgerutil.Refuse(ledgerutil.Invalid, "recipient %s must be a consortium member (members: %v)", recipient, members)
	}
	return who, members, nil
}

// VoteMint is an org admin's vote to mint `amount` tokens for `recipient` under proposal
// `id`; the tokens are minted when a majority of members voted for the same terms.
func (c *Contract) VoteMint(ctx contractapi.TransactionContextInterface, id, recipient string, amount int64) (*MintProposal, error) {
	who, members, err := mintVoter(ctx, id, recipient, amount)
	if err != nil {
		return nil, err
	}
	k, err := ledgerutil.Key(ctx, mintKeyType, id)
	if err != nil {
		return nil, err
	}
	p := MintProposal{ID: id, Recipient: recipient, Amount: amount, Voters: []string{}}
	found, err := ledgerutil.GetJSON(ctx, k, &p)
	if err != nil {
		return nil, err
	}
	// Other terms under the same id are another mint, not this vote again: CONFLICT.
	if found && (p.Recipient != recipient || p.Amount != amount) {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "proposal %s mints %d for %s; a vote must name the same terms", id, p.Amount, p.Recipient)
	}
	if p.Minted {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "proposal %s was already minted in transaction %s", id, p.MintedTx)
	}
	if slices.Contains(p.Voters, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s already voted for proposal %s", who.MSPID, id)
	}
	p.Voters = append(p.Voters, who.MSPID)
	slices.Sort(p.Voters)
	if len(p.Voters) >= len(members)/2+1 {
		if err := Mint(ctx, recipient, amount); err != nil {
			return nil, err
		}
		p.Minted, p.MintedTx = true, ctx.GetStub().GetTxID()
	}
	raw, err := ledgerutil.PutJSON(ctx, k, p)
	if err != nil {
		return nil, err
	}
	if p.Minted {
		return &p, ctx.GetStub().SetEvent("TokensMinted", raw)
	}
	return &p, nil
}
