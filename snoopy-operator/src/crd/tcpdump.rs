//! `Tcpdump` (`pcap.fennecproject.io/v1alpha1`): the proof-of-concept API, same shape.

// Several `printcolumn(...)` entries share keys such as `type_`: that is the kube derive's
// syntax, not a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CaptureStatus;

/// Capture `packetCount` packets on `interfaceName` of every pod in `targetNamespace` whose
/// labels include all of `podLabel`; each Job prints them as tcpdump-style lines in its log.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "pcap.fennecproject.io",
    version = "v1alpha1",
    kind = "Tcpdump",
    namespaced,
    status = "CaptureStatus",
    shortname = "tcpd",
    category = "snoopy",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Targets", type_ = "integer", json_path = ".status.targetCount"),
    printcolumn(name = "Succeeded", type_ = "integer", json_path = ".status.succeeded"),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.targetNamespace",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TcpdumpSpec {
    /// A name for this capture (shown in logs; kept from the proof of concept).
    pub name: String,
    /// The namespace of the pods to capture from.
    pub target_namespace: String,
    /// Labels a pod must all carry to be captured (an equality selector).
    pub pod_label: BTreeMap<String, String>,
    /// The interface inside the pod, as tcpdump's `-i` (e.g. `eth0`).
    pub interface_name: String,
    /// How many packets each Job captures before it ends, as tcpdump's `-c`.
    #[schemars(range(min = 1))]
    pub packet_count: i64,
}
