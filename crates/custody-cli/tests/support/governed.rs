//! A keystore with a governed wallet for the `custody` binary's approval
//! tests (`cli_velocity.rs`, `cli_recovery.rs`): the binary run with
//! `--state` (`file` or a `postgres://` URL), approvers' devices played
//! by custody-policy's software authenticator (the including test file
//! declares it as `mod authenticator`, and support/world.rs as `mod
//! world`: its runs of the binary), assertions over the challenges
//! the binary prints written to approvals files.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::authenticator::{Device, ORIGIN, RP_ID, unb64};
use crate::world::{Run, custody};

/// The governed wallet.
pub(crate) const WALLET: &str = "treasury";

/// A payee.
pub(crate) const ALICE: &str = "0x1111111111111111111111111111111111111111";

/// A keystore with `--state STATE`, its relying party configured.
pub(crate) struct Keystore {
    _tmp: tempfile::TempDir,
    pub(crate) dir: PathBuf,
    state: String,
    files: std::cell::Cell<u32>,
}

impl Keystore {
    pub(crate) fn new(state: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ks");
        let ks = Self {
            _tmp: tmp,
            dir,
            state: state.to_owned(),
            files: std::cell::Cell::new(0),
        };
        ks.run(&["init", "--light-kdf"]).ok();
        ks.run(&["webauthn", "config", "--rp-id", RP_ID, "--origin", ORIGIN])
            .ok();
        ks
    }

    /// `custody --keystore DIR --state STATE ARGS`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        custody(&self.dir, &[&["--state", &self.state], args].concat())
    }

    /// A new file beside the keystore holding `text`; its path.
    pub(crate) fn file(&self, text: &str) -> String {
        self.files.set(self.files.get() + 1);
        let path = self
            .dir
            .with_extension(format!("f{}.json", self.files.get()));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// The challenge `custody challenge ARGS` prints, decoded.
    pub(crate) fn challenge(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(&[&["challenge"], args].concat()).ok();
        unb64(out["challenge"].as_str().unwrap())
    }

    /// An approvals file: an assertion of each of `devices` over
    /// `challenge`.
    pub(crate) fn approvals(&self, devices: &mut [&mut Device], challenge: &[u8]) -> String {
        let items: Vec<Value> = devices
            .iter_mut()
            .map(|d| serde_json::from_str(&d.assert(challenge)).unwrap())
            .collect();
        self.file(&Value::Array(items).to_string())
    }

    /// `device` registered (packed self-attestation) and added as a new
    /// approver of `role`; their id.
    pub(crate) fn enrol(&self, device: &mut Device, role: &str) -> String {
        let credential = self.file(&device.register(&[0x5a; 32], "packed"));
        let out = self
            .run(&[
                "approver",
                "add",
                "--wallet",
                WALLET,
                "--role",
                role,
                "--credential",
                &credential,
            ])
            .ok();
        out["approverId"].as_str().unwrap().to_owned()
    }

    /// `policy` set, approved by `devices`.
    pub(crate) fn set_policy(&self, policy: &Value, devices: &mut [&mut Device]) {
        let file = self.file(&policy.to_string());
        let challenge = self.challenge(&["policy-set", "--wallet", WALLET, "--file", &file]);
        let approvals = self.approvals(devices, &challenge);
        self.run(&[
            "policy",
            "set",
            "--wallet",
            WALLET,
            "--file",
            &file,
            "--approvals",
            &approvals,
        ])
        .ok();
    }

    /// `sign-tx` of `wei` to `to` at `nonce` from the wallet's index 0,
    /// approved by `devices`.
    pub(crate) fn pay(&self, devices: &mut [&mut Device], to: &str, wei: u128, nonce: u64) -> Run {
        let tx = json!({
            "type": "0x2", "chainId": "0x1", "nonce": format!("0x{nonce:x}"), "to": to,
            "value": format!("0x{wei:x}"), "gas": "0x5208",
            "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1", "data": "0x"
        });
        let tx = self.file(&tx.to_string());
        let args = ["--wallet", WALLET, "--index", "0", "--tx", &tx];
        let challenge = self.challenge(&[&["sign-tx"], &args[..]].concat());
        let approvals = self.approvals(devices, &challenge);
        self.run(&[&["sign-tx"], &args[..], &["--approvals", &approvals]].concat())
    }
}
