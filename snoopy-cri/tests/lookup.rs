//! Lookups against real pods: by name, by every selector form, across namespaces.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use snoopy_cri::testing::{PodCleanup, PodSpec};
use snoopy_cri::{ContainerState, LabelSelector, PodQuery, RuntimeClient};

use crate::common::{client, endpoint, unique};

fn netns_inode(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .ino()
}

#[tokio::test]
async fn by_name_gives_pids_inside_the_pod_netns() {
    let client = client().await;
    let cleanup = PodCleanup::new(endpoint());
    let ns = unique("byname");
    let spec = PodSpec::new(&ns, "web")
        .labeled("app", "web")
        .sleeper("main")
        .sleeper("side");
    let created = client.create_pod(&spec).await.expect("create pod");
    cleanup.track(&created.sandbox_id);
    // A pod of the same name elsewhere must not be returned.
    let other = client
        .create_pod(&PodSpec::new(unique("byname-other"), "web").sleeper("main"))
        .await
        .expect("create other pod");
    cleanup.track(&other.sandbox_id);

    let pods = client
        .list_pods(&PodQuery::named(&ns, "web").with_container_pids())
        .await
        .expect("list_pods");
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let pod = &pods[0];
    assert_eq!(pod.sandbox_id, created.sandbox_id);
    assert_eq!(
        (pod.namespace.as_str(), pod.name.as_str()),
        (ns.as_str(), "web")
    );
    assert_eq!(pod.uid, spec.uid);
    assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
    assert!(pod.ready);
    assert!(!pod.host_network);
    let ip = pod.ip.expect("pod has an IP");
    assert!(ip.is_ipv4() && !ip.is_loopback(), "{ip}");

    let netns = pod.netns_path.as_ref().expect("netns path");
    let pod_ns = netns_inode(netns);
    let sandbox_pid = pod.sandbox_pid.expect("sandbox pid");
    assert_eq!(
        netns_inode(format!("/proc/{sandbox_pid}/ns/net").as_ref()),
        pod_ns
    );
    // The pod's namespace is not the test's own.
    assert_ne!(netns_inode("/proc/self/ns/net".as_ref()), pod_ns);

    let names: BTreeSet<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["main", "side"]));
    for c in &pod.containers {
        assert_eq!(c.state, ContainerState::Running, "{c:?}");
        assert_eq!(c.image, snoopy_cri::testing::BUSYBOX_IMAGE);
        assert!(
            created.containers.contains(&(c.name.clone(), c.id.clone())),
            "{c:?}"
        );
        let pid = c.pid.expect("container pid");
        assert_eq!(
            netns_inode(format!("/proc/{pid}/ns/net").as_ref()),
            pod_ns,
            "container {} PID {pid} is not in the pod's network namespace",
            c.name
        );
        // The PID really is that container's: it runs the sleep and its cgroup names the id.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            cmdline.starts_with(b"/bin/sleep\0"),
            "{:?}",
            String::from_utf8_lossy(&cmdline)
        );
        // The procfs fallback finds the same process.
        assert_eq!(
            snoopy_cri::pid_of_container("/proc".as_ref(), &c.id),
            Some(pid)
        );
        assert_eq!(client.container_pid(&c.id).await.unwrap(), Some(pid));
    }

    // Without container_pids, no per-container calls: PIDs stay unresolved.
    let quick = client
        .list_pods(&PodQuery::named(&ns, "web"))
        .await
        .unwrap();
    assert!(quick[0].containers.iter().all(|c| c.pid.is_none()));
    assert_eq!(quick[0].netns_path, pod.netns_path);

    // Wrong name or namespace: nothing.
    assert!(
        client
            .list_pods(&PodQuery::named(&ns, "nope"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .list_pods(&PodQuery::named(unique("none"), "web"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn names(client: &RuntimeClient, namespace: Option<&str>, selector: &str) -> Vec<String> {
    let selector = LabelSelector::parse(selector).unwrap();
    let mut out: Vec<String> = client
        .list_pods(&PodQuery::selected(namespace.map(str::to_owned), selector))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.qualified_name())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn by_each_selector_form_and_across_namespaces() {
    let client = client().await;
    let cleanup = PodCleanup::new(endpoint());
    let run = unique("sel");
    let (ns, ns2) = (format!("{run}-a"), format!("{run}-b"));
    let specs = [
        PodSpec::new(&ns, "a")
            .labeled("app", "web")
            .labeled("tier", "front"),
        PodSpec::new(&ns, "b")
            .labeled("app", "api")
            .labeled("tier", "back"),
        PodSpec::new(&ns, "c").labeled("app", "db"),
        PodSpec::new(&ns2, "x").labeled("app", "web"),
        // Same name as in the first namespace.
        PodSpec::new(&ns2, "a").labeled("app", "db"),
    ];
    for spec in specs {
        let spec = spec.labeled("run", &run).sleeper("main");
        cleanup.track(
            &client
                .create_pod(&spec)
                .await
                .expect("create pod")
                .sandbox_id,
        );
    }
    let q = |n: &str| format!("{ns}/{n}");
    let r = |n: &str| format!("{ns2}/{n}");
    let cases: &[(&str, Vec<String>)] = &[
        ("app=web", vec![q("a")]),
        ("app==web", vec![q("a")]),
        ("app!=web", vec![q("b"), q("c")]),
        ("tier", vec![q("a"), q("b")]),
        ("!tier", vec![q("c")]),
        ("app in (web,api)", vec![q("a"), q("b")]),
        ("app in (db)", vec![q("c")]),
        ("app notin (web,api)", vec![q("c")]),
        ("app in (web,api),tier!=back", vec![q("a")]),
        ("app=nothing", vec![]),
    ];
    for (selector, expect) in cases {
        assert_eq!(
            &names(&client, Some(&ns), selector).await,
            expect,
            "selector {selector:?} in {ns}"
        );
    }
    // Across namespaces: every namespace, narrowed to this run's pods by label.
    assert_eq!(
        names(&client, None, &format!("run={run},app=web")).await,
        vec![q("a"), r("x")]
    );
    assert_eq!(
        names(&client, None, &format!("run={run},app notin (web)")).await,
        vec![q("b"), q("c"), r("a")]
    );
    // By name in every namespace.
    let mut by_name: Vec<_> = client
        .list_pods(&PodQuery {
            name: Some("a".into()),
            selector: Some(LabelSelector::parse(&format!("run={run}")).unwrap()),
            ..PodQuery::all()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.qualified_name())
        .collect();
    by_name.sort();
    assert_eq!(by_name, vec![q("a"), r("a")]);
}

#[tokio::test]
async fn not_ready_sandboxes_only_when_asked() {
    let client = client().await;
    let cleanup = PodCleanup::new(endpoint());
    let ns = unique("notready");
    let created = client
        .create_pod(&PodSpec::new(&ns, "gone").sleeper("main"))
        .await
        .unwrap();
    cleanup.track(&created.sandbox_id);
    client.stop_pod(&created.sandbox_id).await.unwrap();

    assert!(
        client
            .list_pods(&PodQuery::named(&ns, "gone"))
            .await
            .unwrap()
            .is_empty()
    );
    let pods = client
        .list_pods(
            &PodQuery::named(&ns, "gone")
                .include_not_ready()
                .with_container_pids(),
        )
        .await
        .unwrap();
    assert_eq!(pods.len(), 1, "{pods:#?}");
    assert!(!pods[0].ready);
    assert!(
        pods[0]
            .containers
            .iter()
            .all(|c| c.state != ContainerState::Running && c.pid.is_none())
    );
}

#[test]
fn blocking_facade_finds_a_pod() {
    let endpoint = endpoint();
    let client = snoopy_cri::blocking::RuntimeClient::connect(endpoint.clone()).unwrap();
    assert_eq!(client.version().runtime_api_version, "v1");
    let cleanup = PodCleanup::new(endpoint);
    let ns = unique("blocking");
    let created = client
        .block_on(
            client
                .inner()
                .create_pod(&PodSpec::new(&ns, "web").sleeper("main")),
        )
        .unwrap();
    cleanup.track(&created.sandbox_id);
    let pods = client
        .list_pods(&PodQuery::named(&ns, "web").with_container_pids())
        .unwrap();
    assert_eq!(pods.len(), 1);
    let pid = pods[0].containers[0].pid.expect("pid");
    assert_eq!(
        client.container_pid(&created.containers[0].1).unwrap(),
        Some(pid)
    );
}
