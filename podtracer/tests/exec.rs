//! `podtracer exec`: host programs run inside the target namespace, argv passed as is.

use anyhow::Result;
use snoopy_testkit::NetnsPair;

use crate::support::podtracer;

#[test]
fn exec_runs_ip_inside_the_namespace() -> Result<()> {
    let pair = NetnsPair::new()?;
    let out = podtracer()
        .args([
            "exec",
            "--netns",
            pair.b.netns_path().to_str().unwrap(),
            "--",
            "ip",
            "-o",
            "addr",
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("veth-b    inet {}/24", pair.b.ip)),
        "{text}"
    );
    assert!(
        !text.contains(&pair.a.ip.to_string()),
        "a's address is not in b: {text}"
    );
    Ok(())
}

#[test]
fn exec_by_pid_passes_the_exit_status_and_arguments_through() -> Result<()> {
    let pair = NetnsPair::new()?;
    let resident = pair.a.resident()?;
    let pid = resident.pid().to_string();
    // Arguments reach the program as argv: the `;` is data, not a shell separator.
    let out = podtracer()
        .args([
            "exec",
            "--pid",
            &pid,
            "--",
            "sh",
            "-c",
            "echo \"$1\"; exit 7",
            "sh",
            "a; b",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a; b\n");
    let out = podtracer()
        .args(["exec", "--pid", &pid, "--", "true"])
        .output()?;
    assert_eq!(out.status.code(), Some(0));
    Ok(())
}

#[test]
fn exec_of_a_missing_program_says_so() -> Result<()> {
    let pair = NetnsPair::new()?;
    let out = podtracer()
        .args([
            "exec",
            "--netns",
            pair.b.netns_path().to_str().unwrap(),
            "--",
            "no-such-program-xyz",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-program-xyz") && err.contains("not found"),
        "{err}"
    );
    Ok(())
}
