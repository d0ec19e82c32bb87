//! The dashboard end to end: real connections between network namespaces (accepted,
//! refused, dropped by nftables), watched by a real `podtracer flows`, into
//! `snoopy-dashboard` through a pipe or a real Kafka-protocol broker, and the page read back
//! in a real headless Chromium. The expected numbers come from what the test did, not from
//! the dashboard's code. Needs root, python3, nft, chromium and chromedriver (`make setup`
//! installs them), the tansu broker (`testbed/kafka.sh up` builds it) and podtracer built
//! (the workspace test run builds it).

mod browser;
mod kafka;
mod replicas;
mod throughput;
mod traffic;
mod webdriver;
