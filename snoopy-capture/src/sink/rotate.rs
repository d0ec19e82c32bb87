//! tcpdump's file rotation (`-C`, `-G`, `-W`) over pcap and pcapng files.
//!
//! The names are tcpdump's: with `-C` alone the files are `FILE`, `FILE1`, `FILE2`…; with
//! `-W N` they are a ring `FILE0`…`FILE{N-1}`, the number padded to the digits of `N-1`;
//! with `-G` the name is first expanded as a `strftime` pattern (`trace-%Y%m%d-%H%M%S.pcap`),
//! then numbered as above when `-C` is given too. Each file starts with its own header and
//! interface blocks, so every one is a valid capture on its own.
//!
//! Two choices differ from tcpdump, on purpose: time windows (`-G`) follow the packets'
//! timestamps, not the clock when the packet is written, so a file named for a second holds
//! exactly that second's packets (and `read -G` splits an old file by its own times); and
//! names are expanded in UTC, as every time podtracer prints.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{PacketSink, PcapNgSink, PcapSink};
use crate::decode::time::civil_from_days;
use crate::{Error, Interface, Packet, Result};

/// When to start a new file (tcpdump's `-C`, `-G`, `-W`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// `-C`: before writing a packet, start a new file when this one is larger than this
    /// many bytes (tcpdump: millions of bytes on the command line).
    pub max_bytes: Option<u64>,
    /// `-G`: start a new file when a packet is this many seconds (or more) after the time
    /// the current file was started at.
    pub every_secs: Option<u64>,
    /// `-W`: with `-C`, a ring of this many files, the oldest overwritten; with `-G` alone,
    /// stop after this many files.
    pub files: Option<u32>,
}

impl Rotation {
    /// Whether any rotation is asked for.
    pub fn is_active(&self) -> bool {
        self.max_bytes.is_some() || self.every_secs.is_some()
    }

    /// Digits of the file number: those of `files - 1` (tcpdump's `WflagChars`), 0 without
    /// `-W`.
    fn digits(&self) -> usize {
        let mut n = self.files.unwrap_or(0).saturating_sub(1);
        let mut digits = 0;
        while n > 0 {
            digits += 1;
            n /= 10;
        }
        digits
    }
}

/// The file format of every file of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// An open file of the rotation.
enum Current {
    Pcap(PcapSink<File>),
    PcapNg(PcapNgSink<File>),
}

impl Current {
    fn sink(&mut self) -> &mut dyn PacketSink {
        match self {
            Current::Pcap(s) => s,
            Current::PcapNg(s) => s,
        }
    }

    fn position(&self) -> u64 {
        match self {
            Current::Pcap(s) => s.position(),
            Current::PcapNg(s) => s.position(),
        }
    }
}

/// Called with each file the rotation closed (tcpdump's `-z`), not with the last one,
/// which is still open when the capture ends (as in tcpdump).
pub type OnClose = Box<dyn FnMut(&Path) + Send>;
/// Called once when `-G` with `-W` (and no `-C`) has written its last file.
pub type OnLimit = Box<dyn FnMut() + Send>;

/// The names of the files a capture wrote, shared with whoever reports them.
pub type FileRecord = std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>;

/// Adds `path` to `record` unless it is there.
pub fn push_once(record: &FileRecord, path: &Path) {
    let mut files = record.lock().unwrap_or_else(|p| p.into_inner());
    if !files.iter().any(|f| f == path) {
        files.push(path.to_path_buf());
    }
}

/// A [`PacketSink`] writing a sequence of files named and rotated as tcpdump does.
pub struct RotatingSink {
    template: String,
    format: FileFormat,
    rotation: Rotation,
    interfaces: Vec<Interface>,
    current: Option<(PathBuf, Current)>,
    /// tcpdump's `Cflag_count`: the number in the current name.
    number: u32,
    /// tcpdump's `Gflag_count`: files closed because their time was up.
    windows: u32,
    /// Seconds since the epoch the current time window started at (`Gflag_time`).
    window_start: Option<u64>,
    on_close: Option<OnClose>,
    on_limit: Option<OnLimit>,
    /// Every file opened, for whoever reports them (`record_files`).
    opened: Option<FileRecord>,
    /// `-G` with `-W` wrote its last file: further packets are dropped.
    done: bool,
}

impl std::fmt::Debug for RotatingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingSink")
            .field("template", &self.template)
            .field("rotation", &self.rotation)
            .field("current", &self.current.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

impl RotatingSink {
    /// A rotation of files named from `template` (the `-w` argument). The pattern is
    /// checked here. Without `-G` the first file is created now (an empty capture still
    /// leaves a valid file); with `-G` it is created at the first packet, named for its time.
    pub fn new(template: &Path, format: FileFormat, rotation: Rotation) -> Result<Self> {
        let template = template
            .to_str()
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "-w {}: a rotated file name must be UTF-8",
                    template.display()
                ))
            })?
            .to_string();
        if rotation.every_secs.is_some() {
            strftime(&template, 0)?;
        }
        let mut sink = RotatingSink {
            template,
            format,
            rotation,
            interfaces: Vec::new(),
            current: None,
            number: 0,
            windows: 0,
            window_start: None,
            on_close: None,
            on_limit: None,
            opened: None,
            done: false,
        };
        if rotation.every_secs.is_none() {
            sink.open()?;
        }
        Ok(sink)
    }

    /// Runs `hook` on every file the rotation closes.
    pub fn on_close(mut self, hook: OnClose) -> Self {
        self.on_close = Some(hook);
        self
    }

    /// Runs `hook` when `-G` with `-W` (no `-C`) has written its last file.
    pub fn on_limit(mut self, hook: OnLimit) -> Self {
        self.on_limit = Some(hook);
        self
    }

    /// Records in `record` the name of every file this rotation opens (each once, in
    /// order; a ring's reused names are not repeated), starting with the one open now.
    pub fn record_files(mut self, record: FileRecord) -> Self {
        if let Some((path, _)) = &self.current {
            push_once(&record, path);
        }
        self.opened = Some(record);
        self
    }

    /// The file being written, if one is open.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|(p, _)| p.as_path())
    }

    /// The name of file `number` (tcpdump's `MakeFilename`).
    fn name(&self, number: u32) -> Result<PathBuf> {
        let base = match (self.rotation.every_secs, self.window_start) {
            (Some(_), Some(start)) => strftime(&self.template, start)?,
            _ => self.template.clone(),
        };
        let digits = if self.rotation.max_bytes.is_some() {
            self.rotation.digits()
        } else {
            0
        };
        Ok(PathBuf::from(if number == 0 && digits == 0 {
            base
        } else {
            format!("{base}{number:0digits$}")
        }))
    }

    /// Creates the file for the current number and window, with every interface.
    fn open(&mut self) -> Result<()> {
        let path = self.name(self.number)?;
        let mut current = match self.format {
            FileFormat::Pcap => Current::Pcap(PcapSink::create(&path)?),
            FileFormat::PcapNg => Current::PcapNg(PcapNgSink::create(&path)?),
        };
        for interface in &self.interfaces {
            current.sink().add_interface(interface)?;
        }
        if let Some(record) = &self.opened {
            push_once(record, &path);
        }
        self.current = Some((path, current));
        Ok(())
    }

    /// Flushes and closes the current file and hands it to the `-z` hook.
    fn close(&mut self) -> Result<()> {
        if let Some((path, mut current)) = self.current.take() {
            current.sink().flush()?;
            drop(current);
            if let Some(hook) = &mut self.on_close {
                hook(&path);
            }
        }
        Ok(())
    }

    /// tcpdump's `dump_packet_and_trunc`: the time check, then the size check.
    fn rotate_for(&mut self, packet: &Packet<'_>) -> Result<()> {
        let now = packet.timestamp.as_secs();
        if let Some(every) = self.rotation.every_secs {
            match self.window_start {
                None => {
                    self.window_start = Some(now);
                    self.open()?;
                }
                Some(start) if now.saturating_sub(start) >= every => {
                    self.close()?;
                    self.windows += 1;
                    if self.rotation.max_bytes.is_none()
                        && self
                            .rotation
                            .files
                            .is_some_and(|files| self.windows >= files)
                    {
                        self.done = true;
                        if let Some(hook) = &mut self.on_limit {
                            hook();
                        }
                        return Ok(());
                    }
                    self.window_start = Some(now);
                    self.number = 0;
                    self.open()?;
                }
                Some(_) => {}
            }
        }
        if let Some(max) = self.rotation.max_bytes
            && self
                .current
                .as_ref()
                .is_some_and(|(_, c)| c.position() > max)
        {
            self.close()?;
            self.number += 1;
            if self
                .rotation
                .files
                .is_some_and(|files| self.number >= files)
            {
                self.number = 0;
            }
            self.open()?;
        }
        Ok(())
    }
}

impl PacketSink for RotatingSink {
    fn add_interface(&mut self, interface: &Interface) -> Result<u32> {
        self.interfaces.push(interface.clone());
        if let Some((_, current)) = &mut self.current {
            current.sink().add_interface(interface)?;
        }
        Ok(self.interfaces.len() as u32 - 1)
    }

    fn write_packet(&mut self, interface: u32, packet: &Packet<'_>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.rotate_for(packet)?;
        match &mut self.current {
            Some((_, current)) => current.sink().write_packet(interface, packet),
            // `-G -W` reached its limit on this very packet.
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match &mut self.current {
            Some((_, current)) => current.sink().flush(),
            None => Ok(()),
        }
    }
}

/// Expands a `strftime` pattern for `secs` since the epoch, in UTC. Supported: `%Y %y %m
/// %d %e %j %H %M %S %s %F %T %D %%`; anything else is refused, so a typo does not silently
/// make every file the same name.
pub fn strftime(pattern: &str, secs: u64) -> Result<String> {
    let days = (secs / 86_400) as i64;
    let (y, mo, d) = civil_from_days(days);
    let t = secs % 86_400;
    let (h, mi, s) = (t / 3600, t / 60 % 60, t % 60);
    let yday = days - days_from_civil(y) + 1;
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().unwrap_or(' ');
        use std::fmt::Write;
        let _ = match spec {
            'Y' => write!(out, "{y:04}"),
            'y' => write!(out, "{:02}", y % 100),
            'm' => write!(out, "{mo:02}"),
            'd' => write!(out, "{d:02}"),
            'e' => write!(out, "{d:2}"),
            'j' => write!(out, "{yday:03}"),
            'H' => write!(out, "{h:02}"),
            'M' => write!(out, "{mi:02}"),
            'S' => write!(out, "{s:02}"),
            's' => write!(out, "{secs}"),
            'F' => write!(out, "{y:04}-{mo:02}-{d:02}"),
            'T' => write!(out, "{h:02}:{mi:02}:{s:02}"),
            'D' => write!(out, "{mo:02}/{d:02}/{:02}", y % 100),
            '%' => write!(out, "%"),
            other => {
                return Err(Error::Unsupported(format!(
                    "-w {pattern}: %{other} is not a supported strftime conversion (use %Y %y %m %d %e %j %H %M %S %s %F %T %D %%)"
                )));
            }
        };
    }
    Ok(out)
}

/// Days from 1970-01-01 to January 1st of `year` (proleptic Gregorian).
fn days_from_civil(year: i64) -> i64 {
    let y = year - 1; // January counts in the previous "March-based" year
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = 306; // March 1st to January 1st
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_strftime_in_utc() {
        // 2023-11-14 22:13:20 UTC, day 318 of the year.
        let t = 1_700_000_000;
        assert_eq!(
            strftime("a-%Y%m%d-%H%M%S-%j-%s-%%.pcap", t).unwrap(),
            "a-20231114-221320-318-1700000000-%.pcap"
        );
        assert_eq!(
            strftime("%F %T %D %y %e", 0).unwrap(),
            "1970-01-01 00:00:00 01/01/70 70  1"
        );
        assert_eq!(strftime("%j", 951_782_400).unwrap(), "060", "2000-02-29");
        assert!(strftime("%Q", 0).is_err());
    }

    #[test]
    fn numbers_have_the_digits_of_files_minus_one() {
        let digits = |files| {
            Rotation {
                files,
                ..Rotation::default()
            }
            .digits()
        };
        assert_eq!(
            [
                digits(None),
                digits(Some(1)),
                digits(Some(3)),
                digits(Some(10)),
                digits(Some(11)),
                digits(Some(101))
            ],
            [0, 0, 1, 1, 2, 3]
        );
    }

    /// The record names each file once, in the order first opened: a ring of 3 written
    /// round twice lists FILE0, FILE1, FILE2.
    #[test]
    fn the_record_names_every_file_once() {
        use crate::{Interface, LinkType, Packet, PacketSink};
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("c.pcapng");
        let record = FileRecord::default();
        let mut sink = RotatingSink::new(
            &template,
            FileFormat::PcapNg,
            Rotation {
                max_bytes: Some(1),
                every_secs: None,
                files: Some(3),
            },
        )
        .unwrap()
        .record_files(record.clone());
        sink.add_interface(&Interface::new("eth0", LinkType::Ethernet, 65535))
            .unwrap();
        let data = [0u8; 60];
        for n in 0..7u64 {
            let packet = Packet {
                timestamp: std::time::Duration::from_secs(n),
                orig_len: 60,
                data: &data,
                interface: 0,
            };
            sink.write_packet(0, &packet).unwrap();
        }
        sink.flush().unwrap();
        let names: Vec<String> = record
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c.pcapng0", "c.pcapng1", "c.pcapng2"]);
    }
}
