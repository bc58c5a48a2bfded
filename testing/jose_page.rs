//! The page side of the browser JWE tests (custody-jose's keystore key,
//! custody-kms's KMS keys): a loopback page that imports the npm `jose`
//! package (6.x) and seals with WebCrypto, and the checks of what the seam
//! opens. Included by path beside `testing/chromium.rs` (as `chromium`)
//! by each test that uses it.
//!
//! Test code: a failed `unwrap` or `assert` here is a failed test.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use custody_core::{AuditOutcome, Audited, Authorization, KeyBackend, MemoryAuditLog, PinnedKey};
use custody_jose::jwe::{self, OpenError, Scope};
use serde_json::{Value, json};

use crate::chromium;

/// The API key the page seals (a made-up exchange secret).
pub(crate) const API_KEY: &str = "exch-live-7Hq2!vN/9xKp+Wm3=ZrT4sLd8€";
pub(crate) const SCOPE: &str = "importer/api-keys";

/// The browser and the `jose` modules, or `None` after saying why the test
/// is skipped.
pub(crate) fn browser_and_jose(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (
        std::env::var_os("CUSTODY_TEST_CHROMIUM"),
        std::env::var_os("CUSTODY_TEST_JOSE_JS"),
    ) {
        (Some(chromium), Some(jose)) => Some((chromium.into(), jose.into())),
        _ => {
            println!(
                "skipped {test}: set CUSTODY_TEST_CHROMIUM to a Chromium binary and \
                 CUSTODY_TEST_JOSE_JS to the npm jose package's dist/webapi directory"
            );
            None
        }
    }
}

/// The page (`/`) and the package's modules (`/jose/...`, plain relative
/// paths inside its directory only).
pub(crate) fn route(jose: PathBuf) -> Box<chromium::Route> {
    Box::new(move |path: &str| {
        if path == "/" {
            return Some((
                "text/html",
                b"<!doctype html><meta charset=utf-8><title>custody sealing</title>".to_vec(),
            ));
        }
        let relative = Path::new(path.strip_prefix("/jose/")?);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !plain || relative.extension()? != "js" {
            return None;
        }
        Some(("text/javascript", std::fs::read(jose.join(relative)).ok()?))
    })
}

/// Seals `API_KEY` in the page with `jose.CompactEncrypt` to the public
/// JWK `jwk` (as the service publishes it), `alg`, `enc` A256GCM, the scope
/// in the protected header and named critical; returns the compact JWE.
pub(crate) fn seal_in_browser(browser: &mut chromium::Chromium, jwk: &Value, alg: &str) -> String {
    let script = format!(
        "(async () => {{
            const jose = await import('/jose/index.js');
            const jwk = {jwk};
            const key = await jose.importJWK(jwk, {alg});
            return await new jose.CompactEncrypt(new TextEncoder().encode({secret}))
                .setProtectedHeader({{alg: {alg}, enc: 'A256GCM', kid: jwk.kid,
                                      scope: {scope}, crit: ['scope']}})
                .encrypt(key, {{crit: {{scope: true}}}});
        }})()",
        alg = json!(alg),
        secret = json!(API_KEY),
        scope = json!(SCOPE),
    );
    browser.eval(&script).as_str().unwrap().to_owned()
}

/// The protected header of a compact JWE, decoded.
pub(crate) fn protected_header(jwe: &str) -> Value {
    let first = jwe.split('.').next().unwrap();
    serde_json::from_slice(&custody_jose::b64::decode(first, "protected header").unwrap()).unwrap()
}

/// Opens `jwe` through `Audited(backend)` and checks the plaintext and the
/// record the open left.
pub(crate) fn opens_through_the_seam(backend: Arc<dyn KeyBackend>, key: &PinnedKey, jwe: &str) {
    let audit = Arc::new(MemoryAuditLog::new());
    let audited = Audited::new(backend, audit.clone());
    let scope = Scope::new(SCOPE).unwrap();
    let auth = Authorization::none();
    let opened = jwe::open(&audited, key, jwe, &scope, &auth).wait().unwrap();
    assert_eq!(opened.expose_secret(), API_KEY.as_bytes());
    let records = audit.records();
    let record = records.last().unwrap();
    assert_eq!(record.event().op().as_str(), "decrypt");
    assert_eq!(record.event().outcome(), AuditOutcome::Success);
    assert_eq!(record.event().field("intent"), Some("unseal"));
    // Sealed for this scope, it opens for no other.
    let other = Scope::new("billing/api-keys").unwrap();
    let refused = jwe::open(&audited, key, jwe, &other, &auth).wait();
    assert!(
        matches!(refused, Err(OpenError::ScopeMismatch)),
        "{refused:?}"
    );
}
