//! Gatekeeper's ProviderRequest body as the API reads it: the envelope, then every key through
//! the key planner (`[namespace]` prefix, reference grammar, dedupe).
#![no_main]

use libfuzzer_sys::fuzz_target;
use verdict_cache_api::wire::{KeyPlan, parse_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request(data, 1000) {
        let plan = KeyPlan::new(request.keys);
        assert!(plan.subjects.len() <= plan.items.len());
    }
});
