//! `podtracer`: see a pod's network traffic from its node — the binary over the
//! [`podtracer`] library: it parses the command line, runs the subcommand, and turns the
//! result into an exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use podtracer::cli::{Cli, Command};
use podtracer::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if podtracer::exit::is_broken_pipe(&err) {
                // `podtracer … | head`: the reader is done, so are we.
                return ExitCode::SUCCESS;
            }
            eprintln!("podtracer: {}", chain(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Capture(args) => commands::capture::run(args),
        Command::Exec(args) => commands::exec::run(args),
        Command::Read(args) => commands::read::run(args),
        Command::Flows(args) => commands::flows::run(args),
        Command::Monitor(args) => commands::monitor::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Pods(args) => commands::pods::run(args),
        Command::Collect(args) => commands::collect::run(args),
        Command::Throughput(args) => commands::throughput::run(args),
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
