//! Protocol tests through the public contract: literal SIP text in, bytes and events out,
//! time moved by hand. One behaviour per test, named for it.

mod abuse;
mod dns;
mod proxy;
mod proxy_util;
mod redirect;
mod registrar;
mod transactions;
mod transports;
mod util;
mod workers;
