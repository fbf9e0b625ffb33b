//! # trapezoid-scenarios: call flows as YAML
//!
//! A scenario names its hosts (scripted UAs and elements running the core), then lists steps:
//! a UA sends a message rendered from a template, a UA expects a message and checks its
//! headers, time passes. [`runner::run_file`] plays it in the simulator and returns the
//! transcript that golden snapshots keep; [`drive::drive_file`] plays the same steps over real
//! UDP sockets against a running proxy. [`diagram`] draws a run as a sequence diagram (text,
//! Mermaid, SVG) and [`pcap`] writes it as a capture file. [`schema`] is the JSON Schema of the
//! language, for editors. The language is documented in `docs/scenarios.md`.

pub mod diagram;
pub mod drive;
pub mod error;
pub mod invariants;
pub mod ladder;
pub mod matcher;
pub mod model;
pub mod pcap;
pub mod runner;
pub mod schema;
pub mod template;

pub use drive::{drive_file, drive_text, DriveError, DriveOptions};
pub use error::ScenarioError;
pub use runner::{run_file, run_text, Outcome, RunOptions, Scheduled};
