//! The fallback when a runtime gives no verbose info: find a container's host PID by its id
//! in `/proc/*/cgroup`.
//!
//! Every runtime puts the container id in the cgroup path of its processes (cgroupfs:
//! `/kubepods/…/pod<uid>/<id>`, systemd: `…/cri-containerd-<id>.scope`, `crio-<id>.scope`,
//! `docker-<id>.scope`), in every hierarchy, v1 or v2. The container's init is the process of
//! that cgroup whose parent is outside it.

use std::collections::HashMap;
use std::path::Path;

/// The host PID of the container with this id, from a procfs root (normally `/proc`, or the
/// node's procfs mounted elsewhere). `None` when no process carries the id (the container is
/// not running, or this is not the host PID namespace).
///
/// This is the fallback [`crate::RuntimeClient`] uses when the runtime gives no verbose info;
/// it reads every process's cgroup file, so it costs a few milliseconds on a busy node.
pub fn pid_of_container(proc_root: &Path, id: &str) -> Option<u32> {
    // Short ids would match unrelated paths; CRI ids are 64 hex digits.
    if id.len() < 12 {
        return None;
    }
    let entries = std::fs::read_dir(proc_root).ok()?;
    let mut members: HashMap<u32, u32> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        // A process may exit between read_dir and here; skip it.
        let Ok(cgroup) = std::fs::read_to_string(dir.join("cgroup")) else {
            continue;
        };
        if cgroup.lines().any(|line| line_names(line, id)) {
            let ppid = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|stat| parent_pid(&stat))
                .unwrap_or(0);
            members.insert(pid, ppid);
        }
    }
    members
        .iter()
        .filter(|(_, ppid)| !members.contains_key(ppid))
        .map(|(&pid, _)| pid)
        .min()
}

/// Whether a `/proc/PID/cgroup` line (`ID:CONTROLLERS:PATH`) names the container: one path
/// component is the id, or ends with `-<id>` / `-<id>.scope`, or is `<id>.scope`.
fn line_names(line: &str, id: &str) -> bool {
    let Some(path) = line.splitn(3, ':').nth(2) else {
        return false;
    };
    path.split('/').any(|component| {
        let c = component.strip_suffix(".scope").unwrap_or(component);
        c == id
            || c.strip_suffix(id)
                .is_some_and(|head| head.ends_with('-') || head.ends_with(':'))
    })
}

/// The parent PID from `/proc/PID/stat`; the command name (field 2) may contain spaces and
/// parentheses, so fields are counted after its last `)`.
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn recognises_runtime_cgroup_layouts() {
        for line in [
            format!("4:memory:/kubepods/besteffort/pod1234/{ID}"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
            format!("1:name=systemd:/system.slice/docker-{ID}.scope"),
            format!("0::/kubepods-besteffort-pod1.slice:crio:{ID}"),
            format!("3:cpu:/k8s.io/{ID}"),
        ] {
            assert!(line_names(&line, ID), "{line}");
        }
        for line in [
            format!("4:memory:/kubepods/besteffort/pod1234/{ID}x"),
            "0::/user.slice".to_string(),
            format!("0::/other-{}", &ID[..40]),
        ] {
            assert!(!line_names(&line, ID), "{line}");
        }
    }

    #[test]
    fn parent_pid_skips_odd_command_names() {
        assert_eq!(parent_pid("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(parent_pid("1 (init) S 0 1 1"), Some(0));
    }

    #[test]
    fn picks_the_init_of_a_fake_proc_tree() {
        let root = tempfile::tempdir().unwrap();
        let add = |pid: u32, ppid: u32, cgroup: &str| {
            let dir = root.path().join(pid.to_string());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("cgroup"), cgroup).unwrap();
            std::fs::write(dir.join("stat"), format!("{pid} (sh) S {ppid} 0 0")).unwrap();
        };
        let inside = format!("0::/k8s.io/{ID}\n");
        add(100, 90, "0::/k8s.io/shim\n");
        add(120, 100, &inside); // init: its parent (the shim) is outside
        add(130, 120, &inside);
        add(140, 130, &inside);
        add(150, 1, "0::/user.slice\n");
        assert_eq!(pid_of_container(root.path(), ID), Some(120));
        assert_eq!(pid_of_container(root.path(), &ID.replace('0', "f")), None);
        assert_eq!(pid_of_container(root.path(), "short"), None);
    }
}
