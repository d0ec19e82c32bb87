//! How each target's capture socket is opened: the options every target shares, and the
//! filter compiled for the link type the socket is expected to have.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use snoopy_capture::LinkType;
use snoopy_capture::afpacket::{Capture, CaptureBuilder, Direction};
use snoopy_capture::filter::{Mode, Program};

/// How to open each capture socket: the options shared by every target.
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    interface: Option<String>,
    /// The snapshot length, 0 already replaced by the default.
    snaplen: u32,
    promiscuous: bool,
    buffer_kib: Option<usize>,
    direction: Direction,
    block_timeout: Option<Duration>,
    /// The filter, compiled for the link type the capture is expected to have.
    filter: Option<Program>,
    /// The filter words, to compile again for a socket whose link type was not the one
    /// expected (a tunnel interface gives cooked headers, not Ethernet).
    filter_words: Vec<String>,
    /// The link type `filter` was compiled for.
    link_guess: LinkType,
    /// What names in the filter mean (the target's view), kept to compile it again: each
    /// name was looked up once, and a recompilation gets the same answers.
    names: Arc<crate::names::Names>,
}

impl CaptureSettings {
    /// Sockets on `interface` (`None`: the first up, non-loopback one) keeping `snaplen`
    /// bytes (not 0) of the packets that `filter_words` accept, promiscuous, both
    /// directions, the kernel's ring size and block timeout.
    ///
    /// The kernel runs the filter, so it is compiled before the socket exists: for `any`
    /// the link type is Linux cooked v2, otherwise Ethernet (checked once open). Names in
    /// it are looked up through `names` (the target's `/etc/hosts` and nameservers).
    pub fn new(
        interface: Option<String>,
        snaplen: u32,
        filter_words: &[String],
        names: Arc<crate::names::Names>,
    ) -> Result<Self> {
        let link_guess = if interface.as_deref() == Some("any") {
            LinkType::LinuxSll2
        } else {
            LinkType::Ethernet
        };
        let filter = crate::filter::compile(
            filter_words,
            link_guess,
            Mode::Live,
            snaplen,
            names.as_ref(),
        )?;
        Ok(CaptureSettings {
            interface,
            snaplen,
            promiscuous: true,
            buffer_kib: None,
            direction: Direction::InOut,
            block_timeout: None,
            filter,
            filter_words: filter_words.to_vec(),
            link_guess,
            names,
        })
    }

    /// The compiled filter, `None` without filter words.
    pub fn filter(&self) -> Option<&Program> {
        self.filter.as_ref()
    }

    /// Puts the interface into promiscuous mode or not.
    pub fn promiscuous(self, promiscuous: bool) -> Self {
        CaptureSettings {
            promiscuous,
            ..self
        }
    }

    /// The kernel ring's size in KiB (`None`: the default).
    pub fn buffer_kib(self, buffer_kib: Option<usize>) -> Self {
        CaptureSettings { buffer_kib, ..self }
    }

    /// Which packets the kernel hands over: received, sent or both.
    pub fn direction(self, direction: Direction) -> Self {
        CaptureSettings { direction, ..self }
    }

    /// How long the kernel holds a partly filled block (`None`: the default).
    pub fn block_timeout(self, block_timeout: Option<Duration>) -> Self {
        CaptureSettings {
            block_timeout,
            ..self
        }
    }

    /// A builder for one target's capture.
    pub fn builder(&self, namespace: snoopy_netns::Namespace) -> CaptureBuilder {
        let mut builder = CaptureBuilder::new()
            .snaplen(self.snaplen)
            .promiscuous(self.promiscuous)
            .direction(self.direction)
            .namespace(namespace);
        if let Some(interface) = &self.interface {
            builder = builder.interface(interface);
        }
        if let Some(kib) = self.buffer_kib {
            builder = builder.buffer_size(kib << 10);
        }
        if let Some(timeout) = self.block_timeout {
            builder = builder.block_timeout(timeout);
        }
        if let Some(program) = &self.filter {
            builder = builder.filter(program.clone());
        }
        builder
    }

    /// Opens the capture in `namespace`; when the socket's link type is not the one the
    /// filter was compiled for, compiles it again for the actual one and reopens.
    pub fn open(&self, namespace: snoopy_netns::Namespace) -> Result<Capture> {
        let again = namespace
            .try_clone()
            .context("duplicating the namespace handle")?;
        let capture = self.builder(namespace).open()?;
        if self.filter.is_none() || capture.link_type() == self.link_guess {
            return Ok(capture);
        }
        let actual = capture.link_type();
        drop(capture);
        let mut recompiled = self.clone();
        recompiled.filter = crate::filter::compile(
            &self.filter_words,
            actual,
            Mode::Live,
            self.snaplen,
            self.names.as_ref(),
        )?;
        recompiled.link_guess = actual;
        Ok(recompiled.builder(again).open()?)
    }
}
