//! A run as a capture file: classic pcap (libpcap 2.4, microsecond timestamps), link type
//! `LINKTYPE_RAW` (each packet starts with its IP header), one IPv4 or IPv6 + UDP packet per
//! datagram as it was sent, with the scenario's addresses and ports. Wireshark and tshark read
//! it as they read a capture of a real network.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::ladder::Line;

/// Link type of raw IP packets, IPv4 or IPv6 told apart by the version nibble.
pub const LINKTYPE_RAW: u32 = 101;
/// Most bytes of a packet kept in the file.
pub const SNAPLEN: u32 = 65_535;
/// UDP payload that fits in one IPv4 packet (65535 - 20 - 8); longer payloads are cut there.
const PAYLOAD_MAX_V4: usize = 65_507;
/// UDP payload whose length fits in UDP's 16-bit length field (65535 - 8).
const PAYLOAD_MAX_V6: usize = 65_527;

/// The simulation's wall-clock origin, as a duration since the Unix epoch.
pub fn sim_epoch() -> Duration {
    Duration::from_secs(trapezoid_sim::EPOCH_SECS)
}

/// The capture of a simulated run: timestamps are the simulation's fixed epoch plus sim time.
pub fn capture(lines: &[Line]) -> Vec<u8> {
    capture_at(lines, sim_epoch())
}

/// The capture of `lines`, each stamped `epoch` + its time. A lost datagram is in it too: it
/// was sent.
pub fn capture_at(lines: &[Line], epoch: Duration) -> Vec<u8> {
    let mut out = global_header();
    for (n, l) in lines.iter().enumerate() {
        // The IPv4 identification field: the datagram's number, as a sender counting would.
        let packet = packet(l.from_addr, l.to_addr, &l.bytes, (n + 1) as u16);
        let at = epoch + l.at;
        let len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(
            &u32::try_from(at.as_secs())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes()); // captured
        out.extend_from_slice(&len.to_le_bytes()); // on the wire
        out.extend_from_slice(&packet);
    }
    out
}

/// The file header: magic, version 2.4, UTC, snap length, link type (little-endian).
fn global_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    h.extend_from_slice(&SNAPLEN.to_le_bytes());
    h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    h
}

/// One IP + UDP packet: IPv4 when both ends are IPv4, else IPv6 (an IPv4 end as an
/// IPv4-mapped address).
pub fn packet(from: SocketAddr, to: SocketAddr, payload: &[u8], id: u16) -> Vec<u8> {
    match (from.ip(), to.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let payload = &payload[..payload.len().min(PAYLOAD_MAX_V4)];
            let (src, dst) = (s.octets(), d.octets());
            let udp = udp(from.port(), to.port(), payload, |len| {
                let mut p = Vec::with_capacity(12);
                p.extend_from_slice(&src);
                p.extend_from_slice(&dst);
                p.extend_from_slice(&[0, 17]);
                p.extend_from_slice(&len.to_be_bytes());
                p
            });
            let total = (20 + udp.len()) as u16;
            let mut ip = Vec::with_capacity(20 + udp.len());
            ip.extend_from_slice(&[0x45, 0]); // version 4, 5 words of header; TOS
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&id.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 64, 17]); // no fragment; TTL; UDP
            ip.extend_from_slice(&[0, 0]); // checksum, below
            ip.extend_from_slice(&src);
            ip.extend_from_slice(&dst);
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            ip.extend_from_slice(&udp);
            ip
        }
        (s, d) => {
            let payload = &payload[..payload.len().min(PAYLOAD_MAX_V6)];
            let (src, dst) = (v6(s).octets(), v6(d).octets());
            let udp = udp(from.port(), to.port(), payload, |len| {
                let mut p = Vec::with_capacity(40);
                p.extend_from_slice(&src);
                p.extend_from_slice(&dst);
                p.extend_from_slice(&u32::from(len).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 17]);
                p
            });
            let mut ip = Vec::with_capacity(40 + udp.len());
            ip.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no class, no flow label
            ip.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[17, 64]); // UDP; hop limit
            ip.extend_from_slice(&src);
            ip.extend_from_slice(&dst);
            ip.extend_from_slice(&udp);
            ip
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// A UDP header and payload, its checksum over `pseudo(length)` (the IP pseudo-header).
fn udp(sport: u16, dport: u16, payload: &[u8], pseudo: impl Fn(u16) -> Vec<u8>) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut u = Vec::with_capacity(usize::from(len));
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut all = pseudo(len);
    all.extend_from_slice(&u);
    // 0 means "no checksum": a sum of 0 is sent as all ones (RFC 768).
    let sum = match checksum(&all) {
        0 => 0xffff,
        s => s,
    };
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    u
}

/// The Internet checksum (RFC 1071): one's complement of the one's complement sum of the
/// 16-bit words, an odd last byte padded with zero.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_ms: u64, from: &str, to: &str, bytes: &[u8]) -> Line {
        Line {
            at: Duration::from_millis(at_ms),
            from: "a".into(),
            to: "b".into(),
            from_addr: from.parse().unwrap(),
            to_addr: to.parse().unwrap(),
            bytes: bytes.to_vec(),
            lost: false,
        }
    }

    fn be16(b: &[u8]) -> u16 {
        u16::from_be_bytes([b[0], b[1]])
    }

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        // The worked example of an IPv4 header checksum (checksum field zeroed).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        assert_eq!(checksum(&[0x01]), !0x0100);
    }

    #[test]
    fn global_header_is_libpcap_2_4_raw_ip() {
        let f = capture_at(&[], Duration::ZERO);
        assert_eq!(
            f,
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101,
                0, 0, 0
            ]
        );
    }

    #[test]
    fn an_ipv4_datagram_is_a_record_with_ip_and_udp_headers() {
        let payload = b"OPTIONS sip:b SIP/2.0\r\n\r\n";
        let l = line(1_234, "192.0.2.101:5060", "192.0.2.222:5061", payload);
        let f = capture_at(&[l], Duration::from_secs(1_070_236_800));
        let rec = &f[24..];
        assert_eq!(rec[0..4], 1_070_236_801u32.to_le_bytes());
        assert_eq!(rec[4..8], 234_000u32.to_le_bytes());
        let len = 20 + 8 + payload.len();
        assert_eq!(rec[8..12], (len as u32).to_le_bytes());
        assert_eq!(rec[12..16], (len as u32).to_le_bytes());
        let ip = &rec[16..];
        assert_eq!(ip.len(), len);
        assert_eq!(ip[0], 0x45);
        assert_eq!(be16(&ip[2..]), len as u16);
        assert_eq!(be16(&ip[4..]), 1, "identification: the datagram's number");
        assert_eq!(ip[8..10], [64, 17]);
        assert_eq!(ip[12..16], [192, 0, 2, 101]);
        assert_eq!(ip[16..20], [192, 0, 2, 222]);
        assert_eq!(checksum(&ip[..20]), 0, "header checksum verifies");
        let udp = &ip[20..];
        assert_eq!(be16(udp), 5060);
        assert_eq!(be16(&udp[2..]), 5061);
        assert_eq!(be16(&udp[4..]), (8 + payload.len()) as u16);
        assert_eq!(&udp[8..], payload);
        let mut pseudo = vec![192, 0, 2, 101, 192, 0, 2, 222, 0, 17];
        pseudo.extend_from_slice(&udp[4..6]);
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo), 0, "UDP checksum verifies");
    }

    #[test]
    fn an_ipv6_datagram_has_a_v6_header_and_a_checksum() {
        let payload = b"SIP/2.0 200 OK\r\n\r\n!";
        let l = line(5, "[2001:db8::1]:5060", "[2001:db8::2]:5070", payload);
        let f = capture_at(&[l], Duration::ZERO);
        let ip = &f[24 + 16..];
        assert_eq!(ip.len(), 40 + 8 + payload.len());
        assert_eq!(ip[0..4], [0x60, 0, 0, 0]);
        assert_eq!(be16(&ip[4..]), (8 + payload.len()) as u16);
        assert_eq!(ip[6..8], [17, 64]);
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        assert_eq!(ip[8..24], src.octets());
        assert_eq!(ip[24..40], dst.octets());
        let udp = &ip[40..];
        assert_eq!((be16(udp), be16(&udp[2..])), (5060, 5070));
        assert_eq!(&udp[8..], payload);
        assert_ne!(be16(&udp[6..]), 0, "mandatory over IPv6");
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&(udp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo), 0, "UDP checksum verifies");
    }

    #[test]
    fn records_follow_each_other_in_order() {
        let lines = [
            line(1, "192.0.2.1:5060", "192.0.2.2:5060", b"A"),
            line(2_500, "192.0.2.2:5060", "192.0.2.1:5060", b"BB"),
        ];
        let f = capture(&lines);
        let first = &f[24..];
        assert_eq!(first[0..4], 1_070_236_800u32.to_le_bytes());
        assert_eq!(first[4..8], 1_000u32.to_le_bytes());
        let second = &first[16 + 29..];
        assert_eq!(second[0..4], 1_070_236_802u32.to_le_bytes());
        assert_eq!(second[4..8], 500_000u32.to_le_bytes());
        assert_eq!(second[8..12], 30u32.to_le_bytes());
        assert_eq!(be16(&second[16 + 4..]), 2);
        assert_eq!(second.len(), 16 + 30);
    }
}
