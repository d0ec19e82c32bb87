//! libFuzzer entry point of the `read` target; the checks are `snoopy_fuzz::read`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snoopy_fuzz::read(data));
