//! Flows: which conversations a pod has, which fail, to where, and how slow they are.
//!
//! [`FlowTable`] is sans-IO: packets in ([`FlowTable::observe`]), [`FlowRecord`]s out
//! ([`FlowTable::drain_finished`]); it uses the packets' own timestamps, so it gives the
//! same answers on a live capture and on the pcap written from it. [`Aggregates`] folds
//! finished records into success rates and RTT percentiles per destination and per
//! source → destination pod pair, naming pod IPs with a caller-supplied [`PodNames`] map.
//!
//! # What a flow is
//!
//! A bidirectional conversation keyed by protocol and both endpoints ([`FlowKey`]): TCP,
//! UDP and SCTP by address and port, ICMP / ICMPv6 echo by address and identifier, anything
//! else by address pair and protocol. The *initiator* is the sender of the SYN (or the
//! receiver of a SYN-ACK seen first), otherwise the sender of the first packet. Per direction
//! a flow counts packets, bytes on the wire (the packet's original length, link header
//! included — what tshark's conversation statistics count) and first/last times.
//!
//! A flow ends after [`FlowConfig::idle_timeout`] without packets, or
//! [`FlowConfig::closed_linger`] after a TCP connection was closed, reset or refused; a SYN
//! reusing the ports of a finished connection starts a new flow (as tshark starts a new
//! stream). Flows longer than [`FlowConfig::active_timeout`] report a record per slice. At
//! most [`FlowConfig::max_flows`] flows are kept: the least recently seen is evicted and
//! counted ([`TableStats::evicted`]).
//!
//! # TCP
//!
//! * outcome ([`TcpOutcome`]): `established` (handshake completed, still open), `refused`
//!   (RST answering the SYN), `unanswered` (SYN retries, or a SYN older than
//!   [`FlowConfig::syn_timeout`], with no answer), `reset` (RST after the handshake),
//!   `closed` (FIN both ways), `open` (no complete handshake seen and still going);
//! * handshake RTT ([`Handshake`]), measured at the capture point: SYN → SYN-ACK, SYN-ACK →
//!   ACK and their sum `rtt`, from the most recent SYN before the SYN-ACK to the
//!   initiator's ACK. For a normal handshake `rtt` equals tshark's
//!   `tcp.analysis.initial_rtt` to the nanosecond. (tshark also gives an "iRTT" to refused
//!   connections — SYN to the RST, as the RST carries ACK — which this module does not call
//!   a handshake.)
//! * retransmissions, out-of-order segments and zero windows per direction, decided exactly
//!   as Wireshark's sequence analysis decides `tcp.analysis.retransmission` (plain, fast
//!   and spurious retransmissions), `tcp.analysis.out_of_order` and
//!   `tcp.analysis.zero_window` (see the `tcp` module source for the rules).
//!
//! # Success
//!
//! A TCP flow whose SYN was seen is an *attempt*; it *succeeds* when the handshake
//! completes. A UDP / ICMP echo / other flow to a unicast address is an attempt that
//! succeeds when anything comes back (multicast and broadcast flows, and ICMP messages
//! other than echo, are not attempts). Failures are `refused`, `unanswered`, `reset` (before the handshake) and
//! `no_reply`. The RTT of an attempt is the handshake RTT (TCP) or the delay of the first
//! answer (others); percentiles are nearest-rank on a histogram precise to 1/128.
//!
//! # JSON records
//!
//! These are the records `podtracer flows` prints as JSON lines (and that will be sent to
//! the central bus). Times are integers: nanoseconds since the Unix epoch (`*_ns` times)
//! or nanoseconds (`*_ns` durations).
//!
//! A flow record ([`FlowRecord`]), one per finished flow (and per open flow in
//! snapshots, with `"reason": "snapshot"`):
//!
//! ```json
//! {"type": "flow",
//!  "reason": "idle | active_timeout | evicted | port_reuse | end | snapshot",
//!  "protocol": "tcp | udp | icmp | icmpv6 | sctp | <number>",
//!  "initiator": {"ip": "10.244.0.7", "port": 40312, "name": "shop/web-0"},
//!  "responder": {"ip": "10.244.0.9", "port": 5432},
//!  "first_ns": 1700000000123456789, "last_ns": 1700000001123456789,
//!  "fwd": {"packets": 6, "bytes": 520, "first_ns": 1700000000123456789, "last_ns": 1700000001123456789},
//!  "rev": {"packets": 4, "bytes": 380, "first_ns": 1700000000123556789, "last_ns": 1700000001123356789},
//!  "continued": false,
//!  "answered": true,
//!  "response_ns": 100000,
//!  "tcp": {"outcome": "established | refused | unanswered | reset | closed | open",
//!          "syns": 1,
//!          "handshake": {"syn_to_synack_ns": 80000, "synack_to_ack_ns": 20000, "rtt_ns": 100000},
//!          "fwd": {"retransmissions": 0, "out_of_order": 0, "zero_window": 0},
//!          "rev": {"retransmissions": 0, "out_of_order": 0, "zero_window": 0}}}
//! ```
//!
//! `name` appears only for known pod IPs; `response_ns` only when something came back;
//! `handshake` is `null` unless the whole handshake was seen; `tcp` is `null` for other
//! protocols; `fwd` is initiator → responder.
//!
//! A destination aggregate ([`DestinationSummary`]) and a pod-pair aggregate
//! ([`PairSummary`]):
//!
//! ```json
//! {"type": "destination", "protocol": "tcp", "ip": "10.244.0.9", "port": 5432, "name": "shop/db-0",
//!  "flows": 12, "attempts": 12, "successes": 9, "success_rate": 0.75,
//!  "failures": {"refused": 3, "unanswered": 0, "reset": 0, "no_reply": 0},
//!  "packets": 140, "bytes": 20480, "retransmissions": 2,
//!  "rtt_ns": {"samples": 9, "p50": 98000, "p90": 130000, "p99": 131000}}
//! {"type": "pod_pair", "source": "shop/web-0", "destination": "shop/db-0", ...same counters...}
//! ```
//!
//! A snapshot (periodic, live only; open flows included in its aggregates) and the final
//! summary (`"type": "summary"`, finished flows — at the end all of them) carry the table's
//! counters ([`TableStats`]) and the aggregates:
//!
//! ```json
//! {"type": "snapshot", "time_ns": 1700000005000000000,
//!  "table": {"packets": 1200, "skipped": 3, "flows": 40, "records": 31, "evicted": 0, "active": 9},
//!  "destinations": [...], "pod_pairs": [...]}
//! ```

mod aggregate;
mod key;
mod record;
mod table;
mod tcp;

pub use aggregate::{
    Aggregates, Destination, DestinationSummary, Failures, Histogram, PairSummary, Percentiles,
    PodNames, Summary, Tally,
};
pub use key::{Endpoint, FlowKey, FxBuildHasher, FxHasher, Oriented, Protocol};
pub use record::{DirectionStats, EndReason, FlowRecord, FlowType, NamedEndpoint, TcpRecord};
pub use table::{FlowConfig, FlowTable, TableStats, feed};
pub use tcp::{Handshake, TcpCounters, TcpOutcome};
