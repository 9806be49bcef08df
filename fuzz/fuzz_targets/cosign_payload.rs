//! Cosign simple-signing payloads and in-toto statements.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| verdict_scanner::fuzzing::cosign_payload(data));
