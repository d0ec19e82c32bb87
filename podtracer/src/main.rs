//! `podtracer`: the node CLI of Snoopy.
#![forbid(unsafe_code)]

fn main() {}
