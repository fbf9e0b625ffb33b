//! RFC 3261's transaction rules, checked from outside on the trace of a finished run: what
//! every run on a faulty network must still respect, whatever the faults did. The elements'
//! own counts (every transaction and response context ends once the network is quiet) are
//! checked by the runner; these are the rules visible on the wire.
//!
//! For each element:
//! - a request it sends again (same bytes: a client transaction's retransmission) follows
//!   Timer A (INVITE: T1, 2*T1, 4*T1..., §17.1.1.2) or Timer E (non-INVITE: doubling up to T2,
//!   then T2, §17.1.2.2), and stops within 64*T1 of the first send (Timer B/F);
//! - for one server transaction it sends at most one final response upstream, sent again
//!   unchanged, unless every final is a 2xx (a forked INVITE may have several, §16.7 step 5),
//!   and it stops sending it within 64*T1 of the first (Timer H/J, §17.2.1, §17.2.2).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use trapezoid_core::message::{Limits, Message};
use trapezoid_sim::{TraceEntry, TraceKind};

/// An element of the run and the timer values it was configured with.
#[derive(Clone, Debug)]
pub struct ElementTimers {
    /// Its name in the scenario.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// RFC 3261 T1.
    pub t1: Duration,
    /// RFC 3261 T2.
    pub t2: Duration,
}

/// Sends happen on the simulator's 1 ms ticks: a timer's send may be a tick late.
const SLACK: Duration = Duration::from_millis(2);

fn near(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= SLACK
}

/// Every rule the trace breaks, one sentence each.
pub fn check(entries: &[TraceEntry], elements: &[ElementTimers]) -> Vec<String> {
    let mut broken = Vec::new();
    for e in elements {
        // Parsed once, for both rules.
        let sent: Vec<(&TraceEntry, Message)> = entries
            .iter()
            .filter(|t| t.kind == TraceKind::Sent && t.from == e.addr)
            .filter_map(|t| Some((t, Message::parse(&t.bytes, &Limits::default()).ok()?)))
            .collect();
        retransmitted_requests(e, &sent, &mut broken);
        final_responses(e, &sent, &mut broken);
    }
    broken
}

/// Requests sent more than once, by destination and bytes.
fn retransmitted_requests(
    e: &ElementTimers,
    sent: &[(&TraceEntry, Message)],
    broken: &mut Vec<String>,
) {
    /// When each copy went, and the message.
    type Sends<'a> = (Vec<Duration>, &'a Message);
    let mut groups: BTreeMap<(SocketAddr, &[u8]), Sends<'_>> = BTreeMap::new();
    for (t, m) in sent {
        groups
            .entry((t.to, &t.bytes))
            .or_insert_with(|| (Vec::new(), m))
            .0
            .push(t.at);
    }
    for ((to, _), (times, m)) in groups {
        if times.len() < 2 {
            continue;
        }
        let Some(method) = m.method().map(|x| x.as_str().to_owned()) else {
            continue;
        };
        // An ACK is no transaction: a proxy relays every copy it is given.
        if method == "ACK" {
            continue;
        }
        let what = format!("{} sent {method} to {to}", e.name);
        let last = times[times.len() - 1] - times[0];
        if last > e.t1 * 64 + SLACK {
            broken.push(format!(
                "{what} again {} ms after the first send, past Timer {} (64*T1)",
                last.as_millis(),
                if method == "INVITE" { "B" } else { "F" }
            ));
        }
        let mut expected = e.t1;
        for pair in times.windows(2) {
            let interval = pair[1] - pair[0];
            let ok = if method == "INVITE" {
                near(interval, expected)
            } else {
                // In Proceeding, Timer E is T2 from its next firing on (§17.1.2.2).
                near(interval, expected) || near(interval, e.t2)
            };
            if !ok {
                broken.push(format!(
                    "{what} again after {} ms where Timer {} gives {} ms",
                    interval.as_millis(),
                    if method == "INVITE" { "A" } else { "E" },
                    expected.as_millis()
                ));
                break;
            }
            // The next value of the timer, from its nominal value (not the tick-late send).
            expected = if method == "INVITE" {
                expected * 2
            } else if near(interval, expected) {
                (expected * 2).min(e.t2)
            } else {
                e.t2
            };
        }
    }
}

/// Final responses sent upstream, by server transaction.
fn final_responses(e: &ElementTimers, sent: &[(&TraceEntry, Message)], broken: &mut Vec<String>) {
    /// When, which status, which bytes.
    type Sent<'a> = (Duration, u16, &'a [u8]);
    let mut groups: BTreeMap<(SocketAddr, String), Vec<Sent<'_>>> = BTreeMap::new();
    for (t, m) in sent {
        let Some(status) = m.status().filter(|s| *s >= 200) else {
            continue;
        };
        let branch = m
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let cseq = m
            .cseq()
            .map(|c| format!("{} {}", c.seq, c.method))
            .unwrap_or_default();
        let key = format!("{} {cseq} {branch}", m.call_id().unwrap_or_default());
        groups
            .entry((t.to, key))
            .or_default()
            .push((t.at, status, &t.bytes));
    }
    for ((to, key), finals) in groups {
        if finals.iter().all(|(_, s, _)| (200..300).contains(s)) {
            continue;
        }
        let first = finals[0];
        if let Some(other) = finals.iter().find(|f| f.2 != first.2) {
            broken.push(format!(
                "{} sent two different final responses to {to} for one transaction ({key}): {} then {}",
                e.name, first.1, other.1
            ));
            continue;
        }
        let last = finals[finals.len() - 1].0 - first.0;
        if last > e.t1 * 64 + SLACK {
            broken.push(format!(
                "{} sent its {} to {to} ({key}) again {} ms after the first, past Timer H/J (64*T1)",
                e.name,
                first.1,
                last.as_millis()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element() -> ElementTimers {
        ElementTimers {
            name: "p".into(),
            addr: "192.0.2.1:5060".parse().unwrap(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }

    fn sent(at_ms: u64, text: &str) -> TraceEntry {
        TraceEntry {
            at: Duration::from_millis(at_ms),
            kind: TraceKind::Sent,
            from: "192.0.2.1:5060".parse().unwrap(),
            to: "192.0.2.2:5060".parse().unwrap(),
            bytes: text.replace('\n', "\r\n").into_bytes(),
        }
    }

    const OPTIONS: &str = "OPTIONS sip:b@192.0.2.2 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.1>;tag=1\nTo: <sip:b@192.0.2.2>\nCall-ID: c\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";

    fn response(status: &str) -> String {
        format!("SIP/2.0 {status}\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKy\nFrom: <sip:a@192.0.2.2>;tag=1\nTo: <sip:b@192.0.2.1>;tag=2\nCall-ID: d\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
    }

    #[test]
    fn timer_e_doubling_to_t2_passes_and_a_wrong_interval_does_not() {
        let good: Vec<TraceEntry> = [0, 500, 1500, 3500, 7500, 11500]
            .iter()
            .map(|t| sent(*t, OPTIONS))
            .collect();
        assert_eq!(check(&good, &[element()]), Vec::<String>::new());
        let bad: Vec<TraceEntry> = [0, 500, 900].iter().map(|t| sent(*t, OPTIONS)).collect();
        let broken = check(&bad, &[element()]);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].contains("after 400 ms where Timer E gives 1000 ms"));
        let late: Vec<TraceEntry> = [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500, 35500,
        ]
        .iter()
        .map(|t| sent(*t, OPTIONS))
        .collect();
        assert!(check(&late, &[element()])[0].contains("past Timer F"));
    }

    #[test]
    fn two_different_finals_for_one_transaction_are_caught() {
        let same = vec![
            sent(0, &response("486 Busy Here")),
            sent(500, &response("486 Busy Here")),
        ];
        assert!(check(&same, &[element()]).is_empty());
        let two = vec![
            sent(0, &response("486 Busy Here")),
            sent(10, &response("200 OK")),
        ];
        let broken = check(&two, &[element()]);
        assert!(
            broken[0].contains("two different final responses"),
            "{broken:?}"
        );
        let forked = vec![sent(0, &response("200 OK")), sent(10, &response("200 OK"))];
        assert!(check(&forked, &[element()]).is_empty());
    }
}
