//! Integration tests of snoopy-capture, one binary (see STYLE.md).

mod filter_corpus;
mod filter_diff;
mod filter_live;
mod filter_random;
