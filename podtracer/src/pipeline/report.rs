//! The termination report: what a run tells whoever started it (the operator reads a Job's
//! termination message), as the contract's [`snoopy_job::Report`]. Every subcommand that
//! writes one (`capture`, `capture -l`, `flows`) writes it here.

use std::path::{Path, PathBuf};

use snoopy_capture::sink::kafka::DeliveryReport;

use super::Totals;

/// How a run ended, as its termination report tells it.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// The run's packet counts and whether its target went away.
    pub totals: &'a Totals,
    /// What each Kafka sink delivered (summed in the report).
    pub kafka: &'a [DeliveryReport],
    /// The files written (`-w`, each rotated file, `--sink file://`); the report names them
    /// without their folders.
    pub files: &'a [PathBuf],
    /// Each pod's counts, when the run served several (`capture -l`, `--pod NS/NAME…`).
    pub pods: &'a [snoopy_job::PodCount],
}

impl Ending<'_> {
    /// The report of this ending.
    pub fn report(&self) -> snoopy_job::Report {
        // The termination message is small (4 KiB): a Kafka error's text stays in the log.
        snoopy_job::Report {
            captured: Some(self.totals.captured),
            received: Some(self.totals.received),
            dropped: Some(self.totals.dropped),
            target_gone: self.totals.target_gone,
            kafka: crate::sinks::total(self.kafka).map(|k| snoopy_job::KafkaReport {
                sent: k.sent,
                sent_messages: k.sent_messages,
                buffered: k.buffered,
                dropped: k.dropped,
                failed_attempts: k.failed_attempts,
            }),
            ..snoopy_job::Report::default()
        }
        .with_files(
            self.files
                .iter()
                .filter_map(|f| f.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        )
        .with_pods(self.pods.iter().cloned())
    }

    /// Writes the report to `path` (`--termination-log`; nothing without it). A failure to
    /// write is reported but does not fail a run that worked.
    pub fn write(&self, path: Option<&Path>) {
        let Some(path) = path else { return };
        if let Err(e) = std::fs::write(path, self.report().to_json()) {
            eprintln!("podtracer: writing {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_the_kafka_sinks_and_names_files_without_folders() {
        let totals = Totals {
            captured: 7,
            received: 9,
            dropped: 1,
            target_gone: true,
        };
        let kafka = [
            DeliveryReport {
                sent: 100,
                sent_messages: 2,
                failed_attempts: 1,
                last_error: Some("broker away".into()),
                ..DeliveryReport::default()
            },
            DeliveryReport {
                sent: 50,
                sent_messages: 1,
                buffered: 3,
                dropped: 4,
                ..DeliveryReport::default()
            },
        ];
        let files = [PathBuf::from("/data/web.pcap"), PathBuf::from("web1.pcap")];
        let report = Ending {
            totals: &totals,
            kafka: &kafka,
            files: &files,
            pods: &[],
        }
        .report();
        assert_eq!(
            report,
            snoopy_job::Report {
                captured: Some(7),
                received: Some(9),
                dropped: Some(1),
                target_gone: true,
                kafka: Some(snoopy_job::KafkaReport {
                    sent: 150,
                    sent_messages: 3,
                    buffered: 3,
                    dropped: 4,
                    failed_attempts: 1,
                }),
                ..snoopy_job::Report::default()
            }
            .with_files(["web.pcap".to_string(), "web1.pcap".to_string()])
        );
    }

    #[test]
    fn without_kafka_sinks_the_report_has_no_kafka_member() {
        let report = Ending {
            totals: &Totals::default(),
            kafka: &[],
            files: &[],
            pods: &[],
        }
        .report();
        assert_eq!(report.kafka, None);
    }
}
