//! The command line, as a tcpdump user expects it.

use clap::{Parser, Subcommand};

use crate::commands::capture::CaptureArgs;
use crate::commands::collect::CollectArgs;
use crate::commands::exec::ExecArgs;
use crate::commands::flows::FlowsArgs;
use crate::commands::monitor::MonitorArgs;
use crate::commands::pods::PodsArgs;
use crate::commands::probe::ProbeArgs;
use crate::commands::read::ReadArgs;
use crate::commands::throughput::ThroughputArgs;

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
        after_help = "Examples:\n  podtracer capture --pod web-0 -n shop -c 10\n  podtracer capture -l app=web -n shop -w web.pcapng\n  podtracer capture --pid 4242 -c 10\n  podtracer capture --netns /var/run/netns/web -i eth0 -w web.pcap\n  podtracer capture --pid 4242 -w - | tshark -r -\n  podtracer capture --pod web-0 -n shop 'host db and tcp port 5432'\n\nNames in the filter are resolved as the pod resolves them (its /etc/hosts, then its nameservers, asked from inside it)."
    )]
    Capture(CaptureArgs),
    /// Run a host program inside a pod's network namespace.
    #[command(
        after_help = "Examples:\n  podtracer exec --pod web-0 -n shop -- ip -o addr\n  podtracer exec -l app=web -n shop -- ss -tn\n  podtracer exec --pid 4242 -- ip -o addr\n  podtracer exec --pid 4242 --keep-cap NET_RAW -- ping -c 3 10.0.0.7\n  podtracer exec --pid 4242 --as-root -- ss -tnp\n  podtracer exec --pid 4242 --allow iperf3,ping=NET_RAW -- iperf3 -c 10.0.0.7\n\nThe program runs as nobody (65534) with no capabilities (only those of --keep-cap, or of its --allow entry) and no_new_privs, after the namespace is entered; --as-root keeps podtracer's."
    )]
    Exec(ExecArgs),
    /// Connections seen in a pod's traffic: who talks to whom, which attempts fail, RTTs.
    #[command(
        after_help = "Examples:\n  podtracer flows --pid 4242\n  podtracer flows --netns /var/run/netns/web --duration 30s -o json\n  podtracer flows -r trace.pcapng --sort bytes"
    )]
    Flows(FlowsArgs),
    /// Every TCP connection of network namespaces, with the process behind it (eBPF).
    #[command(
        after_help = "Events: connect, established, refused, unanswered, accept, close (with payload bytes), reset, retransmit, listen; each with the namespace, pid, comm, uid, cgroup id and addresses. Only the given namespaces are reported (the filter runs in the kernel). SIGINT/SIGTERM stop it and print the count of events and of lost ones.\nNeeds root and a kernel with BTF (/sys/kernel/btf/vmlinux).\n\nExamples:\n  podtracer monitor --pid 4242\n  podtracer monitor --netns /var/run/netns/blue --netns /var/run/netns/red -o json\n  podtracer monitor --pid 4242 --duration 1m | jq 'select(.kind == \"refused\")'"
    )]
    Monitor(MonitorArgs),
    /// Try connections from inside a pod: TCP connect, HTTP GET, DNS lookups.
    #[command(
        after_help = "Names are resolved as the pod resolves them (its /etc/hosts and /etc/resolv.conf).\nExit status: 0 if every check succeeded at least once, 1 otherwise.\n\nExamples:\n  podtracer probe --pid 4242 --tcp db.shop:5432 --count 10 --interval 200ms\n  podtracer probe --pid 4242 --http http://web.shop/healthz --dns kubernetes.default -o json"
    )]
    Probe(ProbeArgs),
    /// List the pods on this node (from the container runtime, no API server needed).
    #[command(
        after_help = "Examples:\n  podtracer pods\n  podtracer pods -n shop -l app=web -o wide"
    )]
    Pods(PodsArgs),
    /// Read a pcap or pcapng file, keep what a filter accepts (tcpdump -r).
    #[command(
        after_help = "Examples:\n  podtracer read web.pcap 'tcp port 80'\n  podtracer read web.pcapng -w dns.pcap udp port 53\n  podtracer read web.pcap -d 'host 10.0.0.1'"
    )]
    Read(ReadArgs),
    /// Read a Kafka topic back: packets into one pcapng, flow/probe records as JSON or a table.
    #[command(
        after_help = "Examples:\n  podtracer collect kafka://kafka:9092/snoopy.packets -w merged.pcapng\n  podtracer collect kafka://kafka:9092/snoopy.packets --key shop/web-0 --since 10m -w web.pcapng\n  podtracer collect kafka://kafka:9092/snoopy.packets --follow -w - | tshark -r -\n  podtracer collect kafka://kafka:9092/snoopy.flows -o table\n  podtracer collect kafka://kafka:9092/snoopy.probes -o json"
    )]
    Collect(CollectArgs),
    /// Bandwidth and latency between pods: iperf3 as server in one pod, client in another.
    #[command(
        after_help = "iperf3 is the node's (apt-get install iperf3), run inside each pod's network namespace as nobody with no capabilities. Before each test, podtracer times TCP connects and one-byte request-response round trips on the idle path.\nExit status: 0 if every test succeeded, 1 otherwise (a failed test is still a result).\n\nExamples:\n  podtracer throughput --pod web-0 -n shop --to-pod db-0\n  podtracer throughput --pod web-0 -n shop --to-pod db-0 -u -b 100M -t 10\n  podtracer throughput -l app=web -n shop --mesh -t 2 -o json\n  podtracer throughput --pid 4242 --to-pid 4343 --to-ip 10.0.0.7 -R"
    )]
    Throughput(ThroughputArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
