//! libFuzzer entry point of the `flows` target; the checks are `snoopy_fuzz::flows`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snoopy_fuzz::flows(data));
