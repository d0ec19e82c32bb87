//! Linux capabilities: which ones a call needs, which ones this process has, and how to
//! say so when one is missing.
//!
//! Entering another process's namespaces takes three capabilities: `CAP_SYS_PTRACE` to open
//! `/proc/PID/ns/*` of a process owned by someone else, `CAP_SYS_ADMIN` to `setns` into it,
//! and `CAP_NET_RAW` to open a packet socket there. Rather than a bare `EPERM`, callers get
//! a sentence naming what is missing and how to grant it.
//!
//! The sets are read with the `caps` crate (`capget`). Dropping them for a program run in a
//! namespace ([`crate::privileges`]) does not use it: that happens between `fork` and
//! `exec`, where `caps`'s allocations are not allowed (see the crate's `sys` module).

use std::fmt;

/// A Linux capability that Snoopy may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `CAP_SETGID`: change the group ids (dropping to an unprivileged group).
    SetGid,
    /// `CAP_SETUID`: change the user ids (dropping to an unprivileged user).
    SetUid,
    /// `CAP_SETPCAP`: remove capabilities from the bounding set.
    SetPcap,
    /// `CAP_NET_ADMIN`: promiscuous mode and interface configuration.
    NetAdmin,
    /// `CAP_NET_RAW`: packet (AF_PACKET) sockets.
    NetRaw,
    /// `CAP_SYS_ADMIN`: `setns` into another namespace.
    SysAdmin,
    /// `CAP_SYS_PTRACE`: opening the namespace files of another user's process.
    SysPtrace,
}

impl Capability {
    /// The capability's number in `<linux/capability.h>`.
    pub fn number(self) -> u32 {
        match self {
            Capability::SetGid => 6,
            Capability::SetUid => 7,
            Capability::SetPcap => 8,
            Capability::NetAdmin => 12,
            Capability::NetRaw => 13,
            Capability::SysPtrace => 19,
            Capability::SysAdmin => 21,
        }
    }

    /// The name without the `CAP_` prefix, as Kubernetes `securityContext` spells it.
    pub fn kubernetes_name(self) -> &'static str {
        match self {
            Capability::SetGid => "SETGID",
            Capability::SetUid => "SETUID",
            Capability::SetPcap => "SETPCAP",
            Capability::NetAdmin => "NET_ADMIN",
            Capability::NetRaw => "NET_RAW",
            Capability::SysAdmin => "SYS_ADMIN",
            Capability::SysPtrace => "SYS_PTRACE",
        }
    }
}

impl Capability {
    /// Every capability this crate names.
    pub const ALL: [Capability; 7] = [
        Capability::SetGid,
        Capability::SetUid,
        Capability::SetPcap,
        Capability::NetAdmin,
        Capability::NetRaw,
        Capability::SysPtrace,
        Capability::SysAdmin,
    ];
}

impl std::str::FromStr for Capability {
    type Err = String;

    /// `NET_RAW` or `CAP_NET_RAW`, any case.
    fn from_str(s: &str) -> Result<Self, String> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Capability::ALL
            .into_iter()
            .find(|c| c.kubernetes_name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Capability::ALL
                    .iter()
                    .map(|c| c.kubernetes_name())
                    .collect();
                format!("unknown capability {s:?}; known: {}", known.join(", "))
            })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.kubernetes_name())
    }
}

/// The effective capability set of the calling thread (bit N = capability N).
///
/// Asked of the kernel (`capget`, through the `caps` crate), so it needs no procfs; should
/// that call be refused (a seccomp profile), read from `/proc/self/status` instead. Returns
/// `None` when neither answers, in which case callers should not guess.
pub fn effective() -> Option<u64> {
    match ::caps::read(None, ::caps::CapSet::Effective) {
        Ok(set) => Some(set.iter().fold(0, |bits, cap| bits | cap.bitmask())),
        Err(_) => parse_cap_eff(&std::fs::read_to_string("/proc/self/status").ok()?),
    }
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Whether this process has `cap` in its effective set (`false` when unknown).
pub fn has(cap: Capability) -> bool {
    effective().is_some_and(|set| set & (1 << cap.number()) != 0)
}

/// Checks that this process has every capability in `needs`, for doing `what`.
///
/// Use it before starting work that would fail half-way for lack of privileges.
pub fn require(needs: &[Capability], what: &str) -> crate::Result<()> {
    let Some(set) = effective() else {
        return Ok(()); // cannot tell: let the call itself fail with its own error
    };
    let missing: Vec<Capability> = needs
        .iter()
        .copied()
        .filter(|c| set & (1 << c.number()) == 0)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::SyscallError::missing_capabilities_for(what, missing).into())
}

/// The capabilities of `needs` this process lacks; all of `needs` when none seem missing
/// (the kernel refused anyway, e.g. because of a user namespace boundary).
pub(crate) fn missing_of(needs: &[Capability]) -> Vec<Capability> {
    let missing: Vec<Capability> = needs.iter().copied().filter(|c| !has(*c)).collect();
    if missing.is_empty() {
        needs.to_vec()
    } else {
        missing
    }
}

/// One sentence: which capabilities are needed and the usual ways to grant them.
pub fn explain(missing: &[Capability]) -> String {
    let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
    let setcap: Vec<String> = missing
        .iter()
        .map(|c| c.to_string().to_lowercase())
        .collect();
    let k8s: Vec<&str> = missing.iter().map(|c| c.kubernetes_name()).collect();
    format!(
        "needs {}; run as root, or grant it with `setcap {}+ep <binary>`, or in a pod with securityContext.capabilities.add: [{}]",
        names.join(" and "),
        setcap.join(","),
        k8s.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_effective_set() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn the_kernel_and_procfs_agree_on_the_effective_set() {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        let from_procfs = parse_cap_eff(&status).expect("a CapEff line");
        let known = Capability::ALL
            .iter()
            .fold(0u64, |bits, c| bits | (1 << c.number()));
        assert_eq!(
            effective().map(|set| set & known),
            Some(from_procfs & known)
        );
    }

    #[test]
    fn explains_how_to_grant() {
        let text = explain(&[Capability::SysAdmin, Capability::NetRaw]);
        assert!(text.contains("CAP_SYS_ADMIN and CAP_NET_RAW"), "{text}");
        assert!(
            text.contains("setcap cap_sys_admin,cap_net_raw+ep"),
            "{text}"
        );
        assert!(text.contains("[SYS_ADMIN, NET_RAW]"), "{text}");
    }
}
