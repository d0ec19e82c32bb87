//! libFuzzer entry point of the `filter` target; the checks are `snoopy_fuzz::filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snoopy_fuzz::filter(data));
