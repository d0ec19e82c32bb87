//! The node-job contract (`snoopy-job`) read back from podtracer's own command line: every
//! request the operator can build, turned into arguments by `Request::to_args`, must parse
//! through podtracer's real clap definition into the same request. A flag renamed here
//! without the contract fails this test, not a Job on a node.

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use snoopy_job::{
    CaptureFormat, CaptureRequest, ExecRequest, FlowsRequest, Pods, Request, Ring, Target,
};

use crate::cli::{Cli, Command};
use crate::output::Format;
use crate::sinks::SinkUrl;
use crate::target::TargetArgs;

/// podtracer's reading of `args` (without the program name), as a request.
pub fn parse(args: &[String]) -> Result<Request, String> {
    let matches = Cli::command()
        .try_get_matches_from(std::iter::once("podtracer".to_owned()).chain(args.iter().cloned()))
        .map_err(|e| e.to_string())?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let (_, sub) = matches.subcommand().expect("a subcommand");
    // Flags with a default: in the request only when given (as the operator gives them).
    let given = |id: &str| sub.value_source(id) == Some(ValueSource::CommandLine);
    Ok(match cli.command {
        Command::Capture(a) => Request::Capture(CaptureRequest {
            target: target(&a.target),
            interface: a.interface.unwrap_or_default(),
            count: a.count,
            count_per_pod: a.count_per_pod,
            duration: a.duration,
            snaplen: given("snaplen").then_some(a.snaplen),
            format: a.format.map(|f| match f {
                Format::Text => CaptureFormat::Text,
                Format::Json => CaptureFormat::Json,
                Format::Pcap => CaptureFormat::Pcap,
                Format::Pcapng => CaptureFormat::Pcapng,
            }),
            sinks: sinks(&a.sinks.sinks),
            write: a.write.map(|w| w.to_string_lossy().into_owned()),
            ring: a.rotate.file_size.map(|size| Ring {
                file_size_mb: size,
                file_count: a.rotate.file_count.unwrap_or(0),
                rotate_every_secs: a.rotate.rotate_seconds,
            }),
            line_buffered: a.line_buffered,
            termination_log: a.termination_log.map(|p| p.to_string_lossy().into_owned()),
            filter: (!a.filter.is_empty()).then(|| a.filter.join(" ")),
        }),
        Command::Flows(a) => Request::Flows(FlowsRequest {
            target: target(&a.target),
            duration: a.duration,
            interval: given("interval").then_some(a.interval),
            sinks: sinks(&a.sinks.sinks),
            termination_log: a.termination_log.map(|p| p.to_string_lossy().into_owned()),
        }),
        Command::Exec(a) => {
            let mut argv = a.command.iter().map(|s| s.to_string_lossy().into_owned());
            Request::Exec(ExecRequest {
                target: target(&a.target),
                allow: a.allow.map(|l| l.to_string()),
                command: argv.next().unwrap_or_default(),
                args: argv.collect(),
            })
        }
        other => return Err(format!("not a node-job subcommand: {other:?}")),
    })
}

fn target(t: &TargetArgs) -> Target {
    let pods = if let Some(selector) = &t.selector {
        Pods::Selected {
            namespaces: t.namespace.clone(),
            selector: selector.clone(),
            skip_host_network: t.skip_host_network,
            max_pods: t.max_pods,
        }
    } else if let Some(name) = t.one_pod().filter(|n| !n.contains('/')) {
        Pods::One {
            namespace: t.namespace().to_owned(),
            name: name.to_owned(),
        }
    } else {
        Pods::Listed(
            t.pod
                .iter()
                .map(|p| {
                    let (ns, name) = p.split_once('/').unwrap_or(("", p));
                    (ns.to_owned(), name.to_owned())
                })
                .collect(),
        )
    };
    Target {
        pods,
        runtime_endpoint: t.runtime_endpoint.clone().unwrap_or_default(),
    }
}

fn sinks(urls: &[SinkUrl]) -> Vec<String> {
    urls.iter()
        .map(|u| match u {
            SinkUrl::Kafka(url) => url.clone(),
            SinkUrl::File(path) => format!("file://{}", path.display()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use snoopy_netns::privileges::ExecAllowlist;

    use super::*;

    fn names() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
    }

    fn any_target() -> impl Strategy<Value = Target> {
        (names(), names(), "/[a-z/]{1,30}")
            .prop_map(|(pod, ns, sock)| Target::pod(&pod, &ns, &format!("unix://{sock}")))
    }

    /// A per-node Job's pods: a list (snapshot) or a selector (follow).
    fn any_pods() -> impl Strategy<Value = Pods> {
        prop_oneof![
            proptest::collection::vec((names(), names()), 1..5).prop_map(Pods::Listed),
            (
                proptest::collection::vec(names(), 1..3),
                "[a-z]{1,5}(=[a-z0-9]{1,5})?(,[a-z]{1,5} in \\([a-z]{1,3},[a-z]{1,3}\\))?",
                any::<bool>(),
                proptest::option::of(1u32..10_000),
            )
                .prop_map(|(namespaces, selector, skip_host_network, max_pods)| {
                    Pods::Selected {
                        namespaces,
                        selector,
                        skip_host_network,
                        max_pods,
                    }
                }),
        ]
    }

    fn any_capture_target() -> impl Strategy<Value = Target> {
        prop_oneof![
            any_target(),
            (any_pods(), "/[a-z/]{1,30}").prop_map(|(pods, sock)| Target {
                pods,
                runtime_endpoint: format!("unix://{sock}"),
            }),
        ]
    }

    fn millis() -> impl Strategy<Value = Duration> {
        (0u64..10_000_000).prop_map(Duration::from_millis)
    }

    fn kafka_sinks() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            (
                prop::bool::ANY,
                proptest::collection::vec((names(), 1u16..), 1..3),
                "[a-z.]{1,12}",
            )
                .prop_map(|(tls, brokers, topic)| {
                    let brokers: Vec<String> =
                        brokers.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                    let scheme = if tls { "kafkas" } else { "kafka" };
                    format!("{scheme}://{}/{topic}", brokers.join(","))
                }),
            0..2,
        )
    }

    fn any_capture() -> impl Strategy<Value = Request> {
        (
            any_capture_target(),
            names(),
            proptest::option::of(1u64..),
            proptest::option::of(millis()),
            proptest::option::of(0u32..),
            proptest::option::of(prop_oneof![
                Just(CaptureFormat::Text),
                Just(CaptureFormat::Json),
                Just(CaptureFormat::Pcap),
                Just(CaptureFormat::Pcapng),
            ]),
            kafka_sinks(),
            proptest::option::of((
                "/[a-z_./]{1,30}",
                proptest::option::of((1u64..10_000, 1u32..100, proptest::option::of(1u64..))),
            )),
            any::<bool>(),
            proptest::option::of("/[a-z/-]{1,20}"),
            proptest::option::of("[ -~]{1,60}"),
        )
            .prop_map(
                |(
                    target,
                    iface,
                    count,
                    duration,
                    snaplen,
                    format,
                    sinks,
                    write,
                    lb,
                    log,
                    filter,
                )| {
                    let (write, ring) = match write {
                        Some((path, ring)) => (
                            Some(path),
                            ring.map(|(size, n, g)| Ring {
                                file_size_mb: size,
                                file_count: n,
                                rotate_every_secs: g,
                            }),
                        ),
                        None => (None, None),
                    };
                    Request::Capture(CaptureRequest {
                        count_per_pod: count.filter(|_| target.is_many()),
                        target,
                        interface: iface,
                        count,
                        duration,
                        snaplen,
                        format,
                        sinks,
                        write,
                        ring,
                        line_buffered: lb,
                        termination_log: log,
                        filter,
                    })
                },
            )
    }

    fn any_flows() -> impl Strategy<Value = Request> {
        (
            any_target(),
            proptest::option::of(millis()),
            proptest::option::of(millis()),
            kafka_sinks(),
            proptest::option::of("/[a-z/-]{1,20}"),
        )
            .prop_map(|(target, duration, interval, sinks, log)| {
                Request::Flows(FlowsRequest {
                    target,
                    duration,
                    interval,
                    sinks,
                    termination_log: log,
                })
            })
    }

    fn any_exec() -> impl Strategy<Value = Request> {
        (
            any_target(),
            proptest::option::of(proptest::collection::vec(
                (
                    "[a-z0-9]{1,10}",
                    prop_oneof![Just(""), Just("=NET_RAW"), Just("=NET_RAW+NET_ADMIN")],
                ),
                1..4,
            )),
            "[a-z0-9./-]{1,20}",
            proptest::collection::vec("[ -~]{0,20}", 0..5),
        )
            .prop_map(|(target, allow, command, args)| {
                // The allowlist as the operator writes it: ExecAllowlist's own text.
                let allow = allow.map(|entries| {
                    let text: Vec<String> =
                        entries.iter().map(|(p, c)| format!("{p}{c}")).collect();
                    text.join(",")
                        .parse::<ExecAllowlist>()
                        .expect("a valid allowlist")
                        .to_string()
                });
                Request::Exec(ExecRequest {
                    target,
                    allow,
                    command,
                    args,
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every request, through to_args and podtracer's clap definition, comes back as
        /// itself.
        #[test]
        fn every_request_parses_back_to_itself(
            request in prop_oneof![any_capture(), any_flows(), any_exec()]
        ) {
            let args = request.to_args();
            let parsed = parse(&args);
            prop_assert_eq!(parsed.as_ref(), Ok(&request), "args: {:?}", args);
        }
    }

    /// The request for the proof of concept's Tcpdump, exactly as its Jobs run it.
    #[test]
    fn the_poc_request_parses() {
        let request = Request::Capture(CaptureRequest {
            count: Some(50),
            format: Some(CaptureFormat::Text),
            line_buffered: true,
            termination_log: Some("/dev/termination-log".into()),
            ..CaptureRequest::new(
                Target::pod(
                    "cnf-example-pod-1",
                    "cnf-telco",
                    "unix:///run/containerd/containerd.sock",
                ),
                "eth0",
            )
        });
        assert_eq!(parse(&request.to_args()), Ok(request));
    }
}
