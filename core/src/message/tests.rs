//! Whole-message tests on literal SIP text, and a property test that no input panics.

use super::*;

fn parse(text: &str) -> Message {
    Message::parse(text.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn parse_err(bytes: &[u8]) -> ParseError {
    match Message::parse(bytes, &Limits::default()) {
        Ok(m) => panic!("parsed: {:?}", String::from_utf8_lossy(m.as_bytes())),
        Err(e) => e,
    }
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
    Max-Forwards: 70\r\n\
    To: Bob <sip:bob@biloxi.example.com>\r\n\
    From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
    CSeq: 314159 INVITE\r\n\
    Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
    Content-Type: application/sdp\r\n\
    Content-Length: 4\r\n\
    \r\n\
    v=0\n";

/// The views a message keeps (top Via, To, From, Request-URI) are what parsing the text
/// gives, and they take no part in equality.
#[test]
fn cached_views_read_like_the_text_and_do_not_change_equality() {
    let read = parse(INVITE);
    let unread = parse(INVITE);
    let via = read.top_via().unwrap();
    assert_eq!(
        via,
        Via::parse(read.value(&HeaderName::Via).unwrap()).unwrap()
    );
    assert_eq!(read.top_via().unwrap(), via);
    assert_eq!(
        read.to().unwrap(),
        NameAddr::parse(read.value(&HeaderName::To).unwrap()).unwrap()
    );
    assert_eq!(
        read.from().unwrap(),
        NameAddr::parse(read.value(&HeaderName::From).unwrap()).unwrap()
    );
    assert_eq!(
        read.request_uri_parsed().unwrap().unwrap(),
        Uri::parse(read.request_uri().unwrap()).unwrap()
    );
    assert_eq!(read, unread);
    assert_eq!(read.clone(), unread);
}

#[test]
fn basic_request() {
    let m = parse(INVITE);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri(), Some("sip:bob@biloxi.example.com"));
    assert_eq!(m.version(), "SIP/2.0");
    assert_eq!(m.status(), None);
    assert_eq!(m.reason(), None);
    assert_eq!(m.headers().len(), 9);
    assert_eq!(m.body(), b"v=0\n");
    assert_eq!(m.call_id(), Some("a84b4c76e66710@pc33.atlanta.example.com"));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 314159,
            method: "INVITE"
        })
    );
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.content_length(), Some(4));
    assert_eq!(m.expires(), None);
    assert_eq!(m.from().and_then(|f| f.tag()), Some("1928301774"));
    assert_eq!(m.to().map(|t| t.uri), Some("sip:bob@biloxi.example.com"));
    assert_eq!(
        m.top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .as_deref(),
        Some("z9hG4bK776asdhds")
    );
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(m.as_bytes(), INVITE.as_bytes());
    let h = &m.headers()[0];
    assert_eq!(h.raw_name(&m), "Via");
    assert_eq!(
        &m.as_bytes()[h.line_range()],
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    );
}

#[test]
fn compact_forms_and_case_insensitivity() {
    let m = parse(
        "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:c@d>;tag=1\r\n\
         t: sip:a@b\r\ni: cid\r\nCSEQ: 1 OPTIONS\r\nm: <sip:c@h>\r\nk: path, gruu\r\nl: 0\r\n\r\n",
    );
    assert_eq!(m.call_id(), Some("cid"));
    assert_eq!(m.count(&HeaderName::Via), 1);
    assert_eq!(m.value(&HeaderName::parse("Call-Id")), Some("cid"));
    assert_eq!(
        m.values(&HeaderName::Supported).collect::<Vec<_>>(),
        ["path", "gruu"]
    );
    assert_eq!(m.headers()[0].raw_name(&m), "v");
    assert_eq!(m.headers()[0].name, HeaderName::Via);
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn folding_and_space_before_colon() {
    let text = "REGISTER sip:example.com SIP/2.0\r\n\
        Via : SIP/2.0/UDP\r\n  host.example.com\r\n\t;branch=z9hG4bKf\r\n\
        TO :\r\n sip:user@example.com\r\n\
        From: <sip:user@example.com>\r\n  ;tag=x\r\n\
        Call-ID: fold\r\nCSeq: 0009\r\n  REGISTER\r\n\
        Subject:\r\n\
        X-Folded: one\r\n two\r\n\r\n";
    let m = parse(text);
    // Offsets are kept: the folds became spaces.
    assert_eq!(m.as_bytes().len(), text.len());
    assert_eq!(
        m.value(&HeaderName::Via),
        Some("SIP/2.0/UDP    host.example.com  \t;branch=z9hG4bKf")
    );
    assert_eq!(m.top_via().map(|v| v.host), Some("host.example.com"));
    assert_eq!(m.to().map(|t| t.uri), Some("sip:user@example.com"));
    assert_eq!(m.from().and_then(|f| f.tag()), Some("x"));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 9,
            method: "REGISTER"
        })
    );
    assert_eq!(m.value(&HeaderName::Subject), Some(""));
    assert_eq!(m.value(&HeaderName::parse("x-folded")), Some("one   two"));
    let folded = &m.headers()[6];
    assert_eq!(
        &m.as_bytes()[folded.line_range()],
        b"X-Folded: one   two\r\n"
    );
    assert_eq!(m.headers().len(), 7);
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn lf_only_line_ends() {
    let m = parse(
        "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:c@d>;tag=1\n\
        To: <sip:a@b>\nCall-ID: x\nCSeq: 2 OPTIONS\nX: a\n b\nContent-Length: 3\n\nabcJUNK",
    );
    assert_eq!(m.body(), b"abc");
    assert_eq!(m.value(&HeaderName::parse("x")), Some("a  b"));
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn comma_lists_split_outside_quotes_and_angles() {
    let m = parse(
        "INVITE sip:a@b SIP/2.0\r\n\
         Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=\"x,y\"\r\n\
         Via: SIP/2.0/UDP c;branch=z9hG4bK3\r\n\
         Contact: \"Smith, Bob\" <sip:bob@x;p=1,2>;q=0.5, <sip:c@y>\r\n\
         Route: <sip:p1;lr>,<sip:p2;lr>\r\n\
         Authorization: Digest username=\"bob\", realm=\"x\", nonce=\"a,b\"\r\n\
         Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n\
         Allow: INVITE,ACK , BYE\r\n\
         Require:\r\n\
         Path: <sip:p1>, <sip:p2>\r\n\r\n",
    );
    let vias: Vec<_> = m.values(&HeaderName::Via).collect();
    assert_eq!(
        vias,
        [
            "SIP/2.0/UDP a;branch=z9hG4bK1",
            "SIP/2.0/TCP b;branch=\"x,y\"",
            "SIP/2.0/UDP c;branch=z9hG4bK3"
        ]
    );
    assert_eq!(m.vias().len(), 3);
    assert_eq!(m.vias()[1].branch(), Some("\"x,y\""));
    let contacts: Vec<_> = m.values(&HeaderName::Contact).collect();
    assert_eq!(
        contacts,
        ["\"Smith, Bob\" <sip:bob@x;p=1,2>;q=0.5", "<sip:c@y>"]
    );
    assert_eq!(m.count(&HeaderName::Route), 2);
    assert_eq!(m.count(&HeaderName::Authorization), 1);
    assert_eq!(m.count(&HeaderName::Date), 1);
    assert_eq!(
        m.values(&HeaderName::Allow).collect::<Vec<_>>(),
        ["INVITE", "ACK", "BYE"]
    );
    assert_eq!(m.count(&HeaderName::Require), 0);
    assert_eq!(m.count(&HeaderName::parse("path")), 2);
    assert_eq!(m.count(&HeaderName::Unsupported), 0);
    match m.contacts() {
        Ok(Contacts::List(list)) => {
            assert_eq!(list.len(), 2);
            assert_eq!(list[0].display_name, Some("\"Smith, Bob\""));
            assert_eq!(list[0].param("q"), Some(Some("0.5")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn star_contact() {
    let m = parse("REGISTER sip:x SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n");
    assert_eq!(m.contacts(), Ok(Contacts::Star));
    assert_eq!(m.expires(), Some(0));
    let m = parse("REGISTER sip:x SIP/2.0\r\n\r\n");
    assert_eq!(m.contacts(), Ok(Contacts::List(vec![])));
    let m = parse("REGISTER sip:x SIP/2.0\r\nContact: <sip:a@b\r\n\r\n");
    assert!(m.contacts().is_err());
}

#[test]
fn ipv6_via_and_uris() {
    let m = parse(
        "REGISTER sip:[2001:db8::10] SIP/2.0\r\n\
         Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport;received=2001:db8::9\r\n\
         From: <sip:bob@[2001:db8::10]>;tag=1\r\nTo: <sip:bob@[2001:db8::10]>\r\n\
         Call-ID: v6\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@[2001:db8::1]:5060;transport=udp>\r\n\r\n",
    );
    let v = m.top_via().unwrap();
    assert_eq!(v.host, "[2001:db8::1]");
    assert_eq!(v.port, Some(5060));
    assert_eq!(v.rport(), Some(None));
    assert_eq!(v.received(), Some("2001:db8::9"));
    let Ok(Uri::Sip(ruri)) = Uri::parse(m.request_uri().unwrap()) else {
        panic!()
    };
    assert_eq!(ruri.host, "[2001:db8::10]");
    let Ok(Contacts::List(c)) = m.contacts() else {
        panic!()
    };
    let Ok(Uri::Sip(cu)) = Uri::parse(c[0].uri) else {
        panic!()
    };
    assert_eq!((cu.host, cu.port), ("[2001:db8::1]", Some(5060)));
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn quoted_display_names_with_escaped_quotes() {
    let m = parse(
        "OPTIONS sip:a@b SIP/2.0\r\nTo: \"J Rosenberg \\\\\\\"\" <sip:j@example.com>\r\n\
         From: \"a \\\"quoted\\\" name\"<sip:f@example.com>;tag=9\r\n\r\n",
    );
    let to = m.to().unwrap();
    assert_eq!(to.display_name, Some("\"J Rosenberg \\\\\\\"\""));
    assert_eq!(to.uri, "sip:j@example.com");
    let from = m.from().unwrap();
    assert_eq!(from.display_name, Some("\"a \\\"quoted\\\" name\""));
    assert_eq!(from.tag(), Some("9"));
}

#[test]
fn responses() {
    let m = parse("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
    assert!(!m.is_request());
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.reason(), Some("Ringing"));
    assert_eq!(m.method(), None);
    assert_eq!(m.request_uri(), None);
    let m = parse("SIP/2.0 100 \r\n\r\n");
    assert_eq!(m.reason(), Some(""));
    let m = parse("SIP/2.0 486 Busy Here Now\r\n\r\n");
    assert_eq!(m.reason(), Some("Busy Here Now"));
    for bad in [
        "SIP/2.0 100\r\n\r\n",
        "SIP/2.0 099 Low\r\n\r\n",
        "SIP/2.0 700 High\r\n\r\n",
        "SIP/2.0 4294967301 Big\r\n\r\n",
        "SIP/2.0 20x OK\r\n\r\n",
        "SIP/2 200 OK\r\n\r\n",
    ] {
        assert_eq!(
            parse_err(bad.as_bytes()).kind,
            ParseErrorKind::BadStartLine,
            "{bad}"
        );
    }
}

#[test]
fn framing() {
    // Leading CRLFs skipped (§7.5), trailing octets dropped.
    let m = parse("\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 2\r\n\r\nokEXTRA");
    assert!(m.as_bytes().starts_with(b"OPTIONS"));
    assert!(m.as_bytes().ends_with(b"\r\n\r\nok"));
    assert_eq!(m.body(), b"ok");
    // No Content-Length: the rest of the datagram.
    assert_eq!(
        parse("OPTIONS sip:a@b SIP/2.0\r\n\r\nall of it").body(),
        b"all of it"
    );
    // No empty line at the end of the datagram.
    let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x");
    assert_eq!(m.call_id(), Some("x"));
    assert_eq!(m.body(), b"");
    // ... is completed, so that every header line ends in a line break.
    assert_eq!(
        m.as_bytes(),
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"
    );
    let line = m.headers()[0].line_range();
    assert_eq!(&m.as_bytes()[line], b"Call-ID: x\r\n");
    let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r");
    assert_eq!(
        m.as_bytes(),
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"
    );
    assert_eq!(m.call_id(), Some("x"));
    let m = parse("OPTIONS sip:a@b SIP/2.0\nCall-ID: x\n");
    assert_eq!(m.as_bytes(), b"OPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\r\n");
    // Binary bodies are fine, headers must be UTF-8.
    let mut bin = b"MESSAGE sip:a@b SIP/2.0\r\nl: 3\r\n\r\n".to_vec();
    bin.extend_from_slice(&[0, 0xff, 0x80]);
    let m = Message::parse(&bin, &Limits::default()).unwrap();
    assert_eq!(m.body(), [0, 0xff, 0x80]);
    assert_eq!(m.as_bytes(), &bin[..]);
    assert_eq!(m.value(&HeaderName::ContentLength), Some("3"));
    // Content-Length ending inside a UTF-8 character, and octets that are not UTF-8 after
    // the body: the message is what Content-Length framed, its head still text.
    let cut = "MESSAGE sip:a@b SIP/2.0\r\nl: 1\r\n\r\n\u{e9}";
    let m = parse(cut);
    assert_eq!(m.body(), [0xc3]);
    assert_eq!(m.as_bytes(), &cut.as_bytes()[..cut.len() - 1]);
    assert_eq!(m.value(&HeaderName::ContentLength), Some("1"));
    let mut trailing = b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi".to_vec();
    trailing.push(0xff);
    let m = Message::parse(&trailing, &Limits::default()).unwrap();
    assert_eq!(m.body(), b"hi");
    assert_eq!(m.as_bytes(), &trailing[..trailing.len() - 1]);
    assert_eq!(m.request_uri(), Some("sip:a@b"));

    let e = parse_err(b"OPTIONS sip:a@b SIP/2.0\r\nSubject: \xff\r\n\r\n");
    assert_eq!((e.kind, e.status), (ParseErrorKind::NotUtf8, 400));
    assert_eq!(
        parse_err(b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n").kind,
        ParseErrorKind::BadHeader
    );
    assert_eq!(
        parse_err(b"OPTIONS sip:a@b SIP/2.0\r\n cont: x\r\n\r\n").kind,
        ParseErrorKind::BadHeader
    );
    assert_eq!(
        parse_err(b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n").kind,
        ParseErrorKind::BadHeader
    );
    assert_eq!(
        parse_err(b"OPTIONS sip:a@b SIP/2.0\r\n: x\r\n\r\n").kind,
        ParseErrorKind::BadHeader
    );
    assert_eq!(parse_err(b"\r\n\r\n").kind, ParseErrorKind::Empty);
    assert_eq!(
        parse_err(b"OPTIONS sip:a@b SIP/2.0").kind,
        ParseErrorKind::Truncated
    );
    // Conflicting Content-Lengths parse (rest of the datagram) so that validate can say 400.
    let m = parse("OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nabc");
    assert_eq!(m.body(), b"abc");
    assert_eq!(
        m.validate().unwrap_err().kind,
        ParseErrorKind::MissingHeader
    );
}

/// §18.3 on a datagram: a Content-Length that does not frame the message keeps the rest of
/// the datagram as the body, and `validate` reports it (after the start line and URI checks).
#[test]
fn datagram_framing_defects_are_answerable() {
    let defect = |text: &str| {
        let m = parse(&format!("{}{text}", valid_base()));
        (m.body().to_vec(), m.validate().unwrap_err())
    };
    let (body, e) = defect("l: 10\r\n\r\nshort");
    assert_eq!(body, b"short");
    assert_eq!(
        (e.kind, e.status, e.reason),
        (
            ParseErrorKind::Truncated,
            400,
            "Content-Length Larger Than Message"
        )
    );
    for bad in [
        "l: -1",
        "l: 1 2",
        "Content-Length: five",
        "l: 99999999999999999999999",
    ] {
        let (body, e) = defect(&format!("{bad}\r\n\r\nabc"));
        assert_eq!(body, b"abc", "{bad}");
        assert_eq!(
            (e.kind, e.status, e.reason),
            (ParseErrorKind::BadContentLength, 400, "Bad Content-Length"),
            "{bad}"
        );
    }
    // An unreadable value is reported even when a readable one disagrees with it.
    let (_, e) = defect("l: 3\r\nContent-Length: x\r\n\r\nabc");
    assert_eq!(e.kind, ParseErrorKind::BadContentLength);
    // A broken Request-URI is reported first; a missing header after the framing defect.
    let m = parse("OPTIONS <sip:a@b> SIP/2.0\r\nl: 9\r\n\r\n");
    assert_eq!(m.validate().unwrap_err().reason, "Bad Request-URI");
    let m = parse("OPTIONS sip:a@b SIP/2.0\r\nl: 9\r\n\r\n");
    assert_eq!(m.validate().unwrap_err().kind, ParseErrorKind::Truncated);
}

/// §18.3 on a stream: Content-Length is the only boundary.
#[test]
fn stream_framing() {
    let limits = Limits::default();
    let msg = format!("{}l: 2\r\n\r\nok", valid_base());
    // Two messages and keep-alive CRLFs in one buffer: one at a time.
    let buf = format!("\r\n\r\n{msg}{msg}\r\n");
    let (m, used) = Message::parse_stream(buf.as_bytes(), &limits).unwrap();
    assert_eq!(used, 4 + msg.len());
    assert_eq!(m.body(), b"ok");
    assert_eq!(m.validate(), Ok(()));
    let rest = &buf.as_bytes()[used..];
    let (m, used) = Message::parse_stream(rest, &limits).unwrap();
    assert_eq!((m.body(), used), (&b"ok"[..], msg.len()));
    assert_eq!(
        Message::parse_stream(&rest[used..], &limits)
            .unwrap_err()
            .kind,
        ParseErrorKind::Empty
    );
    // Every prefix of a message is "wait for more", never a message or another error.
    for cut in 0..msg.len() {
        let e = Message::parse_stream(&msg.as_bytes()[..cut], &limits).unwrap_err();
        let wanted = if cut == 0 {
            ParseErrorKind::Empty
        } else {
            ParseErrorKind::Truncated
        };
        assert_eq!(e.kind, wanted, "cut at {cut}");
    }
    // Unframeable: the stream cannot be resynchronised.
    for (extra, reason) in [
        ("", "Missing Content-Length"),
        ("l: -1\r\n", "Bad Content-Length"),
        ("l: 1\r\nl: 2\r\n", "Conflicting Content-Length"),
    ] {
        let text = format!("{}{extra}\r\nab", valid_base());
        let e = Message::parse_stream(text.as_bytes(), &limits).unwrap_err();
        assert_eq!(
            (e.kind, e.reason),
            (ParseErrorKind::BadContentLength, reason),
            "{extra}"
        );
    }
    // The limit bounds the message, not the buffer.
    let small = Limits {
        message_bytes_max: msg.len(),
        headers_max: 256,
    };
    let two = format!("{msg}{msg}");
    assert!(Message::parse_stream(two.as_bytes(), &small).is_ok());
    let tiny = Limits {
        message_bytes_max: msg.len() - 1,
        headers_max: 256,
    };
    let e = Message::parse_stream(two.as_bytes(), &tiny).unwrap_err();
    assert_eq!((e.kind, e.status), (ParseErrorKind::TooLarge, 513));
    let big_body = format!("{}l: 100000\r\n\r\n", valid_base());
    assert_eq!(
        Message::parse_stream(big_body.as_bytes(), &limits)
            .unwrap_err()
            .kind,
        ParseErrorKind::TooLarge
    );
    // Request-Line defects do not touch framing: the message parses and validate says 400.
    let lws = msg.replacen("OPTIONS ", "OPTIONS  ", 1);
    let (m, used) = Message::parse_stream(lws.as_bytes(), &limits).unwrap();
    assert_eq!(used, lws.len());
    assert_eq!(m.validate().unwrap_err().reason, "Bad Request-Line");
}

#[test]
fn limits() {
    let small = Limits {
        message_bytes_max: 10,
        headers_max: 256,
    };
    let e = Message::parse(INVITE.as_bytes(), &small).unwrap_err();
    assert_eq!((e.kind, e.status), (ParseErrorKind::TooLarge, 513));
    let few = Limits {
        message_bytes_max: 65_535,
        headers_max: 3,
    };
    assert_eq!(
        Message::parse(INVITE.as_bytes(), &few).unwrap_err().kind,
        ParseErrorKind::TooManyHeaders
    );
    assert_eq!(
        Limits::default(),
        Limits {
            message_bytes_max: 65_535,
            headers_max: 256
        }
    );
}

#[test]
fn request_line_is_read_leniently_and_validated_strictly() {
    // Not recognisably a SIP request: nothing to answer.
    for bad in [
        "INVITE sip:a@b\r\n\r\n",
        "INVITE  SIP/2.0\r\n\r\n",
        "INVITE sip:a@b HTTP/1.1\r\n\r\n",
        "INVITE sip:a@b SIP/2.0 x\r\n\r\n",
        "IN<VITE sip:a@b SIP/2.0\r\n\r\n",
        " \r\n\r\n",
    ] {
        assert_eq!(
            parse_err(bad.as_bytes()).kind,
            ParseErrorKind::BadStartLine,
            "{bad}"
        );
    }
    // Readable but malformed (RFC 4475 §3.1.2.8-10): parsed, then refused by validate.
    for (bad, uri, reason) in [
        ("INVITE  sip:a@b SIP/2.0", "sip:a@b", "Bad Request-Line"),
        ("INVITE sip:a@b  SIP/2.0", "sip:a@b", "Bad Request-Line"),
        ("INVITE sip:a@b SIP/2.0 ", "sip:a@b", "Bad Request-Line"),
        (" INVITE sip:a@b SIP/2.0", "sip:a@b", "Bad Request-Line"),
        ("INVITE\tsip:a@b SIP/2.0", "sip:a@b", "Bad Request-Line"),
        (
            "INVITE sip:a@b; lr SIP/2.0",
            "sip:a@b; lr",
            "LWS In Request-URI",
        ),
        (
            "INVITE  sip:a@b;\t lr  SIP/3.0 ",
            "sip:a@b;\t lr",
            "LWS In Request-URI",
        ),
    ] {
        let m = parse(&valid_base().replacen("OPTIONS sip:a@example.com SIP/2.0", bad, 1));
        assert_eq!(m.method(), Some(&Method::Invite), "{bad}");
        assert_eq!(m.request_uri(), Some(uri), "{bad}");
        let e = m.validate().unwrap_err();
        assert_eq!((e.status, e.reason), (400, reason), "{bad}");
    }
    assert_eq!(
        parse(&valid_base().replacen(" SIP/2.0", " SIP/2.0  ", 1)).version(),
        "SIP/2.0"
    );
    // Unknown methods and versions parse; validate answers the version with 505.
    let m = parse("FOO sip:a@b SIP/3.0\r\n\r\n");
    assert_eq!(m.method(), Some(&Method::Extension("FOO".into())));
    assert_eq!(m.validate().unwrap_err().status, 505);
    assert_eq!(
        parse("OPTIONS sip:a@b sip/2.0\r\n\r\n").version(),
        "sip/2.0"
    );
}

fn valid_base() -> String {
    "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
     From: <sip:c@d>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x@y\r\nCSeq: 2 OPTIONS\r\n"
        .to_owned()
}

fn validate_with(extra: &str) -> Result<(), ParseError> {
    parse(&format!("{}{extra}\r\n", valid_base())).validate()
}

#[test]
fn validate_checks() {
    assert_eq!(validate_with(""), Ok(()));
    assert_eq!(
        validate_with("Max-Forwards: 255\r\nExpires: 4294967295\r\n"),
        Ok(())
    );
    let reason = |extra: &str| validate_with(extra).unwrap_err().reason;
    assert_eq!(reason("Max-Forwards: 256\r\n"), "Bad Max-Forwards");
    assert_eq!(reason("Expires: 4294967296\r\n"), "Bad Expires");
    assert_eq!(
        reason("Expires: Thu, 01 Dec 1994 16:00:00 GMT\r\n"),
        "Bad Expires"
    );
    assert_eq!(reason("Call-ID: again\r\n"), "Duplicate Call-ID");
    assert_eq!(reason("Via: SIP/2.0/UDP h2;;\r\n"), "Bad Via");
    assert_eq!(reason("Via: SIP/2.0/UDP h2;branch\r\n"), "Bad Via");
    assert_eq!(reason("Via: SIP/2.0/UDP h2, ,\r\n"), "Bad Via");
    assert_eq!(reason("Contact: <sip:a@b>;;\r\n"), "Bad Contact");
    assert_eq!(reason("Contact: <sip:a@b>,,<sip:c@d>\r\n"), "Bad Contact");
    assert_eq!(reason("Contact: <sip:a@@b>\r\n"), "Bad Contact");
    assert_eq!(reason("Route: <sip:p1;lr>, junk\r\n"), "Bad Route");
    assert_eq!(
        validate_with("Contact: *\r\nRecord-Route: <sip:p;lr>\r\n"),
        Ok(())
    );
    assert_eq!(
        validate_with("Contact: <tel:+1555>, <mailto:a@b>\r\n"),
        Ok(())
    );
    // CSeq up to 2^32-1 is accepted.
    let m = parse(&valid_base().replace("CSeq: 2", "CSeq: 4294967295"));
    assert_eq!(m.validate(), Ok(()));
    let m = parse(&valid_base().replace("CSeq: 2", "CSeq: 4294967296"));
    assert_eq!(m.validate().unwrap_err().reason, "Bad CSeq");
    let m = parse(&valid_base().replace("CSeq: 2 OPTIONS", "CSeq: 2 options"));
    assert_eq!(m.validate().unwrap_err().reason, "CSeq Method Mismatch");
    let m = parse(&valid_base().replace("Call-ID: x@y", "Call-ID: a@b@c"));
    assert_eq!(m.validate().unwrap_err().reason, "Bad Call-ID");
    let m = parse(&valid_base().replace("sip:a@example.com SIP", "sip:a@example.com?Route=x SIP"));
    assert_eq!(m.validate().unwrap_err().reason, "Headers In Request-URI");
    let m = parse(&valid_base().replace("sip:a@example.com SIP", "<sip:a@example.com> SIP"));
    assert_eq!(m.validate().unwrap_err().status, 400);
    let m = parse(&valid_base().replace("From: <sip:c@d>;tag=1\r\n", ""));
    assert_eq!(m.validate().unwrap_err().reason, "Missing From");
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// Calls everything a caller could call; only panics matter.
    fn exercise(bytes: &[u8]) {
        let limits = Limits::default();
        if let Ok((m, used)) = Message::parse_stream(bytes, &limits) {
            // What a stream frames, a datagram of exactly those bytes frames the same way.
            let d = Message::parse(&bytes[..used], &limits).unwrap();
            assert_eq!(d.as_bytes(), m.as_bytes());
            assert_eq!(d.validate(), m.validate());
        }
        let Ok(m) = Message::parse(bytes, &limits) else {
            return;
        };
        let _ = m.validate();
        let _ = (
            m.is_request(),
            m.method(),
            m.status(),
            m.reason(),
            m.version(),
            m.body(),
        );
        if let Some(ruri) = m.request_uri() {
            if let Ok(Uri::Sip(u)) = Uri::parse(ruri) {
                let _ = u.aor();
                assert!(u.equivalent(&u));
            }
        }
        for h in m.headers() {
            let _ = (h.raw_name(&m), h.value(&m), &m.as_bytes()[h.line_range()]);
            for v in m.values(&h.name) {
                let _ = Via::parse(v).map(|v| (v.branch(), v.rport(), v.received()));
                if let Ok(a) = NameAddr::parse(v) {
                    let _ = (a.tag(), a.params.iter().count());
                    if let Ok(Uri::Sip(u)) = Uri::parse(a.uri) {
                        let _ = u.aor();
                    }
                }
                let _ = CSeq::parse(v);
            }
            let _ = m.count(&h.name);
        }
        let _ = (
            m.top_via(),
            m.vias(),
            m.from(),
            m.to(),
            m.call_id(),
            m.cseq(),
        );
        let _ = (
            m.max_forwards(),
            m.expires(),
            m.contacts(),
            m.content_length(),
        );
        let ip = "192.0.2.1".parse().ok();
        let out = build::response(
            &m,
            400,
            "Bad",
            Some("t"),
            ip,
            Some(5060),
            &[("X", "y")],
            b"b",
        );
        assert!(out.starts_with(b"SIP/2.0 400 Bad\r\n"));
        // A response built from a message always parses back.
        assert!(Message::parse(&out, &limits).is_ok());
    }

    const SEEDS: [&str; 3] = [
        INVITE,
        "REGISTER sip:[2001:db8::1] SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::2]:5060;rport;branch=z9hG4bK1, \
         SIP/2.0/TCP x\r\nf: \"A \\\"q\\\"\" <sip:a@b>;tag=1\r\nt: sip:a@b\r\ni: c\r\nCSeq: 1 REGISTER\r\n\
         m: <sip:a@h;transport=tcp>;expires=60;+sip.instance=\"<urn:x>\", *\r\nl: 0\r\n\r\n",
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=2\r\n\r\n",
    ];

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let tokens: Vec<&'static [u8]> = vec![
            b"\r\n",
            b"\r\n ",
            b";",
            b",",
            b"<",
            b">",
            b"\"",
            b"\\",
            b"\xff",
            b"\x00",
            b":",
            b"@",
            b"[",
            b"]",
            b"%",
            b"%4",
            b"=",
            b"99999999999999999999",
            b" ",
            b"?",
            b"\n",
        ];
        (
            0..SEEDS.len(),
            proptest::collection::vec(
                (
                    any::<proptest::sample::Index>(),
                    0..4u8,
                    0..21usize,
                    any::<u8>(),
                ),
                1..6,
            ),
        )
            .prop_map(move |(seed, edits)| {
                let mut b = SEEDS[seed].as_bytes().to_vec();
                for (at, op, tok, byte) in edits {
                    let i = at.index(b.len() + 1);
                    match op {
                        0 => {
                            let t = tokens[tok % tokens.len()];
                            b.splice(i..i, t.iter().copied());
                        }
                        1 if i < b.len() => {
                            b.remove(i);
                        }
                        2 if i < b.len() => b[i] = byte,
                        _ => b.truncate(i),
                    }
                }
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            exercise(&bytes);
        }

        #[test]
        fn random_after_a_request_line_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut b = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
            b.extend(bytes);
            exercise(&b);
        }

        #[test]
        fn mutated_messages_never_panic(bytes in mutated()) {
            exercise(&bytes);
        }
    }
}
