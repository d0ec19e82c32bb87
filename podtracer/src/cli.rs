//! The command line, as a tcpdump user expects it.

use clap::{Parser, Subcommand};

use crate::capture::CaptureArgs;
use crate::exec::ExecArgs;
use crate::read::ReadArgs;

/// See a Kubernetes pod's network traffic from its node.
///
/// podtracer enters a pod's network namespace and captures there (like tcpdump, without
/// installing anything in the pod), or runs any host tool there (tcpdump, ip, ss, iperf3).
/// It needs root, or CAP_NET_RAW + CAP_SYS_ADMIN + CAP_SYS_PTRACE.
#[derive(Debug, Parser)]
#[command(name = "podtracer", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture packets inside a pod's network namespace (tcpdump-like).
    #[command(
        after_help = "Examples:\n  podtracer capture --pid 4242 -c 10\n  podtracer capture --netns /var/run/netns/web -i eth0 -w web.pcap\n  podtracer capture --pid 4242 -w - | tshark -r -"
    )]
    Capture(CaptureArgs),
    /// Run a host program inside a pod's network namespace.
    #[command(
        after_help = "Examples:\n  podtracer exec --pid 4242 -- ip -o addr\n  podtracer exec --pid 4242 -- ss -tnp\n  podtracer exec --pid 4242 -- iperf3 -c 10.0.0.7"
    )]
    Exec(ExecArgs),
    /// Read a pcap or pcapng file, keep what a filter accepts (tcpdump -r).
    #[command(
        after_help = "Examples:\n  podtracer read web.pcap 'tcp port 80'\n  podtracer read web.pcapng -w dns.pcap udp port 53\n  podtracer read web.pcap -d 'host 10.0.0.1'"
    )]
    Read(ReadArgs),
}
