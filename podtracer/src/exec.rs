//! `podtracer exec`: run a host program inside the target's network namespace.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use snoopy_netns::caps::{self, Capability};

use crate::target::TargetArgs;

/// Arguments of `podtracer exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The program to run and its arguments (after `--`), passed as argv: no shell.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]...")]
    pub command: Vec<OsString>,
}

/// Runs the program with inherited stdin/stdout/stderr and returns its exit status
/// (128 + N when killed by signal N, like a shell).
pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let target = args.target.resolve()?;
    let (program, rest) = args.command.split_first().expect("clap requires a program");
    let status = match snoopy_netns::command_in(&[&target.namespace], program)
        .args(rest)
        .status()
    {
        Ok(status) => status,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // What a shell does: say so, exit 127.
            eprintln!(
                "podtracer: cannot run {}: not found on this host's PATH (exec runs host programs inside the pod's network namespace)",
                program.to_string_lossy()
            );
            return Ok(ExitCode::from(127));
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => bail!(
            "setns({}): permission denied — {}",
            target.label,
            caps::explain(&[Capability::SysAdmin])
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("running {program:?} in {}", target.label));
        }
    };
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
