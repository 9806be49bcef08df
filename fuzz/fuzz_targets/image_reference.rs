//! The image-reference grammar: whatever parses prints back to a string that parses to the
//! same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verdict_scanner::registry::ImageReference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = ImageReference::parse(text) {
        let printed = reference.to_string();
        let again = ImageReference::parse(&printed).expect("a printed reference parses");
        assert_eq!(again.to_string(), printed);
    }
});
