//! `podtracer throughput`: iperf3 between two network namespaces (a veth pair) and between
//! testbed pods (a mesh), with iperf3's own report as the reference for every number.

use std::process::Output;

use anyhow::{Context, Result};
use serde_json::Value;
use snoopy_testkit::NetnsPair;

use crate::runtime::{TestPods, unique_namespace};
use crate::support::*;

/// `podtracer throughput` from `a` to `b` of a pair, with `extra` flags.
fn between(pair: &NetnsPair, extra: &[&str]) -> Result<Output> {
    snoopy_testkit::require_tool("iperf3")?;
    let (a, b) = (pair.a.netns_path(), pair.b.netns_path());
    let ip = pair.b.ip.to_string();
    Ok(podtracer()
        .args(["throughput", "--netns", a.to_str().unwrap()])
        .args(["--to-netns", b.to_str().unwrap(), "--to-ip", &ip])
        .args(extra)
        .output()?)
}

/// One nftables rule on what enters `end`, in a table of its own at `priority`.
fn input_rule(end: &snoopy_testkit::End, table: &str, priority: i32, rule: &str) -> Result<()> {
    end.nft(&format!(
        "table inet {table} {{\n  chain input {{\n    type filter hook input priority {priority};\n    {rule}\n  }}\n}}\n"
    ))
}

/// The JSON results printed, one per line.
fn results(out: &Output) -> Result<Vec<Value>> {
    String::from_utf8(out.stdout.clone())?
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

#[test]
fn tcp_throughput_between_two_namespaces_is_iperf3s_report() -> Result<()> {
    let pair = NetnsPair::new()?;
    let out = between(&pair, &["-t", "1", "-o", "json", "--round-trips", "10"])?;
    assert!(out.status.success(), "{out:?}");
    let first = results(&out)?;
    assert_eq!(first.len(), 1, "{first:?}");
    let r = &first[0];
    assert_eq!(r["server_address"], pair.b.ip.to_string());
    assert_eq!(r["settings"]["protocol"], "tcp");
    assert!(r.get("reason").is_none(), "{r}");
    // Every number is iperf3's, taken from its own report.
    let end = &r["iperf3"]["end"];
    let forward = &r["forward"];
    assert_eq!(
        forward["sent_bits_per_second"],
        end["sum_sent"]["bits_per_second"]
    );
    assert_eq!(
        forward["received_bits_per_second"],
        end["sum_received"]["bits_per_second"]
    );
    assert_eq!(forward["retransmits"], end["sum_sent"]["retransmits"]);
    assert_eq!(
        forward["rtt_us"]["max"].as_f64(),
        end["streams"][0]["sender"]["max_rtt"].as_f64()
    );
    assert!(
        forward["received_bits_per_second"].as_f64().unwrap() > 1e8,
        "{forward}"
    );
    assert_eq!(
        r["iperf3"]["start"]["connected"][0]["remote_host"],
        pair.b.ip.to_string()
    );
    assert_eq!(
        r["iperf3"]["start"]["connected"][0]["remote_port"],
        r["port"]
    );
    assert!(r.get("reverse").is_none(), "{r}");
    // Latency was measured on the same path: ten round trips, all positive, ordered.
    let latency = &r["latency"];
    assert_eq!(latency["round_trips"], 10);
    for key in ["connect_us", "round_trip_us"] {
        let s = &latency[key];
        let (min, mid, max) = (
            s["min"].as_f64().unwrap(),
            s["mid"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
        );
        assert!(
            0.0 < min && min <= mid && mid <= max && max < 1e6,
            "{key}: {s}"
        );
    }

    // Reverse: the server sends, and the result says so.
    let out = between(
        &pair,
        &["-t", "1", "-o", "json", "-R", "--round-trips", "0"],
    )?;
    assert!(out.status.success(), "{out:?}");
    let r = &results(&out)?[0];
    assert!(
        r.get("forward").is_none() && r.get("latency").is_none(),
        "{r}"
    );
    assert_eq!(r["iperf3"]["start"]["test_start"]["reverse"], 1);
    assert_eq!(
        r["reverse"]["received_bits_per_second"],
        r["iperf3"]["end"]["sum_received"]["bits_per_second"]
    );

    // The table: one line for the pair.
    let out = between(&pair, &["-t", "1"])?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("CLIENT"), "{text}");
    assert!(lines[1].ends_with(" ok"), "{text}");
    Ok(())
}

#[test]
fn udp_loss_made_by_nftables_is_measured() -> Result<()> {
    let pair = NetnsPair::new()?;
    // One data datagram in four dropped on its way into b (and nothing else touched: iperf3
    // sets up a UDP stream with a 4-byte datagram and waits for it without retrying).
    input_rule(
        &pair.b,
        "loss",
        0,
        "udp length > 100 numgen random mod 4 0 drop",
    )?;
    let out = between(&pair, &["-t", "2", "-u", "-b", "20M", "-o", "json"])?;
    assert!(out.status.success(), "{out:?}");
    let r = &results(&out)?[0];
    let udp = &r["forward"]["udp"];
    // The same numbers as iperf3's receiver sums (compared as numbers: iperf3 writes 25 where
    // a float is 25.0).
    let sums = &r["iperf3"]["end"]["sum_received"];
    for key in ["packets", "lost_packets", "lost_percent", "jitter_ms"] {
        assert_eq!(
            udp[key].as_f64(),
            sums[key].as_f64(),
            "{key}: {udp} vs {sums}"
        );
    }
    let lost = udp["lost_percent"].as_f64().unwrap();
    assert!((15.0..35.0).contains(&lost), "about 25 % lost: {udp}");
    assert!(udp["packets"].as_u64().unwrap() > 1000, "{udp}");
    assert!(r["forward"].get("retransmits").is_none(), "{r}");
    Ok(())
}

#[test]
fn a_dropped_port_is_a_failed_result_with_its_reason() -> Result<()> {
    let pair = NetnsPair::new()?;
    input_rule(&pair.b, "fw", 0, "tcp dport 5399 drop")?;
    let out = between(
        &pair,
        &[
            "-t",
            "1",
            "-p",
            "5399",
            "--connect-timeout",
            "1s",
            "-o",
            "json",
        ],
    )?;
    // A failed test is still a result; the exit status says one failed.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = &results(&out)?[0];
    assert_eq!(r["reason"], "timeout", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("iperf3"),
        "the error names what failed: {r}"
    );
    assert_eq!(r["port"], 5399);
    // Latency, on a port the firewall lets through, was still measured.
    assert_eq!(r["latency"]["round_trips"], 20, "{r}");

    // With nothing listening and a reject rule, the reason is "refused".
    input_rule(
        &pair.b,
        "fw2",
        -1,
        "tcp dport != 5399 reject with tcp reset",
    )?;
    let out = between(&pair, &["-t", "1", "--connect-timeout", "1s", "-o", "json"])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = &results(&out)?[0];
    assert_eq!(r["reason"], "refused", "{r}");
    Ok(())
}

#[test]
fn bad_throughput_options_are_refused_before_any_test() -> Result<()> {
    let me = std::process::id().to_string();
    for (args, says) in [
        (
            vec!["throughput", "--pid", &me],
            "name the server: --to-pod NAME, --to-pid PID or --to-netns PATH",
        ),
        (vec!["throughput", "--pid", &me, "--to-pid", &me], "--to-ip"),
        (
            vec!["throughput", "--pid", &me, "--mesh"],
            "--mesh needs -l SELECTOR",
        ),
        (
            vec![
                "throughput",
                "--pid",
                &me,
                "--to-pid",
                &me,
                "--to-ip",
                "10.0.0.1",
                "-b",
                "1M",
            ],
            "--udp",
        ),
        (
            vec![
                "throughput",
                "--pid",
                &me,
                "--to-pid",
                &me,
                "--to-ip",
                "10.0.0.1",
                "-t",
                "0",
            ],
            "0 is not in 1..=3600",
        ),
    ] {
        let out = podtracer().args(&args).output()?;
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    Ok(())
}

#[test]
fn a_mesh_of_three_pods_gives_six_results_and_a_blocked_pod_fails_only_its_pairs() -> Result<()> {
    snoopy_testkit::require_tool("iperf3")?;
    let pods = TestPods::new()?;
    let ns = unique_namespace("mesh");
    let mut ips = std::collections::HashMap::new();
    for name in ["a", "b", "c"] {
        let (_, ip) = pods.sleeper(&ns, name, &[("app", "mesh")])?;
        ips.insert(format!("{ns}/{name}"), ip.to_string());
    }
    let ep = pods.endpoint_arg();
    let mesh = |extra: &[&str]| -> Result<Output> {
        Ok(podtracer()
            .args([
                "throughput",
                "--runtime-endpoint",
                &ep,
                "-l",
                "app=mesh",
                "-n",
                &ns,
            ])
            .args(["--mesh", "-t", "1", "--connect-timeout", "1s", "-o", "json"])
            .args(extra)
            .output()?)
    };
    let out = mesh(&[])?;
    assert!(out.status.success(), "{out:?}");
    let all = results(&out)?;
    assert_eq!(all.len(), 6, "{all:?}");
    let mut pairs = std::collections::BTreeSet::new();
    for r in &all {
        let (client, server) = (r["client"].as_str().unwrap(), r["server"].as_str().unwrap());
        assert_ne!(client, server);
        assert_eq!(r["server_address"].as_str().unwrap(), ips[server], "{r}");
        assert!(
            r["forward"]["received_bits_per_second"].as_f64().unwrap() > 1e7,
            "{r}"
        );
        assert_eq!(
            r["forward"]["received_bits_per_second"],
            r["iperf3"]["end"]["sum_received"]["bits_per_second"]
        );
        pairs.insert((client.to_owned(), server.to_owned()));
    }
    assert_eq!(pairs.len(), 6, "every ordered pair once: {pairs:?}");
    // One test at a time: each pair starts after the previous one ended.
    for w in all.windows(2) {
        assert!(
            w[0]["ended_ms"].as_u64() <= w[1]["started_ms"].as_u64(),
            "{w:?}"
        );
    }

    // Block c (a firewall inside the pod's namespace): its four pairs fail with a reason,
    // the two others still run.
    let c = format!("{ns}/c");
    let block = podtracer()
        .args(["exec", "--runtime-endpoint", &ep, "--pod", "c", "-n", &ns, "--as-root", "--"])
        .args(["nft", "add table inet block ; add chain inet block input { type filter hook input priority 0 ; } ; add rule inet block input iifname != lo drop"])
        .output()?;
    assert!(block.status.success(), "{block:?}");
    let out = mesh(&[])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let all = results(&out)?;
    assert_eq!(all.len(), 6, "{all:?}");
    for r in &all {
        let involves_c = r["client"] == c.as_str() || r["server"] == c.as_str();
        if involves_c {
            assert_eq!(r["reason"], "timeout", "{r}");
        } else {
            assert!(r.get("reason").is_none(), "{r}");
        }
    }
    Ok(())
}
