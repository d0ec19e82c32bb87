//! libFuzzer entry point of the `decode` target; the checks are `snoopy_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snoopy_fuzz::decode(data));
