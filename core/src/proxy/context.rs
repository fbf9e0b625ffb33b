//! RFC 3261 §16.7: the response context of one proxied request: its branches, the best
//! final response so far, and the choice made when every branch has finished.

use crate::time::Instant;

/// Where a branch (one forwarded copy of the request, §16.6) stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchState {
    /// Sent, nothing back yet.
    Trying,
    /// A provisional response arrived (CANCEL is allowed from now on, §9.1).
    Proceeding,
    /// A final response arrived, or the client transaction timed out (status 408).
    Done {
        /// The final status.
        status: u16,
    },
}

/// One branch of a response context.
#[derive(Clone, Debug)]
pub struct Branch {
    /// The key of its client transaction (the branch parameter and the request's method),
    /// the branch's only copy ([`crate::element::ClientKey::branch`]).
    pub key: crate::element::ClientKey,
    /// The target (Request-URI of the forwarded request).
    pub target: String,
    /// State of the branch.
    pub state: BranchState,
    /// Timer C (§16.8): when the proxy gives up on an INVITE branch that stays provisional.
    pub timer_c: Option<Instant>,
    /// Where the element's timer index holds Timer C's entry: at or before `timer_c`
    /// (see `Proxy::set_timer_c`).
    pub(crate) timer_c_entry: Option<Instant>,
    /// A CANCEL has been sent (or is owed, once a provisional arrives).
    pub cancelled: bool,
}

impl Branch {
    /// Whether it has a final answer.
    pub fn is_done(&self) -> bool {
        matches!(self.state, BranchState::Done { .. })
    }
}

/// Branch `index` of context `id`, to change it; borrows only the context table, so the
/// element's other tables stay free while the branch is held.
pub(crate) fn branch_mut(
    contexts: &mut crate::keymap::KeyMap<super::ContextId, Box<super::ResponseContext>>,
    id: super::ContextId,
    index: usize,
) -> Option<&mut Branch> {
    contexts.get_mut(&id)?.branches.get_mut(index)
}

/// A final response kept as a candidate for §16.7 step 6.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its status.
    pub status: u16,
    /// The bytes to send upstream (our Via already removed), or `None` when the proxy must
    /// build the response itself (a timeout: 408).
    pub bytes: Option<Vec<u8>>,
    /// Challenges it carried (`(header name, value)`), for §16.7 step 7 aggregation.
    pub challenges: Vec<(String, String)>,
}

/// RFC 3261 §16.7 step 6: the best of the final responses received.
///
/// 6xx wins if any; otherwise the lowest class; within 4xx, 401, 407, 415, 420 and 484 are
/// preferred because the caller can act on them; otherwise the first received of the class.
/// No candidate at all means every branch timed out: 408 (RFC 3261 §16.7 step 6, "if no final
/// response has been received... 408").
pub fn best(candidates: &[Candidate]) -> Option<&Candidate> {
    if let Some(c) = candidates.iter().find(|c| c.status >= 600) {
        return Some(c);
    }
    let class = candidates.iter().map(|c| c.status / 100).min()?;
    let in_class = || candidates.iter().filter(move |c| c.status / 100 == class);
    if class == 4 {
        if let Some(c) = in_class().find(|c| matches!(c.status, 401 | 407 | 415 | 420 | 484)) {
            return Some(c);
        }
    }
    in_class().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16) -> Candidate {
        Candidate {
            status,
            bytes: None,
            challenges: vec![],
        }
    }

    #[test]
    fn six_hundred_beats_everything() {
        let cs = [c(486), c(302), c(603)];
        assert_eq!(best(&cs).unwrap().status, 603);
    }

    #[test]
    fn lowest_class_wins_and_first_of_the_class() {
        assert_eq!(best(&[c(486), c(302), c(404)]).unwrap().status, 302);
        assert_eq!(best(&[c(486), c(404)]).unwrap().status, 486);
    }

    #[test]
    fn actionable_4xx_are_preferred() {
        assert_eq!(best(&[c(486), c(407), c(404)]).unwrap().status, 407);
        assert_eq!(best(&[c(408), c(484)]).unwrap().status, 484);
    }

    #[test]
    fn no_candidates_no_choice() {
        assert!(best(&[]).is_none());
    }
}
