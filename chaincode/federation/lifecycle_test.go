package federation

import (
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

func TestTheCreatorCancelsBeforeTheStartAndEveryoneIsRefunded(t *testing.T) {
	w := newWorld(t)
	w.must(admin(1), w.create(terms()))
	w.must(t1, w.join)
	w.must(t2, w.join)
	w.refuse(
		fakeledger.R("another org cancels", admin(2), w.cancel, ledgerutil.Forbidden),
		fakeledger.R("a trainer of the creator cancels", t1, w.cancel, ledgerutil.Forbidden),
	)
	w.must(admin(1), w.cancel)
	if got := w.balances(); got != [4]int64{funds, funds, funds, funds} {
		t.Fatalf("balances %v after the cancel", got)
	}
	w.refuse(
		fakeledger.R("cancelling again", admin(1), w.cancel, ledgerutil.AlreadyDone),
		fakeledger.R("joining a cancelled task", t3, w.join, ledgerutil.WrongPhase),
		fakeledger.R("starting a cancelled task", admin(1), w.start, ledgerutil.WrongPhase),
	)
	w2 := running(t, terms(), t1, t2)
	w2.refuse(fakeledger.R("cancelling a running task", admin(1), w2.cancel, ledgerutil.WrongPhase))
}

func TestAParticipantLeavesBeforeTheStartWithItsStake(t *testing.T) {
	w := newWorld(t)
	w.must(admin(1), w.create(terms()))
	w.must(t2, w.join)
	w.must(t2, w.leave)
	if w.balance(2) != funds || len(w.task().Participants) != 0 {
		t.Fatalf("org2 holds %d, participants %v", w.balance(2), w.task().Participants)
	}
	w.refuse(fakeledger.R("leaving again", t2, w.leave, ledgerutil.NotFound))
	w.must(t2, w.join) // and may join again
	w.must(t3, w.join)
	w.must(admin(1), w.start)
	w.refuse(fakeledger.R("leaving a running task", t2, w.leave, ledgerutil.WrongPhase))
}

func TestAnUnstartedTaskIsClosedByAnyoneOnceItsEnrollmentEnded(t *testing.T) {
	w := newWorld(t)
	w.must(admin(1), w.create(terms(func(r *TaskRequest) { r.EnrollSeconds = 3600 })))
	w.must(t2, w.join)
	w.refuse(fakeledger.R("closing while it enrolls", admin(3), w.close, ledgerutil.WrongPhase))
	w.later(time.Hour + time.Second)
	w.refuse(
		fakeledger.R("joining after the enrollment", t3, w.join, ledgerutil.WrongPhase),
		fakeledger.R("starting after the enrollment", admin(1), w.start, ledgerutil.WrongPhase),
		fakeledger.R("closing within the margin", admin(3), w.close, ledgerutil.WrongPhase),
	)
	w.later(w.margin())
	w.must(admin(3), w.close)
	if got := w.balances(); got != [4]int64{funds, funds, funds, funds} || w.task().Status != StatusClosed {
		t.Fatalf("balances %v, status %s", got, w.task().Status)
	}
	w.refuse(fakeledger.R("closing again", admin(3), w.close, ledgerutil.AlreadyDone))
}

// A running task whose round got fewer commitments than it needs, after its commit
// phase ran its full length, is closed by anyone: the silent pay their penalty, which
// goes to those who kept to the protocol; the stakes go back and the unpaid rewards
// to the creator.
func TestAStalledTaskIsClosedByAnyone(t *testing.T) {
	w := running(t, terms(func(r *TaskRequest) { r.MinParticipants = 3 }), t1, t2, t3)
	w.must(t1, w.commit(1, d("1")))
	w.refuse(fakeledger.R("closing a task that can go on", admin(4), w.close, ledgerutil.WrongPhase))
	w.later(60*time.Second + w.margin() + time.Second)
	w.must(admin(4), w.close)
	tk := w.task()
	if tk.Status != StatusDone || tk.Escrow != 0 {
		t.Fatalf("the task must be done: %+v", tk)
	}
	r := w.result(1)
	if r.Status != Closed || !r.TaskDone || r.Forfeits[msp(1)] != 20 {
		t.Fatalf("round 1: %+v", r)
	}
	if got := w.balances(); got != [4]int64{funds + 20, funds - 10, funds - 10, funds} {
		t.Fatalf("balances %v", got)
	}
}

// Whatever the participants do, the task ends by time alone with Settle, which anyone
// may call: nobody commits; everyone commits and nobody posts; every org posts another
// assessment; the orgs hold the whole supply and the stakes are near the token cap.
func TestATaskAlwaysEndsWhateverItsParticipantsDo(t *testing.T) {
	big := token.MaxAmount/4 - funds
	stake := big / 2
	penalties := 3 * (stake/10 + (stake-stake/10)/10) // no one kept to the protocol: the creator gets them
	for name, tc := range map[string]struct {
		act     func(w *world, round int)
		rounds  int   // settled before the end
		creator int64 // what org1, which only created the task, holds in the end
	}{
		"nobody commits":        {func(*world, int) {}, 2, funds + penalties}, // everyone dropped after two misses
		"nobody posts":          {func(w *world, round int) { commitAll(w, round) }, 3, funds},
		"every org disagrees":   {func(w *world, round int) { commitAll(w, round); disagree(w, round) }, 3, funds},
		"every round finalizes": {func(w *world, round int) { commitAll(w, round); agree(w, round) }, 3, funds - 270},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			for org := 2; org <= 4; org++ { // most of the supply
				w.must(admin(1), func(ctx fakeledger.Ctx) error { return token.Mint(ctx, msp(org), big) })
			}
			w.must(admin(1), w.create(terms(func(r *TaskRequest) { r.Stake = stake })))
			for _, tr := range []fakeledger.Identity{t2, t3, t4} {
				w.must(tr, w.join)
			}
			w.must(admin(2), w.start)
			finish(w, tc.act)
			if got := w.task().State.SettledRound; got != tc.rounds || w.balance(1) != tc.creator {
				t.Fatalf("settled %d rounds (want %d); org1 holds %d (want %d)", got, tc.rounds, w.balance(1), tc.creator)
			}
		})
	}
}

func commitAll(w *world, round int) {
	for i, tr := range []fakeledger.Identity{t2, t3, t4} {
		w.must(tr, w.commit(round, nth(3*round+i)))
	}
}

func disagree(w *world, round int) {
	for org := 2; org <= 4; org++ {
		w.must(admin(org), w.post(round, assessment{digest: string(rune('0' + org)), scores: scoresOf(1, t2, t3, t4)}))
	}
}

func agree(w *world, round int) {
	for org := 2; org <= 4; org++ {
		w.must(admin(org), w.post(round, assessment{digest: "9", scores: scoresOf(MaxScore, t2, t3, t4)}))
	}
}

// finish lets each round's participants act once, then settles every round by time.
func finish(w *world, act func(*world, int)) {
	w.t.Helper()
	for steps := 0; !w.task().State.Done; steps++ {
		if steps > 40 {
			w.t.Fatalf("the task did not end: %+v", w.task())
		}
		round := w.task().Round
		if steps == 0 || w.task().State.SettledRound == round-1 && len(w.state(round).Committed) == 0 {
			act(w, round)
		}
		if w.state(round).Settleable {
			w.must(admin(4), w.settle(round))
			continue
		}
		w.later(5 * time.Minute)
	}
	if tk := w.task(); tk.Escrow != 0 || tk.Status != StatusDone {
		w.t.Fatalf("a finished task must hold nothing: %+v", tk)
	}
}
