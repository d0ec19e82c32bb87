//! Integration tests of snoopy-cri against a real containerd (the project's testbed).
//!
//! They need root and bring the testbed up themselves (`testbed/containerd.sh up`, which is
//! idempotent and a no-op when it already runs); they leave it running for the next test
//! binary — `testbed/containerd.sh down` removes it. Not root: they fail, never skip.

mod common;
mod errors;
mod lookup;
