//! `snoopy-operator`: run the operator, or print/write the CRDs.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use snoopy_operator::controller::{self, Context};
use snoopy_operator::settings::Settings;
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
    Run(RunArgs),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Crdgen { out } => crdgen(out),
        Command::Run(args) => tokio::runtime::Runtime::new()
            .context("starting the tokio runtime")
            .and_then(|rt| rt.block_on(run(args))),
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
        ..Settings::default()
    };
    tracing::info!(namespace = %settings.namespace, image = %settings.podtracer_image, "snoopy-operator starting");
    let ctx = Arc::new(Context {
        client,
        settings,
        metrics,
        reporter: client::reporter(),
    });
    ready.store(true, Ordering::Relaxed);
    tokio::select! {
        () = controller::run(ctx) => Ok(()),
        r = server => r.context("the metrics server task")?.with_context(|| format!("serving on {}", args.listen)),
    }
}
