//! JSON lines: one object per packet.

use std::io::{BufWriter, Write};

use serde::Serialize;

use crate::decode::time::Rfc3339;
use crate::decode::{self, DecodeStats, Decoded};
use crate::{Error, Interface, Packet, PacketSink, Result};

const BUF_SIZE: usize = 64 * 1024;

/// One line of [`JsonSink`] output.
///
/// ```json
/// {"time":"2023-11-14T22:13:20.123456789Z","ts_sec":1700000000,"ts_nsec":123456789,
///  "interface":"shop/web-0","caplen":74,"len":74,
///  "layers":{"link":{"type":"ethernet",...},"network":{"type":"ipv4",...},
///            "transport":{"type":"tcp","src_port":40000,...,"flags":["SYN"]},"problem":null}}
/// ```
#[derive(Debug, Serialize)]
pub struct JsonRecord<'a> {
    /// Capture time, RFC 3339 UTC with nanoseconds.
    #[serde(serialize_with = "as_display")]
    pub time: Rfc3339,
    /// Seconds since the epoch.
    pub ts_sec: u64,
    /// Nanoseconds within the second.
    pub ts_nsec: u32,
    /// The interface name.
    pub interface: &'a str,
    /// Captured bytes.
    pub caplen: usize,
    /// Length on the wire.
    pub len: u32,
    /// The decoded layers.
    pub layers: &'a Decoded<'a>,
}

fn as_display<S: serde::Serializer>(t: &Rfc3339, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// One JSON object per line ([`JsonRecord`]), to any writer.
pub struct JsonSink<W: Write> {
    out: BufWriter<W>,
    interfaces: Vec<Interface>,
    stats: DecodeStats,
    name: String,
}

impl<W: Write> std::fmt::Debug for JsonSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSink")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `writer`; `name` labels it in error messages.
    pub fn new(writer: W, name: impl Into<String>) -> Self {
        JsonSink {
            out: BufWriter::with_capacity(BUF_SIZE, writer),
            interfaces: Vec::new(),
            stats: DecodeStats::default(),
            name: name.into(),
        }
    }

    /// Counts of packets decoded and malformed so far.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        let name = self.name;
        self.out
            .into_inner()
            .map_err(|e| Error::io(format!("writing {name}"), e.into_error()))
    }
}

impl<W: Write> PacketSink for JsonSink<W> {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        self.interfaces.push(interface.clone());
        Ok(self.interfaces.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        let Some(iface) = self.interfaces.get(interface as usize) else {
            return Err(super::unknown_interface(
                &self.name,
                interface,
                self.interfaces.len(),
            ));
        };
        let decoded = decode::decode(iface.link_type, packet.data);
        self.stats.record(&decoded);
        let record = JsonRecord {
            time: Rfc3339(packet.timestamp),
            ts_sec: packet.timestamp.as_secs(),
            ts_nsec: packet.timestamp.subsec_nanos(),
            interface: &iface.name,
            caplen: packet.data.len(),
            len: packet.orig_len,
            layers: &decoded,
        };
        serde_json::to_writer(&mut self.out, &record)
            .map_err(|e| Error::io(format!("writing {}", self.name), e.into()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::io(format!("writing {}", self.name), e))
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.name), e))
    }
}
