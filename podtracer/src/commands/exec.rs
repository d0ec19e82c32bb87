//! `podtracer exec`: run a host program inside the target's network namespace.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use snoopy_netns::caps::{self, Capability};
use snoopy_netns::privileges::{ExecAllowlist, Privileges};

use crate::target::{Target, TargetArgs};

/// Arguments of `podtracer exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Which pod(s) or network namespace to work in.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Only these programs may run, each keeping only the capabilities listed
    /// (`iperf3,ping=NET_RAW,ip,ss`); anything else is refused. The operator's Jobs always
    /// pass the admin's allowlist.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["keep_cap", "as_root"])]
    pub allow: Option<ExecAllowlist>,

    /// A capability the program keeps (repeatable; e.g. `NET_RAW` for ping). By default it
    /// keeps none.
    #[arg(long, value_name = "CAP")]
    pub keep_cap: Vec<Capability>,

    /// Run the program as root with every capability podtracer has (the program is trusted
    /// with the node). By default it runs as nobody (65534) with no capabilities and no way
    /// to gain any (no_new_privs), after the namespace is entered.
    #[arg(long, conflicts_with = "keep_cap")]
    pub as_root: bool,

    /// The program to run and its arguments (after `--`), passed as argv: no shell.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]...")]
    pub command: Vec<OsString>,
}

/// Runs the program in each target: with one target, with inherited stdin/stdout/stderr;
/// with several (`-l`), concurrently, each output line prefixed with `NS/POD: `. Returns the
/// exit status (128 + N when killed by signal N, like a shell; the highest one of several).
pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let privileges = privileges(&args)?;
    let resolved = args.target.resolve()?;
    if resolved.follower.is_some() {
        return run_many(&args, privileges.as_ref(), resolved.targets);
    }
    let target = resolved.targets.into_iter().next().expect("one target");
    let (program, rest) = args.command.split_first().expect("clap requires a program");
    let Some(path) = crate::program::find(program) else {
        return Ok(not_found(program));
    };
    let status = match command(&target, &path, program, privileges.as_ref())
        .args(rest)
        .status()
    {
        Ok(status) => status,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(not_found(program)),
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

/// What the program keeps: checked against the allowlist, and checked to be possible
/// (podtracer must hold what it drops to and the capabilities to drop) before any target is
/// touched. `None`: `--as-root`.
fn privileges(args: &ExecArgs) -> Result<Option<Privileges>> {
    if args.as_root {
        return Ok(None);
    }
    let (program, _) = args.command.split_first().expect("clap requires a program");
    let keep = match &args.allow {
        Some(allow) => match allow.rule_for(program) {
            Some(rule) => rule.keep.clone(),
            None => bail!(
                "exec of {:?} refused: not on the allowlist ({}); programs are compared by exact name, and the allowlist is set by the operator's admin (SNOOPY_EXEC_ALLOWLIST) or with --allow",
                program.to_string_lossy(),
                if allow.rules.is_empty() {
                    "empty".to_owned()
                } else {
                    allow.names()
                }
            ),
        },
        None => args.keep_cap.clone(),
    };
    let privileges = Privileges::nobody(&keep);
    privileges
        .check(&format!(
            "running {} as nobody with {}",
            program.to_string_lossy(),
            if keep.is_empty() {
                "no capabilities".to_owned()
            } else {
                keep.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
        ))
        .context("podtracer exec drops the program's privileges after entering the namespace (or pass --as-root)")?;
    Ok(Some(privileges))
}

/// What a shell does for a missing program: say so, exit 127.
fn not_found(program: &std::ffi::OsStr) -> ExitCode {
    eprintln!(
        "podtracer: cannot run {}: not found on this host's PATH (exec runs host programs inside the pod's network namespace)",
        program.to_string_lossy()
    );
    ExitCode::from(127)
}

/// The command running `path` (with `program` as `argv[0]`) in `target`'s namespace, dropping to
/// `privileges` after entering it.
fn command(
    target: &Target,
    path: &Path,
    program: &std::ffi::OsStr,
    privileges: Option<&Privileges>,
) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut command = snoopy_netns::command_in(&[&target.namespace], path);
    command.arg0(program);
    if let Some(p) = privileges {
        p.apply_to(&mut command);
    }
    command
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
fn run_many(
    args: &ExecArgs,
    privileges: Option<&Privileges>,
    targets: Vec<Target>,
) -> Result<ExitCode> {
    let (program, rest) = args.command.split_first().expect("clap requires a program");
    let mut running = Vec::new();
    let Some(path) = crate::program::find(program) else {
        return Ok(not_found(program));
    };
    for target in targets {
        let child = command(&target, &path, program, privileges)
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
