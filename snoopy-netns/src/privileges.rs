//! Running a program inside a namespace with less than the caller has.
//!
//! Entering another process's network namespace takes root-level capabilities
//! (`CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`), but the program run there usually needs none of
//! them: `ip`, `ss`, `dig` and `iperf3` work as any user, `ping` needs `CAP_NET_RAW`.
//! [`Privileges::apply_to`] makes a [`Command`] (typically from [`crate::command_in`]) drop,
//! after the namespaces are entered and before `exec`:
//!
//! * every capability not on the keep list from the bounding set,
//! * the supplementary groups, then the group and user ids (to 65534, `nobody`, by default),
//! * the permitted, effective and inheritable sets down to the keep list, the ambient set
//!   to exactly the keep list (so the kept capabilities survive `exec` of a program with
//!   no file capabilities),
//!
//! and sets `PR_SET_NO_NEW_PRIVS`, so no set-uid or file-capability program run later can
//! win anything back.
//!
//! [`ExecAllowlist`] is the other half: which programs may be run at all, and what each one
//! keeps (`iperf3,ping=NET_RAW,ip,ss,nslookup,dig`). Its text form is the one contract
//! between whoever sets the policy (the operator's configuration) and whoever enforces it
//! (podtracer's `--allow`).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::str::FromStr;

use crate::caps::{self, Capability};
use crate::sys;

/// The user and group programs run as when nothing else is asked: `nobody` / `nogroup`.
pub const NOBODY: u32 = 65534;

/// The allowlist an operator uses when its admin sets none: what Snoopy's image ships.
pub const DEFAULT_EXEC_ALLOWLIST: &str = "iperf3,ping=NET_RAW,ip,ss,nslookup,dig";

/// What a program run in a namespace keeps: a user, a group, and a few capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    /// The user id the program runs as (never 0 unless asked for explicitly).
    pub uid: u32,
    /// The group id; supplementary groups are always cleared.
    pub gid: u32,
    /// The only capabilities left in any set (bounding, permitted, effective,
    /// inheritable, ambient).
    pub keep: Vec<Capability>,
}

impl Privileges {
    /// `nobody`/`nogroup` keeping only `keep`.
    pub fn nobody(keep: &[Capability]) -> Self {
        Self {
            uid: NOBODY,
            gid: NOBODY,
            keep: keep.to_vec(),
        }
    }

    /// The keep list as a bit set (bit N = capability N).
    pub fn keep_mask(&self) -> u64 {
        self.keep.iter().fold(0, |m, c| m | (1 << c.number()))
    }

    /// What dropping needs from the caller: `CAP_SETUID`, `CAP_SETGID`, `CAP_SETPCAP` and
    /// every kept capability.
    pub fn needs(&self) -> Vec<Capability> {
        let mut needs = vec![Capability::SetUid, Capability::SetGid, Capability::SetPcap];
        for c in &self.keep {
            if !needs.contains(c) {
                needs.push(*c);
            }
        }
        needs
    }

    /// Checks, before spawning, that this process can drop to these privileges: inside the
    /// forked child only an errno would be left to report.
    pub fn check(&self, what: &str) -> crate::Result<()> {
        caps::require(&self.needs(), what)
    }

    /// Makes `command` drop to these privileges between `fork` and `exec`, after whatever
    /// `pre_exec` steps it already has (the `setns` of [`crate::command_in`]): register it
    /// last. Spawning fails with the kernel's error if any step fails; the program never runs
    /// with more than asked.
    pub fn apply_to<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        let keep = self.keep_mask();
        let (uid, gid) = (self.uid, self.gid);
        // The highest capability number this kernel knows; read here, since the child must
        // not allocate. 63 when unknown: dropping numbers the kernel does not have is EINVAL,
        // which the loop stops at.
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(63)
            .min(63);
        let drop = move || -> std::io::Result<()> {
            for cap in 0..=last {
                if keep & (1 << cap) != 0 {
                    continue;
                }
                match sys::drop_bounding(libc::c_ulong::from(cap)) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                    Err(e) => return Err(e),
                }
            }
            sys::clear_groups()?;
            sys::set_gid(gid)?;
            // Keep the permitted set across the change of user id (it is emptied otherwise),
            // so the keep list can be made effective and ambient below.
            sys::set_keepcaps(true)?;
            sys::set_uid(uid)?;
            sys::set_capabilities(keep)?;
            sys::set_keepcaps(false)?;
            sys::ambient(libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0)?;
            for cap in 0..64u32 {
                if keep & (1 << cap) != 0 {
                    sys::ambient(
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        libc::c_ulong::from(cap),
                    )?;
                }
            }
            sys::set_no_new_privs()
        };
        // SAFETY: the closure runs in the forked child before exec. It makes only system
        // calls (raw ones for the id changes, which affect the calling — the only — thread)
        // on integers it owns, allocates nothing and builds errors from errno alone.
        unsafe { command.pre_exec(drop) }
    }
}

/// One allowlist entry: a program and the capabilities it keeps (`ping=NET_RAW`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRule {
    /// The program exactly as it must be asked for: a name looked up in `PATH`, or a path.
    pub program: String,
    /// What it keeps; usually nothing.
    pub keep: Vec<Capability>,
}

impl fmt::Display for ExecRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for (i, cap) in self.keep.iter().enumerate() {
            f.write_str(if i == 0 { "=" } else { "+" })?;
            f.write_str(cap.kubernetes_name())?;
        }
        Ok(())
    }
}

/// The programs `exec` may run, each with what it keeps.
///
/// Text form: entries separated by commas, each `PROGRAM` or `PROGRAM=CAP[+CAP…]`, e.g.
/// [`DEFAULT_EXEC_ALLOWLIST`]. An empty string is an empty list (nothing may run).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecAllowlist {
    /// The entries, in the order given.
    pub rules: Vec<ExecRule>,
}

impl ExecAllowlist {
    /// The rule for `program`, compared exactly (`ip` is not `/sbin/ip`).
    pub fn rule_for(&self, program: &OsStr) -> Option<&ExecRule> {
        self.rules
            .iter()
            .find(|r| OsStr::new(r.program.as_str()) == program)
    }

    /// The program names, for messages: `iperf3, ping, ip`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.rules.iter().map(|r| r.program.as_str()).collect();
        names.join(", ")
    }
}

impl FromStr for ExecAllowlist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut rules: Vec<ExecRule> = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (program, keep) = match entry.split_once('=') {
                Some((p, caps)) => (
                    p.trim(),
                    caps.split('+')
                        .map(|c| c.parse::<Capability>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("exec allowlist entry {entry:?}: {e}"))?,
                ),
                None => (entry, Vec::new()),
            };
            let ok = !program.is_empty()
                && !program.contains("..")
                && program
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
            if !ok {
                return Err(format!(
                    "exec allowlist entry {entry:?}: a program is a name or a path (letters, digits, '/', '.', '_', '-'; no '..')"
                ));
            }
            if rules.iter().any(|r| r.program == program) {
                return Err(format!(
                    "exec allowlist names {program:?} twice; give it once with all the capabilities it keeps"
                ));
            }
            rules.push(ExecRule {
                program: program.to_owned(),
                keep,
            });
        }
        Ok(Self { rules })
    }
}

impl fmt::Display for ExecAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allowlist_round_trips() {
        let list: ExecAllowlist = DEFAULT_EXEC_ALLOWLIST.parse().unwrap();
        assert_eq!(list.to_string(), DEFAULT_EXEC_ALLOWLIST);
        assert_eq!(list.names(), "iperf3, ping, ip, ss, nslookup, dig");
        assert_eq!(
            list.rule_for(OsStr::new("ping")).unwrap().keep,
            [Capability::NetRaw]
        );
        assert!(list.rule_for(OsStr::new("ip")).unwrap().keep.is_empty());
        for refused in ["sh", "nsenter", "perl", "/sbin/ip", "ip ", ""] {
            assert_eq!(list.rule_for(OsStr::new(refused)), None, "{refused}");
        }
    }

    #[test]
    fn bad_allowlists_say_why() {
        for (text, want) in [
            ("ping=NET_RAWX", "unknown capability"),
            ("a b", "a program is"),
            ("../x", "no '..'"),
            ("ip,ip", "twice"),
        ] {
            let err = text.parse::<ExecAllowlist>().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert_eq!("".parse::<ExecAllowlist>().unwrap().rules, []);
        let two: ExecAllowlist = " tcpdump = net_raw+CAP_NET_ADMIN , ss ".parse().unwrap();
        assert_eq!(two.to_string(), "tcpdump=NET_RAW+NET_ADMIN,ss");
    }

    #[test]
    fn dropping_needs_the_id_and_bounding_capabilities_and_the_kept_ones() {
        let p = Privileges::nobody(&[Capability::NetRaw]);
        assert_eq!(
            p.needs(),
            [
                Capability::SetUid,
                Capability::SetGid,
                Capability::SetPcap,
                Capability::NetRaw
            ]
        );
        assert_eq!(p.keep_mask(), 1 << 13);
        assert_eq!((p.uid, p.gid), (65534, 65534));
    }
}
