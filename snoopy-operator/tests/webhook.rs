//! The admission webhook against a real kube-apiserver, with real users (impersonation) and
//! real RBAC: the apiserver calls the operator's webhook code over TLS, the webhook asks
//! SubjectAccessReviews as the requesting user, and the reconciler acts only on what the
//! webhook stamped.
//!
//! Tests share one apiserver, so each registers its webhook for its own namespaces only (a
//! namespace label) under its own configuration names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use snoopy_operator::crd::SnoopyJob;
use snoopy_operator::settings::Settings;
use snoopy_operator::stamp::{self, StampKey};
use snoopy_operator::webhook::{Webhook, certs, server};

use crate::support::*;

const T: Duration = Duration::from_secs(30);
/// The namespace label the test webhooks select.
const LABEL: &str = "snoopy-webhook-test";

/// The operator's webhook code serving on a loopback port, registered (both configurations)
/// for namespaces labelled `LABEL=id`.
struct TestWebhook {
    name: String,
    key: StampKey,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestWebhook {
    async fn start(client: &Client, op_ns: &str, id: &str) -> Self {
        let (cert, tls_key) = certs::self_signed(&["127.0.0.1".into()]).unwrap();
        let (key, _) = StampKey::generate().unwrap();
        let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = server::router(Arc::new(Webhook {
            client: client.clone(),
            settings: Arc::new(Settings {
                namespace: op_ns.into(),
                ..Settings::default()
            }),
            key: key.clone(),
        }));
        let task = tokio::spawn(server::serve(
            listener,
            server::tls_config(&cert, &tls_key).unwrap(),
            app,
        ));
        let name = format!("snoopy-test-{id}");
        let bundle = serde_json::to_value(ByteString(cert.into_bytes())).unwrap();
        let hook = |suffix: &str, path: &str| {
            json!({
                "name": format!("{suffix}.snoopy.fennecproject.io"),
                "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": bundle},
                "namespaceSelector": {"matchLabels": {LABEL: id}},
                "rules": [
                    {"apiGroups": ["snoopy.fennecproject.io"], "apiVersions": ["*"], "resources": ["snoopyjobs"], "operations": ["CREATE", "UPDATE"]},
                    {"apiGroups": ["pcap.fennecproject.io"], "apiVersions": ["*"], "resources": ["tcpdumps"], "operations": ["CREATE", "UPDATE"]},
                ],
            })
        };
        let mutating: MutatingWebhookConfiguration = serde_json::from_value(
            json!({"metadata": {"name": name}, "webhooks": [hook("stamp", "/mutate")]}),
        )
        .unwrap();
        let validating: ValidatingWebhookConfiguration = serde_json::from_value(
            json!({"metadata": {"name": name}, "webhooks": [hook("verify", "/validate")]}),
        )
        .unwrap();
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &mutating)
            .await
            .unwrap();
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &validating)
            .await
            .unwrap();
        Self { name, key, task }
    }

    async fn stop(self, client: &Client) {
        let dp = DeleteParams::default();
        let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(&self.name, &dp)
            .await;
        let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(&self.name, &dp)
            .await;
        self.task.abort();
    }
}

async fn label(client: &Client, ns: &str, id: &str) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {LABEL: id}}})),
        )
        .await
        .unwrap();
}

/// A client that acts as `user` (impersonation by the testbed's admin).
async fn client_as(user: &str) -> Client {
    let mut config = Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(user.into());
    Client::try_from(config).unwrap()
}

/// Grants `user` `verbs` on `resource` (`group`, `subresource` as `pods/exec`) in `ns`.
async fn grant(client: &Client, ns: &str, user: &str, group: &str, resource: &str, verbs: &[&str]) {
    let name = format!("{user}-{}", resource.replace('/', "-"));
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [group], "resources": [resource], "verbs": verbs}],
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// The apiserver's answer to creating `cr` as `api`'s user: the error message, or `None` when
/// it was admitted (then it exists).
async fn refusal(api: &Api<SnoopyJob>, cr: &SnoopyJob) -> Option<String> {
    match api.create(&PostParams::default(), cr).await {
        Ok(_) => None,
        Err(kube::Error::Api(e)) => Some(e.message),
        Err(e) => panic!("creating {}: {e}", cr.name_any()),
    }
}

/// A Running pod on the node's network (as a kubelet would report it).
async fn host_network_pod(client: &Client, ns: &str, name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"networkMonitor": "true", "role": "node-agent"}},
        "spec": {"nodeName": "node-a", "hostNetwork": true,
                 "containers": [{"name": "app", "image": "localhost/snoopy/busybox:1", "command": ["sleep", "3600"]}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": "10.213.77.9", "podIPs": [{"ip": "10.213.77.9"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A user who may only create SnoopyJobs in namespace A: a capture of A passes and runs;
/// each attack is refused at apply naming what is missing — another namespace (`pods/exec`
/// there), every namespace, a program off the allowlist, exec without `pods/exec`, a hostPath
/// of `/` or `/etc`, a Secret or a PVC of the operator's namespace, a hostNetwork pod, a
/// 100 KB filter, a 2,000-deep filter — while the webhook keeps serving. Granted `pods/exec`
/// in B, the same capture of B passes. The stamp cannot be edited or dropped by an update
/// that leaves the spec alone, and the operator's own updates pass.
#[tokio::test]
async fn a_namespace_user_captures_their_own_pods_and_nothing_more() {
    let admin = client().await;
    let a = namespace(&admin, "wh-a").await;
    let b = namespace(&admin, "wh-b").await;
    let op = namespace(&admin, "wh-op").await;
    let id = a.clone();
    label(&admin, &a, &id).await;
    let webhook = TestWebhook::start(&admin, &op, &id).await;
    let operator = Operator::start_full(
        &admin,
        &op,
        &a,
        Settings::default(),
        Some(webhook.key.clone()),
    );
    running_pod(
        &admin,
        &a,
        "web",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.60",
    )
    .await;
    running_pod(
        &admin,
        &b,
        "db",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.61",
    )
    .await;

    // The webhook configuration takes effect a moment after it is created.
    let admin_api: Api<SnoopyJob> = Api::namespaced(admin.clone(), &a);
    wait_for(T, "the test webhook in effect", || {
        let api = admin_api.clone();
        let probe = snoopyjob("probe", &a, json!({}));
        async move {
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };
            let made = api.create(&dry, &probe).await.ok()?;
            made.annotations()
                .contains_key(stamp::ANNOTATION)
                .then_some(())
        }
    })
    .await;

    let user = "alice";
    grant(
        &admin,
        &a,
        user,
        "snoopy.fennecproject.io",
        "snoopyjobs",
        &[
            "create", "get", "list", "watch", "update", "patch", "delete",
        ],
    )
    .await;
    let alice = client_as(user).await;
    let api: Api<SnoopyJob> = Api::namespaced(alice.clone(), &a);

    // Her own namespace: admitted, stamped as hers, and the operator creates the Job.
    assert_eq!(refusal(&api, &snoopyjob("own", &a, json!({}))).await, None);
    let own = api.get("own").await.unwrap();
    let stamp: stamp::Stamp = serde_json::from_str(&own.annotations()[stamp::ANNOTATION]).unwrap();
    assert_eq!(
        (stamp.user.as_str(), stamp.cluster_wide_exec),
        (user, false)
    );
    let uid = own.uid().unwrap();
    wait_for(T, "the Job of alice's own capture", || {
        let (admin, op, uid) = (admin.clone(), op.clone(), uid.clone());
        async move { (jobs_of(&admin, &op, &uid).await.len() == 1).then_some(()) }
    })
    .await;

    let deep = format!("{}tcp{}", "(".repeat(2000), ")".repeat(2000));
    let refused: Vec<(&str, serde_json::Value, String)> = vec![
        (
            "other-ns",
            json!({"targetNamespace": b}),
            format!("alice may not create pods/exec in namespace {b}"),
        ),
        (
            "every-ns",
            json!({"targetNamespace": null, "namespaceSelector": {}}),
            "alice may not create pods/exec in every namespace".into(),
        ),
        (
            "exec-sh",
            json!({"tool": {"exec": {"command": "sh", "args": ["-c", "id"]}}}),
            "ProgramNotAllowed".into(),
        ),
        (
            "exec-nsenter",
            json!({"tool": {"exec": {"command": "nsenter", "args": ["-t", "1", "-a", "sh"]}}}),
            "ProgramNotAllowed".into(),
        ),
        (
            "exec-perl",
            json!({"tool": {"exec": {"command": "perl"}}}),
            "ProgramNotAllowed".into(),
        ),
        (
            "exec-iperf3",
            json!({"tool": {"exec": {"command": "iperf3", "args": ["-s"]}}}),
            format!("alice may not create pods/exec in namespace {a}"),
        ),
        (
            "root",
            json!({"tool": {"capture": {"packetCount": 1, "format": "pcapng"}}, "output": {"volume": {"hostPath": {"path": "/"}}}}),
            "InvalidHostPath".into(),
        ),
        (
            "etc",
            json!({"tool": {"capture": {"packetCount": 1, "format": "pcapng"}}, "output": {"volume": {"hostPath": {"path": "/etc"}}}}),
            "InvalidHostPath".into(),
        ),
        (
            "secret",
            json!({"output": {"kafka": {"brokers": ["kafka.snoopy-test.svc:9093"], "tls": {"secretName": "kafka-ca"}}}}),
            format!("alice may not get secrets/kafka-ca in namespace {op}"),
        ),
        (
            "pvc",
            json!({"tool": {"capture": {"packetCount": 1, "format": "pcapng"}}, "output": {"volume": {"persistentVolumeClaim": {"claimName": "captures"}}}}),
            format!("alice may not get persistentvolumeclaims/captures in namespace {op}"),
        ),
        (
            "huge-filter",
            json!({"tool": {"capture": {"packetCount": 1, "filter": "tcp or ".repeat(14_000) + "tcp"}}}),
            "InvalidFilter: filter is 98003 bytes long; at most 4096".into(),
        ),
        (
            "deep-filter",
            json!({"tool": {"capture": {"packetCount": 1, "filter": deep}}}),
            "InvalidFilter".into(),
        ),
    ];
    for (name, spec, says) in &refused {
        let message = refusal(&api, &snoopyjob(name, &a, spec.clone()))
            .await
            .unwrap_or_else(|| panic!("{name} was admitted"));
        assert!(message.contains(says.as_str()), "{name}: {message}");
    }

    // A hostNetwork pod among the targets exposes the node: refused, naming the pod.
    host_network_pod(&admin, &a, "node-agent").await;
    let message = refusal(
        &api,
        &snoopyjob(
            "node",
            &a,
            json!({"podSelector": {"matchLabels": {"role": "node-agent"}}}),
        ),
    )
    .await
    .expect("a hostNetwork target is refused");
    assert!(
        message.contains(&format!("pod {a}/node-agent uses the node's network")),
        "{message}"
    );

    // The webhook still serves (no crash, no stall): granted pods/exec in B, the capture of
    // B that was refused passes, and is stamped.
    grant(&admin, &b, user, "", "pods/exec", &["create"]).await;
    wait_for(T, "alice's pods/exec in B honoured", || {
        let api = api.clone();
        let cr = snoopyjob("other-ns", &a, json!({"targetNamespace": b}));
        async move { refusal(&api, &cr).await.is_none().then_some(()) }
    })
    .await;
    let other = api.get("other-ns").await.unwrap();
    let other_uid = other.uid().unwrap();
    wait_for(T, "the Job of the capture of B", || {
        let (admin, op, uid) = (admin.clone(), op.clone(), other_uid.clone());
        async move { (jobs_of(&admin, &op, &uid).await.len() == 1).then_some(()) }
    })
    .await;

    // Editing the stamp (to claim cluster-wide rights) without touching the spec: the
    // webhook puts the checked stamp back. Removing it: the same.
    let original = other.annotations()[stamp::ANNOTATION].clone();
    let mut raised: stamp::Stamp = serde_json::from_str(&original).unwrap();
    raised.cluster_wide_exec = true;
    for value in [
        serde_json::to_value(serde_json::to_string(&raised).unwrap()).unwrap(),
        serde_json::Value::Null,
    ] {
        let edited = api
            .patch(
                "other-ns",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {stamp::ANNOTATION: value}, "labels": {"edited": "yes"}}})),
            )
            .await
            .unwrap();
        assert_eq!(edited.annotations().get(stamp::ANNOTATION), Some(&original));
        assert_eq!(
            edited.labels().get("edited").map(String::as_str),
            Some("yes")
        );
    }
    // A spec change is checked again, as the user who makes it.
    let message = api
        .patch(
            "own",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tool": {"exec": {"command": "ss"}, "capture": null}}})),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("alice may not create pods/exec in namespace {a}")),
        "{message}"
    );

    // Deleting works (the operator's finalizer removal is an update through the webhook).
    for name in ["own", "other-ns"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let _kubelet = Reaper::start(&admin, &op);
    for name in ["own", "other-ns"] {
        let api = admin_api.clone();
        wait_for(T, &format!("{name} deleted (finalizer done)"), || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
    drop(operator);
    webhook.stop(&admin).await;
    for ns in [&a, &b, &op] {
        delete_namespace(&admin, ns).await;
    }
}
