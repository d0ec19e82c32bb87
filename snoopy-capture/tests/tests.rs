//! Integration tests of snoopy-capture (one binary; each module is one area).

mod applications;
mod decode;
mod files;
mod fixtures;
mod flows;
mod live;

mod filter_kernel;

// The packet corpus and tcpdump runners of snoopy-filter's differential tests, shared (one
// copy) with the kernel test above, which needs a live AF_PACKET socket and so lives here;
// this binary uses only part of it.
#[allow(dead_code)]
#[path = "../../snoopy-filter/tests/corpus.rs"]
mod filter_corpus;
