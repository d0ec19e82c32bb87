//! `podtracer`: see a pod's network traffic from its node.
//!
//! The node CLI of Snoopy. It enters a pod's network namespace (by PID or namespace path;
//! by pod name through the container runtime in a later slice) and either captures there
//! natively (`capture`), follows its connections (`flows`), tries connections from inside
//! it (`probe`), or runs any host tool there (`exec`).

#![forbid(unsafe_code)]

mod capture;
mod cli;
mod collect;
// The node-job contract read back from the command line (its round-trip test).
#[cfg(test)]
mod contract;
mod exec;
mod filter;
mod flows;
mod multi;
mod output;
mod pods;
mod probe;
mod progress;
mod read;
mod runtime;
mod sinks;
mod target;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                // `podtracer … | head`: the reader is done, so are we.
                return ExitCode::SUCCESS;
            }
            eprintln!("podtracer: {}", chain(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Capture(args) => capture::run(args),
        cli::Command::Exec(args) => exec::run(args),
        cli::Command::Read(args) => read::run(args),
        cli::Command::Flows(args) => flows::run(args),
        cli::Command::Probe(args) => probe::run(args),
        cli::Command::Pods(args) => pods::run(args),
        cli::Command::Collect(args) => collect::run(args),
    }
}

/// The error and its causes on one line, without repeating a cause its parent already
/// spelled out.
fn chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<snoopy_capture::Error>()
                .is_some_and(snoopy_capture::Error::is_broken_pipe)
    })
}
