//! `trapezoid sweep`: every scenario under many seeds on a faulty network, with the
//! invariants checked after each run. Every failure is a seed: each one is printed with the
//! command that replays it byte for byte.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use trapezoid_scenarios::{run_file, Outcome, RunOptions};

/// What to sweep and how.
pub struct SweepArgs {
    pub files: Vec<PathBuf>,
    pub seeds: u64,
    pub first_seed: u64,
    pub faults: RunOptions,
    pub jobs: usize,
}

/// One run's result, kept small: the sweep holds thousands.
enum Verdict {
    Passed {
        timeout: bool,
        provisionals_lost: usize,
    },
    Failed {
        report: String,
        replay: String,
    },
    Invalid(String),
}

fn judge(result: Result<Outcome, trapezoid_scenarios::ScenarioError>) -> Verdict {
    match result {
        Err(e) => Verdict::Invalid(e.to_string()),
        Ok(o) => match &o.failure {
            None => Verdict::Passed {
                timeout: o.ended_by_timeout.is_some(),
                provisionals_lost: o.provisionals_lost,
            },
            Some(f) => {
                // The reason, not the messages: the replay command shows those in full.
                let reason: Vec<&str> = f.report.lines().take(4).collect();
                Verdict::Failed {
                    report: format!(
                        "{}\n{}",
                        o.headline().unwrap_or_default(),
                        reason.join("\n")
                    ),
                    replay: o.replay_command(),
                }
            }
        },
    }
}

pub fn sweep(args: SweepArgs) -> ExitCode {
    let jobs: Vec<(PathBuf, u64)> = args
        .files
        .iter()
        .flat_map(|f| (0..args.seeds).map(move |i| (f.clone(), args.first_seed + i)))
        .collect();
    let total = jobs.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Verdict>>> = Mutex::new((0..total).map(|_| None).collect());
    let progress = crate::Progress::new(total);
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((file, seed)) = jobs.get(i) else {
                    break;
                };
                let options = RunOptions {
                    seed: Some(*seed),
                    ..args.faults.clone()
                };
                let verdict = judge(run_file(file, &options));
                results.lock().unwrap()[i] = Some(verdict);
                progress.show(done.fetch_add(1, Ordering::Relaxed), file);
            });
        }
    });
    progress.clear();
    let (mut passed, mut failed, mut timeouts, mut lost) = (0, 0, 0, 0);
    // In job order, whatever order the threads finished in: the same output every time.
    for ((file, seed), verdict) in jobs.iter().zip(results.into_inner().unwrap()) {
        match verdict.expect("every job ran") {
            Verdict::Passed {
                timeout,
                provisionals_lost,
            } => {
                passed += 1;
                timeouts += usize::from(timeout);
                lost += provisionals_lost;
            }
            Verdict::Failed { report, replay } => {
                failed += 1;
                println!("FAIL  {} seed {seed}", file.display());
                for line in report.lines() {
                    println!("    {line}");
                }
                println!("    replay with: {replay}");
            }
            Verdict::Invalid(e) => {
                failed += 1;
                println!("FAIL  {}  (not a valid scenario)\n    {e}", file.display());
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed  ({} scenarios x {} seeds; {timeouts} ended by an RFC 3261 timeout, {lost} provisional responses lost for good)",
        args.files.len(),
        args.seeds
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
