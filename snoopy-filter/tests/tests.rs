//! Integration tests of snoopy-filter (one binary; each module is one area). The differential
//! suites need `tcpdump`; `live` needs root (it opens `lo` and `any` to get libpcap's live
//! programs).

mod corpus;
mod diff;
mod limits;
mod live;
mod names;
mod random;
