//! The location service (RFC 3261 §10.3, §16.5): address-of-record → bindings.
//!
//! Bindings keep their insertion order, so a 200 OK lists them the same way every run, and
//! an expiry index ordered by time lets the element purge expired bindings without walking
//! every AOR.
//!
//! A registrar holds one binding per phone for as long as the phone stays registered, so a
//! binding is kept compact: its strings (Contact URI, Call-ID, Contact params) share one
//! allocation, the AOR is stored once and shared by the map and the expiry index, and the
//! index holds one entry per AOR (its earliest expiry) rather than one per binding.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::keymap::KeyMap;
use crate::message::Params;
use crate::time::Instant;
use crate::Transport;

/// One Contact bound to an AOR.
#[derive(Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, then the Call-ID, then the Contact params as written in the
    /// request (`;name=value;name`): one allocation for the three.
    text: Box<str>,
    /// Where the Contact URI ends in `text`.
    contact_end: u32,
    /// Where the Call-ID ends in `text`.
    call_id_end: u32,
    /// q-value in thousandths (RFC 3261 §20.10: 0 to 1 with up to three decimals).
    pub q: Option<u16>,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// CSeq of the REGISTER that last wrote it (§10.3 step 7 ordering).
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
    /// A binding of `contact` (the URI as the UA wrote it, without `<>`) with its Contact
    /// `params` other than `q` and `expires`, in the order received, written by the REGISTER
    /// with `call_id` and `cseq` (§10.3 step 7).
    ///
    /// The strings are bounded by the message size limit, far below 4 GiB; a longer one
    /// would be cut, never a panic.
    pub fn new<'a>(
        contact: &str,
        params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        q: Option<u16>,
        expires_at: Instant,
        call_id: &str,
        cseq: u32,
        flow: Flow,
    ) -> Binding {
        let mut text = String::with_capacity(contact.len() + call_id.len());
        text.push_str(contact);
        let contact_end = offset(text.len());
        text.push_str(call_id);
        let call_id_end = offset(text.len());
        for (name, value) in params {
            text.push(';');
            text.push_str(name);
            if let Some(value) = value {
                text.push('=');
                text.push_str(value);
            }
        }
        Binding {
            text: text.into_boxed_str(),
            contact_end,
            call_id_end,
            q,
            expires_at,
            cseq,
            flow,
        }
    }

    /// The Contact URI, as the UA wrote it (without `<>`).
    pub fn contact(&self) -> &str {
        self.text.get(..self.contact_end as usize).unwrap_or("")
    }

    /// Call-ID of the REGISTER that last wrote it (§10.3 step 7 ordering).
    pub fn call_id(&self) -> &str {
        let range = self.contact_end as usize..self.call_id_end as usize;
        self.text.get(range).unwrap_or("")
    }

    /// Contact header params other than `q` and `expires`, in the order received.
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        Params::new(self.params_text().get(1..).unwrap_or("")).iter()
    }

    /// The params as received: `;name=value;name`, or empty.
    fn params_text(&self) -> &str {
        self.text.get(self.call_id_end as usize..).unwrap_or("")
    }

    /// Seconds left, rounded up so that a binding never shows `expires=0` while alive.
    pub fn remaining_secs(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_since(now);
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// The Contact header value the registrar returns for it (§10.3 step 8). Written into
    /// one string sized up front: a 200 lists every binding of the AOR.
    pub fn contact_value(&self, now: Instant) -> String {
        let params = self.params_text();
        // `<>`, `;q=0.xxx` and `;expires=` with ten digits at most.
        let mut v = String::with_capacity(self.contact_end as usize + params.len() + 2 + 8 + 19);
        v.push('<');
        v.push_str(self.contact());
        v.push('>');
        v.push_str(params);
        if let Some(q) = self.q {
            v.push_str(";q=");
            v.push_str(&format_q(q));
        }
        v.push_str(";expires=");
        let secs = self.remaining_secs(now);
        v.push_str(crate::message::decimal(u64::from(secs), &mut [0; 20]));
        v
    }
}

/// An offset into a binding's text (see [`Binding::new`] for why it fits).
fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("contact", &self.contact())
            .field("params", &self.params().collect::<Vec<_>>())
            .field("q", &self.q)
            .field("expires_at", &self.expires_at)
            .field("call_id", &self.call_id())
            .field("cseq", &self.cseq)
            .field("flow", &self.flow)
            .finish()
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
    /// Every AOR with bindings; the key is shared with `expiries`.
    aors: KeyMap<Arc<str>, Box<[Binding]>>,
    /// Each AOR once, at the earliest expiry of its bindings.
    expiries: BTreeSet<(Instant, Arc<str>)>,
    /// Bindings over all AORs.
    bindings: usize,
}

/// The earliest expiry among `bindings`.
fn earliest(bindings: &[Binding]) -> Option<Instant> {
    bindings.iter().map(|b| b.expires_at).min()
}

impl Location {
    /// An empty location service.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty location service whose AOR table is keyed by `seed` ([`KeyMap`]).
    pub fn with_seed(seed: u64) -> Self {
        Location {
            aors: KeyMap::with_seed(seed),
            ..Self::default()
        }
    }

    /// The bindings of `aor` that are alive at `now`.
    pub fn bindings(&self, aor: &str, now: Instant) -> Vec<&Binding> {
        self.alive(aor, now).collect()
    }

    /// [`Location::bindings`] without collecting them (a lookup per proxied request).
    pub fn alive(&self, aor: &str, now: Instant) -> impl Iterator<Item = &Binding> {
        self.stored(aor)
            .unwrap_or_default()
            .iter()
            .filter(move |b| b.expires_at > now)
    }

    /// Every binding stored for `aor`, expired ones not purged yet included; `None` when
    /// the AOR has no entry. The registrar's one lookup per REGISTER (§10.3 steps 6-8).
    pub fn stored(&self, aor: &str) -> Option<&[Binding]> {
        self.aors.get(aor).map(|b| &**b)
    }

    /// Number of AORs with at least one binding.
    pub fn aor_count(&self) -> usize {
        self.aors.len()
    }

    /// Number of bindings over all AORs.
    pub fn binding_count(&self) -> usize {
        self.bindings
    }

    /// Whether `aor` has an entry.
    pub fn contains(&self, aor: &str) -> bool {
        self.aors.contains_key(aor)
    }

    /// Replaces the bindings of `aor` (the registrar computes the new list atomically).
    pub fn set(&mut self, aor: &str, bindings: Vec<Binding>) {
        let key = match self.aors.remove_entry(aor) {
            Some((key, old)) => {
                self.forget(&key, &old);
                key
            }
            None if bindings.is_empty() => return,
            None => Arc::from(aor),
        };
        self.keep(key, bindings.into_boxed_slice());
    }

    /// Takes `old`, the bindings of `aor` just removed from the map, out of the index.
    fn forget(&mut self, aor: &Arc<str>, old: &[Binding]) {
        self.bindings -= old.len();
        if let Some(at) = earliest(old) {
            self.expiries.remove(&(at, Arc::clone(aor)));
        }
    }

    /// Stores `bindings` as those of `aor`, indexed by their earliest expiry; none: the AOR
    /// is gone.
    fn keep(&mut self, aor: Arc<str>, bindings: Box<[Binding]>) {
        let Some(at) = earliest(&bindings) else {
            return;
        };
        self.bindings += bindings.len();
        self.expiries.insert((at, Arc::clone(&aor)));
        self.aors.insert(aor, bindings);
    }

    /// The earliest expiry, for the element's timeout.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Removes every binding whose expiry is at or before `now`; returns (aor, contact) pairs
    /// in expiry order (then by AOR and contact, for bindings that lapse together).
    pub fn purge(&mut self, now: Instant) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        while self.next_expiry().is_some_and(|at| at <= now) {
            let Some((_, aor)) = self.expiries.pop_first() else {
                break;
            };
            let Some(list) = self.aors.remove(&aor) else {
                continue;
            };
            self.bindings -= list.len();
            let (expired, alive): (Vec<Binding>, Vec<Binding>) = list
                .into_vec()
                .into_iter()
                .partition(|b| b.expires_at <= now);
            gone.extend(
                expired
                    .into_iter()
                    .map(|b| (b.expires_at, aor.to_string(), b.contact().to_owned())),
            );
            self.keep(aor, alive.into_boxed_slice());
        }
        gone.sort();
        gone.into_iter()
            .map(|(_, aor, contact)| (aor, contact))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, at_ms: u64) -> Binding {
        binding_with(contact, &[], at_ms)
    }

    fn binding_with(contact: &str, params: &[(&str, Option<&str>)], at_ms: u64) -> Binding {
        Binding::new(
            contact,
            params.iter().copied(),
            None,
            Instant::from_millis(at_ms),
            "c",
            1,
            Flow {
                remote: "192.0.2.201:5060".parse().unwrap(),
                transport: Transport::Udp,
            },
        )
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
            loc.bindings("sip:bob@biloxi.example.com", Instant::from_millis(1500))[0].contact(),
            "sip:a@h"
        );
    }

    #[test]
    fn binding_keeps_its_strings_apart_and_params_in_order() {
        let b = binding_with(
            "sip:bob@h;transport=tcp",
            &[
                ("+sip.instance", Some("\"<urn:uuid:1;x=y>\"")),
                ("reg-id", Some("1")),
                ("ob", None),
            ],
            1000,
        );
        assert_eq!(b.contact(), "sip:bob@h;transport=tcp");
        assert_eq!(b.call_id(), "c");
        assert_eq!(
            b.params().collect::<Vec<_>>(),
            [
                ("+sip.instance", Some("\"<urn:uuid:1;x=y>\"")),
                ("reg-id", Some("1")),
                ("ob", None)
            ]
        );
        assert_eq!(binding("sip:a@h", 1).params().count(), 0);
    }

    #[test]
    fn an_aor_with_bindings_left_stays_indexed_at_its_next_expiry() {
        let mut loc = Location::new();
        let aor = "sip:bob@biloxi.example.com";
        loc.set(
            aor,
            vec![binding("sip:a@h", 1000), binding("sip:b@h", 3000)],
        );
        assert_eq!(loc.purge(Instant::from_millis(1000)).len(), 1);
        assert_eq!(loc.next_expiry(), Some(Instant::from_millis(3000)));
        assert_eq!(loc.binding_count(), 1);
        // A refresh replaces the list and its index entry.
        loc.set(aor, vec![binding("sip:b@h", 5000)]);
        assert_eq!(loc.next_expiry(), Some(Instant::from_millis(5000)));
        loc.set(aor, Vec::new());
        assert_eq!((loc.aor_count(), loc.binding_count()), (0, 0));
        assert_eq!(loc.next_expiry(), None);
    }

    #[test]
    fn remaining_seconds_round_up_and_contact_value_lists_q_then_expires() {
        let mut b = binding_with(
            "sips:bob@client.biloxi.example.com",
            &[("+sip.instance", Some("\"<urn:x>\""))],
            3_600_000,
        );
        b.q = Some(700);
        assert_eq!(b.remaining_secs(Instant::from_millis(1)), 3600);
        assert_eq!(
            b.contact_value(Instant::ZERO),
            "<sips:bob@client.biloxi.example.com>;+sip.instance=\"<urn:x>\";q=0.7;expires=3600"
        );
    }
}
