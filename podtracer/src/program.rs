//! Finding the host program a subcommand runs inside a pod's namespace.

use std::path::PathBuf;

/// `program`'s file: as given when it holds a `/`, else the first executable file of that
/// name in `PATH`. Looked up here, by podtracer, so the unprivileged child neither searches
/// directories it may not read nor runs anything but the file found.
pub fn find(program: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
