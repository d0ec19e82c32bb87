//! Per-connection TCP analysis: the handshake, how the connection ended, and Wireshark's
//! sequence analysis (retransmissions, out-of-order segments, zero windows).
//!
//! The sequence analysis follows Wireshark's `tcp_analyze_sequence_number` (epan
//! `packet-tcp.c`, 4.0) step by step, so that a segment this module counts as a
//! retransmission is one tshark flags `tcp.analysis.retransmission` (a plain, fast or spurious
//! retransmission), and one it counts as out of order is one tshark flags
//! `tcp.analysis.out_of_order`. Its quirks are kept on purpose (0 means "not seen yet" for
//! sequence and acknowledgement numbers; a segment within one initial RTT of the highest
//! sequence number is out of order rather than retransmitted), because agreeing with the
//! reference tool is what makes the numbers trustworthy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decode::{Tcp, TcpFlags, TcpOption};

const SYN: u16 = TcpFlags::SYN;
const ACK: u16 = TcpFlags::ACK;
const FIN: u16 = TcpFlags::FIN;
const RST: u16 = TcpFlags::RST;

/// Wireshark's out-of-order threshold before an initial RTT is known.
const DEFAULT_OOO_THRESHOLD: Duration = Duration::from_millis(3);
/// Wireshark's fast-retransmission window after the last duplicate ACK.
const FAST_RETRANSMISSION_WINDOW: Duration = Duration::from_millis(20);

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn seq_gt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

fn seq_le(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) >= 0
}

/// How a TCP connection went, as seen at the capture point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpOutcome {
    /// The handshake completed (SYN, SYN-ACK, ACK) and the connection was neither closed nor
    /// reset when the record was written.
    Established,
    /// The responder answered the SYN with a RST (closed port, or a firewall's reject).
    Refused,
    /// SYNs went out and nothing came back: retried, or left unanswered until the flow
    /// timed out or the capture ended at least [`super::FlowConfig::syn_timeout`] later.
    Unanswered,
    /// A RST ended the connection after the handshake (or after a mid-stream start).
    Reset,
    /// Both sides sent a FIN.
    Closed,
    /// Still going when the record was written, without a complete handshake seen: the
    /// capture began mid-connection, or the SYN was sent moments before the end.
    Open,
}

impl TcpOutcome {
    /// The word used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpOutcome::Established => "established",
            TcpOutcome::Refused => "refused",
            TcpOutcome::Unanswered => "unanswered",
            TcpOutcome::Reset => "reset",
            TcpOutcome::Closed => "closed",
            TcpOutcome::Open => "open",
        }
    }
}

/// Handshake timings, measured at the capture point.
///
/// `syn_to_synack` is the part of the round trip beyond the capture point (network to the
/// responder and back, plus its accept); `synack_to_ack` the part on the initiator's side.
/// Their sum, `rtt`, is Wireshark's `tcp.analysis.initial_rtt` for a normal handshake: from
/// the most recent SYN before the SYN-ACK (a retried SYN restarts the clock, as Wireshark's
/// `ts_mru_syn` does) to the initiator's ACK completing the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// Last SYN to the SYN-ACK, in nanoseconds.
    #[serde(
        rename = "syn_to_synack_ns",
        serialize_with = "super::record::as_nanos",
        deserialize_with = "super::record::from_nanos"
    )]
    pub syn_to_synack: Duration,
    /// SYN-ACK to the initiator's ACK, in nanoseconds.
    #[serde(
        rename = "synack_to_ack_ns",
        serialize_with = "super::record::as_nanos",
        deserialize_with = "super::record::from_nanos"
    )]
    pub synack_to_ack: Duration,
    /// Last SYN to the ACK completing the handshake, in nanoseconds.
    #[serde(
        rename = "rtt_ns",
        serialize_with = "super::record::as_nanos",
        deserialize_with = "super::record::from_nanos"
    )]
    pub rtt: Duration,
}

/// Sequence analysis state of one direction (Wireshark's `tcp_analyze_seq_flow_info_t`
/// plus the window fields of `tcp_flow_t`).
#[derive(Debug, Clone, Copy)]
struct Direction {
    /// The sequence number after the highest byte seen (0: none yet).
    nextseq: u32,
    nextseq_time: Duration,
    /// The last acknowledgement number sent (0: none yet).
    lastack: u32,
    lastack_time: Duration,
    maxseqtobeacked: u32,
    /// The last window advertised, scaled when the scale is known (`u32::MAX`: none yet).
    window: u32,
    /// Window scale: -1 unknown, -2 not used, otherwise the shift.
    win_scale: i8,
    dupacks: i32,
    last_keepalive: bool,
    last_zero_window_probe: bool,
    fin: bool,
    retransmissions: u32,
    out_of_order: u32,
    zero_window: u32,
}

impl Default for Direction {
    fn default() -> Self {
        Direction {
            nextseq: 0,
            nextseq_time: Duration::ZERO,
            lastack: 0,
            lastack_time: Duration::ZERO,
            maxseqtobeacked: 0,
            window: u32::MAX,
            win_scale: -1,
            dupacks: 0,
            last_keepalive: false,
            last_zero_window_probe: false,
            fin: false,
            retransmissions: 0,
            out_of_order: 0,
            zero_window: 0,
        }
    }
}

/// Per-direction TCP counters of a finished analysis, indexed `[initiator→responder,
/// responder→initiator]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCounters {
    /// Segments Wireshark would flag `tcp.analysis.retransmission` (plain, fast and
    /// spurious retransmissions).
    pub retransmissions: u32,
    /// Segments Wireshark would flag `tcp.analysis.out_of_order`.
    pub out_of_order: u32,
    /// Segments advertising a zero window (`tcp.analysis.zero_window`).
    pub zero_window: u32,
}

/// The TCP state of one flow. Direction 0 is initiator → responder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TcpTracker {
    dirs: [Direction; 2],
    /// SYNs (without ACK) the initiator sent.
    pub(crate) syns: u32,
    first_syn: Option<Duration>,
    /// The most recent SYN (Wireshark's `ts_mru_syn`).
    last_syn: Option<Duration>,
    synack: Option<Duration>,
    pub(crate) handshake: Option<Handshake>,
    /// Wireshark's `ts_first_rtt`: last SYN to the first segment with ACK and without SYN.
    first_rtt: Option<Duration>,
    refused: bool,
    reset: bool,
    answered: bool,
}

impl TcpTracker {
    /// Whether a SYN (without ACK) now would start a new connection on these ports: the old
    /// one was refused, reset or closed.
    pub(crate) fn is_finished(&self) -> bool {
        self.refused || self.reset || (self.dirs[0].fin && self.dirs[1].fin)
    }

    /// Feeds one segment; `dir` is 0 from the initiator, 1 from the responder.
    pub(crate) fn observe(&mut self, dir: usize, tcp: &Tcp<'_>, ts: Duration) {
        let flags = tcp.flags.0;
        let syn = flags & SYN != 0;
        let ack = flags & ACK != 0;
        if dir == 1 {
            self.answered = true;
        }
        if syn {
            self.learn_window_scale(dir, tcp, ack);
            if !ack {
                self.last_syn = Some(ts);
                if dir == 0 {
                    self.syns += 1;
                    self.first_syn.get_or_insert(ts);
                }
            } else if dir == 1 && self.last_syn.is_some() {
                self.synack = Some(ts);
            }
        }
        if ack && !syn {
            if self.first_rtt.is_none()
                && let Some(syn_ts) = self.last_syn
            {
                self.first_rtt = Some(ts.saturating_sub(syn_ts));
            }
            if dir == 0
                && self.handshake.is_none()
                && !self.refused
                && let (Some(syn_ts), Some(synack_ts)) = (self.last_syn, self.synack)
            {
                self.handshake = Some(Handshake {
                    syn_to_synack: synack_ts.saturating_sub(syn_ts),
                    synack_to_ack: ts.saturating_sub(synack_ts),
                    rtt: ts.saturating_sub(syn_ts),
                });
            }
        }
        if flags & RST != 0 {
            if self.handshake.is_none() && dir == 1 && self.syns > 0 && self.synack.is_none() {
                self.refused = true;
            } else {
                self.reset = true;
            }
        }
        if flags & FIN != 0 {
            self.dirs[dir].fin = true;
        }
        let window = if syn {
            u32::from(tcp.window)
        } else {
            match self.dirs[dir].win_scale {
                s if s >= 0 => u32::from(tcp.window) << s,
                _ => u32::from(tcp.window),
            }
        };
        self.analyze(dir, tcp.seq, tcp.ack, tcp.payload_len, flags, window, ts);
    }

    /// Wireshark's `verify_tcp_window_scaling`: scaling is used only if both SYNs carry it.
    fn learn_window_scale(&mut self, dir: usize, tcp: &Tcp<'_>, is_synack: bool) {
        let shift = tcp.options.iter().find_map(|o| match o {
            TcpOption::WindowScale { shift } => Some(shift.min(14) as i8),
            _ => None,
        });
        match shift {
            Some(s) => {
                self.dirs[dir].win_scale = s;
                if is_synack && self.dirs[1 - dir].win_scale == -2 {
                    self.dirs[dir].win_scale = -2;
                }
            }
            None => {
                self.dirs[dir].win_scale = -2;
                self.dirs[1 - dir].win_scale = -2;
            }
        }
    }

    /// `tcp_analyze_sequence_number`, the parts that decide retransmission, out-of-order and
    /// zero-window flags.
    #[allow(clippy::too_many_arguments)]
    fn analyze(
        &mut self,
        dir: usize,
        seq: u32,
        ack: u32,
        seglen: u32,
        flags: u16,
        window: u32,
        ts: Duration,
    ) {
        let first_rtt = self.first_rtt.filter(|d| !d.is_zero());
        let [d0, d1] = &mut self.dirs;
        let (fwd, rev) = if dir == 0 { (d0, d1) } else { (d1, d0) };
        let syn_fin_rst = flags & (SYN | FIN | RST) != 0;
        let mut keepalive = false;
        let mut zero_window_probe = false;

        'fwd: {
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                zero_window_probe = true;
                break 'fwd;
            }
            if window == 0 && flags & (RST | FIN | SYN) == 0 {
                fwd.zero_window += 1;
            }
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !syn_fin_rst {
                keepalive = true;
            }
            let repeats = seglen == 0
                && window == fwd.window
                && seq == fwd.nextseq
                && ack == fwd.lastack
                && !syn_fin_rst;
            if repeats && window != 0 && rev.last_keepalive {
                break 'fwd; // keep-alive ACK
            }
            if repeats && window == 0 && rev.last_zero_window_probe {
                break 'fwd; // zero-window-probe ACK
            }
            if repeats && window != 0 {
                fwd.dupacks = if fwd.dupacks == -1 {
                    1
                } else {
                    fwd.dupacks + 1
                };
            }
        }
        if ack != fwd.lastack {
            fwd.dupacks = 0;
        }
        // "ACKed unseen segment": only its effect on the other side's duplicate-ACK count
        // matters here.
        if rev.maxseqtobeacked != 0 && seq_gt(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
            if rev.maxseqtobeacked > rev.nextseq {
                rev.maxseqtobeacked = rev.nextseq;
            } else {
                rev.dupacks = -1;
            }
        }

        if (seglen > 0 || flags & (SYN | FIN) != 0) && !keepalive {
            let mut not_advanced = fwd.nextseq != 0 && seq_lt(seq, fwd.nextseq);
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            let spurious =
                seglen > 0 && rev.lastack != 0 && seq_le(seq.wrapping_add(seglen), rev.lastack);
            let since_dupack = ts.checked_sub(rev.lastack_time);
            let fast = not_advanced
                && rev.dupacks >= 2
                && rev.lastack == seq
                && since_dupack.is_some_and(|t| t < FAST_RETRANSMISSION_WINDOW);
            let since_highest = ts.checked_sub(fwd.nextseq_time);
            let threshold = first_rtt.unwrap_or(DEFAULT_OOO_THRESHOLD);
            let end = seq
                .wrapping_add(seglen)
                .wrapping_add(u32::from(flags & (SYN | FIN) != 0));
            let out_of_order =
                not_advanced && since_highest.is_some_and(|t| t < threshold) && fwd.nextseq != end;
            if spurious || fast {
                fwd.retransmissions += 1;
            } else if out_of_order {
                fwd.out_of_order += 1;
            } else if not_advanced {
                fwd.retransmissions += 1;
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if flags & (SYN | FIN) != 0 {
            nextseq = nextseq.wrapping_add(1);
        }
        if (seq_gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zero_window_probe {
            fwd.nextseq = nextseq;
            fwd.nextseq_time = ts;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !zero_window_probe {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_time = ts;
        fwd.last_keepalive = keepalive;
        fwd.last_zero_window_probe = zero_window_probe;
    }

    /// The outcome if the flow ended now. `end` is the time of the record; `timed_out` says
    /// whether the flow ended by idle timeout (so an unanswered SYN has had its chance).
    pub(crate) fn outcome(
        &self,
        end: Duration,
        timed_out: bool,
        syn_timeout: Duration,
    ) -> TcpOutcome {
        if self.refused {
            return TcpOutcome::Refused;
        }
        if self.reset {
            return TcpOutcome::Reset;
        }
        if self.dirs[0].fin && self.dirs[1].fin {
            return TcpOutcome::Closed;
        }
        if self.handshake.is_some() {
            return TcpOutcome::Established;
        }
        if self.syns > 0 && !self.answered {
            let waited = self
                .first_syn
                .is_some_and(|t| end.saturating_sub(t) >= syn_timeout);
            if self.syns > 1 || timed_out || waited {
                return TcpOutcome::Unanswered;
            }
        }
        TcpOutcome::Open
    }

    /// The counters of one direction (0: initiator → responder).
    pub(crate) fn counters(&self, dir: usize) -> TcpCounters {
        let d = &self.dirs[dir];
        TcpCounters {
            retransmissions: d.retransmissions,
            out_of_order: d.out_of_order,
            zero_window: d.zero_window,
        }
    }

    /// Forgets the counters (after an active-timeout record), keeping the state.
    pub(crate) fn reset_counters(&mut self) {
        for d in &mut self.dirs {
            d.retransmissions = 0;
            d.out_of_order = 0;
            d.zero_window = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpOptions;

    fn seg(seq: u32, ack: u32, flags: u16, len: u32) -> Tcp<'static> {
        Tcp {
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            header_len: 20,
            flags: TcpFlags(flags),
            window: 1000,
            checksum: 0,
            urgent: 0,
            options: TcpOptions(&[]),
            payload_len: len,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn handshake(t: &mut TcpTracker) {
        t.observe(0, &seg(100, 0, SYN, 0), ms(0));
        t.observe(1, &seg(500, 101, SYN | ACK, 0), ms(2));
        t.observe(0, &seg(101, 501, ACK, 0), ms(3));
    }

    #[test]
    fn handshake_timings_and_close() {
        let mut t = TcpTracker::default();
        handshake(&mut t);
        let h = t.handshake.expect("established");
        assert_eq!(
            (h.syn_to_synack, h.synack_to_ack, h.rtt),
            (ms(2), ms(1), ms(3))
        );
        assert_eq!(t.outcome(ms(4), false, ms(1000)), TcpOutcome::Established);
        t.observe(0, &seg(101, 501, FIN | ACK, 0), ms(5));
        assert_eq!(t.outcome(ms(5), false, ms(1000)), TcpOutcome::Established);
        t.observe(1, &seg(501, 102, FIN | ACK, 0), ms(6));
        assert_eq!(t.outcome(ms(6), false, ms(1000)), TcpOutcome::Closed);
        assert_eq!(t.counters(0), TcpCounters::default());
    }

    #[test]
    fn refused_unanswered_and_reset() {
        let mut t = TcpTracker::default();
        t.observe(0, &seg(100, 0, SYN, 0), ms(0));
        assert_eq!(t.outcome(ms(1), false, ms(1000)), TcpOutcome::Open);
        assert_eq!(t.outcome(ms(1), true, ms(1000)), TcpOutcome::Unanswered);
        t.observe(0, &seg(100, 0, SYN, 0), ms(1000));
        assert_eq!(t.outcome(ms(1000), false, ms(5000)), TcpOutcome::Unanswered);
        assert_eq!(t.syns, 2);
        assert_eq!(
            t.counters(0).retransmissions,
            1,
            "a repeated SYN is retransmitted"
        );
        t.observe(1, &seg(0, 101, RST | ACK, 0), ms(1001));
        assert_eq!(t.outcome(ms(1001), false, ms(5000)), TcpOutcome::Refused);

        let mut r = TcpTracker::default();
        handshake(&mut r);
        r.observe(1, &seg(501, 101, RST, 0), ms(10));
        assert_eq!(r.outcome(ms(10), false, ms(1000)), TcpOutcome::Reset);
    }

    #[test]
    fn repeated_data_is_a_retransmission_and_keepalives_are_not() {
        let mut t = TcpTracker::default();
        handshake(&mut t);
        t.observe(0, &seg(101, 501, ACK, 100), ms(10));
        t.observe(0, &seg(201, 501, ACK, 100), ms(11));
        // The same range again, long after: a retransmission.
        t.observe(0, &seg(101, 501, ACK, 100), ms(300));
        // A keep-alive: one byte before nextseq, no data.
        t.observe(0, &seg(300, 501, ACK, 0), ms(900));
        assert_eq!(t.counters(0).retransmissions, 1);
        assert_eq!(t.counters(0).out_of_order, 0);
        // Within one initial RTT (3 ms) of the highest segment: out of order.
        t.observe(0, &seg(301, 501, ACK, 100), ms(1000));
        t.observe(0, &seg(401, 501, ACK, 100), ms(1001));
        t.observe(0, &seg(301, 501, ACK, 50), ms(1002));
        assert_eq!(t.counters(0).out_of_order, 1);
        // A zero window from the responder.
        let mut z = seg(501, 501, ACK, 0);
        z.window = 0;
        t.observe(1, &z, ms(1003));
        assert_eq!(t.counters(1).zero_window, 1);
    }
}
