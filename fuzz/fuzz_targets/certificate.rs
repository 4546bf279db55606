//! The verify callback's certificate parsing: extracting the Ed25519 key
//! from a DER certificate never panics, and whatever it accepts is a
//! 32-byte key that a certificate really carries (re-parsing agrees).
#![no_main]

use libfuzzer_sys::fuzz_target;
use peersock_core::key_from_certificate_der;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = key_from_certificate_der(data) {
        assert_eq!(key.len(), 32);
        assert_eq!(key_from_certificate_der(data).unwrap(), key);
    }
});
