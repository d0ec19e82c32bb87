//! Bad targets and missing privileges: one clear line on stderr and a non-zero exit.

use std::process::Output;

use anyhow::Result;
use snoopy_testkit::NetnsPair;

use crate::support::podtracer;

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("podtracer: "), "{err}");
    err
}

#[test]
fn a_pid_that_does_not_exist() -> Result<()> {
    let out = podtracer()
        .args(["capture", "--pid", "999999999", "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(err.contains("no process with PID 999999999"), "{err}");
    Ok(())
}

#[test]
fn a_path_that_is_not_a_network_namespace() -> Result<()> {
    let out = podtracer()
        .args(["capture", "--netns", "/etc/hostname", "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(
        err.contains("/etc/hostname is not a net namespace"),
        "{err}"
    );
    let out = podtracer()
        .args(["capture", "--netns", "/proc/self/ns/mnt", "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(err.contains("it is a mnt namespace"), "{err}");
    let out = podtracer()
        .args(["capture", "--netns", "/nonexistent/netns", "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(
        err.contains("open(/nonexistent/netns)") && err.contains("No such file"),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_interface_that_does_not_exist_lists_those_that_do() -> Result<()> {
    let pair = NetnsPair::new()?;
    let out = podtracer()
        .args([
            "capture",
            "--netns",
            pair.a.netns_path().to_str().unwrap(),
            "-i",
            "eth7",
            "-c",
            "1",
        ])
        .output()?;
    let err = one_line_error(&out);
    assert!(err.contains("no interface named \"eth7\""), "{err}");
    assert!(err.contains("interfaces: lo, veth-a"), "{err}");
    Ok(())
}

#[test]
fn without_capabilities_the_error_names_the_missing_one() -> Result<()> {
    snoopy_testkit::require_tool("setpriv")?;
    let pair = NetnsPair::new()?;
    let netns = pair.a.netns_path();
    // Root without any capability: opening the namespace works, setns does not.
    let out = std::process::Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_podtracer"))
        .args(["capture", "--netns", netns.to_str().unwrap(), "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(
        err.contains("setns(") && err.contains("needs CAP_SYS_ADMIN"),
        "{err}"
    );
    assert!(
        err.contains("securityContext.capabilities.add: [SYS_ADMIN]"),
        "{err}"
    );
    // An unprivileged user cannot even open another user's namespace files.
    let resident = pair.a.resident()?;
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_podtracer"))
        .args(["capture", "--pid", &resident.pid().to_string(), "-c", "1"])
        .output()?;
    let err = one_line_error(&out);
    assert!(
        err.contains("permission denied") && err.contains("CAP_SYS_PTRACE"),
        "{err}"
    );
    Ok(())
}

#[test]
fn rotation_flags_that_cannot_apply_fail_before_the_target_is_looked_up() -> Result<()> {
    // The PID does not exist: only a check made before the target would name the flags.
    let cases: [(&[&str], &str); 5] = [
        (&["-C", "1"], "-C and -G rotate the -w file: give -w FILE"),
        (
            &["-G", "1", "-w", "-"],
            "-C and -G rotate the -w file: give -w FILE",
        ),
        (&["-W", "3", "-w", "x.pcap"], "-W needs -C or -G"),
        (&["-z", "gzip", "-w", "x.pcap"], "-z needs -C or -G"),
        (
            &["-G", "1", "-w", "x-%Q.pcap"],
            "%Q is not a supported strftime conversion",
        ),
    ];
    for (flags, expected) in cases {
        let out = podtracer()
            .args(["capture", "--pid", "999999999"])
            .args(flags)
            .output()?;
        let err = one_line_error(&out);
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
    Ok(())
}
