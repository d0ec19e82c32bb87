//! Deterministic, length-safe names and the labels that link a Job to its CR and target.
//!
//! A Job's name is a pure function of (CR uid, pod uid, run): every reconcile, and every
//! operator replica or restart, computes the same name, so "create if absent" can never make
//! a duplicate. The readable part (prefix + pod name) is cut to fit; the hash keeps names of
//! different targets apart even when the readable parts are cut to the same text.

/// Label: the operator manages this object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "snoopy-operator";
/// Label: uid of the CR that owns the Job.
pub const OWNER_UID: &str = "snoopy.fennecproject.io/owner-uid";
/// Label: kind of the CR (`Tcpdump`, `SnoopyJob`).
pub const OWNER_KIND: &str = "snoopy.fennecproject.io/owner-kind";
/// Label: name of the CR (when it fits in a label value; always in the annotation).
pub const OWNER_NAME: &str = "snoopy.fennecproject.io/owner-name";
/// Label: namespace of the CR.
pub const OWNER_NAMESPACE: &str = "snoopy.fennecproject.io/owner-namespace";
/// Label: namespace of the target pod.
pub const TARGET_NAMESPACE: &str = "snoopy.fennecproject.io/target-namespace";
/// Label: name of the target pod (when it fits; always in the annotation).
pub const TARGET_POD: &str = "snoopy.fennecproject.io/target-pod";
/// Label: uid of the target pod.
pub const TARGET_UID: &str = "snoopy.fennecproject.io/target-uid";
/// Label: the run (`once`, or the schedule tick as Unix seconds).
pub const RUN: &str = "snoopy.fennecproject.io/run";
/// Annotation: `namespace/name` of the CR, never truncated.
pub const OWNER_ANNOTATION: &str = "snoopy.fennecproject.io/owner";
/// Annotation: `namespace/name` of the target pod, never truncated.
pub const TARGET_ANNOTATION: &str = "snoopy.fennecproject.io/target";
/// Finalizer on the CRs: their Jobs live in another namespace, so owner references cannot
/// clean them up.
pub const FINALIZER: &str = "snoopy.fennecproject.io/jobs";
/// The run of an unscheduled CR.
pub const RUN_ONCE: &str = "once";
/// Label of a per-node Job: the node it serves ([`node_label`]: its name when that is a
/// valid label value, else a hash; the Job's pod spec has the name itself).
pub const JOB_NODE: &str = "snoopy.fennecproject.io/node";
/// Annotation of a per-node Job: the target pods it was created for, as JSON
/// (`[{"namespace":…,"name":…,"uid":…}]`).
pub const TARGETS_ANNOTATION: &str = "snoopy.fennecproject.io/targets";
/// Annotation of a per-node Job in follow mode: the namespaces it picks pods up in,
/// comma-separated.
pub const FOLLOW_NAMESPACES_ANNOTATION: &str = "snoopy.fennecproject.io/follow-namespaces";

/// Kubernetes' limit for a label value, and for names used as label values (`job-name`).
pub const MAX_LABEL: usize = 63;
const HASH_LEN: usize = 10;

/// The Job name for one target pod in one run of one CR: `PREFIX-POD-HASH`, at most 63
/// characters, a valid DNS-1123 label.
pub fn job_name(prefix: &str, pod_name: &str, owner_uid: &str, pod_uid: &str, run: &str) -> String {
    let hash = short_hash(&[owner_uid, pod_uid, run]);
    let prefix = sanitize(prefix);
    let room = MAX_LABEL - HASH_LEN - 2 - prefix.len().min(20);
    let prefix: String = prefix.chars().take(20).collect();
    let mut pod = sanitize(pod_name);
    pod.truncate(room);
    let pod = pod.trim_end_matches('-');
    if pod.is_empty() {
        format!("{prefix}-{hash}")
    } else {
        format!("{prefix}-{pod}-{hash}")
    }
}

/// The Job name for one node in one run of one CR: `PREFIX-node-NODE-HASH`, at most 63
/// characters. `seq` counts the node's earlier Jobs in the run (a follow-mode run starts
/// another when matching pods appear after the node's Job ended).
pub fn node_job_name(prefix: &str, node: &str, owner_uid: &str, run: &str, seq: usize) -> String {
    let seq = seq.to_string();
    let hash = short_hash(&[owner_uid, node, run, &seq]);
    let prefix: String = sanitize(prefix).chars().take(20).collect();
    let room = MAX_LABEL - HASH_LEN - 2 - prefix.len() - "-node".len();
    let mut node = sanitize(node);
    node.truncate(room);
    let node = node.trim_end_matches('-');
    if node.is_empty() {
        format!("{prefix}-node-{hash}")
    } else {
        format!("{prefix}-node-{node}-{hash}")
    }
}

/// The [`JOB_NODE`] label value for `node`.
pub fn node_label(node: &str) -> String {
    label_value(node).unwrap_or_else(|| format!("h-{}", short_hash(&[node])))
}

/// `value` if it is a valid label value, else `None` (it then goes only into an annotation).
pub fn label_value(value: &str) -> Option<String> {
    let ok = value.len() <= MAX_LABEL
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric());
    ok.then(|| value.to_owned())
}

/// Lower-case, `[a-z0-9-]` only, no leading dash: the alphabet of a DNS-1123 label.
fn sanitize(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_start_matches('-').to_owned()
}

/// 10 hex digits (40 bits) of FNV-1a over the parts, separated so that ("ab","c") and
/// ("a","bc") differ. Not cryptographic: it only has to spread names, and a collision is
/// caught because the labels of an existing Job are checked before it is adopted.
fn short_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:010x}", h >> 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_distinct() {
        let a = job_name("tcpdump", "web-1", "uid-cr", "uid-pod-a", RUN_ONCE);
        assert_eq!(
            a,
            job_name("tcpdump", "web-1", "uid-cr", "uid-pod-a", RUN_ONCE)
        );
        assert!(a.starts_with("tcpdump-web-1-"), "{a}");
        assert_ne!(
            a,
            job_name("tcpdump", "web-1", "uid-cr", "uid-pod-b", RUN_ONCE)
        );
        assert_ne!(
            a,
            job_name("tcpdump", "web-1", "uid-cr2", "uid-pod-a", RUN_ONCE)
        );
        assert_ne!(
            a,
            job_name("tcpdump", "web-1", "uid-cr", "uid-pod-a", "1700000000")
        );
        // The separator matters: ("ab", "c") is not ("a", "bc").
        assert_ne!(short_hash(&["ab", "c"]), short_hash(&["a", "bc"]));
    }

    #[test]
    fn node_job_names_fit_and_differ_by_node_run_and_sequence() {
        let a = node_job_name("snoopy", "worker-7.example", "uid-cr", RUN_ONCE, 0);
        assert!(a.starts_with("snoopy-node-worker-7-example-"), "{a}");
        assert_eq!(
            a,
            node_job_name("snoopy", "worker-7.example", "uid-cr", RUN_ONCE, 0)
        );
        for other in [
            node_job_name("snoopy", "worker-8.example", "uid-cr", RUN_ONCE, 0),
            node_job_name("snoopy", "worker-7.example", "uid-cr", "1733300000", 0),
            node_job_name("snoopy", "worker-7.example", "uid-cr", RUN_ONCE, 1),
            node_job_name("snoopy", "worker-7.example", "uid-cr2", RUN_ONCE, 0),
        ] {
            assert_ne!(a, other);
        }
        let long = node_job_name("snoopy", &"n".repeat(253), "u", RUN_ONCE, 0);
        assert!(long.len() <= MAX_LABEL, "{long}");
        assert_eq!(node_label("worker-7"), "worker-7");
        let hashed = node_label(&"n".repeat(100));
        assert!(label_value(&hashed).is_some(), "{hashed}");
    }

    #[test]
    fn long_and_odd_names_fit_a_dns_label() {
        let pod = "a".repeat(253);
        let name = job_name("snoopy", &pod, "u1", "u2", RUN_ONCE);
        assert!(name.len() <= MAX_LABEL, "{} chars", name.len());
        let odd = job_name("Snoopy", "My.Pod_Name-", "u1", "u2", RUN_ONCE);
        assert!(odd.starts_with("snoopy-my-pod-name-"), "{odd}");
        for n in [name, odd, job_name("x", "---", "u", "v", "w")] {
            assert!(n.len() <= MAX_LABEL);
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(
                !n.starts_with('-') && !n.ends_with('-') && !n.contains("--"),
                "{n}"
            );
        }
    }

    #[test]
    fn label_values_are_checked() {
        assert_eq!(label_value("cnf-telco").as_deref(), Some("cnf-telco"));
        assert_eq!(label_value(""), Some(String::new()));
        assert!(label_value(&"a".repeat(64)).is_none());
        assert!(label_value("-x").is_none());
        assert!(label_value("a/b").is_none());
    }
}
