//! Shared set-up: root check, the testbed, unique names.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use snoopy_cri::{Endpoint, RuntimeClient};

/// Fails the test (never skips it) when not root: these tests start containerd and pods.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert_eq!(
        uid, "0",
        "snoopy-cri integration tests need root (they run containerd and create pods); run them as root"
    );
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The testbed's CRI endpoint, starting the testbed once per test binary.
pub fn endpoint() -> Endpoint {
    static ENDPOINT: OnceLock<Result<Endpoint, String>> = OnceLock::new();
    require_root();
    ENDPOINT
        .get_or_init(|| {
            let script = repo_root().join("testbed/containerd.sh");
            let out = Command::new(&script)
                .arg("up")
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} up failed ({}):\n{}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let socket = stdout.lines().last().unwrap_or("").trim().to_owned();
            Endpoint::parse(&socket).map_err(|e| format!("testbed printed {socket:?}: {e}"))
        })
        .clone()
        .unwrap_or_else(|e| panic!("the containerd testbed is not available: {e}"))
}

/// A connected client to the testbed.
pub async fn client() -> RuntimeClient {
    RuntimeClient::connect(endpoint())
        .await
        .unwrap_or_else(|e| panic!("connecting to the testbed: {e}"))
}

/// A namespace / label value unique to this test process and call, so tests running in
/// parallel (and leftovers of earlier runs) never see each other's pods.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
