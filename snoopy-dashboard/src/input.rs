//! What the dashboard reads: one JSON record (a line of `podtracer … -o json`, or the value
//! of a Kafka message on `snoopy.flows` / `snoopy.probes` / `snoopy.throughput`), told apart
//! by its `"type"`.

use std::collections::BTreeMap;

use serde::Deserialize;
use snoopy_capture::flow::FlowRecord;
use snoopy_job::throughput::PairResult;

/// Where a record came from: the Kafka message's key and headers, or what the command line
/// says for a file or stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The target that produced it (`NS/POD`, `pid:N`, a netns path): the Kafka key.
    pub key: Option<String>,
    /// The node it was measured on (`node` header).
    pub node: Option<String>,
    /// The run it belongs to (`run` header).
    pub run: Option<String>,
}

/// A probe check's report (`podtracer probe -o json`, `"type": "probe"`): the members the
/// dashboard uses. Unknown members are ignored so newer podtracers stay readable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProbeRecord {
    /// `tcp`, `http` or `dns`.
    pub check: String,
    /// The target as given (`db.shop:5432`, a URL, a name).
    pub target: String,
    /// Every attempt, in order.
    #[serde(default)]
    pub results: Vec<ProbeAttempt>,
}

/// One attempt of a probe check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProbeAttempt {
    /// Whether it succeeded.
    pub ok: bool,
    /// Why not (`refused`, `timeout`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// Its latency when it succeeded, nanoseconds.
    #[serde(default)]
    pub latency_ns: Option<u64>,
    /// The address connected to or asked (`ip:port`).
    #[serde(default)]
    pub address: Option<String>,
}

/// One record read.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A flow record (`"type": "flow"`).
    Flow(Box<FlowRecord>),
    /// A probe check's report (`"type": "probe"`).
    Probe(ProbeRecord),
    /// A throughput test between two pods (`"type": "throughput"`).
    Throughput(Box<PairResult>),
    /// A summary podtracer computed from flow records the dashboard also reads (`snapshot`,
    /// `summary`, `destination`, `pod_pair`): counted, not aggregated again.
    Summary,
}

/// Why a line or message was not a record; each kind is counted and shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not JSON, or JSON that does not fit its type's schema.
    #[error("malformed record: {0}")]
    Malformed(#[from] serde_json::Error),
    /// JSON with a `"type"` the dashboard does not know, or none.
    #[error("record type {0:?} is not one the dashboard reads (flow, probe, throughput)")]
    UnknownType(String),
}

/// The `"type"` member alone, read first so a bad member of a known type is "malformed"
/// and an unknown type is "unknown", whatever else the object holds.
#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type", default)]
    kind: String,
}

/// How podtracer's flow records begin: read in one pass, without looking for the type first.
const FLOW_RECORD_START: &[u8] = br#"{"type":"flow","#;

/// Reads one record.
pub fn parse(json: &[u8]) -> Result<Record, InputError> {
    if json.starts_with(FLOW_RECORD_START) {
        return Ok(Record::Flow(Box::new(serde_json::from_slice(json)?)));
    }
    let tagged: Tagged = serde_json::from_slice(json)?;
    match tagged.kind.as_str() {
        "flow" => Ok(Record::Flow(Box::new(serde_json::from_slice(json)?))),
        "probe" => Ok(Record::Probe(serde_json::from_slice(json)?)),
        "throughput" => Ok(Record::Throughput(Box::new(serde_json::from_slice(json)?))),
        "snapshot" | "summary" | "destination" | "pod_pair" => Ok(Record::Summary),
        other => Err(InputError::UnknownType(other.to_string())),
    }
}

/// The origin a Kafka message's key and headers give.
pub fn kafka_origin(key: Option<&str>, headers: &BTreeMap<String, Vec<u8>>) -> Origin {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    Origin {
        key: key.map(str::to_string),
        node: header("node"),
        run: header("run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_records_apart_and_names_what_is_wrong() {
        let probe = br#"{"type":"probe","check":"tcp","target":"10.0.0.2:80","attempts":1,"results":[{"ok":false,"reason":"refused","address":"10.0.0.2:80"}]}"#;
        match parse(probe).unwrap() {
            Record::Probe(p) => {
                assert_eq!(p.check, "tcp");
                assert_eq!(p.results[0].reason.as_deref(), Some("refused"));
            }
            other => panic!("{other:?}"),
        }
        let pair = br#"{"type":"throughput","client":"shop/a","server":"shop/b","server_address":"10.0.0.2","port":5201,"settings":{"protocol":"tcp","direction":"forward","streams":1,"seconds":1,"round_trips":0},"started_ms":1,"ended_ms":2,"reason":"refused","error":"no"}"#;
        match parse(pair).unwrap() {
            Record::Throughput(t) => assert_eq!((t.client.as_str(), t.ok()), ("shop/a", false)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(b"{\"type\":\"pod_pair\"}"),
            Ok(Record::Summary)
        ));
        assert!(
            matches!(parse(b"{\"type\":\"alert\"}"), Err(InputError::UnknownType(t)) if t == "alert")
        );
        assert!(matches!(parse(b"{}"), Err(InputError::UnknownType(t)) if t.is_empty()));
        assert!(matches!(parse(b"not json"), Err(InputError::Malformed(_))));
        assert!(matches!(
            parse(b"{\"type\":\"flow\",\"protocol\":\"tcp\"}"),
            Err(InputError::Malformed(_))
        ));
    }
}
