//! The AWS KMS emulator (moto, started by `.ci/run`) as the tests of the
//! `custody` binary and of the C ABI reach it: its endpoint and a Python
//! with boto3 from the environment (or a skip), keys made with boto3
//! (another SDK than the one under test), and the standard AWS
//! environment pointed at it. Included by path (`#[path = ...] mod
//! kms_emulator;`) from each test that uses it, so that one copy serves
//! them all.
//!
//! Test code: a failed `unwrap` or `assert` here is a failed test.
#![allow(dead_code, reason = "each test that includes this uses a part of it")]

use std::process::Command;

/// The access key id the tests' AWS environment and boto3 use.
const ACCESS_KEY_ID: &str = "AKIDCUSTODYTEST";

/// The emulator: its endpoint and the Python (with boto3) that makes keys
/// on it.
pub(crate) struct KmsEmulator {
    pub(crate) endpoint: String,
    pub(crate) python: String,
}

/// The emulator named by `CUSTODY_TEST_KMS_ENDPOINT` and
/// `CUSTODY_TEST_PYTHON`, or `None` after saying `test` is skipped (either
/// unset or empty).
pub(crate) fn emulator(test: &str) -> Option<KmsEmulator> {
    match (
        std::env::var("CUSTODY_TEST_KMS_ENDPOINT"),
        std::env::var("CUSTODY_TEST_PYTHON"),
    ) {
        (Ok(endpoint), Ok(python)) if !endpoint.is_empty() && !python.is_empty() => {
            Some(KmsEmulator { endpoint, python })
        }
        _ => {
            println!(
                "skipped {test}: set CUSTODY_TEST_KMS_ENDPOINT to a KMS emulator (moto) and CUSTODY_TEST_PYTHON to a Python with boto3"
            );
            None
        }
    }
}

impl KmsEmulator {
    /// Creates a key of `spec` for `usage` (KMS's names, e.g.
    /// `ECC_NIST_P256`, `KEY_AGREEMENT`) with boto3; its id and ARN.
    pub(crate) fn create_key(&self, spec: &str, usage: &str) -> (String, String) {
        let script = format!(
            "import boto3,json\n\
             c=boto3.client('kms',endpoint_url='{}',region_name='us-east-1',\
             aws_access_key_id='{ACCESS_KEY_ID}',aws_secret_access_key='x')\n\
             m=c.create_key(KeySpec='{spec}',KeyUsage='{usage}')['KeyMetadata']\n\
             print(json.dumps([m['KeyId'],m['Arn']]))",
            self.endpoint
        );
        let out = Command::new(&self.python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: (String, String) = serde_json::from_slice(&out.stdout).unwrap();
        v
    }

    /// A new symmetric key (a KEK): its id.
    pub(crate) fn kek(&self) -> String {
        self.create_key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT").0
    }

    /// A new secp256k1 signing key: its id and ARN.
    pub(crate) fn signing_key(&self) -> (String, String) {
        self.create_key("ECC_SECG_P256K1", "SIGN_VERIFY")
    }

    /// [`aws_env`] pointed at the emulator.
    pub(crate) fn aws_env(&self) -> [(&'static str, String); 7] {
        aws_env(&self.endpoint)
    }
}

/// The standard AWS environment custody reads (endpoint, region, static
/// credentials), pointed at `endpoint`; never a developer's own AWS
/// profile or instance metadata.
pub(crate) fn aws_env(endpoint: &str) -> [(&'static str, String); 7] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "custody-test-secret-key-not-real".to_owned(),
        ),
        ("AWS_CONFIG_FILE", "/nonexistent/custody-test".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/custody-test".to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}
