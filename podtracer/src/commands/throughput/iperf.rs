//! One iperf3 test between two namespaces: the server (`iperf3 -s -1`) started in one, seen
//! listening, the client (`iperf3 -c … -J`) run in the other, both as nobody with no
//! capabilities; the client's JSON report read into [`Flow`]s.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use snoopy_job::throughput::{
    Direction, FailureReason, Flow, Protocol, Spread, TestSettings, UdpLoss,
};
use snoopy_netns::Namespace;
use snoopy_netns::privileges::Privileges;

/// How long the server may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// What a client may take beyond its test time (connection, result exchange).
const CLIENT_GRACE: Duration = Duration::from_secs(15);

/// A failure and its words.
type Failure = (FailureReason, String);

/// One test's parameters.
pub struct Test<'a> {
    /// The iperf3 binary (the host's).
    pub iperf3: &'a Path,
    /// What iperf3 runs as.
    pub privileges: &'a Privileges,
    /// The server's network namespace.
    pub server: &'a Namespace,
    /// The client's network namespace.
    pub client: &'a Namespace,
    /// Where the client connects.
    pub address: SocketAddr,
    /// What to measure.
    pub settings: &'a TestSettings,
    /// iperf3's `--connect-timeout`.
    pub connect_timeout: Duration,
}

/// What a test measured.
pub struct Report {
    /// Client to server.
    pub forward: Option<Flow>,
    /// Server to client.
    pub reverse: Option<Flow>,
    /// iperf3's JSON, unchanged.
    pub raw: Value,
}

/// A child process we started, killed (by its PID, through the handle) and reaped when
/// dropped, whatever happened in between.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl Test<'_> {
    fn iperf3_in(&self, ns: &Namespace) -> std::process::Command {
        let mut command = snoopy_netns::command_in(&[ns], self.iperf3);
        command.arg0("iperf3");
        self.privileges.apply_to(&mut command);
        command
    }

    /// The client's arguments (iperf3's flags for the settings).
    fn client_args(&self) -> Vec<String> {
        let s = self.settings;
        let mut args = vec![
            "-c".to_owned(),
            self.address.ip().to_string(),
            "-p".into(),
            self.address.port().to_string(),
            "-J".into(),
            "-t".into(),
            s.seconds.to_string(),
            "-P".into(),
            s.streams.to_string(),
            "--connect-timeout".into(),
            self.connect_timeout.as_millis().max(1).to_string(),
        ];
        if s.protocol == Protocol::Udp {
            args.push("-u".into());
            if let Some(rate) = s.bitrate {
                args.extend(["-b".into(), rate.to_string()]);
            }
        }
        match s.direction {
            Direction::Forward => {}
            Direction::Reverse => args.push("-R".into()),
            Direction::Both => args.push("--bidir".into()),
        }
        args
    }

    /// Runs the test.
    pub fn run(&self) -> Result<Report, Failure> {
        let port = self.address.port().to_string();
        let server = self
            .iperf3_in(self.server)
            .args(["-s", "-1", "-p", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                (
                    FailureReason::ServerNotListening,
                    format!("starting iperf3 -s in the server's namespace: {e}"),
                )
            })?;
        let mut server = Reaped(server);
        wait_listening(&mut server.0, self.address.port())?;

        let client = self
            .iperf3_in(self.client)
            .args(self.client_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                (
                    FailureReason::Error,
                    format!("starting iperf3 -c in the client's namespace: {e}"),
                )
            })?;
        let deadline = Duration::from_secs(u64::from(self.settings.seconds))
            + self.connect_timeout
            + CLIENT_GRACE;
        let (stdout, stderr) = finish(Reaped(client), deadline)?;
        parse(&stdout, &stderr, self.settings)
    }
}

/// Waits until the server's process has a TCP socket listening on `port` in its namespace
/// (its `/proc/PID/net/tcp*` are that namespace's), or fails with what it printed.
fn wait_listening(server: &mut Child, port: u16) -> Result<(), Failure> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let pid = server.id();
    loop {
        if listening(pid, port) {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = server.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err((
                FailureReason::ServerNotListening,
                format!(
                    "iperf3 -s exited ({status}) before listening on port {port}: {}",
                    err.trim()
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err((
                FailureReason::ServerNotListening,
                format!("iperf3 -s did not listen on port {port} within {LISTEN_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `/proc/PID/net/tcp` or `tcp6` lists a LISTEN socket on `port`.
fn listening(pid: u32, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|table| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
            .is_ok_and(|text| listens_on(&text, port))
    })
}

/// Whether a `/proc/net/tcp`-format table has a socket in state LISTEN (0A) on `port`.
fn listens_on(table: &str, port: u16) -> bool {
    let want = format!("{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or("");
        let state = fields.nth(1).unwrap_or("");
        state == "0A" && local.rsplit(':').next() == Some(want.as_str())
    })
}

/// Reads a client's output to its end within `deadline` (killing it after that).
fn finish(mut client: Reaped, deadline: Duration) -> Result<(String, String), Failure> {
    let mut stdout = client.0.stdout.take().expect("piped");
    let mut stderr = client.0.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    loop {
        match client.0.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > deadline => {
                drop(client);
                return Err((
                    FailureReason::Timeout,
                    format!("iperf3 -c did not finish within {deadline:?}"),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err((FailureReason::Error, format!("waiting for iperf3 -c: {e}"))),
        }
    }
    Ok((
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// The flows of an iperf3 `-J` report, or its error as a failure.
pub fn parse(stdout: &str, stderr: &str, settings: &TestSettings) -> Result<Report, Failure> {
    let raw: Value = serde_json::from_str(stdout).map_err(|e| {
        (
            FailureReason::Error,
            format!("iperf3 -c printed no JSON report ({e}): {}", stderr.trim()),
        )
    })?;
    if let Some(error) = raw.get("error").and_then(Value::as_str) {
        let reason = if error.contains("Connection refused") {
            FailureReason::Refused
        } else if error.contains("timed out") || error.contains("Connection timed out") {
            FailureReason::Timeout
        } else {
            FailureReason::Error
        };
        return Err((reason, format!("iperf3: {error}")));
    }
    let end = &raw["end"];
    let tcp = settings.protocol == Protocol::Tcp;
    let flow = |sent: &str, received: &str, rtt: Option<Spread>| -> Result<Flow, Failure> {
        let (s, r) = (&end[sent], &end[received]);
        let bps = |v: &Value, name: &str| {
            v["bits_per_second"].as_f64().ok_or_else(|| {
                (
                    FailureReason::Error,
                    format!("iperf3's report has no end.{name}.bits_per_second"),
                )
            })
        };
        Ok(Flow {
            sent_bits_per_second: bps(s, sent)?,
            received_bits_per_second: bps(r, received)?,
            retransmits: if tcp { s["retransmits"].as_u64() } else { None },
            rtt_us: rtt,
            udp: (!tcp).then(|| UdpLoss {
                packets: r["packets"].as_u64().unwrap_or(0),
                lost_packets: r["lost_packets"].as_u64().unwrap_or(0),
                lost_percent: r["lost_percent"].as_f64().unwrap_or(0.0),
                jitter_ms: r["jitter_ms"].as_f64().unwrap_or(0.0),
            }),
        })
    };
    // The kernel's RTTs come with the sending side's streams: the client's own (forward).
    let client_rtt = if tcp { sender_rtt(end) } else { None };
    Ok(match settings.direction {
        Direction::Forward => Report {
            forward: Some(flow("sum_sent", "sum_received", client_rtt)?),
            reverse: None,
            raw,
        },
        Direction::Reverse => Report {
            forward: None,
            reverse: Some(flow("sum_sent", "sum_received", None)?),
            raw,
        },
        Direction::Both => Report {
            forward: Some(flow("sum_sent", "sum_received", client_rtt)?),
            reverse: Some(flow(
                "sum_sent_bidir_reverse",
                "sum_received_bidir_reverse",
                None,
            )?),
            raw,
        },
    })
}

/// The RTTs of the streams the client sent on: lowest minimum, mean of the means, highest
/// maximum (microseconds). `None` when iperf3 reported none.
fn sender_rtt(end: &Value) -> Option<Spread> {
    let streams: Vec<&Value> = end["streams"]
        .as_array()?
        .iter()
        .map(|s| &s["sender"])
        .filter(|s| s["sender"].as_bool() == Some(true) && s["max_rtt"].as_f64() > Some(0.0))
        .collect();
    if streams.is_empty() {
        return None;
    }
    let get = |s: &Value, k: &str| s[k].as_f64().unwrap_or(0.0);
    Some(Spread {
        min: streams
            .iter()
            .map(|s| get(s, "min_rtt"))
            .fold(f64::INFINITY, f64::min),
        mid: streams.iter().map(|s| get(s, "mean_rtt")).sum::<f64>() / streams.len() as f64,
        max: streams
            .iter()
            .map(|s| get(s, "max_rtt"))
            .fold(0.0, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1452 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1\n";

    #[test]
    fn a_listen_socket_is_found_by_port_and_state() {
        assert!(listens_on(TABLE, 5201));
        // 5202 is an established connection, not a listener.
        assert!(!listens_on(TABLE, 5202));
        assert!(!listens_on(TABLE, 80));
    }

    fn settings(protocol: Protocol, direction: Direction) -> TestSettings {
        TestSettings {
            protocol,
            direction,
            streams: 1,
            seconds: 1,
            bitrate: None,
            round_trips: 0,
        }
    }

    #[test]
    fn iperf3_errors_become_failure_reasons() {
        let s = settings(Protocol::Tcp, Direction::Forward);
        let refused = r#"{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let (reason, words) = parse(refused, "", &s).err().unwrap();
        assert_eq!(reason, FailureReason::Refused);
        assert!(words.contains("Connection refused"), "{words}");
        let timeout = r#"{"end":{},"error":"unable to connect to server: Connection timed out"}"#;
        assert_eq!(
            parse(timeout, "", &s).err().unwrap().0,
            FailureReason::Timeout
        );
        let (reason, words) = parse("", "iperf3: error - boom", &s).err().unwrap();
        assert_eq!(reason, FailureReason::Error);
        assert!(words.contains("boom"), "{words}");
    }

    #[test]
    fn flows_come_from_the_sums_of_each_direction() {
        let both = r#"{"end":{
            "streams":[{"sender":{"sender":true,"min_rtt":100,"mean_rtt":150,"max_rtt":300}},
                       {"sender":{"sender":false,"min_rtt":0,"mean_rtt":0,"max_rtt":0}}],
            "sum_sent":{"bits_per_second":9.0e9,"retransmits":3},
            "sum_received":{"bits_per_second":8.9e9},
            "sum_sent_bidir_reverse":{"bits_per_second":7.0e9,"retransmits":1},
            "sum_received_bidir_reverse":{"bits_per_second":6.9e9}}}"#;
        let r = parse(both, "", &settings(Protocol::Tcp, Direction::Both))
            .ok()
            .unwrap();
        let f = r.forward.unwrap();
        assert_eq!(
            (f.sent_bits_per_second, f.received_bits_per_second),
            (9.0e9, 8.9e9)
        );
        assert_eq!(f.retransmits, Some(3));
        assert_eq!(
            f.rtt_us,
            Some(Spread {
                min: 100.0,
                mid: 150.0,
                max: 300.0
            })
        );
        let b = r.reverse.unwrap();
        assert_eq!(
            (b.sent_bits_per_second, b.retransmits, b.rtt_us),
            (7.0e9, Some(1), None)
        );

        let udp = r#"{"end":{"sum_sent":{"bits_per_second":1.0e7},
            "sum_received":{"bits_per_second":9.0e6,"packets":100,"lost_packets":10,"lost_percent":10.0,"jitter_ms":0.5}}}"#;
        let r = parse(udp, "", &settings(Protocol::Udp, Direction::Forward))
            .ok()
            .unwrap();
        let f = r.forward.unwrap();
        assert_eq!(f.retransmits, None);
        assert_eq!(
            f.udp,
            Some(UdpLoss {
                packets: 100,
                lost_packets: 10,
                lost_percent: 10.0,
                jitter_ms: 0.5
            })
        );
        let missing = r#"{"end":{"sum_sent":{}}}"#;
        assert!(parse(missing, "", &settings(Protocol::Tcp, Direction::Forward)).is_err());
    }
}
