//! Known-answer tests from the RFCs (walking the committed vector files)
//! and a differential test against an independent implementation
//! (`totp-rs`).

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use custody_totp::{Algorithm, Digits, Period, TotpParams, hotp};
use proptest::prelude::*;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/../../vectors/totp/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rfc4226_appendix_d() {
    let v = load("rfc4226_hotp.json");
    let secret = hex::decode(v["secret_hex"].as_str().unwrap()).unwrap();
    assert_eq!(secret, v["secret_ascii"].as_str().unwrap().as_bytes());
    assert_eq!(v["algorithm"], "SHA1");
    let digits = Digits::new(u8::try_from(v["digits"].as_u64().unwrap()).unwrap()).unwrap();
    let rows = v["vectors"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let count = row["count"].as_u64().unwrap();
        let code = hotp(&secret, count, Algorithm::Sha1, digits).unwrap();
        assert_eq!(
            code.expose_str(),
            row["hotp"].as_str().unwrap(),
            "count {count}"
        );
        // The 31-bit truncated value, checked through the widest code.
        let truncated = row["truncated_decimal"].as_u64().unwrap();
        let eight = hotp(&secret, count, Algorithm::Sha1, Digits::EIGHT).unwrap();
        assert_eq!(
            eight.expose_str(),
            format!("{:08}", truncated % 100_000_000),
            "count {count}"
        );
        let seven = hotp(&secret, count, Algorithm::Sha1, Digits::SEVEN).unwrap();
        assert_eq!(seven.expose_str(), format!("{:07}", truncated % 10_000_000));
    }
}

#[test]
fn rfc6238_appendix_b() {
    let v = load("rfc6238_totp.json");
    assert_eq!(v["T0"], 0);
    let period = Period::new(v["step_seconds"].as_u64().unwrap()).unwrap();
    let digits = Digits::new(u8::try_from(v["digits"].as_u64().unwrap()).unwrap()).unwrap();
    let rows = v["vectors"].as_array().unwrap();
    assert_eq!(rows.len(), 18);
    let mut modes = std::collections::BTreeSet::new();
    for row in rows {
        let mode = row["mode"].as_str().unwrap();
        modes.insert(mode.to_owned());
        let algorithm = Algorithm::from_name(mode).unwrap();
        let secret = hex::decode(v["seeds"][mode]["hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            secret.len() as u64,
            v["seeds"][mode]["len"].as_u64().unwrap()
        );
        let time = row["time"].as_u64().unwrap();
        let params = TotpParams {
            algorithm,
            digits,
            period,
        };
        // The step (the RFC's T), as the table gives it in hex.
        let t = u64::from_str_radix(row["T_hex"].as_str().unwrap(), 16).unwrap();
        assert_eq!(params.step_at(time), t, "{mode} at {time}");
        let code = params.code_at(&secret, time).unwrap();
        assert_eq!(
            code.expose_str(),
            row["totp"].as_str().unwrap(),
            "{mode} at {time}"
        );
    }
    assert_eq!(modes.len(), 3);
}

#[test]
fn steps_past_2038_2106_and_2500() {
    // 64-bit counters: a 1-second period puts the step past 2^32 in 2106
    // and the year 2500 (16725225600) is still exact.
    let secret = b"12345678901234567890";
    for (algorithm, period) in [(Algorithm::Sha1, 1), (Algorithm::Sha512, 30)] {
        let params = TotpParams {
            algorithm,
            digits: Digits::EIGHT,
            period: Period::new(period).unwrap(),
        };
        for time in [2_147_483_648u64, 4_294_967_296, 16_725_225_600] {
            let step = params.step_at(time);
            assert_eq!(step, time / period);
            assert_eq!(
                params.code_at(secret, time).unwrap().expose_str(),
                hotp(secret, step, algorithm, Digits::EIGHT)
                    .unwrap()
                    .expose_str()
            );
        }
    }
}

fn oracle_algorithm(a: Algorithm) -> totp_rs::Algorithm {
    match a {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        _ => totp_rs::Algorithm::SHA512,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Our codes equal totp-rs's for random secrets, times up to the year
    /// 2500, every algorithm, 6-8 digits and periods from 1 s to a day.
    #[test]
    fn codes_match_totp_rs(
        secret in proptest::collection::vec(any::<u8>(), 16..80),
        time in 0u64..=16_725_225_600,
        algorithm in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        digits in 6u8..=8,
        period in prop_oneof![Just(30u64), Just(60), 1u64..=86_400],
    ) {
        let params = TotpParams {
            algorithm,
            digits: Digits::new(digits).unwrap(),
            period: Period::new(period).unwrap(),
        };
        let ours = params.code_at(&secret, time).unwrap();
        let oracle = totp_rs::Builder::new()
            .with_algorithm(oracle_algorithm(algorithm))
            .with_digits(digits)
            .with_step_duration(period)
            .with_secret(secret.clone())
            .build()
            .unwrap();
        prop_assert_eq!(ours.expose_str(), oracle.generate(time).to_string());
    }
}
