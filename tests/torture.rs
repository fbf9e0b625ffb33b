//! RFC 4475 torture tests: every message of the RFC's archive (`tests/data/rfc4475/`, copied
//! byte-exact) goes through `Message::parse` and `Message::validate`, and each file gets the
//! outcome the RFC asks for (the table in the README next to the RFC's archive):
//!
//! - §3.1.1 (valid): parse and validate, plus checks that the tricky part was understood;
//! - §3.1.2 (invalid): fail with the RFC's status at validate time whenever the header section
//!   is readable, so that the element can answer (a datagram framing or Request-Line defect is
//!   recorded by the parser and reported by `validate`); only a response whose Status-Line is
//!   broken fails to parse, and is dropped;
//! - §3.2-§3.4 (transaction, application, compatibility): parse, and what the registrar or
//!   proxy needs to answer them (416, 420, 483...) is reachable through the API.

mod common;

use rstest::rstest;
use trapezoid_core::message::{Contacts, HeaderName, Message, Method, ParseErrorKind, Uri, Via};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475/");

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DIR}{name}.dat");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a torture message must yield.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// Parses and validates.
    Valid,
    /// Parses (so it can be answered) but `validate` fails with this status and reason.
    Invalid(u16, &'static str),
    /// `Message::parse` fails: the datagram is dropped.
    Unparsable(ParseErrorKind),
}

use Outcome::*;

type Check = fn(&Message);

fn none(_: &Message) {}

fn values(m: &Message, name: &str) -> Vec<String> {
    m.values(&HeaderName::parse(name))
        .map(str::to_owned)
        .collect()
}

fn sip_uri_user(uri: &str) -> Option<String> {
    match Uri::parse(uri) {
        Ok(Uri::Sip(u)) => u.user.map(str::to_owned),
        _ => None,
    }
}

// §3.1.1.1: folding everywhere, LWS around colons and separators, compact forms.
fn wsinv(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(m.max_forwards(), Some(68));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
    let to = m.to().unwrap();
    assert_eq!(to.uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some(r#""J Rosenberg \\\"""#));
    assert_eq!(from.uri, "sip:jdrosen@example.com");
    assert_eq!(from.tag(), Some("98asjd8"));
    // `Via  :` with its folded sent-protocol, then `v:` with two values.
    let vias = m.vias();
    assert_eq!(m.count(&HeaderName::Via), 3);
    let hosts: Vec<_> = vias.iter().map(|v| v.host).collect();
    assert_eq!(
        hosts,
        ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    );
    let protocols: Vec<_> = vias.iter().map(|v| v.protocol.to_string()).collect();
    assert_eq!(protocols, ["SIP/2.0/UDP", "SIP/2.0/TCP", "SIP/2.0/UDP"]);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    // Compact `s:` (empty Subject) and `m:` (Contact).
    assert_eq!(m.value(&HeaderName::Subject), Some(""));
    let Ok(Contacts::List(contacts)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].display_name, Some(r#""Quoted string \"\"""#));
    assert_eq!(contacts[0].param("newparam"), Some(Some("newvalue")));
    assert_eq!(contacts[0].param("secondparam"), Some(None));
    assert_eq!(contacts[0].param("q"), Some(Some("0.33")));
    assert_eq!(
        values(m, "NewFangledHeader"),
        ["newfangled value   continued newfangled value"]
    );
    assert_eq!(values(m, "UnknownHeaderWithUnusualValue"), [";;,,;;,;"]);
    assert_eq!(
        m.value(&HeaderName::Route),
        Some("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
    );
    assert_eq!(m.body().len(), 150);
}

// §3.1.1.2: every token character in the method, odd URI and display-name characters.
fn intmeth(m: &Message) {
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(&Method::Extension(method.into())));
    assert_eq!(m.cseq().unwrap().method, method);
    assert_eq!(
        sip_uri_user(m.request_uri().unwrap()).as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        m.to().unwrap().display_name,
        Some("\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\"")
    );
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        from.param("fromParam''~+*_!.-%"),
        Some(Some("\"работающий\""))
    );
    assert_eq!(
        m.call_id(),
        Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert_eq!(values(m, "extensionHeader-!.%*+_`'~"), ["\u{feff}大停電"]);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
}

// §3.1.1.3: %-escapes are kept as written and decoded only for comparison.
fn esc01(m: &Message) {
    let Ok(Uri::Sip(ruri)) = Uri::parse(m.request_uri().unwrap()) else {
        panic!("ruri")
    };
    assert_eq!(ruri.user, Some("sips%3Auser%40example.com"));
    assert_eq!(ruri.host, "example.net");
    let Ok(Uri::Sip(to)) = Uri::parse(m.to().unwrap().uri) else {
        panic!("to")
    };
    assert_eq!(to.aor(), "sip:user@example.com");
    assert_eq!(m.call_id(), Some("esc01.239409asdfakjkn23onasd0-3234"));
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    let Ok(Uri::Sip(contact)) = Uri::parse(c[0].uri) else {
        panic!("contact")
    };
    assert_eq!(contact.params.get("%6C%72"), Some(None));
    assert_eq!(contact.params.get("n%61me"), Some(Some("v%61lue%25%34%31")));
}

// §3.1.1.4: escaped NULs; two distinct Contacts; the AOR is not truncated.
fn escnull(m: &Message) {
    let Ok(Uri::Sip(to)) = Uri::parse(m.to().unwrap().uri) else {
        panic!("to")
    };
    assert_eq!(to.aor(), "sip:null-%00-null@example.com");
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(c.len(), 2);
    let (Ok(Uri::Sip(a)), Ok(Uri::Sip(b))) = (Uri::parse(c[0].uri), Uri::parse(c[1].uri)) else {
        panic!("contact URIs")
    };
    assert!(!a.equivalent(&b));
    assert_eq!(m.content_length(), Some(0));
}

// §3.1.1.5: `%` is no escape in a method or a header name.
fn esc02(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Extension("RE%47IST%45R".into())));
    assert_eq!(m.count(&HeaderName::Contact), 2);
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    let uris: Vec<_> = c.iter().map(|c| c.uri).collect();
    assert_eq!(
        uris,
        [
            "sip:alias1@host1.example.com",
            "sip:alias3@host3.example.com"
        ]
    );
    assert_eq!(values(m, "c%6Fntact"), ["<sip:alias2@host2.example.com>"]);
    assert_eq!(m.to().unwrap().display_name, Some("\"%Z%45\""));
}

// §3.1.1.6: no LWS between display name and `<`.
fn lwsdisp(m: &Message) {
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some("caller"));
    assert_eq!(from.uri, "sip:caller@example.com");
}

// §3.1.1.7: long values; the Via stack in order across every spelling of Via.
fn longreq(m: &Message) {
    let hosts: Vec<String> = m.vias().iter().map(|v| v.host.to_owned()).collect();
    let mut expected: Vec<String> = (1..=33)
        .rev()
        .map(|i| format!("sip{i}.example.com"))
        .collect();
    expected.push("host.example.com".into());
    // The README says 28; the archive's file (the authoritative bytes) has 34.
    assert_eq!(hosts, expected);
    assert_eq!(m.count(&HeaderName::Via), 34);
    let last = m.vias().pop().unwrap();
    assert_eq!(last.received(), Some("192.0.2.5"));
    assert!(last.branch().unwrap().starts_with("verylonglong"));
    assert!(last.branch().unwrap().ends_with("branchvalue"));
    let to = m.to().unwrap();
    assert!(to.display_name.unwrap().contains("extremeextreme"));
    let from = m.from().unwrap();
    assert!(from.tag().unwrap().starts_with("12982982982"));
    assert_eq!(m.call_id().unwrap().len(), 141);
    assert_eq!(m.body().len(), 150);
}

// §3.1.1.8: the octets after Content-Length: 0 are not part of the message.
fn dblreq(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body().is_empty());
    assert!(m.as_bytes().ends_with(b"Content-Length: 0\r\n\r\n"));
    assert!(!m.as_bytes().windows(6).any(|w| w == b"INVITE"));
    assert_eq!(m.as_bytes().len(), read("dblreq").len() - 450);
    assert_eq!(m.call_id(), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
}

// §3.1.1.9: `;` inside the Request-URI user part.
fn semiuri(m: &Message) {
    let Ok(Uri::Sip(ruri)) = Uri::parse(m.request_uri().unwrap()) else {
        panic!("ruri")
    };
    assert_eq!(ruri.user, Some("user;par=u%40example.net"));
    assert_eq!(ruri.host, "example.com");
    assert!(ruri.params.is_empty());
    assert_eq!(m.count(&HeaderName::Accept), 6);
}

// §3.1.1.10: unknown transports are tokens like the others.
fn transports(m: &Message) {
    let t: Vec<_> = m.vias().iter().map(|v| v.transport.to_owned()).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(m.call_id(), Some("transports.kijh4akdnaqjkwendsasfdj"));
}

// §3.1.1.11: a binary multipart body framed by Content-Length, NULs intact.
fn mpart01(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Message));
    assert_eq!(m.content_length(), Some(553));
    assert_eq!(m.body().len(), 553);
    assert!(m.body().contains(&0));
    let file = read("mpart01");
    assert!(file.ends_with(m.body()));
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
}

// §3.1.1.12: a UTF-8 reason phrase.
fn unreason(m: &Message) {
    assert_eq!(m.status(), Some(200));
    assert_eq!(
        m.reason(),
        Some("= 2**3 * 5**2 но сто девяносто девять - простое")
    );
}

// §3.1.1.13: an empty reason phrase.
fn noreason(m: &Message) {
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.reason(), Some(""));
}

// §3.1.2.2: the datagram ends 9999 - 150 octets early; the body is what there is.
fn clerr(m: &Message) {
    assert_eq!(m.content_length(), Some(9999));
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert!(read("clerr").ends_with(m.body()));
    assert_eq!(m.call_id(), Some("clerr.0ha0isndaksdjweiafasdk3"));
}

// §3.1.2.3: `-999` is no length ("the result must not be used as a counter or array index").
fn ncl(m: &Message) {
    assert_eq!(m.content_length(), None);
    assert!(read("ncl").ends_with(m.body()));
    assert!(m.top_via().is_some());
}

// §3.1.2.8: what lies between the method and the version, embedded LWS included.
fn lwsruri(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri(), Some("sip:user@example.com; lr"));
    assert_eq!(m.version(), "SIP/2.0");
}

// §3.1.2.9: the runs of SP are skipped.
fn lwsstart(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri(), Some("sip:user@example.com"));
    assert_eq!(m.version(), "SIP/2.0");
    assert_eq!(m.body().len(), 150);
}

// §3.1.2.10: the version without the trailing SP.
fn trws(m: &Message) {
    assert_eq!(m.method(), Some(&Method::Options));
    assert_eq!(m.request_uri(), Some("sip:remote-target@example.com"));
    assert_eq!(m.version(), "SIP/2.0");
}

// §3.2.1: a branch that is only the magic cookie: the transaction layer's call.
fn badbranch(m: &Message) {
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK"));
}

// §3.3.1: what is there is still readable.
fn insuf(m: &Message) {
    assert_eq!(m.call_id(), None);
    assert!(m.from().is_none() && m.to().is_none());
    assert!(m.top_via().is_some());
}

// §3.3.2 / §3.3.3: the Request-URI is an opaque URI, so the answer is 416.
fn unkscm(m: &Message) {
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        uri,
        Uri::Other {
            scheme: "nobodyKnowsThisScheme",
            rest: "totallyopaquecontent"
        }
    );
}

fn novelsc(m: &Message) {
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(uri.scheme(), "soap.beep");
    assert!(matches!(uri, Uri::Other { .. }));
}

// §3.3.4: non-SIP URIs in To, From, Contact: the registrar sees them as such.
fn unksm2(m: &Message) {
    assert_eq!(Uri::parse(m.to().unwrap().uri).unwrap().scheme(), "isbn");
    assert_eq!(Uri::parse(m.from().unwrap().uri).unwrap().scheme(), "http");
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(Uri::parse(c[0].uri).unwrap().scheme(), "name");
}

// §3.3.5: the option tags to list in Unsupported (420).
fn bext01(m: &Message) {
    assert_eq!(
        values(m, "Require"),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(
        values(m, "Proxy-Require"),
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
    assert_eq!(m.top_via().unwrap().transport, "TLS");
}

fn invut(m: &Message) {
    assert_eq!(
        m.value(&HeaderName::ContentType),
        Some("application/unknownformat")
    );
    assert_eq!(m.body().len(), 40);
}

fn regaut01(m: &Message) {
    assert_eq!(
        values(m, "Authorization"),
        ["NoOneKnowsThisScheme opaque-data=here"]
    );
    assert_eq!(m.content_length(), Some(0));
}

// §3.3.10: the second Via's sent-by is the broadcast address; the proxy must see it.
fn bcast(m: &Message) {
    assert_eq!(m.status(), Some(200));
    let vias: Vec<Via<'_>> = m.vias();
    assert_eq!(vias[1].host, "255.255.255.255");
}

// §3.3.11: Max-Forwards 0 (483 from a proxy).
fn zeromf(m: &Message) {
    assert_eq!(m.max_forwards(), Some(0));
}

// §3.3.12: `unknownparam` is a contact-param, not part of the URI.
fn cparam01(m: &Message) {
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(c[0].param("unknownparam"), Some(None));
}

// §3.3.13: inside `<>`, `unknownparam` is a URI parameter the binding keeps.
fn cparam02(m: &Message) {
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
    assert!(c[0].params.is_empty());
    let Ok(Uri::Sip(u)) = Uri::parse(c[0].uri) else {
        panic!("uri")
    };
    assert_eq!(u.params.get("unknownparam"), Some(None));
}

// §3.3.14: an escaped Route header in a (compact `M:`) Contact URI is kept.
fn regescrt(m: &Message) {
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!("contacts")
    };
    let Ok(Uri::Sip(u)) = Uri::parse(c[0].uri) else {
        panic!("uri")
    };
    assert_eq!(u.headers, Some("Route=%3Csip:sip.example.com%3E"));
}

fn sdp01(m: &Message) {
    assert_eq!(values(m, "Accept"), ["text/nobodyKnowsThis"]);
}

// §3.4.1: RFC 2543 style: no branch, no tags, no Max-Forwards, no Content-Length.
fn inv2543(m: &Message) {
    let via = m.top_via().unwrap();
    assert_eq!(via.branch(), None);
    assert_eq!(m.from().unwrap().tag(), None);
    assert_eq!(m.max_forwards(), None);
    assert_eq!(m.content_length(), None);
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert!(m.body().ends_with(b"RTP/AVP 0\r\n"));
}

#[rstest]
// §3.1.1: valid messages.
#[case::wsinv("wsinv", Valid, wsinv)]
#[case::intmeth("intmeth", Valid, intmeth)]
#[case::esc01("esc01", Valid, esc01)]
#[case::escnull("escnull", Valid, escnull)]
#[case::esc02("esc02", Valid, esc02)]
#[case::lwsdisp("lwsdisp", Valid, lwsdisp)]
#[case::longreq("longreq", Valid, longreq)]
#[case::dblreq("dblreq", Valid, dblreq)]
#[case::semiuri("semiuri", Valid, semiuri)]
#[case::transports("transports", Valid, transports)]
#[case::mpart01("mpart01", Valid, mpart01)]
#[case::unreason("unreason", Valid, unreason)]
#[case::noreason("noreason", Valid, noreason)]
// §3.1.2: invalid messages.
#[case::badinv01("badinv01", Invalid(400, "Bad Via"), none)]
// RFC 3261 §18.3: on a datagram a framing error leaves the request answerable with 400.
#[case::clerr("clerr", Invalid(400, "Content-Length Larger Than Message"), clerr)]
#[case::ncl("ncl", Invalid(400, "Bad Content-Length"), ncl)]
#[case::scalar02("scalar02", Invalid(400, "Bad CSeq"), none)]
#[case::scalarlg("scalarlg", Invalid(400, "Bad CSeq"), none)]
#[case::quotbal("quotbal", Invalid(400, "Bad To"), none)]
#[case::ltgtruri("ltgtruri", Invalid(400, "Bad Request-URI"), none)]
// The Request-Line is read leniently so that these are answered with 400, never forwarded.
#[case::lwsruri("lwsruri", Invalid(400, "LWS In Request-URI"), lwsruri)]
#[case::lwsstart("lwsstart", Invalid(400, "Bad Request-Line"), lwsstart)]
#[case::trws("trws", Invalid(400, "Bad Request-Line"), trws)]
// The RFC allows rejecting or ignoring the escaped headers; a proxy would otherwise have to
// strip them before forwarding, so they are rejected.
#[case::escruri("escruri", Invalid(400, "Headers In Request-URI"), none)]
// The RFC allows ignoring a Date the element does not use; the core never reads Date.
#[case::baddate("baddate", Valid, none)]
#[case::regbadct("regbadct", Invalid(400, "Bad Contact"), none)]
#[case::badaspec("badaspec", Invalid(400, "Bad To"), none)]
#[case::baddn("baddn", Invalid(400, "Bad From"), none)]
#[case::badvers("badvers", Invalid(505, "Version Not Supported"), none)]
#[case::mismatch01("mismatch01", Invalid(400, "CSeq Method Mismatch"), none)]
#[case::mismatch02("mismatch02", Invalid(400, "CSeq Method Mismatch"), none)]
#[case::bigcode("bigcode", Unparsable(ParseErrorKind::BadStartLine), none)]
// §3.2: transaction layer.
#[case::badbranch("badbranch", Valid, badbranch)]
// §3.3: application layer.
#[case::insuf("insuf", Invalid(400, "Missing To"), insuf)]
#[case::unkscm("unkscm", Valid, unkscm)]
#[case::novelsc("novelsc", Valid, novelsc)]
#[case::unksm2("unksm2", Valid, unksm2)]
#[case::bext01("bext01", Valid, bext01)]
#[case::invut("invut", Valid, invut)]
#[case::regaut01("regaut01", Valid, regaut01)]
#[case::multi01("multi01", Invalid(400, "Duplicate To"), none)]
#[case::mcl01("mcl01", Invalid(400, "Duplicate Content-Length"), none)]
#[case::bcast("bcast", Valid, bcast)]
#[case::zeromf("zeromf", Valid, zeromf)]
#[case::cparam01("cparam01", Valid, cparam01)]
#[case::cparam02("cparam02", Valid, cparam02)]
#[case::regescrt("regescrt", Valid, regescrt)]
#[case::sdp01("sdp01", Valid, sdp01)]
// §3.4: backward compatibility.
#[case::inv2543("inv2543", Valid, inv2543)]
fn rfc4475(#[case] file: &str, #[case] outcome: Outcome, #[case] check: Check) {
    let bytes = read(file);
    let parsed = Message::parse(&bytes, &Default::default());
    match (outcome, parsed) {
        (Valid, Ok(m)) => {
            assert_eq!(m.validate(), Ok(()), "{file}");
            check(&m);
        }
        (Invalid(status, reason), Ok(m)) => {
            let e = m.validate().expect_err(file);
            assert_eq!((e.status, e.reason), (status, reason), "{file}");
            check(&m);
        }
        (Unparsable(kind), Err(e)) => {
            assert_eq!(e.kind, kind, "{file}");
            assert_eq!(e.status, 400, "{file}");
        }
        (outcome, parsed) => panic!("{file}: wanted {outcome:?}, got {parsed:?}"),
    }
}

/// `test.dat` is in the archive but in no section of the RFC (a Request-Line without a
/// version, a header line without a colon): it only has to fail without panicking.
#[test]
fn unclassified_test_dat_fails_cleanly() {
    let e = Message::parse(&read("test"), &Default::default()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::BadStartLine);
}

/// Over a stream (RFC 3261 §18.3: "The Content-Length header field MUST be used with stream
/// oriented transports") the framing defects that a datagram survives are fatal or mean "wait":
/// RFC 4475 §3.1.2.2 clerr waits for more data, §3.1.2.3 ncl and §3.3.9 mcl01 cannot be
/// framed ("the connection should be closed"), and §3.4.1 inv2543 has no Content-Length.
#[rstest]
#[case::clerr("clerr", ParseErrorKind::Truncated)]
#[case::ncl("ncl", ParseErrorKind::BadContentLength)]
#[case::mcl01("mcl01", ParseErrorKind::BadContentLength)]
#[case::inv2543("inv2543", ParseErrorKind::BadContentLength)]
fn stream_framing_is_strict(#[case] file: &str, #[case] kind: ParseErrorKind) {
    let e = Message::parse_stream(&read(file), &Default::default()).unwrap_err();
    assert_eq!(e.kind, kind, "{file}");
}

/// dblreq over a stream: Content-Length 0 ends the REGISTER, and the octets after it are the
/// next message (after a CRLF, skipped as §7.5 allows), framed by its own Content-Length.
#[test]
fn stream_takes_one_message_at_a_time() {
    let bytes = read("dblreq");
    let (m, used) = Message::parse_stream(&bytes, &Default::default()).unwrap();
    assert_eq!(m.method(), Some(&Method::Register));
    assert_eq!(used, bytes.len() - 450);
    let rest = &bytes[used..];
    assert!(rest.starts_with(b"\r\nINVITE sip:joe@example.com SIP/2.0\r\n"));
    let (invite, used) = Message::parse_stream(rest, &Default::default()).unwrap();
    assert_eq!(invite.method(), Some(&Method::Invite));
    assert_eq!(invite.body().len(), 150);
    assert!(used <= rest.len());
    // The same message cut short: wait for the rest.
    let e = Message::parse_stream(&rest[..used - 1], &Default::default()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::Truncated);
}

/// A relayed response gets a subset of a request's checks (`validate_response`): whatever
/// passes `validate` passes it too, and whatever it refuses `validate` refuses as well.
/// Over every file of the archive, and each as a response (its start line replaced by a
/// Status-Line), so that the torture headers meet the response checks.
#[test]
fn the_response_checks_are_a_subset_of_the_full_checks() {
    let mut compared = 0;
    for f in common::dat_files(DIR) {
        let bytes = read(&f);
        let line_end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let mut as_response = b"SIP/2.0 180 Ringing\r".to_vec();
        as_response.extend_from_slice(&bytes[line_end..]);
        for msg in [&bytes, &as_response]
            .into_iter()
            .filter_map(|b| Message::parse(b, &Default::default()).ok())
        {
            compared += 1;
            if msg.validate().is_ok() {
                assert_eq!(msg.validate_response(), Ok(()), "{f}");
            }
            if let Err(e) = msg.validate_response() {
                assert!(
                    msg.validate().is_err(),
                    "{f}: only the response check failed: {e:?}"
                );
            }
        }
    }
    assert!(compared >= 90, "{compared} messages compared");
}

/// The tags, branch and sent-by address read from the parse cache are what the parsed
/// views say, over every file of the archive (the cache walks each value's params once,
/// the views walk them on every read).
#[test]
fn cached_reads_agree_with_the_views() {
    let mut compared = 0;
    for f in common::dat_files(DIR) {
        let Ok(msg) = Message::parse(&read(&f), &Default::default()) else {
            continue;
        };
        compared += 1;
        assert_eq!(msg.to_tag(), msg.to().and_then(|t| t.tag()), "{f}");
        assert_eq!(msg.from_tag(), msg.from().and_then(|t| t.tag()), "{f}");
        let via = msg.top_via();
        assert_eq!(
            msg.top_via_branch(),
            via.as_ref().and_then(|v| v.branch()),
            "{f}"
        );
        assert_eq!(
            msg.top_via_rport(),
            via.as_ref().and_then(|v| v.rport()),
            "{f}"
        );
        assert_eq!(
            msg.top_via_host_ip(),
            via.as_ref().and_then(|v| v.host_ip()),
            "{f}"
        );
    }
    assert!(compared >= 45, "{compared} messages compared");
}

/// From and To URIs, read in either order, are their own parse: the second read may be the
/// first's parse moved over when the two URIs are the same text (a REGISTER's To and From).
#[test]
fn from_and_to_uris_whichever_is_read_first() {
    let show = |u: Option<Result<Uri<'_>, trapezoid_core::message::ParseError>>| {
        u.map(|u| u.map(|u| format!("{u:?}")))
    };
    let mut same_text = 0;
    for f in common::dat_files(DIR) {
        let bytes = read(&f);
        let (Ok(a), Ok(b)) = (
            Message::parse(&bytes, &Default::default()),
            Message::parse(&bytes, &Default::default()),
        ) else {
            continue;
        };
        let fresh =
            |n: Option<trapezoid_core::message::NameAddr<'_>>| show(n.map(|n| Uri::parse(n.uri)));
        let (from_first, to_second) = (show(a.from_uri()), show(a.to_uri()));
        let (to_first, from_second) = (show(b.to_uri()), show(b.from_uri()));
        assert_eq!(from_first, fresh(a.from()), "{f}");
        assert_eq!(to_second, fresh(a.to()), "{f}");
        assert_eq!(to_first, fresh(b.to()), "{f}");
        assert_eq!(from_second, fresh(b.from()), "{f}");
        same_text += usize::from(a.from().map(|n| n.uri) == a.to().map(|n| n.uri));
    }
    assert!(
        same_text >= 5,
        "{same_text} files with To and From the same URI"
    );
}

/// Every file of the archive has a case above (or is `test.dat`).
#[test]
fn every_file_is_covered() {
    let source = include_str!("torture.rs");
    let files = common::dat_files(DIR);
    assert_eq!(files.len(), 50);
    for f in files.iter().filter(|f| *f != "test") {
        assert!(
            source.contains(&format!("#[case::{f}(\"{f}\"")),
            "{f} has no case"
        );
    }
}
