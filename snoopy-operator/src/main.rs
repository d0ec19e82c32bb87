//! `snoopy-operator`: run the operator, or print/write the CRDs.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{ArgAction, Parser, Subcommand};
use snoopy_netns::privileges::{DEFAULT_EXEC_ALLOWLIST, ExecAllowlist};
use snoopy_operator::controller::{self, Context};
use snoopy_operator::plan;
use snoopy_operator::settings::{DEFAULT_HOST_PATH_PREFIX, Limits, Policy, Settings};
use snoopy_operator::webhook::{self, certs};
use snoopy_operator::{client, crd, http, metrics::Metrics};

/// Snoopy's Kubernetes operator.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(Box<RunArgs>),
    /// Write the CRD YAML generated from the Rust types (to stdout, or one file per CRD).
    Crdgen {
        /// Directory for the files (`snoopy-operator/config/crd`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Namespace to create Jobs in (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "snoopy-operator")]
    namespace: String,
    /// Image with podtracer for the Jobs.
    #[arg(
        long,
        env = "SNOOPY_PODTRACER_IMAGE",
        default_value = "localhost/snoopy/podtracer:latest"
    )]
    podtracer_image: String,
    /// Pull policy of that image.
    #[arg(long, env = "SNOOPY_IMAGE_PULL_POLICY", default_value = "IfNotPresent")]
    image_pull_policy: String,
    /// The nodes' container runtime socket.
    #[arg(
        long,
        env = "SNOOPY_RUNTIME_ENDPOINT",
        default_value = "unix:///run/containerd/containerd.sock"
    )]
    runtime_endpoint: String,
    /// Only serve CRs in this namespace (default: all namespaces).
    #[arg(long, env = "SNOOPY_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "SNOOPY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Address of the admission webhook (HTTPS: /mutate, /validate); `off` runs without it,
    /// and every CR then gets the fail-closed rules (own namespace, no exec, no Secret or
    /// PVC references).
    #[arg(long, env = "SNOOPY_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    webhook_listen: String,
    /// Names the apiserver calls the webhook by (its certificate's), comma-separated;
    /// default: the Service `snoopy-operator-webhook` in the operator's namespace.
    #[arg(long, env = "SNOOPY_WEBHOOK_HOSTS", value_delimiter = ',')]
    webhook_hosts: Vec<String>,
    /// The Mutating- and ValidatingWebhookConfiguration whose caBundle the operator sets.
    #[arg(long, env = "SNOOPY_WEBHOOK_CONFIGURATION", default_value = certs::CONFIGURATION)]
    webhook_configuration: String,
    /// Policy: CRs may target pods outside their own namespace (targetNamespace of another
    /// namespace, namespaceSelector) — when the webhook finds that their author may create
    /// pods/exec there. `false` refuses it to everyone.
    #[arg(long, env = "SNOOPY_ALLOW_CROSS_NAMESPACE", default_value_t = true, action = ArgAction::Set)]
    allow_cross_namespace: bool,
    /// Policy: CRs may use tool.exec (programs on the allowlist only, and only when the
    /// webhook finds that their author may create pods/exec in the target namespace).
    #[arg(long, env = "SNOOPY_ALLOW_EXEC", default_value_t = true, action = ArgAction::Set)]
    allow_exec: bool,
    /// Policy: the programs exec may run, `PROGRAM[=CAP+CAP]` separated by commas; each runs
    /// as nobody keeping only the capabilities listed.
    #[arg(long, env = "SNOOPY_EXEC_ALLOWLIST", default_value = DEFAULT_EXEC_ALLOWLIST)]
    exec_allowlist: ExecAllowlist,
    /// Policy: CRs may name Secrets of the operator's namespace (Kafka TLS and SASL) — those
    /// their author may get.
    #[arg(long, env = "SNOOPY_ALLOW_SECRET_REFERENCES", default_value_t = true, action = ArgAction::Set)]
    allow_secret_references: bool,
    /// Policy: CRs may name PVCs of the operator's namespace — those their author may get.
    #[arg(long, env = "SNOOPY_ALLOW_PVC", default_value_t = true, action = ArgAction::Set)]
    allow_pvc: bool,
    /// Policy: hostPath outputs go to PREFIX/NAMESPACE/NAME on the node; empty refuses
    /// hostPath outputs.
    #[arg(long, env = "SNOOPY_HOST_PATH_PREFIX", default_value = DEFAULT_HOST_PATH_PREFIX)]
    host_path_prefix: String,
    /// Policy: Kafka brokers CRs may use, `HOST:PORT` or `HOST`, separated by commas; empty
    /// allows any.
    #[arg(
        long,
        env = "SNOOPY_KAFKA_BROKERS",
        default_value = "",
        value_delimiter = ','
    )]
    kafka_brokers: Vec<String>,
    /// At most this many targets (Jobs) per CR and run.
    #[arg(long, env = "SNOOPY_MAX_TARGETS", default_value_t = Limits::default().max_targets)]
    max_targets: usize,
    /// At most this many entries in a CR's status.targets (counts cover all).
    #[arg(long, env = "SNOOPY_MAX_STATUS_TARGETS", default_value_t = Limits::default().max_status_targets)]
    max_status_targets: usize,
    /// Capture CRs without jobsPer get one Job per node when a run starts with this many
    /// targets on one node (at least 1; 1 makes every such capture per node).
    #[arg(long, env = "SNOOPY_NODE_JOB_THRESHOLD", default_value_t = Limits::default().node_job_threshold)]
    node_job_threshold: usize,
    /// activeDeadlineSeconds of exec and flows Jobs whose CR sets none.
    #[arg(long, env = "SNOOPY_DEFAULT_DEADLINE_SECONDS", default_value_t = Limits::default().default_deadline_seconds)]
    default_deadline_seconds: i64,
    /// ttlSecondsAfterFinished of Jobs whose CR sets none.
    #[arg(long, env = "SNOOPY_DEFAULT_TTL_SECONDS", default_value_t = Limits::default().default_ttl_seconds)]
    default_ttl_seconds: i32,
    /// Bytes a volume capture may leave on disk per target: its ring of files (-C × -W)
    /// fits in this; larger requests are refused.
    #[arg(long, env = "SNOOPY_MAX_CAPTURE_BYTES", default_value_t = Limits::default().max_capture_bytes)]
    max_capture_bytes: u64,
}

impl RunArgs {
    /// The admin's policy and limits, checked.
    fn policy_and_limits(&self) -> anyhow::Result<(Policy, Limits)> {
        let prefix = self.host_path_prefix.trim_end_matches('/');
        let host_path_prefix = if self.host_path_prefix.is_empty() {
            None
        } else if !prefix.starts_with('/') || prefix.split('/').any(|c| c == "..") {
            anyhow::bail!(
                "SNOOPY_HOST_PATH_PREFIX {:?}: an absolute directory other than / (e.g. {DEFAULT_HOST_PATH_PREFIX}), or empty to refuse hostPath outputs",
                self.host_path_prefix
            );
        } else {
            Some(prefix.to_owned())
        };
        anyhow::ensure!(
            self.max_targets > 0
                && self.node_job_threshold > 0
                && self.default_deadline_seconds > 0
                && self.default_ttl_seconds >= 0,
            "SNOOPY_MAX_TARGETS, SNOOPY_NODE_JOB_THRESHOLD and SNOOPY_DEFAULT_DEADLINE_SECONDS must be at least 1, SNOOPY_DEFAULT_TTL_SECONDS at least 0"
        );
        anyhow::ensure!(
            self.max_capture_bytes >= plan::MIN_CAPTURE_BYTES,
            "SNOOPY_MAX_CAPTURE_BYTES {} is too small for one file of a capture ring: at least {} (1 MB and a packet's slack)",
            self.max_capture_bytes,
            plan::MIN_CAPTURE_BYTES
        );
        Ok((
            Policy {
                allow_cross_namespace: self.allow_cross_namespace,
                allow_exec: self.allow_exec,
                exec_allowlist: self.exec_allowlist.clone(),
                allow_secret_references: self.allow_secret_references,
                allow_pvc: self.allow_pvc,
                host_path_prefix,
                kafka_brokers: self
                    .kafka_brokers
                    .iter()
                    .map(|b| b.trim().to_owned())
                    .filter(|b| !b.is_empty())
                    .collect(),
            },
            Limits {
                max_targets: self.max_targets,
                max_status_targets: self.max_status_targets,
                node_job_threshold: self.node_job_threshold,
                default_deadline_seconds: self.default_deadline_seconds,
                default_ttl_seconds: self.default_ttl_seconds,
                max_capture_bytes: self.max_capture_bytes,
            },
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run(Box::new(cli.run))) {
        Command::Crdgen { out } => crdgen(out),
        Command::Run(args) => tokio::runtime::Runtime::new()
            .context("starting the tokio runtime")
            .and_then(|rt| rt.block_on(run(*args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snoopy-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn crdgen(out: Option<PathBuf>) -> anyhow::Result<()> {
    for (file, crd) in crd::all() {
        let yaml = crd::to_yaml(&crd)?;
        match &out {
            Some(dir) => {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let (policy, limits) = args.policy_and_limits()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let metrics = Arc::new(Metrics::default());
    let client = client::connect(metrics.clone()).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(http::serve(args.listen, metrics.clone(), ready.clone()));
    controller::check_crds(&client).await?;
    let settings = Settings {
        namespace: args.namespace,
        podtracer_image: args.podtracer_image,
        image_pull_policy: args.image_pull_policy,
        runtime_endpoint: args.runtime_endpoint,
        watch_namespace: args.watch_namespace,
        policy,
        bounds: limits,
        ..Settings::default()
    };
    tracing::info!(namespace = %settings.namespace, image = %settings.podtracer_image, policy = ?settings.policy, bounds = ?settings.bounds, "snoopy-operator starting");
    let mut ctx = Context::new(
        client.clone(),
        settings.clone(),
        metrics,
        client::reporter(),
    );
    let webhook_task = match args.webhook_listen.as_str() {
        "off" | "" => {
            tracing::warn!(
                "the admission webhook is off (SNOOPY_WEBHOOK_LISTEN=off): every CR gets the fail-closed rules"
            );
            None
        }
        listen => {
            let addr: SocketAddr = listen.parse().with_context(|| {
                format!("SNOOPY_WEBHOOK_LISTEN {listen:?}: an address like 0.0.0.0:8443, or off")
            })?;
            let hosts = if args.webhook_hosts.is_empty() {
                let ns = &settings.namespace;
                vec![
                    format!("snoopy-operator-webhook.{ns}.svc"),
                    format!("snoopy-operator-webhook.{ns}.svc.cluster.local"),
                ]
            } else {
                args.webhook_hosts.clone()
            };
            let material = certs::ensure(&client, &settings.namespace, &hosts).await?;
            let tls = webhook::server::tls_config(&material.cert_pem, &material.key_pem)?;
            let app = webhook::server::router(Arc::new(webhook::Webhook {
                client: client.clone(),
                settings: Arc::new(settings.clone()),
                key: material.stamp_key.clone(),
            }));
            let listener = webhook::server::bind(addr).await?;
            let task = tokio::spawn(webhook::server::serve(listener, tls, app));
            let found =
                certs::publish_ca_bundle(&client, &args.webhook_configuration, &material.cert_pem)
                    .await?;
            if found.is_empty() {
                tracing::warn!(configuration = %args.webhook_configuration, "no webhook configuration of that name: CRs are not checked at admission and get the fail-closed rules");
            } else {
                tracing::info!(%addr, ?hosts, configurations = ?found, "admission webhook serving");
            }
            ctx = ctx.with_stamp_key(material.stamp_key);
            Some(task)
        }
    };
    let ctx = Arc::new(ctx);
    ready.store(true, Ordering::Relaxed);
    let webhook = async {
        match webhook_task {
            Some(task) => task.await.context("the webhook task")?,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = controller::run(ctx) => Ok(()),
        r = server => r.context("the metrics server task")?.with_context(|| format!("serving on {}", args.listen)),
        r = webhook => r.context("serving the admission webhook"),
    }
}
