//! Integration tests of snoopy-capture (one binary; each module is one area).

mod files;
mod fixtures;
mod live;
