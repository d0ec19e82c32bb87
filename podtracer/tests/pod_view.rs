//! The pod's own view, the original point of the project: traffic as the pod sees it, before
//! a sidecar encrypts it. A pod whose app serves plain HTTP on 127.0.0.1 behind a TLS sidecar
//! (socat), called over TLS from the node: `-i lo` shows the plaintext request, `-i eth0`
//! only TLS, `-i any` both, each packet with its interface.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use snoopy_cri::testing::{BUSYBOX_IMAGE, PodSpec, TLS_PROXY_IMAGE};

use crate::runtime::{TestPods, unique_namespace};
use crate::support::*;

/// What the client asks for: a path no TLS record could show in clear.
fn secret_path() -> String {
    format!("/snoopy-plaintext-{}", std::process::id())
}

/// A capture of the `web` pod on one interface, printing ASCII payloads (tcpdump's -A).
fn capture_web(ep: &str, ns: &str, interface: &str) -> Result<Child> {
    start_capture(&[
        "--runtime-endpoint",
        ep,
        "--pod",
        "web",
        "-n",
        ns,
        "-i",
        interface,
        "--ascii",
        "--duration",
        "10",
        "tcp port 8080 or tcp port 8443",
    ])
}

#[test]
fn a_sidecars_plaintext_is_seen_on_lo_and_only_tls_on_eth0() -> Result<()> {
    let pods = TestPods::new()?;
    let ns = unique_namespace("podview");
    // The app answers plain HTTP on loopback only; the sidecar terminates TLS on the pod's
    // address and forwards to it, as a service-mesh or TLS sidecar does.
    let spec = PodSpec::new(&ns, "web")
        .container(
            "app",
            BUSYBOX_IMAGE,
            &["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/tmp"],
        )
        .container(
            "tls",
            TLS_PROXY_IMAGE,
            &[
                "/usr/bin/socat",
                "OPENSSL-LISTEN:8443,reuseaddr,fork,cert=/etc/tls/proxy.pem,verify=0",
                "TCP:127.0.0.1:8080",
            ],
        );
    let (_, web) = pods.create(spec)?;
    let ep = pods.endpoint_arg();
    let on_lo = capture_web(&ep, &ns, "lo")?;
    let on_eth0 = capture_web(&ep, &ns, "eth0")?;
    let on_any = capture_web(&ep, &ns, "any")?;

    // The client is the node (over the testbed's bridge), with curl: busybox's TLS client
    // and socat's OpenSSL 3 share no cipher suite. It asks until one request got an answer
    // (the sidecar may still be starting), while the captures run.
    snoopy_testkit::require_tool("curl")?;
    let url = format!("https://{web}:8443{}", secret_path());
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        // 404 (busybox httpd serves an empty /tmp): any HTTP answer will do.
        let answered = std::process::Command::new("curl")
            .args(["-k", "-s", "-o", "/dev/null", "--max-time", "2", &url])
            .status()?
            .success();
        if answered {
            break;
        }
        if Instant::now() > deadline {
            bail!("no answer from {url} within 8 s");
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    let started = Instant::now();
    let lo = wait_with_timeout(on_lo, Duration::from_secs(30))?;
    let eth0 = wait_with_timeout(on_eth0, Duration::from_secs(30))?;
    let any = wait_with_timeout(on_any, Duration::from_secs(30))?;
    for (name, out) in [("lo", &lo), ("eth0", &eth0), ("any", &any)] {
        if !out.status.success() {
            bail!(
                "capture on {name} failed after {:?}: {out:?}",
                started.elapsed()
            );
        }
    }
    let (lo, eth0, any) = (
        String::from_utf8(lo.stdout)?,
        String::from_utf8(eth0.stdout)?,
        String::from_utf8(any.stdout)?,
    );
    let request = format!("GET {} HTTP/1.1", secret_path());

    // Loopback: the app's side of the sidecar, in clear.
    assert!(
        lo.contains(&request),
        "no plaintext request on lo:\n{lo}\neth0:\n{eth0}\nany:\n{any}"
    );
    assert!(
        lo.lines()
            .any(|l| l.contains("IP 127.0.0.1.") && l.contains("> 127.0.0.1.8080: Flags")),
        "{lo}"
    );
    assert!(
        !lo.contains(".8443"),
        "lo carries only the app's side:\n{lo}"
    );

    // eth0: only the TLS side, whose bytes never show the request.
    assert!(
        eth0.lines()
            .any(|l| l.contains(&format!("> {web}.8443: Flags"))),
        "no TLS connection on eth0:\n{eth0}"
    );
    assert!(!eth0.contains(&secret_path()), "plaintext on eth0:\n{eth0}");
    assert!(!eth0.contains(".8080"), "{eth0}");

    // any: both, each packet with the interface it crossed (loopback is ifindex 1).
    let lines: Vec<&str> = any.lines().filter(|l| l.contains(" IP ")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ifindex 1 In IP 127.0.0.1.") && l.contains(".8080: Flags")),
        "{any}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("> {web}.8443: Flags")) && !l.contains("ifindex 1 ")),
        "{any}"
    );
    assert!(any.contains(&request), "{any}");
    Ok(())
}
