//! Integration tests of snoopy-capture (one binary; each module is one area).

mod decode;
mod files;
mod fixtures;
mod flows;
mod live;

mod filter_corpus;
mod filter_diff;
mod filter_kernel;
mod filter_live;
mod filter_random;
