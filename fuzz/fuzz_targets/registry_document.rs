//! Image manifests and indexes (referrers API answers, tag-schema fallback indexes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| verdict_scanner::fuzzing::registry_document(data));
