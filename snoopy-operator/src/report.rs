//! What podtracer reports back through the container's termination message.
//!
//! podtracer writes `{"captured":N,"received":M,"dropped":K}` to the file named by
//! `--termination-log` (the Job passes `/dev/termination-log`); kubelet puts it into the
//! pod's `containerStatuses[].state.terminated.message`. When podtracer fails, the Job's
//! `terminationMessagePolicy: FallbackToLogsOnError` puts the log tail there instead, which
//! still holds podtracer's `N packets captured` summary or its error sentence.

use serde::Deserialize;

/// Packet counters of one finished capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Counters {
    /// Packets delivered to the output.
    pub captured: Option<u64>,
    /// Packets the kernel dropped (ring full).
    pub dropped: Option<u64>,
}

/// Reads counters from a termination message: the JSON form, else tcpdump's summary lines.
pub fn parse(message: &str) -> Counters {
    if let Ok(c) = serde_json::from_str::<Counters>(message.trim()) {
        return c;
    }
    Counters {
        captured: number_before(message, " packets captured")
            .or_else(|| number_before(message, " packet captured")),
        dropped: number_before(message, " packets dropped by kernel")
            .or_else(|| number_before(message, " packet dropped by kernel")),
    }
}

/// The last error-looking line of a message, for a target's `message` when its Job failed.
pub fn error_line(message: &str) -> Option<String> {
    if serde_json::from_str::<Counters>(message.trim()).is_ok() {
        return None;
    }
    message
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains(" packets "))
        .map(|l| l.chars().take(512).collect())
}

fn number_before(text: &str, suffix: &str) -> Option<u64> {
    let end = text.rfind(suffix)?;
    let head = &text[..end];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
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
                dropped: Some(0)
            }
        );
        let text = "12:00:00.1 IP a > b: ICMP echo request\n50 packets captured\n52 packets received by filter\n3 packets dropped by kernel\n";
        assert_eq!(
            parse(text),
            Counters {
                captured: Some(50),
                dropped: Some(3)
            }
        );
        assert_eq!(
            parse("1 packet captured"),
            Counters {
                captured: Some(1),
                dropped: None
            }
        );
        assert_eq!(
            parse("podtracer: no such interface eth9"),
            Counters::default()
        );
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
