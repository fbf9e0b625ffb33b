//! RFC 3263 §4 over the system's DNS, for [`crate::Driver`]: SRV records first when the URI
//! names no port (`_sip._udp.` or `_sip._tcp.` by transport, ordered by priority, then
//! weight), then A and AAAA of each target; without SRV records, A and AAAA of the name
//! itself at port 5060. NAPTR is not consulted (optional in §4.1). Each lookup runs in its
//! own task, bounded in time, and answers through the driver's channel.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioAsyncResolver;
use tokio::sync::mpsc;
use trapezoid_core::{Query, Resolution, Transport};

use crate::Resolver;

/// Longest one lookup may take, all records included (the core gives up a little later).
const LOOKUP_MAX: Duration = Duration::from_secs(3);

/// The system's resolver (`/etc/resolv.conf`, `/etc/hosts`).
pub struct SystemResolver {
    inner: TokioAsyncResolver,
}

impl SystemResolver {
    /// Reads the system configuration.
    pub fn from_system() -> Result<Self, String> {
        TokioAsyncResolver::tokio_from_system_conf()
            .map(|inner| SystemResolver { inner })
            .map_err(|e| format!("DNS configuration: {e}"))
    }
}

impl Resolver for SystemResolver {
    fn resolve(&mut self, query: Query, answers: &mpsc::UnboundedSender<Resolution>) {
        let resolver = self.inner.clone();
        let answers = answers.clone();
        tokio::spawn(async move {
            let addrs = tokio::time::timeout(LOOKUP_MAX, lookup(&resolver, &query))
                .await
                .unwrap_or_default();
            if addrs.is_empty() {
                tracing::info!(name = %query.name, "DNS: no address");
            }
            let _ = answers.send(Resolution { query, addrs });
        });
    }
}

async fn lookup(resolver: &TokioAsyncResolver, q: &Query) -> Vec<SocketAddr> {
    // A fully qualified name: no search domains appended.
    let fqdn = format!("{}.", q.name.trim_end_matches('.'));
    if let Some(port) = q.port {
        return ips(resolver, &fqdn, port).await;
    }
    let service = match q.transport {
        Transport::Udp => "_sip._udp.",
        Transport::Tcp => "_sip._tcp.",
    };
    let mut records: Vec<(u16, u16, u16, String)> =
        match resolver.srv_lookup(format!("{service}{fqdn}")).await {
            Ok(srv) => srv
                .iter()
                .map(|r| (r.priority(), r.weight(), r.port(), r.target().to_utf8()))
                .collect(),
            Err(_) => Vec::new(),
        };
    if records.is_empty() {
        return ips(resolver, &fqdn, 5060).await;
    }
    // RFC 2782 picks among equal priorities at random by weight; the heaviest first keeps
    // the order stable, which is what a log reader wants.
    records.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out = Vec::new();
    for (_, _, port, target) in records {
        out.extend(ips(resolver, &target, port).await);
    }
    out
}

async fn ips(resolver: &TokioAsyncResolver, name: &str, port: u16) -> Vec<SocketAddr> {
    match resolver.lookup_ip(name).await {
        Ok(found) => found.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Answers from a fixed name → address table at once (the simulator's hosts, or a test's).
pub struct TableResolver {
    /// Names and their addresses; a query's own port wins over the table's.
    pub table: Vec<(String, SocketAddr)>,
}

impl Resolver for TableResolver {
    fn resolve(&mut self, query: Query, answers: &mpsc::UnboundedSender<Resolution>) {
        let addrs = self
            .table
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&query.name))
            .map(|(_, a)| SocketAddr::new(a.ip(), query.port.unwrap_or(a.port())))
            .collect();
        let _ = answers.send(Resolution { query, addrs });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str, port: Option<u16>) -> Query {
        Query {
            name: name.into(),
            port,
            transport: Transport::Udp,
        }
    }

    #[test]
    fn the_table_answers_at_once_and_the_uri_port_wins() {
        let mut t = TableResolver {
            table: vec![(
                "ss2.biloxi.example.com".into(),
                "192.0.2.222:5060".parse().unwrap(),
            )],
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        t.resolve(q("SS2.biloxi.example.com", Some(5070)), &tx);
        t.resolve(q("unknown.example.com", None), &tx);
        let a = rx.try_recv().unwrap();
        assert_eq!(a.addrs, ["192.0.2.222:5070".parse::<SocketAddr>().unwrap()]);
        assert!(rx.try_recv().unwrap().addrs.is_empty());
    }

    /// The system resolver finds `localhost` in /etc/hosts without any network; with an
    /// explicit port no SRV lookup is made (RFC 3263 §4.2).
    #[tokio::test]
    async fn the_system_resolver_answers_from_the_hosts_file() {
        let Ok(mut r) = SystemResolver::from_system() else {
            // No /etc/resolv.conf at all: nothing to test against.
            assert!(!std::path::Path::new("/etc/resolv.conf").exists());
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        r.resolve(q("localhost", Some(5062)), &tx);
        let a = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            a.addrs.contains(&"127.0.0.1:5062".parse().unwrap())
                || a.addrs.contains(&"[::1]:5062".parse().unwrap()),
            "{a:?}"
        );
    }
}
