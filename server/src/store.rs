//! The location service on disk: one SQLite table an operator can read with `sqlite3`.
//!
//! The core keeps its bindings in memory; this keeps a copy. After every binding event the
//! address of record's current bindings replace its rows. The writes of a batch of inputs
//! share one transaction (group commit), committed when the run loop is about to let the
//! batch's outputs leave ([`crate::Tap::flush`]): so the 200 to a REGISTER leaves only once
//! its bindings are on disk, and a burst of REGISTERs costs one commit, not one each. At
//! start the rows are read back and given to the core.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A committed
//! transaction is in the operating system's hands before the commit returns, so killing the
//! process (even with SIGKILL) loses nothing; a power failure may lose the last commits,
//! which the phones repair with their next REGISTER refresh. `synchronous=FULL` would add
//! an fsync per REGISTER for that case.
//!
//! Expiry is kept as wall-clock Unix milliseconds (the core's clock restarts at zero with
//! every run).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use rusqlite::{params, Connection};
use trapezoid_core::message;
use trapezoid_core::registrar::{Binding, Flow};
use trapezoid_core::time::Instant;
use trapezoid_core::Transport;

/// The bindings table.
pub struct LocationStore {
    conn: Connection,
    /// Wall-clock Unix milliseconds at the core's `Instant::ZERO`.
    origin_unix_ms: u64,
    /// The addresses of record with two rows or more in the table, and how many: an AOR
    /// not here has at most one. A save that writes at least as many rows as the AOR had
    /// overwrites them all and needs no DELETE of the rows past its list, a quarter of a
    /// REGISTER refresh's cost in SQLite. Most AORs have one binding, so this stays small.
    /// Only looked up, never iterated.
    multi: HashMap<String, usize>,
    /// Whether `multi` is exact. A failed statement or commit leaves the table's rows
    /// unknown: from then on every save deletes the rows past its list, as if each AOR
    /// might have more.
    counts_known: bool,
    /// A binding's remote address as text, reused from one row to the next.
    remote: String,
}

/// One row per binding, keyed by the address of record and the binding's place in its list
/// (the order the registrar keeps, and a 200 lists). `WITHOUT ROWID`: the key is the table's
/// only B-tree, so a REGISTER refresh rewrites its row in place, one B-tree write instead of
/// the four a rowid table with a key index needed (a delete and an insert in each).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS location (
    aor         TEXT    NOT NULL,
    contact     TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    q           INTEGER,
    expires     INTEGER NOT NULL,
    call_id     TEXT    NOT NULL,
    cseq        INTEGER NOT NULL,
    remote      TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (aor, position)
) WITHOUT ROWID;";

/// A table from before `position` (keyed by AOR and contact, ordered by rowid) becomes the
/// current one ([`SCHEMA`] between these two steps), with each AOR's bindings in the order
/// they had.
const MIGRATE_ROWID_TABLE: [&str; 2] = [
    "BEGIN; ALTER TABLE location RENAME TO location_rowid;",
    "INSERT INTO location
        SELECT aor, contact, params, q, expires, call_id, cseq, remote, transport,
               ROW_NUMBER() OVER (PARTITION BY aor ORDER BY rowid) - 1
        FROM location_rowid;
     DROP TABLE location_rowid;
     COMMIT;",
];

impl LocationStore {
    /// Opens (or creates) the database at `path`. `origin_unix_ms` is the wall clock when
    /// the core's clock reads zero.
    pub fn open(path: &Path, origin_unix_ms: u64) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=1000;",
        )
        .and_then(|_| conn.execute_batch(SCHEMA))
        .and_then(|_| {
            let has_position = conn
                .prepare("SELECT 1 FROM pragma_table_info('location') WHERE name = 'position'")?
                .exists([])?;
            if has_position {
                return Ok(());
            }
            let [rename, copy] = MIGRATE_ROWID_TABLE;
            conn.execute_batch(rename)?;
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(copy)
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(LocationStore {
            conn,
            origin_unix_ms,
            multi: HashMap::new(),
            counts_known: false,
            remote: String::new(),
        })
    }

    /// Deletes the expired rows and returns the others grouped by address of record, with
    /// their expiry on the core's clock.
    pub fn load(&mut self) -> Result<Vec<(String, Vec<Binding>)>, String> {
        let now = self.origin_unix_ms as i64;
        self.conn
            .execute("DELETE FROM location WHERE expires <= ?1", params![now])
            .map_err(|e| e.to_string())?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT aor, contact, params, q, expires, call_id, cseq, remote, transport, \
                 position FROM location ORDER BY aor, position",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out: Vec<(String, Vec<Binding>)> = Vec::new();
        self.multi.clear();
        for row in rows {
            let (aor, contact, params, q, expires, call_id, cseq, remote, transport, position) =
                row.map_err(|e| e.to_string())?;
            // Rows past the list's end are what a save may have to delete: what counts is
            // the highest position, skipped rows and gaps (an expired row purged) included.
            let span = usize::try_from(position).map_or(usize::MAX, |p| p.saturating_add(1));
            if span >= 2 {
                let seen = self.multi.entry(aor.clone()).or_default();
                *seen = (*seen).max(span);
            }
            // A row an operator edited into nonsense is skipped, not fatal.
            let Ok(remote) = remote.parse::<SocketAddr>() else {
                continue;
            };
            let binding = Binding::new(
                &contact,
                decode_params(&params),
                q.and_then(|q| u16::try_from(q).ok()),
                Instant::from_millis((expires - now).max(0) as u64),
                &call_id,
                u32::try_from(cseq).unwrap_or(0),
                Flow {
                    remote,
                    transport: if transport == "TCP" {
                        Transport::Tcp
                    } else {
                        Transport::Udp
                    },
                },
            );
            match out.last_mut() {
                Some((a, list)) if *a == aor => list.push(binding),
                _ => out.push((aor, vec![binding])),
            }
        }
        self.counts_known = true;
        Ok(out)
    }

    /// Replaces the rows of `aor` with `bindings` (none: the AOR is gone), in the open
    /// transaction (one is begun if none is): it is on disk after [`LocationStore::commit`].
    /// Each binding overwrites the row at its place in the list; rows past the list's end
    /// (bindings removed or expired) are deleted.
    pub fn save(&mut self, aor: &str, bindings: &[&Binding]) -> Result<(), String> {
        let written = self.write(aor, bindings);
        if written.is_err() {
            self.counts_known = false;
        }
        written
    }

    fn write(&mut self, aor: &str, bindings: &[&Binding]) -> Result<(), String> {
        if self.conn.is_autocommit() {
            self.conn
                .execute_batch("BEGIN")
                .map_err(|e| e.to_string())?;
        }
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO location \
                 (aor, contact, params, q, expires, call_id, cseq, remote, transport, position) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(|e| e.to_string())?;
        for (position, b) in bindings.iter().enumerate() {
            let expires = self.origin_unix_ms + b.expires_at.since_origin().as_millis() as u64;
            remote_text(b.flow.remote, &mut self.remote);
            insert
                .execute(params![
                    aor,
                    b.contact(),
                    encode_params(b.params()),
                    b.q.map(i64::from),
                    expires as i64,
                    b.call_id(),
                    i64::from(b.cseq),
                    self.remote,
                    b.flow.transport.as_str(),
                    position as i64,
                ])
                .map_err(|e| e.to_string())?;
        }
        let had = match self.multi.get(aor) {
            Some(&rows) => rows,
            // At most one row, or unknown.
            None if self.counts_known => 1,
            None => usize::MAX,
        };
        if had > bindings.len() {
            self.conn
                .prepare_cached("DELETE FROM location WHERE aor = ?1 AND position >= ?2")
                .and_then(|mut s| s.execute(params![aor, bindings.len() as i64]))
                .map_err(|e| e.to_string())?;
        }
        if bindings.len() >= 2 {
            match self.multi.get_mut(aor) {
                Some(rows) => *rows = bindings.len(),
                None => {
                    self.multi.insert(aor.to_owned(), bindings.len());
                }
            }
        } else {
            self.multi.remove(aor);
        }
        Ok(())
    }

    /// Commits what [`LocationStore::save`] wrote since the last commit, if anything. On
    /// error the writes are rolled back: the next binding event of each AOR writes its rows
    /// whole again.
    pub fn commit(&mut self) -> Result<(), String> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            // The rolled-back saves had already counted their rows.
            self.counts_known = false;
            e.to_string()
        })
    }

    /// Rows in the table (for tests and the start-up log line).
    pub fn count(&self) -> usize {
        self.conn
            .query_row("SELECT COUNT(*) FROM location", [], |r| r.get::<_, i64>(0))
            .map_or(0, |n| n as usize)
    }
}

/// `remote` as `ip:port` into `out`, as `SocketAddr`'s `Display` writes it: IPv4 (nearly
/// every phone) without the formatting machinery, which cost as much as a third of the row's
/// INSERT.
fn remote_text(remote: SocketAddr, out: &mut String) {
    out.clear();
    match remote {
        SocketAddr::V4(v4) => {
            out.push_str(message::dotted_quad(*v4.ip(), &mut [0; 15]));
            out.push(':');
            out.push_str(message::decimal(u64::from(v4.port()), &mut [0; 20]));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{remote}");
        }
    }
}

/// Contact params as `name=value` lines (`name` alone without a value). Header values hold
/// no line breaks, so a line break separates them safely.
fn encode_params<'a>(params: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> String {
    params
        .map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_params(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (l, None),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, expires_ms: u64) -> Binding {
        Binding::new(
            contact,
            [
                ("+sip.instance", Some("\"<urn:uuid:1;x>\"")),
                ("reg-id", Some("1")),
                ("ob", None),
            ],
            Some(700),
            Instant::from_millis(expires_ms),
            "c1",
            7,
            Flow {
                remote: "127.0.0.1:5070".parse().unwrap(),
                transport: Transport::Tcp,
            },
        )
    }

    /// Committed rows survive a reopen with their expiry moved onto the new clock; rows
    /// saved but not committed (the process died before its answers left) do not.
    #[test]
    fn bindings_survive_a_reopen_with_expiry_on_the_new_clock() {
        let dir = std::env::temp_dir().join(format!("trapezoid-store-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("location.db");
        let _ = std::fs::remove_file(&path);
        let b1 = binding("sip:bob@127.0.0.1:5070", 3_600_000);
        let b2 = binding("sip:bob@127.0.0.1:5071", 60_000);
        {
            let mut s = LocationStore::open(&path, 1_000_000).unwrap();
            s.save("sip:bob@example.org", &[&b1, &b2]).unwrap();
            s.save("sip:carol@example.org", &[&b2]).unwrap();
            s.save("sip:carol@example.org", &[]).unwrap();
            assert_eq!(s.count(), 2);
            s.commit().unwrap();
            s.commit().unwrap();
            s.save("sip:dave@example.org", &[&b1]).unwrap();
            assert_eq!(s.count(), 3);
        }
        // 100 s later: the 60 s binding has expired and is purged; the other has 3500 s.
        let mut s = LocationStore::open(&path, 1_100_000).unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(loaded.len(), 1);
        let (aor, list) = &loaded[0];
        assert_eq!(aor, "sip:bob@example.org");
        let mut want = b1.clone();
        want.expires_at = Instant::from_millis(3_500_000);
        assert_eq!(list, &vec![want]);
        assert_eq!(s.count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn fresh(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("trapezoid-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("location.db");
        (dir, path)
    }

    fn contacts(loaded: &[(String, Vec<Binding>)]) -> Vec<(String, Vec<String>)> {
        loaded
            .iter()
            .map(|(aor, list)| {
                let list = list.iter().map(|b| b.contact().to_owned()).collect();
                (aor.clone(), list)
            })
            .collect()
    }

    /// An AOR's rows come back in the registrar's order, and a shorter list leaves no rows of
    /// the longer one behind.
    #[test]
    fn bindings_keep_their_order_and_a_shorter_list_replaces_a_longer_one() {
        let (dir, path) = fresh("store-order");
        let (a, b, c) = (
            binding("sip:bob@127.0.0.1:5072", 3_600_000),
            binding("sip:bob@127.0.0.1:5070", 3_600_000),
            binding("sip:bob@127.0.0.1:5071", 3_600_000),
        );
        {
            let mut s = LocationStore::open(&path, 1_000_000).unwrap();
            s.save("sip:bob@example.org", &[&a, &b, &c]).unwrap();
            s.save("sip:amy@example.org", &[&b]).unwrap();
            s.commit().unwrap();
            s.save("sip:bob@example.org", &[&c, &a]).unwrap();
            s.commit().unwrap();
            assert_eq!(s.count(), 3);
        }
        let mut s = LocationStore::open(&path, 1_000_000).unwrap();
        assert_eq!(
            contacts(&s.load().unwrap()),
            vec![
                ("sip:amy@example.org".into(), vec![b.contact().to_owned()]),
                (
                    "sip:bob@example.org".into(),
                    vec![c.contact().to_owned(), a.contact().to_owned()]
                ),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// After a load the store knows which AORs have more than one row and skips the DELETE
    /// of rows past a list that cannot have any: lists that grow and shrink in every way
    /// still leave exactly their own rows.
    #[test]
    fn lists_that_grow_and_shrink_leave_exactly_their_rows() {
        let (dir, path) = fresh("store-shrink");
        let list: Vec<Binding> = (0..4)
            .map(|i| binding(&format!("sip:bob@127.0.0.1:{}", 5070 + i), 3_600_000))
            .collect();
        let mut s = LocationStore::open(&path, 1_000_000).unwrap();
        assert!(s.load().unwrap().is_empty());
        s.save("sip:amy@example.org", &[&list[0]]).unwrap();
        for n in [1, 3, 2, 4, 1, 0, 2, 1, 0] {
            let bob: Vec<&Binding> = list.iter().take(n).collect();
            s.save("sip:bob@example.org", &bob).unwrap();
            s.commit().unwrap();
            assert_eq!(s.count(), 1 + n, "bob with {n} bindings");
            let mut check = LocationStore::open(&path, 1_000_000).unwrap();
            let want: Vec<String> = bob.iter().map(|b| b.contact().to_owned()).collect();
            let got = contacts(&check.load().unwrap());
            let got_bob = got.iter().find(|(a, _)| a == "sip:bob@example.org");
            assert_eq!(got_bob.map(|(_, c)| c.clone()).unwrap_or_default(), want);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A row purged at load (expired) leaves a gap in its AOR's positions: the rows past it
    /// still count, and a shorter list deletes them.
    #[test]
    fn a_gap_left_by_an_expired_row_does_not_hide_the_rows_after_it() {
        let (dir, path) = fresh("store-gap");
        let live = |port: u16| binding(&format!("sip:bob@127.0.0.1:{port}"), 3_600_000);
        let (a, c) = (live(5070), live(5072));
        let expiring = binding("sip:bob@127.0.0.1:5071", 60_000);
        {
            let mut s = LocationStore::open(&path, 1_000_000).unwrap();
            s.save("sip:bob@example.org", &[&a, &expiring, &c]).unwrap();
            s.commit().unwrap();
        }
        // 100 s later the middle row has expired: positions 0 and 2 remain.
        let mut s = LocationStore::open(&path, 1_100_000).unwrap();
        assert_eq!(s.load().unwrap()[0].1.len(), 2);
        s.save("sip:bob@example.org", &[&c, &a]).unwrap();
        s.commit().unwrap();
        assert_eq!(s.count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database written before bindings had a `position` (rowid order, keyed by AOR and
    /// contact) opens with its rows, in their order, and takes new writes.
    #[test]
    fn a_table_ordered_by_rowid_is_migrated_in_order() {
        let (dir, path) = fresh("store-migrate");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE location (aor TEXT NOT NULL, contact TEXT NOT NULL, \
                 params TEXT NOT NULL, q INTEGER, expires INTEGER NOT NULL, \
                 call_id TEXT NOT NULL, cseq INTEGER NOT NULL, remote TEXT NOT NULL, \
                 transport TEXT NOT NULL, PRIMARY KEY (aor, contact));",
            )
            .unwrap();
            for contact in ["sip:bob@127.0.0.1:5079", "sip:bob@127.0.0.1:5070"] {
                conn.execute(
                    "INSERT INTO location VALUES ('sip:bob@example.org', ?1, 'ob', 500, \
                     9999999, 'c1', 3, '127.0.0.1:5070', 'UDP')",
                    params![contact],
                )
                .unwrap();
            }
        }
        let mut s = LocationStore::open(&path, 1_000_000).unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(
            contacts(&loaded),
            vec![(
                "sip:bob@example.org".into(),
                vec![
                    "sip:bob@127.0.0.1:5079".to_owned(),
                    "sip:bob@127.0.0.1:5070".to_owned()
                ]
            )]
        );
        assert_eq!(loaded[0].1[0].q, Some(500));
        s.save("sip:bob@example.org", &[&loaded[0].1[1]]).unwrap();
        s.commit().unwrap();
        assert_eq!(s.count(), 1);
        drop(s);
        let mut s = LocationStore::open(&path, 1_000_000).unwrap();
        assert_eq!(
            s.load().unwrap()[0].1[0].contact(),
            "sip:bob@127.0.0.1:5070"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
