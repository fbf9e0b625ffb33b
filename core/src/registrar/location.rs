//! The location service (RFC 3261 §10.3, §16.5): address-of-record → bindings.
//!
//! Bindings keep their insertion order, so a 200 OK lists them the same way every run, and
//! an expiry index ordered by time lets the element purge expired bindings without walking
//! every AOR.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::time::Instant;
use crate::Transport;

/// One Contact bound to an AOR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, as the UA wrote it (without `<>`).
    pub contact: String,
    /// Contact header params other than `q` and `expires`, in the order received.
    pub params: Vec<(String, Option<String>)>,
    /// q-value in thousandths (RFC 3261 §20.10: 0 to 1 with up to three decimals).
    pub q: Option<u16>,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that last wrote it (§10.3 step 7 ordering).
    pub call_id: String,
    /// CSeq of the REGISTER that last wrote it.
    pub cseq: u32,
    /// Where the REGISTER came from: the flow to reach the UA through NATs later.
    pub flow: Flow,
}

/// The transport, remote address of a request as it arrived (RFC 5626 §3: a "flow").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The source address of the request.
    pub remote: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
}

impl Binding {
    /// Seconds left, rounded up so that a binding never shows `expires=0` while alive.
    pub fn remaining_secs(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// The Contact header value the registrar returns for it (§10.3 step 8).
    pub fn contact_value(&self, now: Instant) -> String {
        let mut v = format!("<{}>", self.contact);
        for (name, value) in &self.params {
            v.push(';');
            v.push_str(name);
            if let Some(value) = value {
                v.push('=');
                v.push_str(value);
            }
        }
        if let Some(q) = self.q {
            v.push_str(";q=");
            v.push_str(&format_q(q));
        }
        v.push_str(";expires=");
        v.push_str(&self.remaining_secs(now).to_string());
        v
    }
}

/// `500` → `0.5`, `1000` → `1`, `0` → `0`.
pub fn format_q(q: u16) -> String {
    if q >= 1000 {
        return "1".to_owned();
    }
    let mut s = format!("0.{q:03}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// RFC 3261 §20.10 qvalue: `0[.0-3 digits]` or `1[.0-3 zeros]`, in thousandths.
pub fn parse_q(s: &str) -> Option<u16> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// AOR → bindings, with an expiry index.
#[derive(Debug, Default)]
pub struct Location {
    aors: BTreeMap<String, Vec<Binding>>,
    expiries: BTreeSet<(Instant, String, String)>,
}

impl Location {
    /// An empty location service.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bindings of `aor` that are alive at `now`.
    pub fn bindings(&self, aor: &str, now: Instant) -> Vec<&Binding> {
        self.aors
            .get(aor)
            .map(|b| b.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default()
    }

    /// Number of AORs with at least one binding.
    pub fn aor_count(&self) -> usize {
        self.aors.len()
    }

    /// Number of bindings over all AORs.
    pub fn binding_count(&self) -> usize {
        self.expiries.len()
    }

    /// Whether `aor` has an entry.
    pub fn contains(&self, aor: &str) -> bool {
        self.aors.contains_key(aor)
    }

    /// Replaces the bindings of `aor` (the registrar computes the new list atomically).
    pub fn set(&mut self, aor: &str, bindings: Vec<Binding>) {
        if let Some(old) = self.aors.remove(aor) {
            for b in old {
                self.expiries
                    .remove(&(b.expires_at, aor.to_owned(), b.contact.clone()));
            }
        }
        if bindings.is_empty() {
            return;
        }
        for b in &bindings {
            self.expiries
                .insert((b.expires_at, aor.to_owned(), b.contact.clone()));
        }
        self.aors.insert(aor.to_owned(), bindings);
    }

    /// The earliest expiry, for the element's timeout.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _, _)| *at)
    }

    /// Removes every binding whose expiry is at or before `now`; returns (aor, contact) pairs
    /// in expiry order.
    pub fn purge(&mut self, now: Instant) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        while let Some((at, aor, contact)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(list) = self.aors.get_mut(&aor) {
                list.retain(|b| !(b.contact == contact && b.expires_at == at));
                if list.is_empty() {
                    self.aors.remove(&aor);
                }
            }
            gone.push((aor, contact));
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, at_ms: u64) -> Binding {
        Binding {
            contact: contact.to_owned(),
            params: vec![],
            q: None,
            expires_at: Instant::from_millis(at_ms),
            call_id: "c".into(),
            cseq: 1,
            flow: Flow {
                remote: "192.0.2.201:5060".parse().unwrap(),
                transport: Transport::Udp,
            },
        }
    }

    #[test]
    fn qvalues_parse_and_format_per_rfc3261_20_10() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("2"), None);
        assert_eq!(format_q(500), "0.5");
        assert_eq!(format_q(125), "0.125");
        assert_eq!(format_q(1000), "1");
        assert_eq!(format_q(0), "0");
    }

    #[test]
    fn purge_removes_expired_bindings_in_expiry_order() {
        let mut loc = Location::new();
        loc.set(
            "sip:bob@biloxi.example.com",
            vec![binding("sip:a@h", 2000), binding("sip:b@h", 1000)],
        );
        loc.set(
            "sip:carol@biloxi.example.com",
            vec![binding("sip:c@h", 1500)],
        );
        assert_eq!(loc.next_expiry(), Some(Instant::from_millis(1000)));
        let gone = loc.purge(Instant::from_millis(1500));
        assert_eq!(
            gone,
            vec![
                ("sip:bob@biloxi.example.com".into(), "sip:b@h".into()),
                ("sip:carol@biloxi.example.com".into(), "sip:c@h".into())
            ]
        );
        assert_eq!(loc.aor_count(), 1);
        assert_eq!(loc.binding_count(), 1);
        assert_eq!(
            loc.bindings("sip:bob@biloxi.example.com", Instant::from_millis(1500))[0].contact,
            "sip:a@h"
        );
    }

    #[test]
    fn remaining_seconds_round_up_and_contact_value_lists_q_then_expires() {
        let mut b = binding("sips:bob@client.biloxi.example.com", 3_600_000);
        b.q = Some(700);
        b.params = vec![("+sip.instance".into(), Some("\"<urn:x>\"".into()))];
        assert_eq!(b.remaining_secs(Instant::from_millis(1)), 3600);
        assert_eq!(
            b.contact_value(Instant::ZERO),
            "<sips:bob@client.biloxi.example.com>;+sip.instance=\"<urn:x>\";q=0.7;expires=3600"
        );
    }
}
