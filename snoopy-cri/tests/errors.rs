//! A missing socket, or a socket that is not a CRI server: clear errors, non-zero exit.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use snoopy_cri::{Endpoint, Error, RuntimeClient};

use crate::common::endpoint;

/// A unix socket that answers every connection with an HTTP/1.1 error and closes: something
/// listens, but it is not gRPC. Serves a bounded number of connections, then its thread ends.
fn garbage_server(dir: &Path) -> PathBuf {
    let path = dir.join("not-grpc.sock");
    let listener = UnixListener::bind(&path).expect("bind test socket");
    std::thread::spawn(move || {
        for mut s in listener.incoming().take(16).flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    path
}

/// containerd's ttrpc socket: a real server, but not gRPC CRI.
fn ttrpc_socket() -> PathBuf {
    let mut path = endpoint().path().as_os_str().to_owned();
    path.push(".ttrpc");
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "testbed ttrpc socket {} missing",
        path.display()
    );
    path
}

#[tokio::test]
async fn missing_socket_is_a_connect_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.sock");
    let err = RuntimeClient::connect(Endpoint::from_path(&path))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("No such file"), "{text}");
}

#[tokio::test]
async fn non_cri_servers_are_refused() {
    crate::common::require_root();
    let dir = tempfile::tempdir().unwrap();
    for path in [garbage_server(dir.path()), ttrpc_socket()] {
        let err = RuntimeClient::connect(Endpoint::from_path(&path))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::NotCri { .. } | Error::Connect { .. }),
            "{path:?}: {err:?}"
        );
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}

#[tokio::test]
async fn detection_lists_every_path_tried() {
    crate::common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let candidates = vec![missing.clone(), garbage_server(dir.path()), ttrpc_socket()];
    let err = RuntimeClient::probe(candidates.clone()).await.unwrap_err();
    let Error::NoRuntime { tried } = &err else {
        panic!("expected NoRuntime, got {err:?}");
    };
    assert_eq!(
        tried.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        candidates
    );
    let text = err.to_string();
    for path in &candidates {
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
    assert!(text.contains("no such file"), "{text}");
    assert!(text.contains("--runtime-endpoint"), "{text}");

    // With the real runtime last in the list, detection finds it.
    let mut with_runtime = candidates;
    with_runtime.push(endpoint().path().to_path_buf());
    let client = RuntimeClient::probe(with_runtime)
        .await
        .expect("probe finds the testbed");
    assert_eq!(client.endpoint(), &endpoint());
    assert_eq!(client.version().runtime_name, "containerd");
}

fn example(name: &str) -> PathBuf {
    // tests/ binaries live in target/<profile>/deps; `cargo test` builds examples beside it.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} not built; run the tests with `cargo test -p snoopy-cri` (which builds examples)",
        path.display()
    );
    path
}

#[test]
fn cli_exits_non_zero_with_the_reason() {
    crate::common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let pods = example("pods");
    let missing = dir.path().join("missing.sock");
    let garbage = garbage_server(dir.path());
    for (endpoint, expect) in [
        (format!("unix://{}", missing.display()), "No such file"),
        (
            format!("unix://{}", garbage.display()),
            garbage.to_str().unwrap(),
        ),
        ("tcp://127.0.0.1:1".to_owned(), "only unix sockets"),
    ] {
        let out = Command::new(&pods)
            .args(["--runtime-endpoint", &endpoint])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{endpoint}: {stderr}");
        assert!(
            stderr.contains("error: ") && stderr.contains(expect),
            "{endpoint}: {stderr}"
        );
    }
    // And with the environment variable pointing at nothing (explicit choice: no fallback).
    let out = Command::new(&pods)
        .env(
            snoopy_cri::ENDPOINT_ENV,
            format!("unix://{}", missing.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()));
    // Against the testbed it succeeds.
    let out = Command::new(&pods)
        .args([
            "--runtime-endpoint",
            &endpoint().to_string(),
            "-n",
            "no-such-namespace",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
