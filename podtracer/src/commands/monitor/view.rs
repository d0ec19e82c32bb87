//! How events are shown: aligned rows on a terminal, JSON lines otherwise.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use snoopy_ebpf::Event;

/// Where events go.
pub trait View {
    /// Before the first event (a table's header).
    fn start(&mut self) -> Result<()>;
    /// One event, flushed at once (a reader sees it as it happens).
    fn event(&mut self, event: &Event) -> Result<()>;
}

/// One `snoopy_ebpf::Event` as JSON per line.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

impl<W: Write> View for JsonLines<W> {
    fn start(&mut self) -> Result<()> {
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// Aligned rows: time, event, namespace (as the user named it), process, addresses, bytes.
pub struct Table<W: Write> {
    out: W,
    labels: HashMap<u32, String>,
}

impl<W: Write> Table<W> {
    /// Writes to `out`; `labels` name the namespaces by inode.
    pub fn new(out: W, labels: HashMap<u32, String>) -> Self {
        Table { out, labels }
    }
}

const HEADER: [&str; 8] = [
    "TIME",
    "EVENT",
    "NETNS",
    "PID",
    "COMM",
    "LOCAL",
    "REMOTE",
    "BYTES OUT/IN",
];

fn row(event: &Event, label: Option<&String>) -> [String; 8] {
    let time = chrono::DateTime::from_timestamp_nanos(event.time_ns as i64)
        .format("%H:%M:%S%.6f")
        .to_string();
    let (pid, comm) = match &event.process {
        Some(p) => (p.pid.to_string(), p.comm.clone()),
        None => ("-".into(), "-".into()),
    };
    let bytes = match (event.bytes_sent, event.bytes_received) {
        (Some(out), Some(inn)) => format!("{out}/{inn}"),
        _ => String::new(),
    };
    [
        time,
        event.kind.name().into(),
        label.cloned().unwrap_or_else(|| event.netns.to_string()),
        pid,
        comm,
        event.local.to_string(),
        event.remote.to_string(),
        bytes,
    ]
}

fn write_row<W: Write>(out: &mut W, cells: &[String; 8]) -> Result<()> {
    // IPv4 addresses fit; longer cells (IPv6, long namespace paths) push the row on.
    const WIDTHS: [usize; 7] = [15, 11, 22, 7, 15, 21, 21];
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(WIDTHS) {
        line.push_str(&format!("{cell:<width$} "));
    }
    line.push_str(&cells[7]);
    writeln!(out, "{}", line.trim_end())?;
    out.flush()?;
    Ok(())
}

impl<W: Write> View for Table<W> {
    fn start(&mut self) -> Result<()> {
        write_row(&mut self.out, &HEADER.map(String::from))
    }

    fn event(&mut self, event: &Event) -> Result<()> {
        let cells = row(event, self.labels.get(&event.netns));
        write_row(&mut self.out, &cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snoopy_ebpf::{EventKind, Process};

    fn close() -> Event {
        Event {
            kind: EventKind::Close,
            time_ns: 1_700_000_000_123_456_789,
            netns: 4026532000,
            local: "198.18.0.1:40000".parse().unwrap(),
            remote: "198.18.0.2:8080".parse().unwrap(),
            process: Some(Process {
                pid: 42,
                tid: 42,
                uid: 0,
                comm: "curl".into(),
                cgroup_id: 9,
            }),
            bytes_sent: Some(5),
            bytes_received: Some(7),
        }
    }

    #[test]
    fn a_table_row_names_the_namespace_as_the_user_did() {
        let mut out = Vec::new();
        let labels = HashMap::from([(4026532000, "pid 4242".to_string())]);
        let mut table = Table::new(&mut out, labels);
        table.start().unwrap();
        table.event(&close()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TIME "), "{text}");
        assert!(lines[1].starts_with("22:13:20.123456 close "), "{text}");
        for part in [
            "pid 4242",
            " 42 ",
            "curl",
            "198.18.0.1:40000",
            "198.18.0.2:8080",
        ] {
            assert!(lines[1].contains(part), "{part} in {text}");
        }
        assert!(lines[1].ends_with("5/7"), "{text}");
    }

    #[test]
    fn json_lines_are_the_library_events() {
        let mut out = Vec::new();
        JsonLines::new(&mut out).event(&close()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        let back: Event = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(back, close());
    }
}
