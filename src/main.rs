//! `trapezoid`: the command line. Thin: it parses arguments and calls the crates.

/// mimalloc instead of glibc's allocator. Over UDP `serve` keeps every transaction 32 s after
/// its final response (RFC 3261 Timers J, L, M), so under steady load transactions end in the
/// order they began, and glibc coalesces each freed block with its free neighbours, unlinking
/// them from its bins: blocks long out of the cache (`unlink_chunk` was 8 % of the samples at
/// 10,000 REGISTER/s). mimalloc frees into per-page lists without coalescing. Measured in the
/// steady state, REGISTER at 10,000/s: 9.6–10.6 µs of CPU with it, 11.7–17.1 without.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod new;
mod serve;
mod sweep;
use trapezoid_scenarios::drive::Targets;
use trapezoid_scenarios::{drive_file, ladder, run_file, DriveOptions, Outcome, RunOptions};

#[derive(Parser)]
#[command(
    name = "trapezoid",
    version,
    about = "SIP proxy/registrar with a deterministic simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The random faults of every link, for `run` and `sweep`, drawn from the seed; each
/// overrides the scenario file's `network` setting.
#[derive(clap::Args)]
struct FaultRates {
    /// Loses this percent of the datagrams on every link (e.g. 10 or 10%); overrides the
    /// file's `network.loss_percent`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    loss: Option<u8>,
    /// Delivers this percent of the datagrams twice; overrides the file's
    /// `network.duplicate_percent`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    dup: Option<u8>,
    /// Delays every datagram by an extra MIN..MAX milliseconds (e.g. 0..40ms), so that
    /// datagrams overtake each other; overrides the file's `network.jitter_ms`.
    #[arg(long, value_name = "MIN..MAX", value_parser = parse_jitter)]
    jitter: Option<(u64, u64)>,
}

impl FaultRates {
    /// Run options with these rates, `seed` and the scheduled faults.
    fn options(
        self,
        seed: Option<u64>,
        schedule: Vec<(u32, trapezoid_scenarios::Scheduled)>,
    ) -> RunOptions {
        RunOptions {
            seed,
            loss_percent: self.loss,
            duplicate_percent: self.dup,
            jitter_ms: self.jitter,
            schedule,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs every scenario under the given files or folders (default: rfc3665/ and
    /// scenarios/examples/) in the
    /// simulator and prints one line each, then `N passed, M failed`.
    Check {
        /// Scenario files or folders of them.
        paths: Vec<PathBuf>,
        /// Overrides every file's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Runs every scenario under the given files or folders (default: rfc3665/ and
    /// scenarios/examples/) with many seeds on a faulty network, checks RFC 3261's
    /// transaction rules after each run, and prints each failure with its replay command,
    /// then `N passed, M failed`.
    Sweep {
        /// Scenario files or folders of them.
        paths: Vec<PathBuf>,
        /// How many seeds per scenario.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed; the others follow it.
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        #[command(flatten)]
        faults: FaultRates,
        /// Runs this many scenarios at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Writes a new scenario file, NAME.yaml (or NAME when it ends in .yaml), that passes at
    /// once: a registration against an element, or with --from a copy of another scenario
    /// under the new name. An existing file is never overwritten.
    New {
        /// The scenario's name, or the path of the file to write.
        name: String,
        /// Copies this scenario instead of writing the registration template.
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
    /// Runs the element over real UDP and TCP sockets (default: 127.0.0.1:5060, domain
    /// 127.0.0.1, registrar and record-routing proxy, no authentication).
    Serve(serve::ServeArgs),
    /// Runs one scenario and prints its ladder and every message.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// Overrides the file's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Draws the run as a sequence diagram (text, mermaid or svg), printed instead of
        /// the transcript (a failure report then goes to stderr), or written to -o PATH.
        #[arg(long, value_name = "FORMAT", value_parser = parse_ladder)]
        ladder: Option<trapezoid_scenarios::diagram::Format>,
        /// Writes the --ladder diagram to this file; the transcript is printed as usual.
        #[arg(short = 'o', long = "output", value_name = "PATH", requires = "ladder")]
        output: Option<PathBuf>,
        /// Writes every datagram of the run to this file as a pcap capture (IP + UDP).
        #[arg(long, value_name = "PATH")]
        pcap: Option<PathBuf>,
        #[command(flatten)]
        faults: FaultRates,
        /// Loses the Nth datagram of the run (1-based, all senders, in sending order);
        /// repeatable.
        #[arg(long = "drop-datagram", value_name = "N")]
        drop_datagram: Vec<u32>,
        /// Delivers the Nth datagram of the run twice; repeatable.
        #[arg(long = "dup-datagram", value_name = "N")]
        dup_datagram: Vec<u32>,
    },
    /// Plays the UAs of one scenario over real UDP sockets against running proxies (one
    /// target for every element of the scenario, or one per element), checks every
    /// expectation, and prints the ladder and every message.
    Drive {
        /// The scenario file.
        file: PathBuf,
        /// The proxy under test, HOST:PORT: every element of the scenario is this one. Or,
        /// repeated, NAME=HOST:PORT for each element NAME of the scenario (all of them).
        #[arg(long = "target", value_name = "[NAME=]HOST:PORT", value_parser = parse_target_arg, required = true)]
        targets: Vec<(Option<String>, SocketAddr)>,
        /// The address the UAs' sockets are bound on (ports chosen by the system).
        #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        local: IpAddr,
        /// Overrides the file's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Prints the JSON Schema (draft-07) of the scenario language, for editors that complete
    /// and check scenario files (docs/scenario.schema.json is a copy).
    Schema {
        /// Writes the schema to this file instead.
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

/// `HOST:PORT`, or `NAME=HOST:PORT` for the element NAME of the scenario.
fn parse_target_arg(s: &str) -> Result<(Option<String>, SocketAddr), String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!(
            "`{s}`: expected NAME=HOST:PORT, with an element's name"
        )),
        Some((name, addr)) => Ok((Some(name.to_owned()), parse_target(addr)?)),
        None => Ok((None, parse_target(s)?)),
    }
}

/// One `--target HOST:PORT` for every element, or `--target NAME=HOST:PORT` for each.
fn targets(args: Vec<(Option<String>, SocketAddr)>) -> Result<Targets, String> {
    let mut all = Vec::new();
    let mut each = std::collections::BTreeMap::new();
    for (name, addr) in args {
        match name {
            None => all.push(addr),
            Some(n) => {
                if each.insert(n.clone(), addr).is_some() {
                    return Err(format!("--target: two targets for the element `{n}`"));
                }
            }
        }
    }
    match (all.as_slice(), each.is_empty()) {
        ([one], true) => Ok(Targets::All(*one)),
        ([], false) => Ok(Targets::Each(each)),
        _ => Err(
            "--target: give either one HOST:PORT for every element, or NAME=HOST:PORT for each element"
                .into(),
        ),
    }
}

/// `HOST:PORT`, an IP literal or a name the system resolves.
fn parse_target(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let mut found = s
        .to_socket_addrs()
        .map_err(|e| format!("`{s}`: expected HOST:PORT ({e})"))?;
    found
        .next()
        .ok_or_else(|| format!("`{s}`: no address for this host"))
}

fn main() -> ExitCode {
    // A bad flag is one line on stderr and exit code 2 (help and version print as usual).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Check { paths, seed } => check(paths, seed),
        Command::Sweep {
            paths,
            seeds,
            first_seed,
            faults,
            jobs,
        } => match collect(paths) {
            Ok(files) => sweep::sweep(sweep::SweepArgs {
                files,
                seeds,
                first_seed,
                faults: faults.options(None, Vec::new()),
                jobs: jobs.unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
                }),
            }),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            file,
            seed,
            ladder: diagram,
            output,
            pcap,
            faults,
            drop_datagram,
            dup_datagram,
        } => run(
            &file,
            &faults.options(
                seed,
                drop_datagram
                    .into_iter()
                    .map(|n| (n, trapezoid_scenarios::Scheduled::Drop))
                    .chain(
                        dup_datagram
                            .into_iter()
                            .map(|n| (n, trapezoid_scenarios::Scheduled::Duplicate)),
                    )
                    .collect(),
            ),
            &RunOutputs {
                diagram,
                output,
                pcap,
            },
        ),
        Command::Drive {
            file,
            targets: args,
            local,
            seed,
        } => match targets(args) {
            Ok(targets) => drive(
                &file,
                &DriveOptions {
                    targets,
                    local,
                    seed,
                },
            ),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => serve::serve(args),
        Command::New { name, from } => new::new(&name, from.as_deref()),
        Command::Schema { output } => schema(output.as_deref()),
    }
}

/// Scenario files under `paths`, sorted so the output order is stable.
fn collect(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    let paths = if paths.is_empty() {
        ["rfc3665", "scenarios/examples"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect()
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(&p, &mut found).map_err(|e| format!("{}: {e}", p.display()))?;
            found.sort_by_key(|p| natural_key(p));
            files.extend(found);
        } else if p.is_file() {
            files.push(p);
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    Ok(files)
}

/// Sort key that orders numbers by value, so `3_2_x` comes before `3_10_x`.
fn natural_key(path: &Path) -> Vec<(u64, String)> {
    let text = path.to_string_lossy();
    let mut key = Vec::new();
    let mut digits = String::new();
    let mut other = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !other.is_empty() {
                key.push((u64::MAX, std::mem::take(&mut other)));
            }
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((digits.parse().unwrap_or(u64::MAX), String::new()));
                digits.clear();
            }
            other.push(c);
        }
    }
    if !digits.is_empty() {
        key.push((digits.parse().unwrap_or(u64::MAX), String::new()));
    }
    if !other.is_empty() {
        key.push((u64::MAX, other));
    }
    key
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

fn check(paths: Vec<PathBuf>, seed: Option<u64>) -> ExitCode {
    let files = match collect(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    let options = RunOptions {
        seed,
        ..RunOptions::default()
    };
    let progress = Progress::new(files.len());
    for (i, file) in files.into_iter().enumerate() {
        progress.show(i, &file);
        let result = run_file(&file, &options);
        progress.clear();
        match result {
            Ok(outcome) => {
                let verdict = if outcome.passed() { "pass" } else { "FAIL" };
                println!(
                    "{verdict}  {}  {}  ({} messages, {} s sim)",
                    file.display(),
                    outcome.name,
                    outcome.messages,
                    ladder::seconds(outcome.sim_time)
                );
                if let Some(report) = outcome.report() {
                    println!("{}", indent(&report));
                    failed += 1;
                } else {
                    passed += 1;
                }
            }
            Err(e) => {
                println!("FAIL  {}  (not a valid scenario)\n    {e}", file.display());
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--loss 10`, `--loss 10%`: a percent from 0 to 100.
fn parse_percent(s: &str) -> Result<u8, String> {
    let n = s.trim_end_matches('%');
    match n.parse::<u8>() {
        Ok(p) if p <= 100 => Ok(p),
        _ => Err(format!("`{s}`: expected a percent from 0 to 100")),
    }
}

/// `--jitter 0..40ms`, `--jitter 10..40`, `--jitter 40ms` (from 0): whole milliseconds.
fn parse_jitter(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("`{s}`: expected MIN..MAX milliseconds, e.g. 0..40ms");
    let body = s.trim_end_matches("ms");
    let (min, max) = match body.split_once("..") {
        Some((a, b)) => (a.trim_end_matches("ms"), b),
        None => ("0", body),
    };
    let min: u64 = min.parse().map_err(|_| bad())?;
    let max: u64 = max.parse().map_err(|_| bad())?;
    if min > max {
        return Err(format!("`{s}`: MIN is more than MAX"));
    }
    if max > trapezoid_scenarios::model::JITTER_MS_MAX {
        return Err(format!(
            "`{s}`: at most {} ms",
            trapezoid_scenarios::model::JITTER_MS_MAX
        ));
    }
    Ok((min, max))
}

/// `--ladder FORMAT`.
fn parse_ladder(s: &str) -> Result<trapezoid_scenarios::diagram::Format, String> {
    s.parse()
}

/// What `run` writes besides its usual output.
struct RunOutputs {
    /// `--ladder`: the diagram's format.
    diagram: Option<trapezoid_scenarios::diagram::Format>,
    /// `-o`: where the diagram goes (stdout, instead of the transcript, when absent).
    output: Option<PathBuf>,
    /// `--pcap`: where the capture goes.
    pcap: Option<PathBuf>,
}

fn run(file: &Path, options: &RunOptions, outputs: &RunOutputs) -> ExitCode {
    let outcome = match run_file(file, options) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| format!("error: {}: {e}", path.display()))
    };
    if let Some(path) = &outputs.pcap {
        let capture = trapezoid_scenarios::pcap::capture(&outcome.lines);
        if let Err(e) = write(path, &capture) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let Some(format) = outputs.diagram else {
        return verdict(&outcome);
    };
    let drawing = trapezoid_scenarios::diagram::render(format, &outcome.lines, &outcome.hosts);
    if let Some(path) = &outputs.output {
        if let Err(e) = write(path, drawing.as_bytes()) {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        return verdict(&outcome);
    }
    print!("{drawing}");
    match outcome.report() {
        Some(report) => {
            eprintln!("{report}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

fn drive(file: &Path, options: &DriveOptions) -> ExitCode {
    match drive_file(file, options) {
        Ok(outcome) => verdict(&outcome),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Prints the scenario language's JSON Schema, or writes it to `output`.
fn schema(output: Option<&Path>) -> ExitCode {
    let text = trapezoid_scenarios::schema::schema_json();
    match output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                ExitCode::from(2)
            }
        },
    }
}

/// Prints the transcript, and the failure report if a step failed (exit code 1).
fn verdict(outcome: &Outcome) -> ExitCode {
    print!("{}", outcome.transcript());
    if let Some(note) = outcome.note() {
        println!("\n{note}");
    }
    match outcome.report() {
        Some(report) => {
            println!("\n{report}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `[3/28] file` line on stderr while a long run works, rewritten in place and cleared
/// before each result; nothing at all when stderr is not a terminal (CI logs, pipes).
pub(crate) struct Progress {
    total: usize,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            on: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn show(&self, i: usize, file: &Path) {
        if self.on {
            eprint!("\r\x1b[K[{}/{}] {}", i + 1, self.total, file.display());
        }
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}
