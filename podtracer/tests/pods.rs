//! Pods by name and label through a real containerd (the testbed): `pods`, `capture --pod`,
//! `capture -l` (one pcapng interface per pod), pods that vanish, `exec` into pods.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;

use crate::runtime::{TestPods, unique_namespace};
use crate::support::*;

#[test]
fn pods_are_listed_by_namespace_and_selector() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("list");
    let (_, web0) = pods.sleeper(&ns, "web-0", &[("app", "web"), ("tier", "front")])?;
    pods.sleeper(&ns, "web-1", &[("app", "web")])?;
    pods.sleeper(&ns, "db-0", &[("app", "db")])?;
    let ep = pods.endpoint_arg();

    let out = podtracer()
        .args(["pods", "--runtime-endpoint", &ep, "-n", &ns, "-o", "json"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["db-0", "web-0", "web-1"]);
    let web0_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "web-0")
        .unwrap();
    assert_eq!(web0_row["ip"], web0.to_string());
    assert!(
        web0_row["containers"][0]["pid"].as_u64().is_some(),
        "{web0_row}"
    );

    for (selector, want) in [
        ("app=web", vec!["web-0", "web-1"]),
        ("app!=web", vec!["db-0"]),
        ("tier", vec!["web-0"]),
        ("!tier", vec!["db-0", "web-1"]),
        (
            "app in (db, web),tier notin (back)",
            vec!["db-0", "web-0", "web-1"],
        ),
    ] {
        let out = podtracer()
            .args(["pods", "--runtime-endpoint", &ep, "-n", &ns, "-l", selector])
            .output()?;
        assert!(out.status.success(), "{selector}: {out:?}");
        let text = String::from_utf8(out.stdout)?;
        let got: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(got, want, "selector {selector:?}:\n{text}");
    }
    Ok(())
}

#[test]
fn capture_by_pod_name_sees_the_traffic_between_two_pods() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("bypod");
    let (_, server) = pods.sleeper(&ns, "server", &[])?;
    let (_, client) = pods.pinger(&ns, "client", &[], server)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("server.pcap");
    let ep = pods.endpoint_arg();
    let capture = start_capture(&[
        "--runtime-endpoint",
        &ep,
        "--pod",
        "server",
        "-n",
        &ns,
        "--duration",
        "2",
        "-w",
        file.to_str().unwrap(),
    ])?;
    let out = wait_with_timeout(capture, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let rows = tshark_fields(&file, &["ip.src", "ip.dst", "icmp.type"])?;
    let requests = rows
        .iter()
        .filter(|r| r[0] == client.to_string() && r[1] == server.to_string() && r[2] == "8")
        .count();
    let replies = rows
        .iter()
        .filter(|r| r[0] == server.to_string() && r[1] == client.to_string() && r[2] == "0")
        .count();
    assert!(requests >= 5, "echo requests client -> server: {rows:?}");
    assert!(replies >= 5 && replies.abs_diff(requests) <= 1, "{rows:?}");
    Ok(())
}

#[test]
fn a_label_capture_writes_one_pcapng_interface_per_pod() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("bylabel");
    let (_, b) = pods.sleeper(&ns, "b", &[("mon", "true")])?;
    let (_, a) = pods.pinger(&ns, "a", &[("mon", "true")], b)?;
    pods.sleeper(&ns, "c", &[("mon", "false")])?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("pods.pcapng");
    let ep = pods.endpoint_arg();
    let capture = start_capture(&[
        "--runtime-endpoint",
        &ep,
        "-l",
        "mon=true",
        "-n",
        &ns,
        "--duration",
        "2",
        "-w",
        file.to_str().unwrap(),
    ])?;
    let out = wait_with_timeout(capture, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = tshark_fields(
        &file,
        &["frame.interface_name", "ip.src", "ip.dst", "icmp.type"],
    )?;
    assert_eq!(rows.len() as u64, captured_count(&stderr)?);
    let (if_a, if_b) = (format!("{ns}/a/eth0"), format!("{ns}/b/eth0"));
    let mut seen_a = 0usize;
    let mut seen_b = 0usize;
    for r in rows.iter().filter(|r| r[3] == "8" || r[3] == "0") {
        let ends = [r[1].as_str(), r[2].as_str()];
        assert!(
            ends.contains(&a.to_string().as_str()) && ends.contains(&b.to_string().as_str()),
            "{r:?}"
        );
        if r[0] == if_a {
            seen_a += 1;
        } else if r[0] == if_b {
            seen_b += 1;
        } else {
            panic!("packet attributed to an unexpected interface: {r:?}");
        }
    }
    // Every echo crosses both pods' interfaces: each pod's copy is attributed to that pod.
    assert!(seen_a >= 10 && seen_b >= 10, "a: {seen_a}, b: {seen_b}");
    assert!(seen_a.abs_diff(seen_b) <= 2, "a: {seen_a}, b: {seen_b}");

    // Text: one line per packet, prefixed with the pod; the filter runs in every pod's socket.
    let out = podtracer()
        .args([
            "capture",
            "--runtime-endpoint",
            &ep,
            "-l",
            "mon=true",
            "-n",
            &ns,
            "--duration",
            "1.5",
            "icmp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout.clone())?;
    let request = format!("IP {a} > {b}: ICMP echo request");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{ns}/a ")) && l.contains(&request)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{ns}/b ")) && l.contains(&request)),
        "{text}"
    );
    assert!(!text.contains(&format!("{ns}/c ")), "{text}");
    let others: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(": ICMP echo "))
        .collect();
    assert!(others.is_empty(), "only what `icmp` keeps: {others:#?}");
    Ok(())
}

#[test]
fn a_pod_deleted_during_a_label_capture_ends_its_part_and_the_others_go_on() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("vanish");
    let (_, b) = pods.sleeper(&ns, "b", &[("mon", "true")])?;
    let (a_sandbox, _) = pods.pinger(&ns, "a", &[("mon", "true")], b)?;
    // Traffic to b that outlives a: from a pod outside the selection.
    pods.pinger(&ns, "c", &[], b)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("vanish.pcapng");
    let ep = pods.endpoint_arg();
    let capture = start_capture(&[
        "--runtime-endpoint",
        &ep,
        "-l",
        "mon=true",
        "-n",
        &ns,
        "-w",
        file.to_str().unwrap(),
    ])?;
    std::thread::sleep(Duration::from_millis(1500));
    pods.delete(&a_sandbox)?;
    let deleted_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    std::thread::sleep(Duration::from_millis(2000));
    signal(&capture, "INT")?;
    let out = wait_with_timeout(capture, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{ns}/a: pod gone")), "{stderr}");
    let rows = tshark_fields(&file, &["frame.interface_name", "frame.time_epoch"])?;
    assert_eq!(
        rows.len() as u64,
        captured_count(&stderr)?,
        "every counted packet is in the file"
    );
    let a_packets = rows
        .iter()
        .filter(|r| r[0] == format!("{ns}/a/eth0"))
        .count();
    let b_late = rows
        .iter()
        .filter(|r| {
            r[0] == format!("{ns}/b/eth0") && r[1].parse::<f64>().unwrap_or(0.0) > deleted_at + 0.5
        })
        .count();
    assert!(
        a_packets >= 5,
        "a's packets before it was deleted are kept: {a_packets}"
    );
    assert!(
        b_late >= 3,
        "b's capture went on after a was deleted: {b_late}"
    );
    Ok(())
}

/// The operator's case: one Job captures one pod, and the pod is deleted. The capture ends
/// by itself (exit 0), the file holds every packet counted, and the termination log says
/// the target went away (the operator shows the target Gone with the counts).
#[test]
fn a_pod_deleted_during_its_capture_ends_it_and_the_termination_log_says_so() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("gone");
    let (_, b) = pods.sleeper(&ns, "b", &[])?;
    let (a_sandbox, _) = pods.pinger(&ns, "a", &[], b)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("a.pcapng");
    let log = dir.path().join("termination-log");
    let ep = pods.endpoint_arg();
    let capture = start_capture(&[
        "--runtime-endpoint",
        &ep,
        "--pod",
        "a",
        "-n",
        &ns,
        "-w",
        file.to_str().unwrap(),
        "--termination-log",
        log.to_str().unwrap(),
    ])?;
    std::thread::sleep(Duration::from_millis(1500));
    pods.delete(&a_sandbox)?;
    // No signal: the vanished interface ends it.
    let out = wait_with_timeout(capture, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("went away"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
    assert_eq!(report["target_gone"], true, "{report}");
    let captured = captured_count(&stderr)?;
    assert_eq!(report["captured"], captured, "{report}");
    assert!(captured >= 5, "a's pings before it went: {captured}");
    assert_file_holds(&file, captured)
}

#[test]
fn exec_runs_in_pods_by_name_and_by_label() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("exec");
    let (_, x) = pods.sleeper(&ns, "x", &[("role", "t")])?;
    let (_, y) = pods.sleeper(&ns, "y", &[("role", "t")])?;
    let ep = pods.endpoint_arg();
    let out = podtracer()
        .args([
            "exec",
            "--runtime-endpoint",
            &ep,
            "--pod",
            "x",
            "-n",
            &ns,
            "--",
            "ip",
            "-o",
            "addr",
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains(&format!("inet {x}/")), "{text}");
    let out = podtracer()
        .args([
            "exec",
            "--runtime-endpoint",
            &ep,
            "-l",
            "role=t",
            "-n",
            &ns,
            "--",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{ns}/x: ")) && l.contains(&format!("inet {x}/"))),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{ns}/y: ")) && l.contains(&format!("inet {y}/"))),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_missing_pod_or_runtime_is_a_clear_error() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("missing");
    pods.sleeper(&ns, "here", &[])?;
    let ep = pods.endpoint_arg();
    let out = podtracer()
        .args([
            "capture",
            "--runtime-endpoint",
            &ep,
            "--pod",
            "nothere",
            "-n",
            &ns,
            "-c",
            "1",
        ])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("no pod {ns}/nothere on this node"))
            && err.contains(&format!("{ns}/here")),
        "{err}"
    );

    let out = podtracer()
        .args(["pods", "--runtime-endpoint", "unix:///nonexistent/cri.sock"])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cri.sock"), "{err}");

    // Something listens, but it does not speak CRI.
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("not-cri.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket)?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            drop(stream);
        }
    });
    let out = podtracer()
        .args(["pods", "--runtime-endpoint"])
        .arg(&socket)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-cri.sock"), "{err}");
    Ok(())
}

/// The uid of each pod of `ns`, as the runtime (and the operator) knows it.
fn pod_uids(ep: &str, ns: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let out = podtracer()
        .args(["pods", "--runtime-endpoint", ep, "-n", ns, "-o", "json"])
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap().to_owned();
            (field("name"), field("uid"))
        })
        .collect())
}

/// A per-node Job's command line: the pods named NS/NAME (its snapshot), one pcapng
/// interface each, and each pod's count in the termination report, keyed by its uid —
/// equal to that pod's packets in the file.
#[test]
fn listed_pods_are_captured_together_and_reported_one_by_one() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("listed");
    let (_, b) = pods.sleeper(&ns, "b", &[])?;
    pods.pinger(&ns, "a", &[], b)?;
    // Not listed: never captured, even though it talks to b.
    pods.pinger(&ns, "c", &[], b)?;
    let ep = pods.endpoint_arg();
    let uids = pod_uids(&ep, &ns)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("node.pcapng");
    let log = dir.path().join("termination-log");
    let capture = start_capture(&[
        "--runtime-endpoint",
        &ep,
        "--pod",
        &format!("{ns}/a"),
        "--pod",
        &format!("{ns}/b"),
        "--pod",
        &format!("{ns}/not-here"),
        "-w",
        file.to_str().unwrap(),
        "--termination-log",
        log.to_str().unwrap(),
        "icmp",
    ])?;
    std::thread::sleep(Duration::from_millis(2500));
    signal(&capture, "TERM")?;
    let out = wait_with_timeout(capture, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let report: snoopy_job::Report = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
    let rows = tshark_fields(&file, &["frame.interface_name"])?;
    assert_eq!(Some(rows.len() as u64), report.captured, "{report:?}");
    assert_eq!(report.pods.len(), 2, "a and b, not c: {report:?}");
    for pod in ["a", "b"] {
        let entry = report
            .pods
            .iter()
            .find(|p| p.is_pod(&uids[pod]))
            .unwrap_or_else(|| panic!("{pod} ({}) in {report:?}", uids[pod]));
        let in_file = rows
            .iter()
            .filter(|r| r[0] == format!("{ns}/{pod}/eth0"))
            .count() as u64;
        assert_eq!(entry.captured, in_file, "{pod}: {report:?}");
        assert!(entry.captured >= 4, "{pod} saw the pings: {report:?}");
        assert!(!entry.gone && !entry.failed, "{entry:?}");
    }
    assert!(!report.pods.iter().any(|p| p.is_pod(&uids["c"])));

    // A packet count per pod (the CR's packetCount): each pod's capture ends at its own
    // count, and the run ends by itself when all have.
    let out = podtracer()
        .args([
            "capture",
            "--runtime-endpoint",
            &ep,
            "--pod",
            &format!("{ns}/a"),
            "--pod",
            &format!("{ns}/b"),
            "--count-per-pod",
            "3",
            "-w",
            file.to_str().unwrap(),
            "--termination-log",
            log.to_str().unwrap(),
            "icmp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = wait_with_timeout(out, Duration::from_secs(15))?;
    assert!(out.status.success(), "{out:?}");
    let report: snoopy_job::Report = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
    assert_eq!(report.captured, Some(6), "{report:?}");
    assert!(report.pods.iter().all(|p| p.captured == 3), "{report:?}");
    assert_eq!(tshark_fields(&file, &["frame.number"])?.len(), 6);
    Ok(())
}

/// A per-node Job in follow mode: `-l` over several namespaces, at most `--max-pods` pods.
#[test]
fn a_selector_over_namespaces_captures_at_most_max_pods() -> Result<()> {
    let pods = TestPods::new()?;
    let (ns1, ns2, ns3) = (
        unique_namespace("maxa"),
        unique_namespace("maxb"),
        unique_namespace("maxc"),
    );
    let (_, b) = pods.sleeper(&ns1, "b", &[("mon", "true")])?;
    pods.pinger(&ns2, "a", &[("mon", "true")], b)?;
    pods.pinger(&ns3, "c", &[("mon", "true")], b)?;
    let ep = pods.endpoint_arg();
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("termination-log");
    let run = |max: &str| -> Result<(snoopy_job::Report, String)> {
        let capture = podtracer()
            .args([
                "capture",
                "--runtime-endpoint",
                &ep,
                "-l",
                "mon=true",
                "-n",
                &ns1,
                "-n",
                &ns2,
                "--max-pods",
                max,
                "--duration",
                "3s",
                "-w",
                dir.path().join("f.pcapng").to_str().unwrap(),
                "--termination-log",
                log.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = wait_with_timeout(capture, Duration::from_secs(15))?;
        assert!(out.status.success(), "{out:?}");
        let report = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
        Ok((report, String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    // ns3's pod matches the labels but not the namespaces.
    let (report, stderr) = run("10")?;
    assert_eq!(report.pods.len(), 2, "{report:?}\n{stderr}");
    assert!(!stderr.contains(&format!("{ns3}/c")), "{stderr}");
    let (report, stderr) = run("1")?;
    assert_eq!(report.pods.len(), 1, "{report:?}\n{stderr}");
    assert!(
        stderr.contains("--max-pods 1 reached"),
        "the left-out pod is named: {stderr}"
    );
    Ok(())
}

/// `flows` over several pods (a per-node Job's flows): each pod meters its own side, so the
/// pings a → b are one ICMP flow seen from a and one seen from b, both ends named; each
/// pod's packet count is in the termination report.
#[test]
fn flows_of_listed_pods_are_metered_each_on_its_own_side() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("flowsmany");
    let (_, b) = pods.sleeper(&ns, "b", &[])?;
    let (_, a) = pods.pinger(&ns, "a", &[], b)?;
    let ep = pods.endpoint_arg();
    let uids = pod_uids(&ep, &ns)?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("termination-log");
    let out = podtracer()
        .args([
            "flows",
            "--runtime-endpoint",
            &ep,
            "--pod",
            &format!("{ns}/a"),
            "--pod",
            &format!("{ns}/b"),
            "--duration",
            "3s",
            "--interval",
            "1s",
            "-o",
            "json",
            "--termination-log",
            log.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let pings: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["type"] == "flow" && v["protocol"] == "icmp")
        .filter(|v| v["initiator"]["ip"] == a.to_string() && v["responder"]["ip"] == b.to_string())
        .collect();
    assert_eq!(pings.len(), 2, "one from each side: {pings:#?}");
    for p in &pings {
        assert_eq!(p["initiator"]["name"], format!("{ns}/a"), "{p}");
        assert_eq!(p["responder"]["name"], format!("{ns}/b"), "{p}");
        assert!(p["fwd"]["packets"].as_u64().unwrap() >= 5, "{p}");
    }
    assert!(lines.iter().any(|v| v["type"] == "snapshot"), "{lines:?}");
    assert!(lines.last().is_some_and(|v| v["type"] == "summary"));
    let report: snoopy_job::Report = serde_json::from_str(&std::fs::read_to_string(&log)?)?;
    assert_eq!(report.pods.len(), 2, "{report:?}");
    for pod in ["a", "b"] {
        let entry = report.pods.iter().find(|p| p.is_pod(&uids[pod])).unwrap();
        assert!(entry.captured >= 10, "{pod}: {report:?}");
    }
    Ok(())
}
