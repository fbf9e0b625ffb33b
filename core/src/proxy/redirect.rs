//! RFC 3261 §8.3 and §21.3: the element as a redirect server. It looks the Request-URI up
//! in the location service like a proxy would (§16.5), but instead of forwarding it hands
//! the target set back to the caller as the Contacts of a 302, so that the caller tries
//! them itself. Nothing is kept beyond the server transaction that sends the 302.

use crate::message::{Message, SipUri, Uri};
use crate::registrar::Reply;
use crate::Proxy;

impl Proxy {
    /// The final response of a redirect server to `msg`: 302 listing every live binding of
    /// the Request-URI's address of record, best q first, each with its `q` and the seconds
    /// it has left as `expires` (§21.3.3, §20.10: "the expires parameter indicates how long
    /// the URI is valid"); 404 or 480 when there is none. `authenticated`: the request's
    /// credentials checked (see [`Proxy::no_binding`]).
    pub(crate) fn redirect_reply(&self, msg: &Message, authenticated: bool) -> Reply {
        let uri = match msg.request_uri_parsed() {
            Some(Ok(Uri::Sip(u))) => u,
            Some(Ok(Uri::Other { .. })) => {
                return Reply::with_reason(416, "Unsupported URI Scheme")
            }
            _ => return Reply::with_reason(400, "Bad Request-URI"),
        };
        // §21.4.5: 404 also "if the domain in the Request-URI does not match any of the
        // domains handled by the recipient of the request".
        if !self.locator.serves_uri(&uri) {
            return Reply::with_reason(404, "Domain Not Found");
        }
        let aor = self.registrar.identity().canonical_aor(&uri);
        let location = self.registrar.location();
        let mut bindings = location.bindings(&aor, self.now);
        if bindings.is_empty() {
            drop(bindings);
            drop(location);
            return self.no_binding(&uri, &aor, authenticated);
        }
        // Stable: equal q keep the order the registrar holds them in.
        bindings.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
        bindings.iter().fold(Reply::new(302), |r, b| {
            r.header("Contact", b.contact_value(self.now))
        })
    }

    /// §16.5 / §21.4: the answer for an address of record in our domain with no live
    /// binding: 480 Temporarily Unavailable for a user we know (they may register again),
    /// 404 Not Found for one we do not. When the element authenticates requests, one that
    /// did not authenticate (a request inside a dialog is not challenged) gets 404 either
    /// way: the difference would tell a stranger which users exist.
    pub(crate) fn no_binding(&self, uri: &SipUri<'_>, aor: &str, authenticated: bool) -> Reply {
        if self.config.proxy.authenticate && !authenticated {
            return Reply::new(404);
        }
        let known = uri
            .user
            .is_some_and(|name| self.users.get(&self.config.auth.users, name).is_some())
            || self.users.lists_aor(aor);
        if known {
            Reply::new(480)
        } else {
            Reply::new(404)
        }
    }
}
