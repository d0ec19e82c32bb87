//! `snoopy-dashboard`: serve the connection health of pod pairs from Snoopy's flow and
//! probe records (Kafka topics, or JSON lines from files or stdin).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use snoopy_capture::sink::kafka::{
    DEFAULT_FLOWS_TOPIC, DEFAULT_PACKETS_TOPIC, DEFAULT_PROBES_TOPIC, KafkaSettings,
    url_names_topic, url_with_topic,
};
use snoopy_dashboard::input::Origin;
use snoopy_dashboard::replicas::Replicas;
use snoopy_dashboard::shared::Shared;
use snoopy_dashboard::sources::{self, LinesInput};
use snoopy_dashboard::store::Limits;

/// Connection health of every pod pair, live in a browser and as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(
    name = "snoopy-dashboard",
    version,
    max_term_width = 100,
    after_help = "Examples:\n  podtracer flows --pod web-0 -n shop -o json | snoopy-dashboard -\n  snoopy-dashboard flows.jsonl probes.jsonl --listen 0.0.0.0:8080\n  snoopy-dashboard --kafka kafka://kafka:9092\n  snoopy-dashboard --kafka kafka://kafka:9092/snoopy.flows"
)]
struct Cli {
    /// Files of JSON lines to read (flow records, probe reports); `-` is stdin.
    #[arg(value_name = "FILE")]
    inputs: Vec<String>,

    /// Follow a Kafka topic (repeatable; in the variable, space-separated):
    /// kafka://BROKER[,BROKER…][/TOPIC]; without a topic, snoopy.flows, snoopy.probes,
    /// snoopy.throughput and snoopy.packets (capture runs, from the messages' headers; their
    /// pcapng on demand).
    /// TLS/SASL settings come from SNOOPY_KAFKA_* variables, as for podtracer's sinks.
    #[arg(
        long = "kafka",
        value_name = "URL",
        env = "SNOOPY_DASHBOARD_KAFKA",
        value_delimiter = ' '
    )]
    kafka: Vec<String>,

    /// Where to serve the page, its API and /metrics.
    #[arg(
        long,
        value_name = "ADDR",
        env = "SNOOPY_DASHBOARD_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,

    /// Width of a time window.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "10s")]
    window: Duration,

    /// How far back windows are kept.
    #[arg(long, value_name = "DURATION", value_parser = snoopy_job::duration::parse, default_value = "1h")]
    retention: Duration,

    /// Conversations (source, destination, protocol, port) kept at most; the least
    /// recently seen is evicted (and counted) to make room.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    max_conversations: usize,

    /// Probe checks kept at most.
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    max_probes: usize,

    /// The pod that file and stdin records come from (`NS/POD`), for probe reports, which
    /// do not name it (Kafka messages do, in their key).
    #[arg(long, value_name = "NS/POD")]
    key: Option<String>,

    /// The node that file and stdin records come from.
    #[arg(long, value_name = "NODE")]
    node: Option<String>,

    /// Bytes of aggregates kept at most (conversations and probe checks, estimated); past
    /// it the oldest time windows go first. Suffixes Ki, Mi, Gi.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "256Mi")]
    max_memory: usize,

    /// Every replica's URL, in ordinal order, this one's included (space-separated in the
    /// variable): each replica reads the Kafka partitions P with P % N = its ordinal, and the
    /// page of any replica shows them all.
    #[arg(
        long,
        value_name = "URL",
        env = "SNOOPY_DASHBOARD_REPLICAS",
        value_delimiter = ' '
    )]
    replicas: Vec<String>,

    /// This replica's ordinal among --replicas (default: the number the host name ends in,
    /// as a StatefulSet's pods are named).
    #[arg(long, value_name = "N", env = "SNOOPY_DASHBOARD_ORDINAL")]
    ordinal: Option<u32>,
}

/// `N`, `NKi`, `NMi` or `NGi` bytes.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        other => return Err(format!("unknown unit {other:?}: use Ki, Mi or Gi")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a number of bytes"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snoopy-dashboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Kafka settings per topic of a `--kafka` URL.
fn kafka_topics(url: &str) -> anyhow::Result<Vec<KafkaSettings>> {
    let urls = if url_names_topic(url) {
        vec![url.to_string()]
    } else {
        [
            DEFAULT_FLOWS_TOPIC,
            DEFAULT_PROBES_TOPIC,
            snoopy_job::topics::THROUGHPUT,
            DEFAULT_PACKETS_TOPIC,
        ]
        .map(|topic| url_with_topic(url, topic))
        .to_vec()
    };
    urls.iter()
        .map(|u| KafkaSettings::from_env(u).with_context(|| format!("--kafka {url}")))
        .collect()
}

/// SIGINT (a terminal's ^C) or SIGTERM (Kubernetes stopping the pod).
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    anyhow::ensure!(
        cli.window > Duration::ZERO && cli.retention >= cli.window,
        "--window must be more than 0 and --retention at least one window"
    );
    let replicas = Replicas::new(cli.replicas.clone(), cli.ordinal)?;
    let share = replicas.share();
    let mut kafka = Vec::new();
    // An empty variable (the deployment's ConfigMap before it names brokers) is no input.
    for url in cli.kafka.iter().filter(|u| !u.trim().is_empty()) {
        kafka.extend(kafka_topics(url)?);
    }
    let packet_topics = kafka
        .iter()
        .filter(|k| k.topic == DEFAULT_PACKETS_TOPIC)
        .cloned()
        .collect();
    let shared = Arc::new(
        Shared::new(Limits {
            window: cli.window,
            retention: cli.retention,
            max_conversations: cli.max_conversations.max(1),
            max_probes: cli.max_probes.max(1),
            max_bytes: cli.max_memory,
            ..Limits::default()
        })
        .with_packet_topics(packet_topics)
        .with_replicas(replicas),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen there", cli.listen))?;
        let address = listener.local_addr().context("the listening address")?;
        eprintln!("snoopy-dashboard: serving http://{address}/");
        let origin = Origin {
            key: cli.key.clone(),
            node: cli.node.clone(),
            run: None,
        };
        for input in &cli.inputs {
            sources::spawn_lines(LinesInput::parse(input), origin.clone(), shared.clone());
        }
        for settings in kafka {
            sources::spawn_kafka(settings, share, shared.clone());
        }
        shared.replicas().follow_others(shared.clone());
        if let Some(share) = share {
            eprintln!(
                "snoopy-dashboard: replica {} of {}: partitions P with P % {} = {}",
                share.index, share.of, share.of, share.index
            );
        }
        axum::serve(listener, snoopy_dashboard::web::router(shared))
            .with_graceful_shutdown(stopped())
            .await
            .context("serving HTTP")
    })
}
