//! Request methods (RFC 3261 §7.1, §25.1 `Method`).

use std::fmt;

use crate::message::syntax::is_token;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension
/// method, not INVITE. Any token is a valid method (RFC 4475 §3.1.1.2), and `%` is not an
/// escape in it (RFC 4475 §3.1.1.5: `RE%47IST%45R` is not REGISTER).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// RFC 3261 §13.
    Invite,
    /// RFC 3261 §13.2.2.4, §17.1.1.3.
    Ack,
    /// RFC 3261 §15.
    Bye,
    /// RFC 3261 §9.
    Cancel,
    /// RFC 3261 §10.
    Register,
    /// RFC 3261 §11.
    Options,
    /// RFC 6086.
    Info,
    /// RFC 3262.
    Prack,
    /// RFC 6665.
    Subscribe,
    /// RFC 6665.
    Notify,
    /// RFC 3311.
    Update,
    /// RFC 3428.
    Message,
    /// RFC 3515.
    Refer,
    /// RFC 3903.
    Publish,
    /// Any other token, as written.
    Extension(String),
}

impl Method {
    /// The method spelled by `token`; `None` when it is not an RFC 3261 §25.1 token.
    pub fn parse(token: &str) -> Option<Method> {
        use Method::*;
        Some(match token {
            "INVITE" => Invite,
            "ACK" => Ack,
            "BYE" => Bye,
            "CANCEL" => Cancel,
            "REGISTER" => Register,
            "OPTIONS" => Options,
            "INFO" => Info,
            "PRACK" => Prack,
            "SUBSCRIBE" => Subscribe,
            "NOTIFY" => Notify,
            "UPDATE" => Update,
            "MESSAGE" => Message,
            "REFER" => Refer,
            "PUBLISH" => Publish,
            t if is_token(t) => Extension(t.to_owned()),
            _ => return None,
        })
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        use Method::*;
        match self {
            Invite => "INVITE",
            Ack => "ACK",
            Bye => "BYE",
            Cancel => "CANCEL",
            Register => "REGISTER",
            Options => "OPTIONS",
            Info => "INFO",
            Prack => "PRACK",
            Subscribe => "SUBSCRIBE",
            Notify => "NOTIFY",
            Update => "UPDATE",
            Message => "MESSAGE",
            Refer => "REFER",
            Publish => "PUBLISH",
            Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_sensitive_and_any_token() {
        assert_eq!(Method::parse("REGISTER"), Some(Method::Register));
        assert_eq!(
            Method::parse("register"),
            Some(Method::Extension("register".into()))
        );
        assert_eq!(
            Method::parse("RE%47IST%45R"),
            Some(Method::Extension("RE%47IST%45R".into()))
        );
        assert_eq!(Method::parse("A B"), None);
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("<x>"), None);
        for m in ["INVITE", "ACK", "BYE", "CANCEL", "PUBLISH", "!odd~"] {
            assert_eq!(
                Method::parse(m).map(|m| m.as_str().to_owned()).as_deref(),
                Some(m)
            );
        }
    }
}
