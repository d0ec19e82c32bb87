//! Reading the runtime-specific verbose `info` of `PodSandboxStatus` / `ContainerStatus`.
//!
//! CRI leaves `info` free-form. Both containerd and CRI-O put one key, `"info"`, whose value
//! is a JSON document; the parts used here have the same shape in both:
//!
//! | field | containerd 1.6/1.7 | CRI-O 1.2x |
//! |---|---|---|
//! | `pid` (sandbox) | pause process, host PID | infra container, host PID; `0` when the pod has no infra container (`drop_infra_ctr`) |
//! | `pid` (container) | container init, host PID | container init, host PID |
//! | `runtimeSpec.linux.namespaces[type="network"].path` (sandbox) | `/var/run/netns/cni-<uuid>` | `/var/run/netns/<uuid>` |
//! | same, in a container's spec | `/proc/<sandbox pid>/ns/net` | the sandbox's pinned path |
//!
//! A network entry *without* a path means "a new namespace" (use the PID's); no network
//! entry at all means the pod shares the host's network namespace (`hostNetwork: true`).
//! Other keys differ (containerd: `processStatus`, `netNamespaceClosed`, `cniResult`,
//! `config`, `snapshotKey`…; CRI-O: `image`, `privileged`, `sandboxID`) and are not read.
//! Recorded examples are in `tests/data/`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

/// What the verbose info tells about a sandbox or a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VerboseInfo {
    /// The host PID of the sandbox's pause / infra process, or of the container's init.
    pub pid: Option<u32>,
    /// How the process's network namespace is set up.
    pub network: NetworkNs,
}

/// The network namespace entry of the runtime spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum NetworkNs {
    /// No runtime spec in the info: nothing known.
    #[default]
    Unknown,
    /// The spec joins the namespace at this path.
    Path(PathBuf),
    /// The spec asks for a fresh namespace: it is the process's own.
    New,
    /// The spec has no network namespace: the host's.
    Host,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    pid: Option<i64>,
    #[serde(default, rename = "runtimeSpec")]
    runtime_spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    linux: Option<Linux>,
}

#[derive(Deserialize)]
struct Linux {
    #[serde(default)]
    namespaces: Vec<SpecNamespace>,
}

#[derive(Deserialize)]
struct SpecNamespace {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// Parses the `info` map of a verbose status response. An empty map (a runtime that gives
/// no verbose info, or a non-verbose call) is `Ok(None)`.
pub(crate) fn parse(
    info: &HashMap<String, String>,
) -> Result<Option<VerboseInfo>, serde_json::Error> {
    let Some(json) = info.get("info") else {
        return Ok(None);
    };
    let raw: Raw = serde_json::from_str(json)?;
    // PID 0 is CRI-O's "no process" (a pod without an infra container) and containerd's
    // for a stopped task; negative never names a process.
    let pid = raw
        .pid
        .and_then(|p| u32::try_from(p).ok())
        .filter(|&p| p > 0);
    let network = match raw.runtime_spec.and_then(|s| s.linux) {
        None => NetworkNs::Unknown,
        Some(linux) => match linux.namespaces.iter().find(|n| n.kind == "network") {
            None => NetworkNs::Host,
            Some(ns) if ns.path.is_empty() => NetworkNs::New,
            Some(ns) => NetworkNs::Path(PathBuf::from(&ns.path)),
        },
    };
    Ok(Some(VerboseInfo { pid, network }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_of(fixture: &str) -> HashMap<String, String> {
        // The fixtures hold the whole `info` map as the runtime returned it.
        serde_json::from_str(fixture).expect("fixture is a JSON object of strings")
    }

    #[test]
    fn crio_sandbox_shape() {
        let info = info_of(include_str!(
            "../tests/data/crio-1.29-sandbox-status-info.json"
        ));
        let parsed = parse(&info).unwrap().unwrap();
        assert_eq!(parsed.pid, Some(31337));
        assert_eq!(
            parsed.network,
            NetworkNs::Path("/var/run/netns/6b0a1c7e-4a0e-4d5f-9a8e-2f3b1c0d9e11".into())
        );
    }

    #[test]
    fn crio_container_shape() {
        let info = info_of(include_str!(
            "../tests/data/crio-1.29-container-status-info.json"
        ));
        let parsed = parse(&info).unwrap().unwrap();
        assert_eq!(parsed.pid, Some(31400));
        assert_eq!(
            parsed.network,
            NetworkNs::Path("/var/run/netns/6b0a1c7e-4a0e-4d5f-9a8e-2f3b1c0d9e11".into())
        );
    }

    #[test]
    fn crio_without_infra_container_has_no_sandbox_pid() {
        let mut info = info_of(include_str!(
            "../tests/data/crio-1.29-sandbox-status-info.json"
        ));
        let json = info.get_mut("info").unwrap();
        *json = json.replace("\"pid\":31337", "\"pid\":0");
        assert_eq!(parse(&info).unwrap().unwrap().pid, None);
    }

    #[test]
    fn containerd_shapes() {
        let sandbox = info_of(include_str!(
            "../tests/data/containerd-1.6-sandbox-status-info.json"
        ));
        let parsed = parse(&sandbox).unwrap().unwrap();
        assert!(parsed.pid.is_some());
        let NetworkNs::Path(path) = &parsed.network else {
            panic!("sandbox netns: {:?}", parsed.network);
        };
        assert!(
            path.to_str().unwrap().starts_with("/var/run/netns/cni-"),
            "{path:?}"
        );

        let container = info_of(include_str!(
            "../tests/data/containerd-1.6-container-status-info.json"
        ));
        let parsed_c = parse(&container).unwrap().unwrap();
        assert!(parsed_c.pid.is_some());
        // A container joins its sandbox's namespace through the pause process.
        assert_eq!(
            parsed_c.network,
            NetworkNs::Path(format!("/proc/{}/ns/net", parsed.pid.unwrap()).into())
        );
    }

    #[test]
    fn host_network_and_missing_info() {
        let host = HashMap::from([(
            "info".to_string(),
            r#"{"pid":7,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"}]}}}"#
                .to_string(),
        )]);
        assert_eq!(parse(&host).unwrap().unwrap().network, NetworkNs::Host);
        let fresh = HashMap::from([(
            "info".to_string(),
            r#"{"pid":7,"runtimeSpec":{"linux":{"namespaces":[{"type":"network"}]}}}"#.to_string(),
        )]);
        assert_eq!(parse(&fresh).unwrap().unwrap().network, NetworkNs::New);
        assert_eq!(parse(&HashMap::new()).unwrap(), None);
        let bad = HashMap::from([("info".to_string(), "not json".to_string())]);
        assert!(parse(&bad).is_err());
    }
}
