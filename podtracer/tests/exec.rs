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

/// The `Name:\tvalue` fields of a `/proc/PID/status`.
fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

/// What `cat /proc/self/status` says about itself when podtracer runs it in a namespace
/// with `--allow ALLOW`.
fn status_of_cat(pair: &NetnsPair, allow: &str) -> Result<String> {
    let out = podtracer()
        .args([
            "exec",
            "--netns",
            pair.b.netns_path().to_str().unwrap(),
            "--allow",
            allow,
            "--",
            "cat",
            "/proc/self/status",
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    Ok(String::from_utf8(out.stdout)?)
}

const NET_RAW: &str = "0000000000002000";
const NONE: &str = "0000000000000000";

/// Run by a root podtracer, the program is nobody with no capability in any set (or only
/// the kept one), no supplementary group and no_new_privs — read from its own
/// /proc/self/status inside a real network namespace.
#[test]
fn exec_drops_to_nobody_and_keeps_only_the_listed_capabilities() -> Result<()> {
    let pair = NetnsPair::new()?;
    let status = status_of_cat(&pair, "cat,ip")?;
    assert_eq!(status_field(&status, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(&status, "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(&status, "Groups"), "");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, set), NONE, "{set}: {status}");
    }
    let status = status_of_cat(&pair, "cat=NET_RAW")?;
    assert_eq!(status_field(&status, "Uid"), "65534\t65534\t65534\t65534");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, set), NET_RAW, "{set}: {status}");
    }
    Ok(())
}

/// Spawns `podtracer exec --allow ALLOW -- ARGV` in b and returns it with its child's
/// /proc status, read while the child runs.
fn running_child_status(
    pair: &NetnsPair,
    allow: &str,
    argv: &[&str],
) -> Result<(std::process::Child, String)> {
    let mut podtracer = podtracer()
        .args([
            "exec",
            "--netns",
            pair.b.netns_path().to_str().unwrap(),
            "--allow",
            allow,
            "--",
        ])
        .args(argv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let parent = podtracer.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir("/proc")? {
            let path = entry?.path();
            let Ok(status) = std::fs::read_to_string(path.join("status")) else {
                continue;
            };
            if status_field(&status, "PPid") == parent && status_field(&status, "Name") == argv[0] {
                return Ok((podtracer, status));
            }
        }
        if let Some(exit) = podtracer.try_wait()? {
            anyhow::bail!("podtracer exited ({exit}) before its child was seen");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {} child of podtracer",
            argv[0]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The default allowlist's real programs: ping keeps CAP_NET_RAW and only it (its bounding
/// set is NET_RAW alone; iputils ping drops even that from its own sets once its socket is
/// open, so its effective set is seen as NET_RAW or empty) and really pings through the
/// veth pair with it, while an entry without NET_RAW makes ping fail; `ip` keeps nothing
/// and still works; both run as nobody. `sh`, `nsenter` and `perl` are refused before
/// anything runs.
#[test]
fn allowlisted_programs_run_with_what_their_entry_keeps() -> Result<()> {
    let pair = NetnsPair::new()?;
    let allow = "iperf3,ping=NET_RAW,ip,ss,nslookup,dig";
    let a = pair.a.ip.to_string();
    let (ping, status) = running_child_status(
        &pair,
        allow,
        &["ping", "-c", "3", "-i", "0.3", "-W", "2", &a],
    )?;
    assert_eq!(status_field(&status, "Uid"), "65534\t65534\t65534\t65534");
    assert!(
        [NET_RAW, NONE].contains(&status_field(&status, "CapEff")),
        "{status}"
    );
    assert_eq!(status_field(&status, "CapBnd"), NET_RAW, "{status}");
    let out = ping.wait_with_output()?;
    assert!(out.status.success(), "ping with only NET_RAW: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 received"),
        "{out:?}"
    );
    let out = podtracer()
        .args(["exec", "--netns", pair.b.netns_path().to_str().unwrap()])
        .args(["--allow", "ping", "--", "ping", "-c", "1", "-W", "1", &a])
        .output()?;
    assert!(!out.status.success(), "ping without NET_RAW: {out:?}");

    let (mut monitor, status) =
        running_child_status(&pair, allow, &["ip", "-o", "monitor", "link"])?;
    assert_eq!(status_field(&status, "Uid"), "65534\t65534\t65534\t65534");
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&status, set), NONE, "{set}: {status}");
    }
    monitor.kill()?;
    monitor.wait()?;
    let b = pair.b.netns_path();
    for argv in [&["ip", "-o", "addr"][..], &["ss", "-tn"]] {
        let out = podtracer()
            .args([
                "exec",
                "--netns",
                b.to_str().unwrap(),
                "--allow",
                allow,
                "--",
            ])
            .args(argv)
            .output()?;
        assert!(out.status.success(), "{argv:?} as nobody: {out:?}");
    }

    for refused in ["sh", "nsenter", "perl"] {
        let out = podtracer()
            .args([
                "exec",
                "--netns",
                b.to_str().unwrap(),
                "--allow",
                allow,
                "--",
                refused,
                "-c",
                "true",
            ])
            .output()?;
        assert!(!out.status.success(), "{refused} ran: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{refused:?} refused"))
                && err.contains("iperf3, ping, ip, ss, nslookup, dig"),
            "{err}"
        );
    }
    Ok(())
}
