//! The payout decision rules, as pure functions of (where a payout stands × what was observed)
//! → what to do. The store and the worker only carry them out, so every rule is unit-tested
//! here without a provider or a database.
//!
//! The rules that keep money safe: points are captured only on a provider-confirmed success and
//! returned only on a provider-confirmed failure; a timeout or a 5xx proves nothing, so the next
//! step after one is a status read, never a new transfer or a refund; a transfer is (re)submitted
//! only when the provider says it has none, always with the same reference id; a payout without
//! a confirmed outcome past the pending limit goes to manual review, with its points still held.

use super::momo::{SubmitOutcome, TransferStatus};

/// Where a payout stands (the `status` and `phase` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending(Phase),
    ManualReview,
    Succeeded,
    Failed,
}

/// How far a pending payout's transfer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No transfer request is known to have reached the provider: submit it.
    Submit,
    /// A transfer request got no proving answer (timeout, 5xx, refusal): read the status first.
    Unknown,
    /// The provider took the transfer (202 or 409): read the status until it settles.
    Accepted,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Unknown => "unknown",
            Self::Accepted => "accepted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "submit" => Some(Self::Submit),
            "unknown" => Some(Self::Unknown),
            "accepted" => Some(Self::Accepted),
            _ => None,
        }
    }
}

/// The provider call to make next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Submit,
    ReadStatus,
    Nothing,
}

/// What to do with the payout after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Confirmed success: capture the held points.
    Capture { provider_transaction_id: Option<String> },
    /// Confirmed failure: return the held points.
    Release { reason: String },
    /// Still pending, now in this phase; retry later.
    Continue(Phase),
    /// Past the pending limit without a confirmed outcome.
    ManualReview,
    /// Nothing changes.
    Keep,
}

/// The call a worker round makes for a payout.
pub fn next_call(state: State) -> Call {
    match state {
        State::Pending(Phase::Submit) => Call::Submit,
        State::Pending(Phase::Unknown | Phase::Accepted) => Call::ReadStatus,
        State::ManualReview | State::Succeeded | State::Failed => Call::Nothing,
    }
}

/// After a transfer request. `None` is a call that proved nothing (timeout, 5xx, no connection).
/// `overdue`: pending past the limit.
pub fn after_submit(state: State, outcome: Option<&SubmitOutcome>, overdue: bool) -> Decision {
    if !matches!(state, State::Pending(_)) {
        return Decision::Keep;
    }
    match outcome {
        Some(SubmitOutcome::Accepted | SubmitOutcome::AlreadyExists) => Decision::Continue(Phase::Accepted),
        // A refusal is not a confirmed failure of a transfer: only a status read says whether one
        // exists. Neither is silence.
        Some(SubmitOutcome::Refused { .. }) | None if overdue => Decision::ManualReview,
        Some(SubmitOutcome::Refused { .. }) | None => Decision::Continue(Phase::Unknown),
    }
}

/// After a status read (a worker round, a callback hint, an administrator's refresh). `None` is
/// a read that proved nothing.
pub fn after_status(state: State, read: Option<&TransferStatus>, overdue: bool) -> Decision {
    let pending = match state {
        State::Succeeded | State::Failed => return Decision::Keep,
        State::Pending(_) => true,
        State::ManualReview => false,
    };
    match read {
        Some(TransferStatus::Successful { financial_transaction_id }) => {
            Decision::Capture { provider_transaction_id: financial_transaction_id.clone() }
        }
        Some(TransferStatus::Failed { reason }) => Decision::Release { reason: reason.clone() },
        // Under review only a confirmed outcome changes anything.
        _ if !pending => Decision::Keep,
        _ if overdue => Decision::ManualReview,
        Some(TransferStatus::Pending) => Decision::Continue(Phase::Accepted),
        // The provider has no such transfer: our request never arrived, so send it again with the
        // same reference (a duplicate would be answered 409, never paid twice).
        Some(TransferStatus::NotFound) => Decision::Continue(Phase::Submit),
        None => Decision::Keep,
    }
}

/// An administrator's outcome for a payout in manual review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// Why a manual resolution is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveRefusal {
    NotInReview,
    /// The provider definitively says otherwise.
    Conflict(String),
}

/// Resolves a payout in manual review with the administrator's outcome, after a fresh status
/// read (`None`: the provider did not answer, so the administrator's evidence stands).
pub fn resolve(state: State, outcome: Outcome, read: Option<&TransferStatus>) -> Result<Decision, ResolveRefusal> {
    if state != State::ManualReview {
        return Err(ResolveRefusal::NotInReview);
    }
    let capture = |id: Option<String>| Decision::Capture { provider_transaction_id: id };
    match (outcome, read) {
        (Outcome::Succeeded, Some(TransferStatus::Successful { financial_transaction_id })) => {
            Ok(capture(financial_transaction_id.clone()))
        }
        (Outcome::Failed, Some(TransferStatus::Failed { reason })) => Ok(Decision::Release { reason: reason.clone() }),
        (Outcome::Succeeded, Some(TransferStatus::Failed { reason })) => {
            Err(ResolveRefusal::Conflict(format!("the provider reports the transfer failed ({reason})")))
        }
        (Outcome::Succeeded, Some(TransferStatus::NotFound)) => {
            Err(ResolveRefusal::Conflict("the provider has no such transfer".into()))
        }
        (Outcome::Failed, Some(TransferStatus::Successful { .. })) => {
            Err(ResolveRefusal::Conflict("the provider reports the transfer succeeded".into()))
        }
        (Outcome::Succeeded, Some(TransferStatus::Pending) | None) => Ok(capture(None)),
        (Outcome::Failed, Some(TransferStatus::Pending | TransferStatus::NotFound) | None) => {
            Ok(Decision::Release { reason: "MANUAL_RESOLUTION".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 3] = [Phase::Submit, Phase::Unknown, Phase::Accepted];

    fn all_states() -> Vec<State> {
        let mut v: Vec<State> = PHASES.iter().map(|p| State::Pending(*p)).collect();
        v.extend([State::ManualReview, State::Succeeded, State::Failed]);
        v
    }

    fn all_reads() -> Vec<Option<TransferStatus>> {
        vec![
            None,
            Some(TransferStatus::Pending),
            Some(TransferStatus::NotFound),
            Some(TransferStatus::Successful { financial_transaction_id: Some("ft-1".into()) }),
            Some(TransferStatus::Failed { reason: "PAYEE_NOT_FOUND".into() }),
        ]
    }

    fn all_submits() -> Vec<Option<SubmitOutcome>> {
        vec![
            None,
            Some(SubmitOutcome::Accepted),
            Some(SubmitOutcome::AlreadyExists),
            Some(SubmitOutcome::Refused { status: 400, detail: "bad".into() }),
        ]
    }

    #[test]
    fn phases_round_trip() {
        for p in PHASES {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("other"), None);
    }

    #[test]
    fn only_a_fresh_payout_submits_and_an_unknown_one_reads_first() {
        assert_eq!(next_call(State::Pending(Phase::Submit)), Call::Submit);
        assert_eq!(next_call(State::Pending(Phase::Unknown)), Call::ReadStatus);
        assert_eq!(next_call(State::Pending(Phase::Accepted)), Call::ReadStatus);
        for s in [State::ManualReview, State::Succeeded, State::Failed] {
            assert_eq!(next_call(s), Call::Nothing);
        }
    }

    #[test]
    fn submit_outcomes() {
        for phase in PHASES {
            let s = State::Pending(phase);
            for overdue in [false, true] {
                assert_eq!(after_submit(s, Some(&SubmitOutcome::Accepted), overdue), Decision::Continue(Phase::Accepted));
                assert_eq!(
                    after_submit(s, Some(&SubmitOutcome::AlreadyExists), overdue),
                    Decision::Continue(Phase::Accepted),
                    "409 means our earlier request got through"
                );
            }
            assert_eq!(after_submit(s, None, false), Decision::Continue(Phase::Unknown), "a timeout is unknown");
            assert_eq!(after_submit(s, None, true), Decision::ManualReview);
            let refused = SubmitOutcome::Refused { status: 400, detail: String::new() };
            assert_eq!(after_submit(s, Some(&refused), false), Decision::Continue(Phase::Unknown));
            assert_eq!(after_submit(s, Some(&refused), true), Decision::ManualReview);
        }
        for s in [State::ManualReview, State::Succeeded, State::Failed] {
            for o in all_submits() {
                for overdue in [false, true] {
                    assert_eq!(after_submit(s, o.as_ref(), overdue), Decision::Keep);
                }
            }
        }
    }

    #[test]
    fn no_submit_outcome_ever_settles_money() {
        for s in all_states() {
            for o in all_submits() {
                for overdue in [false, true] {
                    let d = after_submit(s, o.as_ref(), overdue);
                    assert!(!matches!(d, Decision::Capture { .. } | Decision::Release { .. }), "{s:?} {o:?} -> {d:?}");
                }
            }
        }
    }

    #[test]
    fn status_reads_of_a_pending_payout() {
        for phase in PHASES {
            let s = State::Pending(phase);
            for overdue in [false, true] {
                assert_eq!(
                    after_status(s, Some(&TransferStatus::Successful { financial_transaction_id: Some("9".into()) }), overdue),
                    Decision::Capture { provider_transaction_id: Some("9".into()) },
                    "a confirmed success captures, even late"
                );
                assert_eq!(
                    after_status(s, Some(&TransferStatus::Failed { reason: "NOT_ENOUGH_FUNDS".into() }), overdue),
                    Decision::Release { reason: "NOT_ENOUGH_FUNDS".into() }
                );
            }
            assert_eq!(after_status(s, Some(&TransferStatus::Pending), false), Decision::Continue(Phase::Accepted));
            assert_eq!(after_status(s, Some(&TransferStatus::NotFound), false), Decision::Continue(Phase::Submit));
            assert_eq!(after_status(s, None, false), Decision::Keep);
            for read in [Some(TransferStatus::Pending), Some(TransferStatus::NotFound), None] {
                assert_eq!(after_status(s, read.as_ref(), true), Decision::ManualReview, "{read:?} overdue");
            }
        }
    }

    #[test]
    fn status_reads_under_review_apply_only_confirmed_outcomes() {
        for overdue in [false, true] {
            for read in all_reads() {
                let d = after_status(State::ManualReview, read.as_ref(), overdue);
                match &read {
                    Some(TransferStatus::Successful { .. }) => assert!(matches!(d, Decision::Capture { .. })),
                    Some(TransferStatus::Failed { .. }) => assert!(matches!(d, Decision::Release { .. })),
                    _ => assert_eq!(d, Decision::Keep, "{read:?}"),
                }
            }
        }
    }

    #[test]
    fn settled_payouts_never_change() {
        for s in [State::Succeeded, State::Failed] {
            for read in all_reads() {
                for overdue in [false, true] {
                    assert_eq!(after_status(s, read.as_ref(), overdue), Decision::Keep);
                }
            }
        }
    }

    #[test]
    fn nothing_but_a_confirmed_failure_releases() {
        for s in all_states() {
            for read in all_reads() {
                for overdue in [false, true] {
                    if let Decision::Release { .. } = after_status(s, read.as_ref(), overdue) {
                        assert!(matches!(read, Some(TransferStatus::Failed { .. })), "{s:?} {read:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn resolutions() {
        use Outcome::*;
        let ok = TransferStatus::Successful { financial_transaction_id: Some("ft".into()) };
        let failed = TransferStatus::Failed { reason: "PAYER_LIMIT_REACHED".into() };
        let r = State::ManualReview;
        assert_eq!(resolve(r, Succeeded, Some(&ok)), Ok(Decision::Capture { provider_transaction_id: Some("ft".into()) }));
        assert_eq!(resolve(r, Succeeded, Some(&TransferStatus::Pending)), Ok(Decision::Capture { provider_transaction_id: None }));
        assert_eq!(resolve(r, Succeeded, None), Ok(Decision::Capture { provider_transaction_id: None }));
        assert!(matches!(resolve(r, Succeeded, Some(&failed)), Err(ResolveRefusal::Conflict(_))));
        assert!(matches!(resolve(r, Succeeded, Some(&TransferStatus::NotFound)), Err(ResolveRefusal::Conflict(_))));
        assert_eq!(resolve(r, Failed, Some(&failed)), Ok(Decision::Release { reason: "PAYER_LIMIT_REACHED".into() }));
        for read in [Some(TransferStatus::Pending), Some(TransferStatus::NotFound), None] {
            assert_eq!(resolve(r, Failed, read.as_ref()), Ok(Decision::Release { reason: "MANUAL_RESOLUTION".into() }));
        }
        assert!(matches!(resolve(r, Failed, Some(&ok)), Err(ResolveRefusal::Conflict(_))));
        for s in all_states().into_iter().filter(|s| *s != r) {
            for read in all_reads() {
                for o in [Succeeded, Failed] {
                    assert_eq!(resolve(s, o, read.as_ref()), Err(ResolveRefusal::NotInReview));
                }
            }
        }
    }
}
