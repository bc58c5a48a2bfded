//! JWTs signed and verified by custody-jose beside the raw primitive, in
//! the same run (issue #18, item 7), paired as `hot_path_paired` is: each
//! custody call timed in blocks interleaved with the primitive's (see
//! `Pairing` in lib.rs), so that the shared machine's noise lands on both.
//!
//! - sign (ES256K, ES256, EdDSA): `sign_jwt` through the seam (a vault key
//!   pinned by id: the JSON and base64url of header and claims, the
//!   signing input, the vault's signature, the compact token) beside the
//!   raw signature of the same signing input with k256, p256 and
//!   ed25519-dalek (SHA-256 and RFC 6979 inside, as the JWS needs). The
//!   baseline is the same work: the vault's in-process signatures are not
//!   verified again by the seam (`custody_core::Origin` says why), and
//!   neither is the raw one;
//! - sign, checked (`sign_*_checked`): a vault built
//!   `with_verify_after_sign(true)`, whose every signature the seam
//!   verifies against the pinned key (as a KMS's or HSM's), beside the raw
//!   signature followed by the raw verification of it with the same
//!   crate: what a careful raw user who wants that check does;
//! - verify (ES256K, ES256, RS256, PS256, EdDSA; jwcrypto's tokens from
//!   `vectors/jose/jws.json`): `jwt::verify` against a one-key JWKS (parse,
//!   key choice, the algorithm fixed by the key, the signature, the claims'
//!   `exp`/`nbf`/`iat`/`aud`/`iss`) beside base64url-decoding the signature
//!   and checking it with k256, p256, rsa (PKCS#1 v1.5, PSS) and
//!   ed25519-dalek (`verify_strict`) over the same signing input;
//! - seal and open (`ECDH-ES`, `ECDH-ES+A256KW`, `A256GCM`, a 64-byte
//!   secret): `jwe::seal_with` to a vault's P-256 key, and `jwe::open`
//!   through the vault (no audit layer), beside the raw primitives of
//!   `jwe_raw.rs` (a fresh ephemeral key and ECDH, the Concat KDF, AES Key
//!   Wrap, AES-256-GCM) that `jwe.rs` times one after the other.
//!
//! Run `cargo bench -p custody-benches --bench jwt`, then
//! `benches/report.sh` for the ratios.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::missing_docs_in_private_items,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::sync::Arc;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use criterion::{Criterion, criterion_group, criterion_main};
use custody_benches::Pairing;
use custody_core::{
    Authorization, KeyAlgorithm, KeyId, KeyRef, KeySigner, PrivateKeyBytes, SharedBackend, Vault,
    WalletScheme,
};
use custody_jose::{JwkSet, Validation};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

#[path = "jwe_raw.rs"]
mod jwe_raw;

const GROUP: &str = "jwt_paired";

/// A vault holding one key of `algorithm` (a fixed secret), pinned; with
/// `checked`, a vault whose signatures the seam verifies.
fn signer(algorithm: KeyAlgorithm, secret: [u8; 32], checked: bool) -> KeySigner {
    let vault = Arc::new(
        Vault::new(custody_benches::kek(), WalletScheme::Default).with_verify_after_sign(checked),
    );
    let id = KeyId::new("jwt").unwrap();
    vault
        .insert_algorithm_key(
            id.clone(),
            algorithm,
            PrivateKeyBytes::from_slice(&secret).unwrap(),
        )
        .unwrap();
    let backend: SharedBackend = vault;
    KeySigner::pin(backend, KeyRef::Stored(id)).wait().unwrap()
}

/// The signing input (`header.payload`) of a compact JWS.
fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').unwrap().0
}

fn sign_benches(c: &mut Criterion) {
    const SECRET: [u8; 32] = [0x37; 32];
    let claims = json!({
        "sub": "svc-importer", "aud": "payments", "iss": "https://issuer.example",
        "iat": 1_800_000_000u64, "exp": 1_800_000_600u64, "jti": "bench",
    });
    let none = Authorization::none();
    let k256_key = k256::ecdsa::SigningKey::from_slice(&SECRET).unwrap();
    let p256_key = p256::ecdsa::SigningKey::from_slice(&SECRET).unwrap();
    let ed_key = ed25519_dalek::SigningKey::from_bytes(&SECRET);

    let mut g = c.benchmark_group(GROUP);
    for (name, algorithm, checked) in [
        ("sign_es256k", KeyAlgorithm::Secp256k1, false),
        ("sign_es256", KeyAlgorithm::P256, false),
        ("sign_eddsa", KeyAlgorithm::Ed25519, false),
        ("sign_es256k_checked", KeyAlgorithm::Secp256k1, true),
        ("sign_es256_checked", KeyAlgorithm::P256, true),
        ("sign_eddsa_checked", KeyAlgorithm::Ed25519, true),
    ] {
        let signer = signer(algorithm, SECRET, checked);
        let token = custody_jose::sign_jwt(&signer, &claims, &none)
            .wait()
            .unwrap();
        let input = signing_input(&token).as_bytes().to_vec();
        // The raw signature, and with `checked` its verification by the
        // same crate (k256 and p256 verify the low-s form they sign).
        let raw: Box<dyn Fn()> = match algorithm {
            KeyAlgorithm::Secp256k1 => Box::new(|| {
                let sig: k256::ecdsa::Signature =
                    k256::ecdsa::signature::Signer::sign(&k256_key, black_box(&input));
                if checked {
                    k256::ecdsa::signature::Verifier::verify(
                        k256_key.verifying_key(),
                        &input,
                        &sig,
                    )
                    .unwrap();
                }
                black_box(sig);
            }),
            KeyAlgorithm::P256 => Box::new(|| {
                let sig: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::sign(&p256_key, black_box(&input));
                if checked {
                    p256::ecdsa::signature::Verifier::verify(
                        p256_key.verifying_key(),
                        &input,
                        &sig,
                    )
                    .unwrap();
                }
                black_box(sig);
            }),
            _ => Box::new(|| {
                let sig = ed25519_dalek::Signer::sign(&ed_key, black_box(&input));
                if checked {
                    ed_key.verifying_key().verify_strict(&input, &sig).unwrap();
                }
                black_box(sig);
            }),
        };
        let mut pairing = Pairing::default();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                pairing.run(iters, &raw, |_| {
                    let token = custody_jose::sign_jwt(&signer, black_box(&claims), &none)
                        .wait()
                        .unwrap();
                    black_box(token);
                })
            });
        });
        pairing.save(GROUP, name);
    }
    g.finish();
}

/// A raw check of a signature (base64url as in the token) over `input`.
type RawVerify = Box<dyn Fn(&[u8], &str)>;

fn raw_verifier(alg: &str, jwk: &Value) -> RawVerify {
    let b = |k: &str| Base64UrlUnpadded::decode_vec(jwk[k].as_str().unwrap()).unwrap();
    let sig = |s: &str| Base64UrlUnpadded::decode_vec(s).unwrap();
    match alg {
        "ES256K" | "ES256" => {
            let mut sec1 = vec![4u8];
            sec1.extend(b("x"));
            sec1.extend(b("y"));
            if alg == "ES256K" {
                let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
                Box::new(move |input, s| {
                    // jwcrypto's ES256K signatures may have a high s, which
                    // ES256K accepts and k256 wants normalized (as custody does).
                    let s = k256::ecdsa::Signature::from_slice(&sig(s)).unwrap();
                    k256::ecdsa::signature::Verifier::verify(&key, input, &s.normalize_s())
                        .unwrap();
                })
            } else {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
                Box::new(move |input, s| {
                    let s = p256::ecdsa::Signature::from_slice(&sig(s)).unwrap();
                    p256::ecdsa::signature::Verifier::verify(&key, input, &s).unwrap();
                })
            }
        }
        "RS256" | "PS256" => {
            let key = rsa::PublicKey::new(
                rsa::BoxedUint::from_be_slice_vartime(&b("n")),
                rsa::BoxedUint::from_be_slice_vartime(&b("e")),
            )
            .unwrap();
            let pss = alg == "PS256";
            Box::new(move |input, s| {
                let digest = Sha256::digest(input);
                if pss {
                    key.verify(rsa::Pss::<Sha256>::new_with_salt(32), &digest, &sig(s))
                        .unwrap();
                } else {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &sig(s))
                        .unwrap();
                }
            })
        }
        "EdDSA" => {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&b("x").try_into().unwrap()).unwrap();
            Box::new(move |input, s| {
                let s = ed25519_dalek::Signature::from_slice(&sig(s)).unwrap();
                key.verify_strict(input, &s).unwrap();
            })
        }
        other => panic!("alg {other}"),
    }
}

fn verify_benches(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors/jose/jws.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let now = v["now"].as_u64().unwrap();
    let validation = Validation::new(now)
        .with_audience("payments".to_owned())
        .with_issuer("https://issuer.example".to_owned());

    let mut g = c.benchmark_group(GROUP);
    for alg in ["ES256K", "ES256", "RS256", "PS256", "EdDSA"] {
        let vector = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["alg"] == alg)
            .unwrap();
        let token = vector["token"].as_str().unwrap().to_owned();
        let jwks =
            JwkSet::from_json(json!({"keys": [vector["jwk"]]}).to_string().as_bytes()).unwrap();
        // Both sides accept the vector before anything is timed.
        let verified = custody_jose::jwt::verify(&token, &jwks, &validation).unwrap();
        assert_eq!(
            Value::Object(verified.claims().members().clone()),
            vector["claims"]
        );
        let raw = raw_verifier(alg, &vector["jwk"]);
        let (input, signature) = token.rsplit_once('.').unwrap();
        raw(input.as_bytes(), signature);

        let name = format!("verify_{}", alg.to_ascii_lowercase());
        let mut pairing = Pairing::default();
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                pairing.run(
                    iters,
                    || raw(black_box(input.as_bytes()), black_box(signature)),
                    |_| {
                        let jwt = custody_jose::jwt::verify(black_box(&token), &jwks, &validation)
                            .unwrap();
                        black_box(jwt);
                    },
                )
            });
        });
        pairing.save(GROUP, &name);
    }
    g.finish();
}

fn seal_open_benches(c: &mut Criterion) {
    use custody_jose::jwe::{self, JweAlgorithm, Recipient, Scope};
    use jwe_raw::{D, SECRET, raw_open, raw_seal, vault_key};
    let (vault, key) = vault_key();
    let backend: SharedBackend = vault;
    let recipient = Recipient::from_pinned(&key).unwrap();
    let scope = Scope::new("importer/api-keys").unwrap();
    let secret = p256::NonZeroScalar::try_from(&D[..]).unwrap();
    let public = p256::PublicKey::from_secret_scalar(&secret);
    let auth = Authorization::none();

    let mut g = c.benchmark_group(GROUP);
    for (name, alg, wrap) in [
        ("ecdh_es", JweAlgorithm::EcdhEs, false),
        ("ecdh_es_a256kw", JweAlgorithm::EcdhEsA256kw, true),
    ] {
        let seal = format!("seal_{name}");
        let mut pairing = Pairing::default();
        g.bench_function(&seal, |b| {
            b.iter_custom(|iters| {
                pairing.run(
                    iters,
                    || {
                        black_box(raw_seal(black_box(&public), wrap));
                    },
                    |_| {
                        black_box(jwe::seal_with(black_box(&recipient), alg, &scope, &SECRET))
                            .unwrap();
                    },
                )
            });
        });
        pairing.save(GROUP, &seal);

        let raw_sealed = raw_seal(&public, wrap);
        let token = jwe::seal_with(&recipient, alg, &scope, &SECRET).unwrap();
        // Both sides open what they sealed before anything is timed.
        assert_eq!(raw_open(&secret, &raw_sealed), SECRET);
        let opened = jwe::open(backend.as_ref(), &key, &token, &scope, &auth)
            .wait()
            .unwrap();
        assert_eq!(opened.expose_secret(), SECRET);
        let open = format!("open_{name}");
        let mut pairing = Pairing::default();
        g.bench_function(&open, |b| {
            b.iter_custom(|iters| {
                pairing.run(
                    iters,
                    || {
                        black_box(raw_open(black_box(&secret), black_box(&raw_sealed)));
                    },
                    |_| {
                        let opened =
                            jwe::open(backend.as_ref(), &key, black_box(&token), &scope, &auth)
                                .wait()
                                .unwrap();
                        black_box(opened);
                    },
                )
            });
        });
        pairing.save(GROUP, &open);
    }
    g.finish();
}

criterion_group!(benches, sign_benches, verify_benches, seal_open_benches);
criterion_main!(benches);
