//! `decode`: frames of the link type the first byte picks, turned into tcpdump-style lines
//! with the options the next two bytes pick (every flag `podtracer` exposes: `-t` to
//! `-ttttt`, `--nano`, `-e`, `-S`, `-x`/`-xx`, `-X`/`-XX`, `--ascii` once or twice, `-v`),
//! and into JSON lines (`--format json`).

use snoopy_capture::decode::time::{DateTime, EpochSeconds, TimeOfDay};
use snoopy_capture::decode::{
    Payload, Summarizer, SummaryOptions, TimeFormat, TimestampPrecision, decode as decode_frame,
};
use snoopy_capture::sink::JsonSink;
use snoopy_capture::{Interface, Packet, PacketSink};

use crate::{Bytes, Records, link_type};

/// The `decode` target.
pub fn decode(data: &[u8]) {
    let mut bytes = Bytes(data);
    let link = link_type(bytes.u8());
    let (a, b) = (bytes.u8(), bytes.u8());
    let options = SummaryOptions {
        precision: if a & 1 == 0 {
            TimestampPrecision::Micro
        } else {
            TimestampPrecision::Nano
        },
        time: TimeFormat::from_t_count((a >> 1) % 6),
        link_header: a & 0x10 != 0,
        absolute_seq: a & 0x20 != 0,
        payload: [
            Payload::None,
            Payload::Hex,
            Payload::HexAscii,
            Payload::Ascii,
        ][usize::from(a >> 6)],
        payload_link: b & 1 != 0,
        verbose: (b >> 1) % 4,
    };
    let mut summarizer = Summarizer::new(options);
    let mut json = JsonSink::new(Vec::new(), "json");
    let id = json
        .add_interface(&Interface::new("eth0", link, 262_144))
        .expect("an interface of a JSON sink");
    let mut line = String::new();
    let mut count = 0usize;
    for record in Records(bytes) {
        let packet = Packet {
            timestamp: record.timestamp,
            orig_len: record.orig_len,
            data: record.data,
            interface: id,
        };
        let decoded = decode_frame(link, record.data);
        line.clear();
        summarizer.write_line(&mut line, &packet, &decoded);
        check_line(&options, &packet, &line);
        json.write_packet(id, &packet).expect("JSON into memory");
        count += 1;
    }
    let out = json.into_inner().expect("flushing JSON into memory");
    let text = std::str::from_utf8(&out).expect("JSON lines are UTF-8");
    assert_eq!(text.lines().count(), count, "one JSON line a packet");
    for line in text.lines() {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
            panic!("not JSON ({e}): {line}");
        }
    }
}

/// What every line must look like whatever the frame: the time tcpdump would print first,
/// one line unless a dump or `-v` asks for more, and dump lines in the dump's layout.
fn check_line(options: &SummaryOptions, packet: &Packet<'_>, line: &str) {
    let (ts, p) = (packet.timestamp, options.precision);
    let time = match options.time {
        TimeFormat::Clock => Some(TimeOfDay(ts, p).to_string()),
        TimeFormat::Epoch => Some(EpochSeconds(ts, p).to_string()),
        TimeFormat::Date => Some(DateTime(ts, p).to_string()),
        TimeFormat::None | TimeFormat::SincePrevious | TimeFormat::SinceFirst => None,
    };
    if let Some(time) = time {
        assert!(
            line.starts_with(&format!("{time} ")),
            "line does not start with {time:?}: {line:?}"
        );
    }
    if options.verbose == 0 {
        let mut rest = line.lines().skip(1);
        match options.payload {
            Payload::None => assert_eq!(rest.next(), None, "one line: {line:?}"),
            Payload::Hex | Payload::HexAscii => {
                assert!(rest.all(|l| l.starts_with("\t0x")), "dump lines: {line:?}");
            }
            Payload::Ascii => {}
        }
    }
}
