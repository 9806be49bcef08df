//! Notation JWS and COSE signature envelopes and their payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| verdict_scanner::fuzzing::notation_envelope(data));
