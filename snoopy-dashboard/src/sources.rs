//! The inputs: JSON lines from files or stdin (one machine, no broker), and Kafka topics
//! followed live. Each runs on its own thread and feeds the shared store in batches.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use snoopy_capture::sink::kafka::{ConsumeOptions, KafkaSettings, Share, consume};

use crate::input::Origin;
use crate::shared::Shared;

/// Lines counted under one lock.
const BATCH: usize = 512;

/// A file of JSON lines, or stdin (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinesInput {
    /// Standard input, until it ends.
    Stdin,
    /// A file, read to its end.
    File(PathBuf),
}

impl LinesInput {
    /// `-` is stdin, anything else a path.
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            LinesInput::Stdin
        } else {
            LinesInput::File(arg.into())
        }
    }

    fn name(&self) -> String {
        match self {
            LinesInput::Stdin => "stdin".into(),
            LinesInput::File(p) => p.display().to_string(),
        }
    }
}

/// Reads JSON lines from `reader` into the store until it ends; returns the lines read.
pub fn read_lines(reader: impl Read, origin: &Origin, shared: &Shared) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n > 0 && !line.iter().all(u8::is_ascii_whitespace) {
            lines.push(line);
        }
        // A batch is sent when full, or as soon as nothing more is waiting (a live pipe
        // shows each record at once).
        if lines.len() >= BATCH || (n == 0 || reader.buffer().is_empty()) && !lines.is_empty() {
            total += lines.len() as u64;
            shared.ingest_batch(lines.iter().map(|l| (l.as_slice(), origin)));
            lines.clear();
        }
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Reads one lines input on a new thread.
pub fn spawn_lines(input: LinesInput, origin: Origin, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        let result = match &input {
            LinesInput::Stdin => read_lines(std::io::stdin().lock(), &origin, &shared),
            LinesInput::File(path) => {
                std::fs::File::open(path).and_then(|f| read_lines(f, &origin, &shared))
            }
        };
        match result {
            Ok(n) => eprintln!("snoopy-dashboard: {}: {n} lines read", input.name()),
            Err(e) => {
                let what = format!("reading {}: {e}", input.name());
                eprintln!("snoopy-dashboard: {what}");
                shared.input_error(what);
            }
        }
    });
}

/// How long to wait before reconnecting to a broker that went away.
const RECONNECT: Duration = Duration::from_secs(2);

/// Follows a Kafka topic on a new thread, forever: when the broker goes away the error is
/// counted and shown, and the topic is read again from where it was left (messages already
/// counted are skipped by offset, so nothing counts twice). With `share`, only that share
/// of the partitions (one replica's).
pub fn spawn_kafka(settings: KafkaSettings, share: Option<Share>, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let mut next: HashMap<i32, i64> = HashMap::new();
        let name = format!("kafka://{}/{}", settings.brokers.join(","), settings.topic);
        let options = ConsumeOptions {
            follow: true,
            share,
            ..ConsumeOptions::default()
        };
        loop {
            let result = consume(&settings, &options, &stop, |batch| {
                let fresh: Vec<_> = batch
                    .into_iter()
                    .filter(|m| next.get(&m.partition).is_none_or(|n| m.offset >= *n))
                    .collect();
                for m in &fresh {
                    next.insert(m.partition, m.offset + 1);
                }
                shared.ingest_messages(&fresh);
                Ok::<(), std::convert::Infallible>(())
            });
            let what = match result {
                Ok(_) => format!("{name}: the topic ended"),
                Err(e) => format!("{name}: {e}"),
            };
            eprintln!("snoopy-dashboard: {what}; reading again in {RECONNECT:?}");
            shared.input_error(what);
            std::thread::sleep(RECONNECT);
        }
    });
}
