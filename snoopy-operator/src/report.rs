//! What podtracer reports back through the container's termination message.
//!
//! podtracer writes `{"captured":N,"received":M,"dropped":K}` (plus `"target_gone":true` when
//! the pod went away during the capture, and with a Kafka sink
//! `"kafka":{"sent":S,"sent_messages":…,"buffered":B,"dropped":D,"failed_attempts":F}`) to the
//! file named by
//! `--termination-log` (the Job passes `/dev/termination-log`); kubelet puts it into the
//! pod's `containerStatuses[].state.terminated.message`. When podtracer fails, the Job's
//! `terminationMessagePolicy: FallbackToLogsOnError` puts the log tail there instead, which
//! still holds podtracer's `N packets captured` summary or its error sentence.

pub use snoopy_job::{KafkaReport as KafkaCounters, Report as Counters};

/// Reads counters from a termination message: the contract's JSON report, else tcpdump's
/// summary lines.
pub fn parse(message: &str) -> Counters {
    Counters::parse(message)
}

/// The last error-looking line of a message, for a target's `message` when its Job failed.
pub fn error_line(message: &str) -> Option<String> {
    if Counters::parse_json(message).is_some() {
        return None;
    }
    message
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains(" packets "))
        .map(|l| l.chars().take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_summary_forms() {
        assert_eq!(
            parse(r#"{"captured":50,"received":52,"dropped":0}"#),
            Counters {
                captured: Some(50),
                received: Some(52),
                dropped: Some(0),
                kafka: None,
                target_gone: false,
                ..Counters::default()
            }
        );
        let text = "12:00:00.1 IP a > b: ICMP echo request\n50 packets captured\n52 packets received by filter\n3 packets dropped by kernel\n";
        assert_eq!(
            parse(text),
            Counters {
                captured: Some(50),
                received: Some(52),
                dropped: Some(3),
                kafka: None,
                target_gone: false,
                ..Counters::default()
            }
        );
        assert_eq!(
            parse("1 packet captured"),
            Counters {
                captured: Some(1),
                received: None,
                dropped: None,
                kafka: None,
                target_gone: false,
                ..Counters::default()
            }
        );
        assert_eq!(
            parse("podtracer: no such interface eth9"),
            Counters::default()
        );
    }

    #[test]
    fn the_kafka_member_parses_and_keeps_the_packet_counts() {
        // As podtracer's write_termination_log writes it (serde_json of DeliveryReport).
        let message = r#"{"captured":10,"dropped":1,"kafka":{"buffered":2,"dropped":3,"failed_attempts":4,"sent":10,"sent_messages":5},"received":12}"#;
        assert_eq!(
            parse(message),
            Counters {
                captured: Some(10),
                received: Some(12),
                dropped: Some(1),
                kafka: Some(KafkaCounters {
                    sent: 10,
                    sent_messages: 5,
                    buffered: 2,
                    dropped: 3,
                    failed_attempts: 4,
                }),
                target_gone: false,
                ..Counters::default()
            }
        );
        assert_eq!(error_line(message), None, "a report is not an error");
        let gone = parse(r#"{"captured":3,"received":3,"dropped":0,"target_gone":true}"#);
        assert!(gone.target_gone && gone.captured == Some(3), "{gone:?}");
        // A newer podtracer may add members: still read.
        let c = parse(r#"{"captured":7,"dropped":0,"kafka":{"sent":7,"later":true}}"#);
        assert_eq!((c.captured, c.kafka.map(|k| k.sent)), (Some(7), Some(7)));
    }

    #[test]
    fn error_lines() {
        assert_eq!(error_line(r#"{"captured":1}"#), None);
        assert_eq!(
            error_line("0 packets captured\npodtracer: interface eth9 not found in the pod\n")
                .as_deref(),
            Some("podtracer: interface eth9 not found in the pod")
        );
    }
}
