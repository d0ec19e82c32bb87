//! The RBAC manifests are least privilege: no wildcard anywhere, Jobs and Secrets only
//! through a Role in the operator's namespace, nothing that writes pods, only its own webhook
//! configurations. The webhook covers both kinds and fails closed. The Deployment states the
//! code's defaults; the samples pass validation.

use std::path::Path;

fn documents(file: &str) -> Vec<serde_yaml::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/rbac")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn strings(rule: &serde_yaml::Value, key: &str) -> Vec<String> {
    rule[key]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rbac_has_no_wildcards_and_jobs_only_in_the_operator_namespace() {
    let cluster = &documents("cluster_role.yaml")[0];
    let role = &documents("role.yaml")[0];
    assert_eq!(cluster["kind"].as_str(), Some("ClusterRole"));
    assert_eq!(role["kind"].as_str(), Some("Role"));
    assert_eq!(
        role["metadata"]["namespace"].as_str(),
        Some("snoopy-operator")
    );
    for doc in [cluster, role] {
        for rule in doc["rules"].as_sequence().unwrap() {
            for key in ["apiGroups", "resources", "verbs"] {
                let values = strings(rule, key);
                assert!(
                    values.iter().all(|v| !v.contains('*')),
                    "wildcard in {key}: {values:?}"
                );
            }
        }
    }
    for rule in cluster["rules"].as_sequence().unwrap() {
        let resources = strings(rule, "resources");
        let verbs = strings(rule, "verbs");
        assert!(
            !resources.contains(&"jobs".to_owned()),
            "Jobs must come from the namespaced Role"
        );
        if resources.contains(&"pods".to_owned()) {
            assert_eq!(verbs, ["get", "list", "watch"], "pods are read only");
        }
    }
    let job_rule = &role["rules"][0];
    assert_eq!(strings(job_rule, "resources"), ["jobs"]);
    for rule in cluster["rules"].as_sequence().unwrap() {
        let resources = strings(rule, "resources");
        assert!(
            !resources.contains(&"secrets".to_owned()),
            "no Secret outside the operator's namespace"
        );
        if resources
            .iter()
            .any(|r| r.ends_with("webhookconfigurations"))
        {
            assert_eq!(strings(rule, "resourceNames"), ["snoopy-operator"]);
            assert_eq!(strings(rule, "verbs"), ["get", "patch"]);
        }
    }
    for rule in role["rules"].as_sequence().unwrap() {
        if strings(rule, "resources") == ["secrets"] && strings(rule, "verbs") != ["create"] {
            assert_eq!(strings(rule, "resourceNames"), ["snoopy-operator-webhook"]);
            assert_eq!(strings(rule, "verbs"), ["get", "update"]);
        }
    }
}

/// Both webhooks cover both kinds on create and update, fail closed, and have no side
/// effects (so dry runs pass through them).
#[test]
fn the_webhooks_cover_both_kinds_and_fail_closed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/webhook/webhooks.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
    for doc in &docs {
        assert_eq!(doc["metadata"]["name"].as_str(), Some("snoopy-operator"));
        for hook in doc["webhooks"].as_sequence().unwrap() {
            assert_eq!(hook["failurePolicy"].as_str(), Some("Fail"));
            assert_eq!(hook["sideEffects"].as_str(), Some("None"));
            let rules = hook["rules"].as_sequence().unwrap();
            let resources: Vec<String> =
                rules.iter().flat_map(|r| strings(r, "resources")).collect();
            assert_eq!(resources, ["snoopyjobs", "tcpdumps"]);
            for rule in rules {
                assert_eq!(strings(rule, "operations"), ["CREATE", "UPDATE"]);
            }
        }
    }
}

/// Every sample resource is one the operator accepts: it deserializes into its Rust type and
/// passes the same validation the reconciler runs before creating Jobs — as the webhook
/// checked it for an author with the rights it needs, under the default policy; a sample
/// whose comments say it needs `pods/exec` is refused without the webhook's check.
#[test]
fn every_sample_cr_is_valid() {
    use snoopy_operator::controller::CaptureResource;
    use snoopy_operator::crd::{SnoopyJob, Tcpdump};
    use snoopy_operator::plan::Authorization;
    use snoopy_operator::settings::Settings;
    let checked_by_webhook = Authorization::Checked {
        user: "sample-author".into(),
        cluster_wide_exec: false,
    };
    let unchecked = Authorization::Unchecked {
        why: "no stamp".into(),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml")
            || path.file_name().unwrap() == "kustomization.yaml"
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            let name = format!("{}: {:?}", path.display(), value["metadata"]["name"]);
            let plan = |authorization: &Authorization| match value["kind"].as_str() {
                Some("SnoopyJob") => Some(
                    serde_yaml::from_value::<SnoopyJob>(value.clone())
                        .unwrap_or_else(|e| panic!("{name}: {e}"))
                        .plan(&Settings::default(), authorization),
                ),
                Some("Tcpdump") => Some(
                    serde_yaml::from_value::<Tcpdump>(value.clone())
                        .unwrap_or_else(|e| panic!("{name}: {e}"))
                        .plan(&Settings::default(), authorization),
                ),
                _ => None,
            };
            let Some(result) = plan(&checked_by_webhook) else {
                continue;
            };
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let without = plan(&unchecked).unwrap();
            if text.contains("pods/exec") {
                let err = without.unwrap_err();
                assert_eq!(err.reason, "NotAuthorized", "{name}: {err}");
            } else {
                without.unwrap_or_else(|e| panic!("{name} without the webhook: {e}"));
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} sample resources found");
}

fn config(file: &str) -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap()
}

/// The Deployment users apply states the code's defaults, so what the manifest says is
/// what runs; the Jobs' namespace is labelled for the Pod Security level the Jobs need.
#[test]
fn the_deployed_policy_is_the_default() {
    use snoopy_operator::settings::{DEFAULT_HOST_PATH_PREFIX, Limits, Policy};
    let manager = config("manager/manager.yaml");
    let env: std::collections::BTreeMap<String, String> =
        manager["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_owned(),
                    e["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
    let policy = Policy::default();
    let limits = Limits::default();
    for (key, want) in [
        (
            "SNOOPY_ALLOW_CROSS_NAMESPACE",
            policy.allow_cross_namespace.to_string(),
        ),
        ("SNOOPY_ALLOW_EXEC", policy.allow_exec.to_string()),
        ("SNOOPY_EXEC_ALLOWLIST", policy.exec_allowlist.to_string()),
        (
            "SNOOPY_ALLOW_SECRET_REFERENCES",
            policy.allow_secret_references.to_string(),
        ),
        ("SNOOPY_ALLOW_PVC", policy.allow_pvc.to_string()),
        (
            "SNOOPY_HOST_PATH_PREFIX",
            DEFAULT_HOST_PATH_PREFIX.to_owned(),
        ),
        ("SNOOPY_KAFKA_BROKERS", String::new()),
        ("SNOOPY_MAX_TARGETS", limits.max_targets.to_string()),
        (
            "SNOOPY_MAX_STATUS_TARGETS",
            limits.max_status_targets.to_string(),
        ),
        (
            "SNOOPY_DEFAULT_DEADLINE_SECONDS",
            limits.default_deadline_seconds.to_string(),
        ),
        (
            "SNOOPY_DEFAULT_TTL_SECONDS",
            limits.default_ttl_seconds.to_string(),
        ),
        (
            "SNOOPY_MAX_CAPTURE_BYTES",
            limits.max_capture_bytes.to_string(),
        ),
    ] {
        assert_eq!(
            env.get(key),
            Some(&want),
            "{key} in config/manager/manager.yaml"
        );
    }

    let namespace = config("default/namespace.yaml");
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(
            namespace["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}")].as_str(),
            Some("privileged"),
            "{mode}"
        );
    }
}

/// The dashboard `make deploy` installs runs the dashboard binary as a plain user with
/// nothing the operator has: no capabilities, no API token, a read-only root.
#[test]
fn the_dashboard_runs_unprivileged_and_is_deployed_by_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dashboard/dashboard.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Service"]);
    let pod = &docs[1]["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    assert_eq!(
        container["command"][0].as_str(),
        Some("/usr/local/bin/snoopy-dashboard")
    );
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
    assert!(
        container["resources"]["limits"]["memory"]
            .as_str()
            .is_some()
    );
    let default = config("default/kustomization.yaml");
    let bases: Vec<&str> = default["bases"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(bases.contains(&"../dashboard"), "{bases:?}");
}

/// The two-replica dashboard (`config/dashboard-replicas`, in place of the default single
/// Deployment): a StatefulSet whose pod is the Deployment's but for the replicas' addresses —
/// one per replica, in ordinal order, each the StatefulSet's DNS name under the headless
/// Service.
#[test]
fn the_replicated_dashboard_is_the_deployments_pod_with_its_peers() {
    let read = |file: &str| -> Vec<serde_yaml::Value> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    };
    let single = read("dashboard/dashboard.yaml");
    let replicated = read("dashboard-replicas/statefulset.yaml");
    let kinds: Vec<&str> = replicated
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["StatefulSet", "Service"]);
    let (sts, peers) = (&replicated[0], &replicated[1]);
    assert_eq!(peers["spec"]["clusterIP"].as_str(), Some("None"));
    let peers_name = peers["metadata"]["name"].as_str().unwrap();
    assert_eq!(sts["spec"]["serviceName"].as_str(), Some(peers_name));
    let count = sts["spec"]["replicas"].as_u64().unwrap();
    assert!(count >= 2);

    let mut pod = sts["spec"]["template"].clone();
    let env = pod["spec"]["containers"][0]["env"]
        .as_sequence_mut()
        .unwrap();
    let at = env
        .iter()
        .position(|e| e["name"] == "SNOOPY_DASHBOARD_REPLICAS")
        .expect("the replicas' addresses");
    let urls: Vec<String> = env.remove(at)["value"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let name = sts["metadata"]["name"].as_str().unwrap();
    let ns = sts["metadata"]["namespace"].as_str().unwrap();
    let want: Vec<String> = (0..count)
        .map(|n| format!("http://{name}-{n}.{peers_name}.{ns}.svc:8080"))
        .collect();
    assert_eq!(urls, want);
    let deployment = single.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        pod, deployment["spec"]["template"],
        "the StatefulSet's pod drifted from the Deployment's"
    );
    // It uses the default deployment's ConfigMap (the brokers) and Service.
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let configmap = single.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(
        env.as_sequence()
            .unwrap()
            .iter()
            .any(|e| e["valueFrom"]["configMapKeyRef"]["name"] == configmap["metadata"]["name"])
    );
    let kustomization = config("dashboard-replicas/kustomization.yaml");
    assert_eq!(
        kustomization["resources"][0].as_str(),
        Some("statefulset.yaml")
    );
}
