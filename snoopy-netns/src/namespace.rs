//! Owned handles on namespace files.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::caps::Capability;
use crate::{Error, Result, sys};

/// The kinds of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceKind {
    /// Network: interfaces, addresses, routes, sockets.
    Net,
    /// Mount points.
    Mnt,
    /// Process IDs (entering affects the children of the caller, not the caller).
    Pid,
    /// Host and domain name.
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Users and capabilities.
    User,
    /// Cgroup root.
    Cgroup,
}

impl NamespaceKind {
    /// The file name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Net => "net",
            NamespaceKind::Mnt => "mnt",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
        }
    }

    /// The `CLONE_NEW*` flag that `setns` and `NS_GET_NSTYPE` use for this kind.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NamespaceKind::Net => libc::CLONE_NEWNET,
            NamespaceKind::Mnt => libc::CLONE_NEWNS,
            NamespaceKind::Pid => libc::CLONE_NEWPID,
            NamespaceKind::Uts => libc::CLONE_NEWUTS,
            NamespaceKind::Ipc => libc::CLONE_NEWIPC,
            NamespaceKind::User => libc::CLONE_NEWUSER,
            NamespaceKind::Cgroup => libc::CLONE_NEWCGROUP,
        }
    }

    fn from_clone_flag(flag: libc::c_int) -> Option<Self> {
        [
            NamespaceKind::Net,
            NamespaceKind::Mnt,
            NamespaceKind::Pid,
            NamespaceKind::Uts,
            NamespaceKind::Ipc,
            NamespaceKind::User,
            NamespaceKind::Cgroup,
        ]
        .into_iter()
        .find(|k| k.clone_flag() == flag)
    }
}

impl fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// An open namespace file: `/proc/PID/ns/KIND` or a bind-mounted one such as
/// `/var/run/netns/NAME`.
///
/// Holding the fd keeps the namespace alive and pins *this* namespace even if the process
/// exits and its PID is reused.
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
    kind: NamespaceKind,
    path: PathBuf,
    inode: u64,
}

impl Namespace {
    /// Opens the `kind` namespace of process `pid` (`/proc/PID/ns/KIND`).
    pub fn from_pid(pid: u32, kind: NamespaceKind) -> Result<Self> {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Error::NoSuchProcess { pid });
        }
        Self::from_path(format!("/proc/{pid}/ns/{}", kind.proc_name()), kind)
    }

    /// The `kind` namespace of the calling thread.
    pub fn current(kind: NamespaceKind) -> Result<Self> {
        Self::from_path(format!("/proc/thread-self/ns/{}", kind.proc_name()), kind)
    }

    /// Opens a namespace file and checks that it is a namespace of `kind`.
    pub fn from_path(path: impl AsRef<Path>, kind: NamespaceKind) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let file = File::open(&path)
            .map_err(|e| Error::syscall("open", &shown, e, &[Capability::SysPtrace]))?;
        let inode = file
            .metadata()
            .map_err(|e| Error::syscall("fstat", &shown, e, &[]))?
            .ino();
        let fd = OwnedFd::from(file);
        let not_a_namespace = |found: String| Error::NotANamespace {
            path: path.clone(),
            expected: kind.proc_name(),
            found,
        };
        if !sys::is_nsfs(fd.as_fd()).map_err(|e| Error::syscall("fstatfs", &shown, e, &[]))? {
            return Err(not_a_namespace("not on the nsfs file system".into()));
        }
        let actual = sys::namespace_type(fd.as_fd())
            .map_err(|e| Error::syscall("ioctl(NS_GET_NSTYPE)", &shown, e, &[]))?;
        if actual != kind.clone_flag() {
            let found = NamespaceKind::from_clone_flag(actual)
                .map(|k| format!("it is a {k} namespace"))
                .unwrap_or_else(|| format!("unknown namespace type {actual:#x}"));
            return Err(not_a_namespace(found));
        }
        Ok(Namespace {
            fd,
            kind,
            path,
            inode,
        })
    }

    /// The kind of this namespace.
    pub fn kind(&self) -> NamespaceKind {
        self.kind
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's inode number: two handles refer to the same namespace exactly when
    /// their inodes are equal (this is what `ip netns identify` and `lsns` compare).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Another handle on the same namespace (a duplicated fd).
    pub fn try_clone(&self) -> Result<Self> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::syscall("dup", self.path.display().to_string(), e, &[]))?;
        Ok(Namespace {
            fd,
            kind: self.kind,
            path: self.path.clone(),
            inode: self.inode,
        })
    }

    /// Moves the calling thread into this namespace. Private: callers use
    /// [`crate::in_namespace`] or [`crate::command_in`], which never leave a thread behind in
    /// the wrong namespace.
    pub(crate) fn enter_current_thread(&self) -> Result<()> {
        sys::setns(self.fd.as_fd(), self.kind.clone_flag()).map_err(|e| {
            Error::syscall(
                "setns",
                self.path.display().to_string(),
                e,
                &[Capability::SysAdmin],
            )
        })
    }
}

impl AsFd for Namespace {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}:[{}])",
            self.path.display(),
            self.kind,
            self.inode
        )
    }
}
