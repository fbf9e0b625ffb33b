//! `trapezoid serve`: the core as a deployable proxy. Flags and an optional YAML file (the
//! `element:` settings of a scenario) become a [`Config`]; the run loop of
//! `trapezoid-server` drives the core over real UDP and TCP sockets; a tap logs one line per
//! transaction and keeps the location service in SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use trapezoid_core::config::{Reports, User};
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Event, Proxy, SharedState, Transport};
use trapezoid_server::dns::SystemResolver;
use trapezoid_server::net::{bind_workers, Listen, RealNetwork, StreamLimits, WorkerSockets};
use trapezoid_server::store::LocationStore;
use trapezoid_server::{Direction, Driver, NoResolver, Resolver, Tap};

/// How long a shutdown waits for proxied requests to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `trapezoid serve` flags. With none: UDP and TCP on 127.0.0.1:5060, domain 127.0.0.1,
/// registrar and record-routing stateful proxy, no authentication.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: `udp:IP:PORT` or `tcp:IP:PORT` (IPv6 as `udp:[::1]:5060`).
    /// Repeatable. Default: udp and tcp on 127.0.0.1:5060.
    #[arg(long = "listen", value_name = "TRANSPORT:IP:PORT", value_parser = parse_listen)]
    pub listen: Vec<Listen>,
    /// A domain this element is registrar and proxy for. Repeatable. Default: 127.0.0.1.
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// A user and password; any user turns on digest authentication of REGISTER (401)
    /// and of initial INVITEs (407). Repeatable.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub users: Vec<(String, String)>,
    /// `proxy` forwards requests; `redirect` answers them with 302 and the bindings.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Keep the bindings in this SQLite file, so that they survive a restart.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Element settings in YAML: the `element:` of a scenario host (docs/scenarios.md).
    /// Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text or as JSON objects. The level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// A name and its address, without DNS: a domain or host name (another proxy's, a next
    /// hop's) that is reached at IP:PORT; a URI's own port wins over this one. Consulted
    /// before DNS. Repeatable.
    #[arg(long = "host", value_name = "NAME=IP:PORT", value_parser = parse_host)]
    pub hosts: Vec<(String, SocketAddr)>,
    /// Look up no names (RFC 3263): other domains only by IP address or the `--host`
    /// table. For tests and closed networks: no query can leave the machine.
    #[arg(long)]
    pub no_dns: bool,
    /// Most transactions alive at once (server and client together); a new request beyond
    /// it gets 503 (RFC 3261 §21.5.4). Over UDP a transaction lives on 32 s after its final
    /// response (Timers J, L, M: 64*T1), so this bounds the sustained rate: about N / 32
    /// REGISTERs per second, N / 100 calls per second. Default 100000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_transactions: Option<u64>,
    /// Seed for tags, branches and nonce secrets. Default: drawn from the operating system
    /// (a fixed seed makes nonces predictable: use it for tests only).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads serving at once, each with its own UDP socket on every UDP address
    /// (`SO_REUSEPORT`: the kernel spreads senders over them by address and port). They
    /// share the bindings, the nonces, the per-source rates and the database; TCP is
    /// accepted by the first one. Default 1: one thread, as without the flag.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: u16,
}

/// What the element does with requests it does not answer itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Stateful proxy (RFC 3261 §16).
    Proxy,
    /// Redirect server (§8.3).
    Redirect,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    let (transport, addr) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected udp:IP:PORT or tcp:IP:PORT"))?;
    let transport = match transport.to_ascii_lowercase().as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        other => return Err(format!("`{other}`: transport must be udp or tcp")),
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}`: expected IP:PORT (IPv6 in brackets: [::1]:5060)"))?;
    Ok(Listen { transport, addr })
}

fn parse_user(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_owned(), p.to_owned())),
        _ => Err(format!("`{s}`: expected NAME:PASSWORD")),
    }
}

fn parse_host(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=IP:PORT"))?;
    let name = name.trim();
    if name.is_empty() || name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{s}`: expected NAME=IP:PORT, NAME a domain or host name"
        ));
    }
    let addr: SocketAddr = addr.parse().map_err(|_| {
        format!("`{addr}`: expected NAME=IP:PORT (an IP address, IPv6 in brackets: [::1]:5060)")
    })?;
    Ok((name.to_ascii_lowercase(), addr))
}

/// What `serve` runs with: the core's configuration, where to listen, and the bounds of
/// the TCP side.
#[derive(Debug)]
pub struct Settings {
    /// The core's configuration.
    pub config: Config,
    /// Where to listen.
    pub listens: Vec<Listen>,
    /// TCP connections and stream framing.
    pub streams: StreamLimits,
}

/// The configuration the flags and file describe, or the one-line error that names the
/// bad field.
pub fn config_from(args: &ServeArgs) -> Result<Settings, String> {
    let seed = args.seed.unwrap_or_else(os_seed);
    let mut streams = StreamLimits::default();
    let (mut config, mut listens) = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let element =
                trapezoid_scenarios::model::parse_element(&path.display().to_string(), &text)
                    .map_err(|e| e.to_string())?;
            let config = trapezoid_scenarios::runner::element_config("serve", &element, seed);
            if let Some(max) = element.limits.as_ref().and_then(|l| l.tcp_connections_max) {
                streams.connections_max = max;
            }
            let listens = vec![
                Listen {
                    transport: Transport::Udp,
                    addr: element.address,
                },
                Listen {
                    transport: Transport::Tcp,
                    addr: element.address,
                },
            ];
            (config, listens)
        }
        None => {
            let mut c = Config::new("127.0.0.1");
            c.seed = seed;
            let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!());
            let listens = vec![
                Listen {
                    transport: Transport::Udp,
                    addr,
                },
                Listen {
                    transport: Transport::Tcp,
                    addr,
                },
            ];
            (c, listens)
        }
    };
    if !args.listen.is_empty() {
        listens = args.listen.clone();
        // Without a domain of its own, the element serves the addresses it listens on
        // (`sip:alice@[::1]` on an IPv6 listener), as the default serves 127.0.0.1.
        if args.config.is_none() && args.domains.is_empty() {
            let mut domains: Vec<String> = listens
                .iter()
                .map(|l| match l.addr.ip() {
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                })
                .collect();
            domains.dedup();
            config.domains = domains;
        }
    }
    if !args.domains.is_empty() {
        config.domains = args
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
    }
    if !args.users.is_empty() {
        for (name, password) in &args.users {
            config.auth.users.retain(|u| u.name != *name);
            config.auth.users.push(User {
                name: name.clone(),
                password: password.clone(),
                aors: Vec::new(),
            });
        }
        config.auth.register = true;
        config.proxy.authenticate = true;
    }
    match args.mode {
        Some(Mode::Redirect) => config.proxy.redirect = true,
        Some(Mode::Proxy) => config.proxy.redirect = false,
        None => {}
    }
    // The static table comes first; other names are found with the system's DNS
    // (RFC 3263), unless told not to.
    for (name, addr) in &args.hosts {
        config.hosts.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        config.hosts.push((name.clone(), *addr));
    }
    config.proxy.dns = !args.no_dns;
    if let Some(n) = args.max_transactions {
        config.limits.transactions_max = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if config.domains.is_empty() {
        return Err("domains: at least one domain is needed".into());
    }
    // A message over the core's limit gets its 513 from the stream framing already.
    streams.message_bytes_max = config.limits.message.message_bytes_max;
    Ok(Settings {
        config,
        listens,
        streams,
    })
}

/// Eight bytes from the operating system's generator.
fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let from_os = u64::from_le_bytes(b);
    // Without /dev/urandom, at least not the same seed twice.
    from_os ^ unix_ms() ^ u64::from(std::process::id()).rotate_left(32)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs `serve`: exit code 2 for a bad configuration (nothing started), 1 for a failure
/// after start (a port in use), 0 after a clean shutdown.
pub fn serve(args: ServeArgs) -> ExitCode {
    let settings = match config_from(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.workers > 1 {
        runtime.block_on(run_workers(settings, args.db, args.workers))
    } else {
        runtime.block_on(run(settings, args.db))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings, db: Option<PathBuf>) -> Result<(), String> {
    let Settings {
        mut config,
        listens,
        streams,
    } = settings;
    let net = RealNetwork::bind(&listens, streams)
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let bound = net.local_addrs();
    config.local_addrs = bound.iter().map(|(_, a)| *a).collect();
    config.local_addrs.dedup();
    let store = open_store(db.as_ref())?;
    config.reports = reports(store.is_some());
    let mut proxy = Proxy::new(config.clone());
    let restored = restore(store.as_ref(), &mut proxy)?;
    tracing::info!("{}", banner(&config, &bound, db.as_ref(), restored, 1));
    let mut tap = ServeTap { store };
    serve_until(
        &net,
        &mut proxy,
        &mut tap,
        tokio::time::Instant::now(),
        shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// `serve --workers N`: N threads, each with its own runtime, core and sockets
/// ([`bind_workers`]), sharing the bindings, nonces and source rates ([`SharedState`]), one
/// clock and the database. This thread waits for the signal, or for a worker that fails,
/// then stops them all; each finishes its in-flight requests as a single element does.
async fn run_workers(settings: Settings, db: Option<PathBuf>, count: u16) -> Result<(), String> {
    let Settings {
        mut config,
        listens,
        streams,
    } = settings;
    let sockets = bind_workers(&listens, count).map_err(|e| format!("cannot listen: {e}"))?;
    let bound = match sockets.first() {
        Some(s) => s.local_addrs().map_err(|e| format!("cannot listen: {e}"))?,
        None => Vec::new(),
    };
    config.local_addrs = bound.iter().map(|(_, a)| *a).collect();
    config.local_addrs.dedup();
    let store = open_store(db.as_ref())?;
    config.reports = reports(store.is_some());
    let shared = SharedState::new(&config);
    let mut proxies: Vec<Proxy> = (0..count)
        .map(|i| Proxy::worker(config.clone(), shared.clone(), i))
        .collect();
    // The location service is shared: restored through one worker, seen by all.
    let restored = match proxies.first_mut() {
        Some(p) => restore(store.as_ref(), p)?,
        None => 0,
    };
    tracing::info!("{}", banner(&config, &bound, db.as_ref(), restored, count));
    let origin = tokio::time::Instant::now();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut threads = Vec::with_capacity(usize::from(count));
    for ((index, sockets), proxy) in (0u16..).zip(sockets).zip(proxies) {
        let (store, stop, ended) = (store.clone(), stop.clone(), ended_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let span = tracing::info_span!("worker", n = index);
                let _entered = span.enter();
                let r = run_worker(sockets, streams, proxy, store, origin, stop);
                let _ = ended.send(());
                r
            })
            .map_err(|e| format!("cannot start worker {index}: {e}"))?;
        threads.push(thread);
    }
    drop(ended_tx);
    tokio::select! {
        biased;
        () = shutdown_signal() => {}
        _ = ended.recv() => tracing::warn!("a worker stopped; stopping the others"),
    }
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for (index, thread) in threads.into_iter().enumerate() {
        let r = thread
            .join()
            .unwrap_or_else(|_| Err(format!("worker {index} panicked")));
        if let Err(e) = r {
            tracing::error!(worker = index, "{e}");
            result = Err(format!("worker {index}: {e}"));
        }
    }
    tracing::info!("stopped");
    result
}

/// One worker's thread: its own current-thread runtime, network and run loop, until `stop`
/// says true.
fn run_worker(
    sockets: WorkerSockets,
    streams: StreamLimits,
    mut proxy: Proxy,
    store: Option<Store>,
    origin: tokio::time::Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let net =
            RealNetwork::for_worker(sockets, streams).map_err(|e| format!("cannot listen: {e}"))?;
        let mut tap = ServeTap { store };
        let stopped = async move {
            // A dropped sender stops the worker too.
            let _ = stop.wait_for(|s| *s).await;
        };
        serve_until(&net, &mut proxy, &mut tap, origin, stopped).await?;
        let handed_over = net.handed_over();
        if handed_over > 0 {
            tracing::debug!(handed_over, "responses handed to other workers");
        }
        Ok(())
    })
}

/// The events the tap logs or stores; the others are not built at all (`Reports`).
fn reports(stored: bool) -> Reports {
    let logged = tracing::enabled!(tracing::Level::INFO);
    Reports {
        transactions: logged,
        bindings: logged || stored,
    }
}

/// The database, shared by the workers ([`ServeTap`]).
type Store = Arc<Mutex<LocationStore>>;

fn open_store(db: Option<&PathBuf>) -> Result<Option<Store>, String> {
    match db {
        Some(path) => Ok(Some(Arc::new(Mutex::new(LocationStore::open(
            path,
            unix_ms(),
        )?)))),
        None => Ok(None),
    }
}

/// Puts the bindings kept in `store` back into `proxy`'s location service; how many.
fn restore(store: Option<&Store>, proxy: &mut Proxy) -> Result<usize, String> {
    let mut restored = 0;
    if let Some(s) = store {
        for (aor, bindings) in lock(s).load()? {
            restored += bindings.len();
            proxy.restore_bindings(&aor, bindings);
        }
    }
    Ok(restored)
}

/// Serves until `stop`, then, gracefully, until every proxied request has its answer,
/// within a bound.
async fn serve_until(
    net: &RealNetwork,
    proxy: &mut Proxy,
    tap: &mut ServeTap,
    origin: tokio::time::Instant,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let resolver: Box<dyn Resolver> = if !proxy.config().proxy.dns {
        Box::new(NoResolver)
    } else {
        match SystemResolver::from_system() {
            Ok(r) => Box::new(r),
            Err(e) => {
                tracing::warn!("{e}; other domains are reached by IP address only");
                Box::new(NoResolver)
            }
        }
    };
    let mut driver = Driver::with_origin(net, proxy, tap, resolver, origin);
    driver
        .run_until(stop)
        .await
        .map_err(|e| format!("network: {e}"))?;
    tracing::info!("shutting down: finishing in-flight requests");
    let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while driver.proxy().context_count() > 0 && tokio::time::Instant::now() < give_up {
        driver
            .run_until(tokio::time::sleep(Duration::from_millis(50)))
            .await
            .map_err(|e| format!("network: {e}"))?;
    }
    let left = driver.proxy().context_count();
    if left > 0 {
        tracing::warn!(unanswered = left, "stopped with requests unanswered");
    }
    Ok(())
}

/// The store, locked. A worker that panicked holding it left it as SQLite leaves an
/// interrupted write: the open transaction is committed or rolled back by the next one.
fn lock(store: &Store) -> std::sync::MutexGuard<'_, LocationStore> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first log line: what this element is and does.
fn banner(
    config: &Config,
    bound: &[(Transport, SocketAddr)],
    db: Option<&PathBuf>,
    restored: usize,
    workers: u16,
) -> String {
    let listening: Vec<String> = bound
        .iter()
        .map(|(t, a)| format!("{}:{a}", t.as_str().to_ascii_lowercase()))
        .collect();
    let role = if config.proxy.redirect {
        "registrar and redirect server"
    } else if config.proxy.record_route {
        "registrar and record-routing stateful proxy"
    } else {
        "registrar and stateful proxy"
    };
    let auth = if config.auth.users.is_empty() {
        "no authentication".to_owned()
    } else {
        format!(
            "digest authentication for {} users",
            config.auth.users.len()
        )
    };
    let mut dns = if config.proxy.dns {
        "DNS for other domains".to_owned()
    } else {
        "no DNS".to_owned()
    };
    if !config.hosts.is_empty() {
        let table: Vec<String> = config
            .hosts
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect();
        dns.push_str(&format!(" (hosts: {})", table.join(", ")));
    }
    let storage = match db {
        Some(p) => format!("bindings in {} ({restored} restored)", p.display()),
        None => "bindings in memory only".to_owned(),
    };
    let threads = if workers > 1 {
        format!("; {workers} workers")
    } else {
        String::new()
    };
    format!(
        "trapezoid {} serving domain {} as {role}; listening on {}; {auth}; {dns}; {storage}{threads}",
        env!("CARGO_PKG_VERSION"),
        config.domains.join(", "),
        listening.join(", ")
    )
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
                    _ = term.recv() => tracing::info!("SIGTERM"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs and storage. The store may be shared by several workers.
struct ServeTap {
    store: Option<Store>,
}

impl Tap for ServeTap {
    fn datagram(
        &mut self,
        _: Instant,
        dir: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let first = bytes.split(|b| *b == b'\r').next().unwrap_or(&[]);
            let first = String::from_utf8_lossy(first);
            match dir {
                Direction::In => tracing::debug!(%remote, %local, "<- {first}"),
                Direction::Out => tracing::debug!(%remote, %local, "-> {first}"),
            }
        }
    }

    fn event(&mut self, now: Instant, event: &Event, proxy: &Proxy) {
        match event {
            Event::TransactionCompleted {
                method,
                status,
                from,
                to,
                elapsed,
            } => tracing::info!(
                method = %method,
                from = %from,
                to = %to,
                status = *status,
                ms = elapsed.as_millis() as u64,
                "transaction"
            ),
            Event::Dropped { remote, reason } => {
                tracing::info!(%remote, reason = %reason, "dropped")
            }
            Event::SourceLimited { source } => {
                let rate = &proxy.config().limits.source_rate;
                tracing::warn!(
                    %source,
                    per_second = rate.per_second,
                    burst = rate.burst,
                    "source over its request rate; its requests are refused until it slows down"
                )
            }
            Event::Registered { aor, .. }
            | Event::Unregistered { aor, .. }
            | Event::BindingExpired { aor, .. } => {
                if let Event::BindingExpired { contact, .. } = event {
                    tracing::info!(aor = %aor, contact = %contact, "binding expired");
                }
                if let Some(store) = &self.store {
                    // The bindings are read with the store locked: of two workers saving
                    // the same AOR, the one that saves last read it last, so the store
                    // ends with what the location service holds.
                    let mut store = lock(store);
                    let location = proxy.registrar().location();
                    let bindings = location.bindings(aor, now);
                    if let Err(e) = store.save(aor, &bindings) {
                        tracing::error!(aor = %aor, error = %e, "cannot store bindings");
                    }
                }
            }
            other => tracing::debug!(event = ?other, "event"),
        }
    }

    /// Group commit: the bindings written since the last flush go to disk before the
    /// answers that report them leave.
    fn flush(&mut self, _now: Instant) {
        if let Some(store) = &self.store {
            // Another worker's writes, if any are pending, go with this commit.
            if let Err(e) = lock(store).commit() {
                tracing::error!(error = %e, "cannot store bindings");
            }
        }
    }
}
