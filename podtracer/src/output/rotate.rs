//! File rotation: tcpdump's `-C`, `-G`, `-W` flags, and the `-z` command run on each
//! closed file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use snoopy_capture::sink::Rotation;

/// tcpdump's file rotation flags (`-C`, `-G`, `-W`, `-z`), shared by `capture` and `read`.
#[derive(Debug, Clone, Default, Args)]
pub struct RotateArgs {
    /// With -w FILE: before writing a packet, start a new file when the current one is
    /// larger than SIZE millions of bytes. Files are FILE, FILE1, FILE2…; with -W N a ring
    /// FILE0…FILE{N-1} whose oldest file is overwritten.
    #[arg(short = 'C', value_name = "SIZE", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,

    /// With -w FILE: start a new file every SECS seconds (of packet time); FILE is a
    /// strftime pattern, expanded in UTC (e.g. trace-%Y%m%d-%H%M%S.pcap).
    #[arg(short = 'G', value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub rotate_seconds: Option<u64>,

    /// With -C: keep a ring of N files. With -G alone: stop after N files.
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub file_count: Option<u32>,

    /// Run CMD FILE on each file rotation closes (e.g. -z gzip), as a program with that
    /// one argument, no shell; the last file, still open at the end, is left alone, as in
    /// tcpdump. podtracer waits for these commands before it exits.
    #[arg(short = 'z', value_name = "CMD")]
    pub post_rotate: Option<PathBuf>,
}

impl RotateArgs {
    /// The rotation asked for; an error for flags that need others (as tcpdump's).
    pub fn rotation(&self) -> Result<Rotation> {
        let rotation = Rotation {
            max_bytes: self.file_size.map(|m| m.saturating_mul(1_000_000)),
            every_secs: self.rotate_seconds,
            files: self.file_count,
        };
        if !rotation.is_active() {
            if self.file_count.is_some() {
                anyhow::bail!("-W needs -C or -G (it counts rotated files)");
            }
            if self.post_rotate.is_some() {
                anyhow::bail!("-z needs -C or -G (it runs on each rotated file)");
            }
        }
        Ok(rotation)
    }
}

/// Runs the `-z` command on closed files and waits for the ones still running when dropped.
pub(super) struct PostRotate {
    program: PathBuf,
    running: Vec<std::process::Child>,
}

impl PostRotate {
    /// Runs `program FILE` for each closed file.
    pub(super) fn new(program: PathBuf) -> Self {
        PostRotate {
            program,
            running: Vec::new(),
        }
    }

    pub(super) fn run(&mut self, file: &Path) {
        // Reap the ones that finished, so none lingers as a zombie.
        self.running
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        match std::process::Command::new(&self.program)
            .arg(file)
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => self.running.push(child),
            Err(e) => eprintln!(
                "podtracer: -z {} {}: cannot start it: {e} (is it on the PATH?)",
                self.program.display(),
                file.display()
            ),
        }
    }
}

impl Drop for PostRotate {
    fn drop(&mut self) {
        for child in &mut self.running {
            let _ = child.wait();
        }
    }
}
