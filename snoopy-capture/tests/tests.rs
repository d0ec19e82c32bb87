//! Integration tests of snoopy-capture (one binary; each module is one area).

mod decode;
mod files;
mod fixtures;
mod flows;
mod live;
