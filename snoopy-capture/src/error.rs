//! The crate's error type.

use std::io;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while capturing, reading or writing packets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed (opening, configuring or reading the capture socket): names the
    /// call, what it was called on, and the missing capability or a hint when known. The
    /// type is snoopy-netns's, so a failed `setns` and a failed `socket(AF_PACKET)` read and
    /// match alike; the kernel's error stays the source.
    #[error(transparent)]
    Syscall(#[from] snoopy_netns::SyscallError),

    /// The interface does not exist in the namespace the capture was opened in.
    #[error("no interface named {name:?} here; interfaces: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoSuchInterface {
        /// The name asked for.
        name: String,
        /// The interfaces that do exist.
        available: Vec<String>,
    },

    /// No interface is up apart from loopback, so there is no default to capture on.
    #[error("no interface is up apart from loopback; interfaces: {}; name one with -i", available.join(", "))]
    NoDefaultInterface {
        /// The interfaces that do exist.
        available: Vec<String>,
    },

    /// Entering the target's namespace failed.
    #[error(transparent)]
    Namespace(#[from] snoopy_netns::Error),

    /// A pcap or pcapng file could not be read or written.
    #[error("{context}: {source}")]
    Pcap {
        /// What was being done, e.g. `reading trace.pcap`.
        context: String,
        /// The underlying pcap-file error.
        #[source]
        source: pcap_file::PcapError,
    },

    /// Reading or writing a file or stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `writing to stdout`.
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// Talking to Kafka failed (feature `kafka`).
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Kafka(#[from] crate::sink::kafka::KafkaError),

    /// A filter expression did not compile, or program text did not parse (the compiler's
    /// error, kept as the source).
    #[error("filter: {0}")]
    Filter(#[from] snoopy_filter::Error),

    /// A compiled filter cannot run where it was asked to.
    #[error("filter: {0}")]
    FilterNotRunnable(&'static str),

    /// The packet's interface was not registered with the sink, or the sink cannot hold it
    /// (a pcap file holds one link type only).
    #[error("{0}")]
    Unsupported(String),

    /// A packet whose time the output format cannot hold: pcap's 32-bit seconds end at
    /// 2106-02-07T06:28:15Z, pcapng's 64-bit nanoseconds at 2554-07-21T23:34:33Z. Nothing
    /// of this packet is written; the `written` packets before it are, and the file stays
    /// valid once flushed.
    #[error(
        "{sink}: packet {} is from {}, after {last}, the last time {format} timestamps can hold; \
         the {written} packet(s) before it are written; {hint}",
        written + 1,
        crate::decode::time::Rfc3339(*timestamp)
    )]
    TimestampOutOfRange {
        /// The sink's name (its path, or `-`).
        sink: String,
        /// `pcap` or `pcapng`.
        format: &'static str,
        /// The packet's time.
        timestamp: std::time::Duration,
        /// The last time the format holds, as RFC 3339.
        last: &'static str,
        /// Packets this sink wrote before it.
        written: u64,
        /// What to do instead.
        hint: &'static str,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A pcap-file error with what was being done.
    pub fn pcap(context: impl Into<String>, source: pcap_file::PcapError) -> Self {
        Error::Pcap {
            context: context.into(),
            source,
        }
    }

    /// Whether this error is a closed pipe (`podtracer … | head`), which callers treat as a
    /// normal end rather than a failure.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
            Error::Pcap {
                source: pcap_file::PcapError::IoError(e),
                ..
            } => e.kind() == io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}

impl From<snoopy_filter::CompileError> for Error {
    fn from(e: snoopy_filter::CompileError) -> Self {
        Error::Filter(e.into())
    }
}
