//! The operator under its own ServiceAccount and the committed RBAC (config/rbac): the whole
//! PoC flow works — CRD check, finalizer, Jobs, status, Events, cleanup — so the rules are
//! sufficient (and `manifests.rs` checks they hold no wildcard).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use snoopy_operator::crd::{Phase, Tcpdump};

use crate::support::*;

const OPERATOR_NS: &str = "snoopy-operator";

async fn apply_rbac(admin: &Client) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rbac");
    let pp = PatchParams::apply("snoopy-tests").force();
    let nss: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NS}}),
    )
    .unwrap();
    nss.patch(OPERATOR_NS, &pp, &Patch::Apply(&ns))
        .await
        .unwrap();
    for file in [
        "service_account.yaml",
        "cluster_role.yaml",
        "role.yaml",
        "bindings.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            let name = value["metadata"]["name"].as_str().unwrap().to_owned();
            match value["kind"].as_str().unwrap() {
                "ServiceAccount" => {
                    let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), OPERATOR_NS);
                    api.patch(&name, &pp, &Patch::Apply(&value)).await.unwrap();
                }
                "ClusterRole" => {
                    let api: Api<ClusterRole> = Api::all(admin.clone());
                    api.patch(&name, &pp, &Patch::Apply(&value)).await.unwrap();
                }
                "Role" => {
                    let api: Api<Role> = Api::namespaced(admin.clone(), OPERATOR_NS);
                    api.patch(&name, &pp, &Patch::Apply(&value)).await.unwrap();
                }
                "ClusterRoleBinding" => {
                    let api: Api<ClusterRoleBinding> = Api::all(admin.clone());
                    api.patch(&name, &pp, &Patch::Apply(&value)).await.unwrap();
                }
                "RoleBinding" => {
                    let api: Api<RoleBinding> = Api::namespaced(admin.clone(), OPERATOR_NS);
                    api.patch(&name, &pp, &Patch::Apply(&value)).await.unwrap();
                }
                other => panic!("unexpected {other} in config/rbac/{file}"),
            }
        }
    }
}

/// A client that acts as the operator's ServiceAccount (the admin impersonates it).
async fn service_account_client() -> Client {
    let mut config = Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(format!(
        "system:serviceaccount:{OPERATOR_NS}:snoopy-operator"
    ));
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_operator_works_under_its_own_service_account() {
    let admin = client().await;
    apply_rbac(&admin).await;
    let sa = service_account_client().await;
    // Without the rules it would not even see the CRs; with them the startup check passes.
    snoopy_operator::controller::check_crds(&sa).await.unwrap();
    // ...but it cannot create Jobs outside its namespace, nor touch pods.
    let elsewhere: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(sa.clone(), "default");
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({"metadata": {"name": "x"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "x"}]}}}}))
    .unwrap();
    let denied = elsewhere
        .create(&PostParams::default(), &job)
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied}"
    );

    let ns = namespace(&admin, "rbac-t").await;
    running_pod(
        &admin,
        &ns,
        "a",
        &[("networkMonitor", "true")],
        "node-a",
        "10.213.77.70",
    )
    .await;
    running_pod(
        &admin,
        &ns,
        "b",
        &[("networkMonitor", "true")],
        "node-b",
        "10.213.77.71",
    )
    .await;
    let operator = Operator::start(&sa, OPERATOR_NS, &ns);
    let api: Api<Tcpdump> = Api::namespaced(admin.clone(), &ns);
    let cr: Tcpdump = serde_json::from_value(json!({
        "apiVersion": "pcap.fennecproject.io/v1alpha1", "kind": "Tcpdump",
        "metadata": {"name": "rbac", "namespace": ns},
        "spec": {"name": "test-pcap", "targetNamespace": ns, "podLabel": {"networkMonitor": "true"},
                 "interfaceName": "eth0", "packetCount": 3},
    }))
    .unwrap();
    let uid = api
        .create(&PostParams::default(), &cr)
        .await
        .unwrap()
        .uid()
        .unwrap();
    let jobs = wait_for(
        Duration::from_secs(30),
        "two Jobs made by the ServiceAccount",
        || {
            let (admin, uid) = (admin.clone(), uid.clone());
            async move {
                let jobs = jobs_of(&admin, OPERATOR_NS, &uid).await;
                (jobs.len() == 2).then_some(jobs)
            }
        },
    )
    .await;
    for j in &jobs {
        finish_job_pods(
            &admin,
            OPERATOR_NS,
            &j.name_any(),
            true,
            r#"{"captured":3,"dropped":0}"#,
        )
        .await;
    }
    wait_for(Duration::from_secs(30), "status Succeeded", || {
        let api = api.clone();
        async move {
            let cr = api.get("rbac").await.ok()?;
            (cr.status?.phase == Some(Phase::Succeeded)).then_some(())
        }
    })
    .await;
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    let events = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("JobsCreated")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("rbac")),
        "no JobsCreated Event: {:?}",
        events.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
    );
    let _kubelet = Reaper::start(&admin, OPERATOR_NS);
    api.delete("rbac", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(30), "CR and Jobs gone", || {
        let (admin, uid, api) = (admin.clone(), uid.clone(), api.clone());
        async move {
            (api.get_opt("rbac").await.ok()?.is_none()
                && jobs_of(&admin, OPERATOR_NS, &uid).await.is_empty())
            .then_some(())
        }
    })
    .await;
    drop(operator);
    delete_namespace(&admin, &ns).await;
}
