//! Integration tests of snoopy-capture (one binary; modules by subject).

mod live;
