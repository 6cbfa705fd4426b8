//! Any bytes as config.json: parsing and evaluation must answer (a verdict or an error), never panic, and a
//! spec that runs must be stable under a second evaluation.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use strict_policy::{evaluate, evaluate_document, parse_spec, Catalog, FakeHost, Outcome, Permissions, PolicyConfig};

fn permissions() -> &'static Permissions {
    static PERMS: OnceLock<Permissions> = OnceLock::new();
    PERMS.get_or_init(|| {
        let catalog = Catalog::embedded().expect("embedded profiles load");
        let plugs = catalog.default_connections("microk8s").expect("microk8s plugs");
        Permissions::new(Arc::new(catalog), PolicyConfig::default(), plugs, "fuzz").expect("valid plugs")
    })
}

fuzz_target!(|data: &[u8]| {
    let host = FakeHost::default().symlink("/data/link", "/etc");
    let Ok(mut document) = parse_spec(data) else { return };
    let verdict = evaluate_document(&mut document, permissions(), &host);
    if verdict.runs() {
        let again = evaluate(&mut document.spec, permissions(), &host);
        assert_eq!(again.outcome(), Outcome::Allowed, "narrowing is idempotent: {:?}", again.narrowed);
    }
});
