//! `podtracer exec`: run a host program inside the target's network namespace.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use snoopy_netns::caps::{self, Capability};

use crate::target::{Target, TargetArgs};

/// Arguments of `podtracer exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The program to run and its arguments (after `--`), passed as argv: no shell.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]...")]
    pub command: Vec<OsString>,
}

/// Runs the program in each target: with one target, with inherited stdin/stdout/stderr;
/// with several (`-l`), concurrently, each output line prefixed with `NS/POD: `. Returns the
/// exit status (128 + N when killed by signal N, like a shell; the highest one of several).
pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let resolved = args.target.resolve()?;
    if resolved.follower.is_some() {
        return run_many(&args, resolved.targets);
    }
    let target = resolved.targets.into_iter().next().expect("one target");
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
    Ok(ExitCode::from(exit_code(status)))
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    u8::try_from(code).unwrap_or(1)
}

/// Runs the program once per target, all at once, prefixing every output line.
fn run_many(args: &ExecArgs, targets: Vec<Target>) -> Result<ExitCode> {
    let (program, rest) = args.command.split_first().expect("clap requires a program");
    let mut running = Vec::new();
    for target in targets {
        let child = snoopy_netns::command_in(&[&target.namespace], program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {program:?} in {}", target.label))?;
        running.push((target.label, child));
    }
    let mut worst = 0u8;
    std::thread::scope(|scope| -> Result<()> {
        let mut waiting = Vec::new();
        for (label, mut child) in running {
            let out = child.stdout.take().expect("piped");
            let err = child.stderr.take().expect("piped");
            let prefix = format!("{label}: ");
            let p2 = prefix.clone();
            scope.spawn(move || relay(out, &prefix, false));
            scope.spawn(move || relay(err, &p2, true));
            waiting.push((label, child));
        }
        for (label, mut child) in waiting {
            let status = child
                .wait()
                .with_context(|| format!("waiting for {label}"))?;
            let code = exit_code(status);
            if code != 0 {
                eprintln!("podtracer: {label}: exited with status {code}");
            }
            worst = worst.max(code);
        }
        Ok(())
    })?;
    Ok(ExitCode::from(worst))
}

/// Copies lines from a child's pipe to our stdout or stderr, each behind `prefix`.
fn relay(pipe: impl std::io::Read, prefix: &str, to_stderr: bool) {
    use std::io::{BufRead, Write};
    for line in std::io::BufReader::new(pipe).split(b'\n') {
        let Ok(line) = line else { break };
        let mut text = Vec::with_capacity(prefix.len() + line.len() + 1);
        text.extend_from_slice(prefix.as_bytes());
        text.extend_from_slice(&line);
        text.push(b'\n');
        let written = if to_stderr {
            std::io::stderr().lock().write_all(&text)
        } else {
            std::io::stdout().lock().write_all(&text)
        };
        if written.is_err() {
            break;
        }
    }
}
