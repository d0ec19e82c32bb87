//! What a node job does, and podtracer's command line for it.

use std::time::Duration;

use crate::duration;

/// podtracer's snapshot length when a request sets none (`-s`): what it keeps of each
/// packet, and what the operator sizes capture files for.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// The pod(s) a job works on, found through the node's container runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which pods.
    pub pods: Pods,
    /// `--runtime-endpoint` (`unix:///…`).
    pub runtime_endpoint: String,
}

/// Which pods of the node a job works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pods {
    /// `--pod NAME --namespace NS`: one pod (a per-pod Job).
    One {
        /// Kubernetes namespace.
        namespace: String,
        /// Pod name.
        name: String,
    },
    /// `--pod NS/NAME` repeated: exactly these pods, those of them on this node (a per-node
    /// Job's snapshot of its targets).
    Listed(Vec<(String, String)>),
    /// `-l SELECTOR -n NS…`: the pods of the node that match now and later (a per-node Job
    /// in follow mode).
    Selected {
        /// Kubernetes namespaces (at least one).
        namespaces: Vec<String>,
        /// The label selector in kubectl's syntax.
        selector: String,
        /// `--skip-host-network`: pods on the node's network are not targets.
        skip_host_network: bool,
        /// `--max-pods`: at most this many pods are captured in all.
        max_pods: Option<u32>,
    },
}

impl Target {
    /// Pod `pod` of namespace `namespace`, through the runtime at `runtime_endpoint`.
    pub fn pod(pod: &str, namespace: &str, runtime_endpoint: &str) -> Self {
        Self {
            pods: Pods::One {
                namespace: namespace.into(),
                name: pod.into(),
            },
            runtime_endpoint: runtime_endpoint.into(),
        }
    }

    /// Whether the job serves several pods (one pcapng interface and one report entry each).
    pub fn is_many(&self) -> bool {
        !matches!(self.pods, Pods::One { .. })
    }

    fn push_args(&self, args: &mut Vec<String>) {
        match &self.pods {
            Pods::One { namespace, name } => {
                args.extend(["--pod".into(), name.clone()]);
                args.extend(["--namespace".into(), namespace.clone()]);
            }
            Pods::Listed(pods) => {
                for (namespace, name) in pods {
                    args.extend(["--pod".into(), format!("{namespace}/{name}")]);
                }
            }
            Pods::Selected {
                namespaces,
                selector,
                skip_host_network,
                max_pods,
            } => {
                args.extend(["--selector".into(), selector.clone()]);
                for namespace in namespaces {
                    args.extend(["--namespace".into(), namespace.clone()]);
                }
                if *skip_host_network {
                    args.push("--skip-host-network".into());
                }
                if let Some(n) = max_pods {
                    args.extend(["--max-pods".into(), n.to_string()]);
                }
            }
        }
        args.extend(["--runtime-endpoint".into(), self.runtime_endpoint.clone()]);
    }
}

/// How captured packets are written (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// tcpdump's lines.
    Text,
    /// One JSON object per packet.
    Json,
    /// pcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

impl CaptureFormat {
    /// The `--format` value, also the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Pcap => "pcap",
            Self::Pcapng => "pcapng",
        }
    }
}

/// A ring of capture files (tcpdump's `-C`, `-W`, `-G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// `-C`: a new file once the current one is larger than this many millions of bytes.
    pub file_size_mb: u64,
    /// `-W`: files in the ring, the oldest overwritten.
    pub file_count: u32,
    /// `-G`: a new file every this many seconds as well.
    pub rotate_every_secs: Option<u64>,
}

/// `podtracer capture`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    /// The pod.
    pub target: Target,
    /// `-i`: its interface.
    pub interface: String,
    /// `-c`: stop after this many packets.
    pub count: Option<u64>,
    /// `--count-per-pod`: with several pods, end each one's capture after this many of its
    /// packets.
    pub count_per_pod: Option<u64>,
    /// `--duration`: stop after this long (millisecond resolution).
    pub duration: Option<Duration>,
    /// `-s`: bytes kept of each packet.
    pub snaplen: Option<u32>,
    /// `--format`.
    pub format: Option<CaptureFormat>,
    /// `--sink` URLs (`kafka://…`, `kafkas://…`).
    pub sinks: Vec<String>,
    /// `-w`: the file.
    pub write: Option<String>,
    /// `-C`/`-W`/`-G` (with `write`).
    pub ring: Option<Ring>,
    /// `--line-buffered`: each line as soon as it is printed.
    pub line_buffered: bool,
    /// `--termination-log`: where the [`crate::Report`] goes.
    pub termination_log: Option<String>,
    /// The filter expression (one argument after `--`).
    pub filter: Option<String>,
}

impl CaptureRequest {
    /// Capture on `interface` of `target`, everything else unset.
    pub fn new(target: Target, interface: &str) -> Self {
        Self {
            target,
            interface: interface.into(),
            count: None,
            count_per_pod: None,
            duration: None,
            snaplen: None,
            format: None,
            sinks: Vec::new(),
            write: None,
            ring: None,
            line_buffered: false,
            termination_log: None,
            filter: None,
        }
    }
}

/// `podtracer flows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsRequest {
    /// The pod.
    pub target: Target,
    /// `--duration`: stop after this long.
    pub duration: Option<Duration>,
    /// `--interval`: how often the table is printed or records sent (podtracer's default:
    /// 2 s).
    pub interval: Option<Duration>,
    /// `--sink` URLs.
    pub sinks: Vec<String>,
    /// `--termination-log`.
    pub termination_log: Option<String>,
}

/// `podtracer exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The pod.
    pub target: Target,
    /// `--allow`: the allowlist the program must be on (`PROGRAM[=CAP+CAP],…`).
    pub allow: Option<String>,
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// What one node job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Capture packets.
    Capture(CaptureRequest),
    /// Follow connections.
    Flows(FlowsRequest),
    /// Run an allowlisted program.
    Exec(ExecRequest),
}

impl Request {
    /// The subcommand.
    pub fn tool(&self) -> &'static str {
        match self {
            Self::Capture(_) => "capture",
            Self::Flows(_) => "flows",
            Self::Exec(_) => "exec",
        }
    }

    /// podtracer's command line (without the program name), as an argv: never a shell.
    pub fn to_args(&self) -> Vec<String> {
        fn flag(args: &mut Vec<String>, name: &str, value: String) {
            args.push(name.into());
            args.push(value);
        }
        let mut args = vec![self.tool().to_owned()];
        match self {
            Self::Capture(c) => {
                c.target.push_args(&mut args);
                flag(&mut args, "-i", c.interface.clone());
                if let Some(n) = c.count {
                    flag(&mut args, "-c", n.to_string());
                }
                if let Some(n) = c.count_per_pod {
                    flag(&mut args, "--count-per-pod", n.to_string());
                }
                if let Some(d) = c.duration {
                    flag(&mut args, "--duration", duration::format(d));
                }
                if let Some(s) = c.snaplen {
                    flag(&mut args, "-s", s.to_string());
                }
                if let Some(f) = c.format {
                    flag(&mut args, "--format", f.as_str().into());
                }
                for sink in &c.sinks {
                    flag(&mut args, "--sink", sink.clone());
                }
                if let Some(w) = &c.write {
                    flag(&mut args, "-w", w.clone());
                }
                if let Some(ring) = &c.ring {
                    flag(&mut args, "-C", ring.file_size_mb.to_string());
                    flag(&mut args, "-W", ring.file_count.to_string());
                    if let Some(secs) = ring.rotate_every_secs {
                        flag(&mut args, "-G", secs.to_string());
                    }
                }
                if c.line_buffered {
                    args.push("--line-buffered".into());
                }
                if let Some(path) = &c.termination_log {
                    flag(&mut args, "--termination-log", path.clone());
                }
                if let Some(f) = &c.filter {
                    args.push("--".into());
                    args.push(f.clone());
                }
            }
            Self::Flows(f) => {
                f.target.push_args(&mut args);
                if let Some(d) = f.duration {
                    flag(&mut args, "--duration", duration::format(d));
                }
                if let Some(i) = f.interval {
                    flag(&mut args, "--interval", duration::format(i));
                }
                for sink in &f.sinks {
                    flag(&mut args, "--sink", sink.clone());
                }
                if let Some(path) = &f.termination_log {
                    flag(&mut args, "--termination-log", path.clone());
                }
            }
            Self::Exec(e) => {
                e.target.push_args(&mut args);
                if let Some(allow) = &e.allow {
                    flag(&mut args, "--allow", allow.clone());
                }
                args.push("--".into());
                args.push(e.command.clone());
                args.extend(e.args.iter().cloned());
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::pod("web-0", "shop", "unix:///run/containerd/containerd.sock")
    }

    #[test]
    fn a_capture_is_podtracers_command_line() {
        let request = Request::Capture(CaptureRequest {
            count: Some(50),
            duration: Some(Duration::from_millis(1500)),
            format: Some(CaptureFormat::Pcapng),
            write: Some("/out/a.pcapng".into()),
            ring: Some(Ring {
                file_size_mb: 100,
                file_count: 10,
                rotate_every_secs: None,
            }),
            line_buffered: true,
            filter: Some("-tcp or icmp".into()),
            ..CaptureRequest::new(target(), "eth0")
        });
        assert_eq!(
            request.to_args(),
            [
                "capture",
                "--pod",
                "web-0",
                "--namespace",
                "shop",
                "--runtime-endpoint",
                "unix:///run/containerd/containerd.sock",
                "-i",
                "eth0",
                "-c",
                "50",
                "--duration",
                "1500ms",
                "--format",
                "pcapng",
                "-w",
                "/out/a.pcapng",
                "-C",
                "100",
                "-W",
                "10",
                "--line-buffered",
                "--",
                "-tcp or icmp",
            ]
        );
    }

    #[test]
    fn exec_arguments_follow_the_double_dash_as_they_are() {
        let request = Request::Exec(ExecRequest {
            target: target(),
            allow: Some("iperf3,ping=NET_RAW".into()),
            command: "iperf3".into(),
            args: vec!["-c".into(), "$(reboot)".into(), "--".into()],
        });
        let args = request.to_args();
        let dash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dash + 1..], ["iperf3", "-c", "$(reboot)", "--"]);
    }
}
