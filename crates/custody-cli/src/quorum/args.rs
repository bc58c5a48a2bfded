//! The arguments of `custody quorum ...` (shared/CLI.md, "Quorum boot").
#![allow(
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    reason = "these doc comments are clap's --help text, printed verbatim: URLs, [:port] and <placeholders> are meant literally, and rustdoc markup would show in the terminal (expect cannot be used: rustdoc lints are not checked by rustc, so the expectation would be unfulfilled under clippy)"
)]

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `custody quorum ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum QuorumCommand {
    /// Split a fresh quorum key M-of-N: one secret share file per holder
    /// (DIR/share-<i>.json, mode 0600) and the public share set
    /// (DIR/shareset.json: threshold, quorum public key, a commitment per
    /// share). The quorum secret itself is never written.
    ///
    /// Prints {"quorumPublicKey", "threshold", "shares", "shareSet" (its
    /// path), "setId", "shareFiles"}.
    ///
    /// Example: custody quorum split --threshold 2 --shares 3 --out ceremony/
    Split(SplitArgs),
    /// The enclave's side.
    #[command(subcommand)]
    Enclave(EnclaveCommand),
    /// A holder's step: check the enclave's attestation document (the chain
    /// to the pinned AWS root, or --root; the expected PCRs; user_data;
    /// optionally the enclave key), then seal the share to the document's
    /// public key (HPKE, RFC 9180). A failed check is kind
    /// attestation-invalid (exit 3), naming the check.
    ///
    /// Prints {"sealedShare" (the --out path, or the sealed share as
    /// base64url), "index", "enclaveKey"}.
    ///
    /// Example: custody quorum seal-share --share share-1.json --shareset shareset.json --attestation attestation.cose --expect-pcrs pcrs.json --out sealed-1.json
    SealShare(SealShareArgs),
    /// The enclave's step 2: open the sealed shares with the key of
    /// `enclave start`, check each against its commitment, rebuild the
    /// quorum key at the threshold and check it against the share set's
    /// public key; then delete the enclave key. Too few shares is kind
    /// quorum-incomplete; a refused share is kind share-invalid naming its
    /// index (another set's, a repeat, sealed to another key, tampered).
    ///
    /// Prints {"quorumPublicKey", "sharesUsed" (the indices), "kekId"}.
    ///
    /// Example: custody quorum boot --dir enclave/ --shareset shareset.json --sealed sealed-1.json sealed-3.json
    Boot(BootArgs),
}

/// `custody quorum enclave ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EnclaveCommand {
    /// The enclave's step 1: a fresh ephemeral key (DIR/enclave-key, mode
    /// 0600) and an attestation document binding it as public_key, with
    /// --user-data as user_data (DIR/attestation.cose). With --nsm fake
    /// (builds with the nsm-fake feature: tests and local runs) the
    /// document is signed under a test root written to DIR/test-root.pem;
    /// without it, the NSM device must be driven by an enclave binary.
    ///
    /// Prints {"attestation" (its path), "enclaveKey", "pcrs"}.
    ///
    /// Example: custody quorum enclave start --dir enclave/ --nsm fake --user-data 0x<manifest hash>
    Start(EnclaveStartArgs),
}

/// `custody quorum split`.
#[derive(Debug, Args)]
pub(crate) struct SplitArgs {
    /// How many shares rebuild the key (M, 1..=N).
    #[arg(long, value_name = "M")]
    pub(crate) threshold: u8,
    /// How many shares are made (N, at most 255).
    #[arg(long, value_name = "N")]
    pub(crate) shares: u8,
    /// The directory the share files and the share set are written to
    /// (created if missing; existing files are never replaced).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
}

/// `custody quorum enclave start`.
#[derive(Debug, Args)]
pub(crate) struct EnclaveStartArgs {
    /// The enclave's working directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// `fake`: a fake NSM under a test root (only in builds with the
    /// nsm-fake feature).
    #[arg(long, value_name = "NSM")]
    pub(crate) nsm: Option<String>,
    /// The document's user_data (hex, 0x optional; at most 512 bytes), e.g.
    /// a manifest hash; it is also the HPKE info every share is sealed with.
    #[arg(long, value_name = "HEX")]
    pub(crate) user_data: Option<String>,
}

/// `custody quorum seal-share`.
#[derive(Debug, Args)]
pub(crate) struct SealShareArgs {
    /// This holder's share file.
    #[arg(long, value_name = "FILE")]
    pub(crate) share: PathBuf,
    /// The public share set.
    #[arg(long, value_name = "FILE")]
    pub(crate) shareset: PathBuf,
    /// The enclave's attestation document (raw COSE_Sign1, or base64).
    #[arg(long, value_name = "FILE")]
    pub(crate) attestation: PathBuf,
    /// The PCRs the enclave image must have: {"0": "hex", "1": "hex", ...}.
    #[arg(long, value_name = "FILE")]
    pub(crate) expect_pcrs: PathBuf,
    /// The user_data the document must carry (hex, 0x optional).
    #[arg(long, value_name = "HEX")]
    pub(crate) user_data: Option<String>,
    /// The enclave key the document must carry as public_key (0x + 130
    /// hex digits, as `enclave start` prints it).
    #[arg(long, value_name = "HEX")]
    pub(crate) enclave_key: Option<String>,
    /// Pin this root certificate (PEM) instead of AWS's Nitro root G1:
    /// for tests with a fake NSM.
    #[arg(long, value_name = "PEM")]
    pub(crate) root: Option<PathBuf>,
    /// Accept a debug-mode enclave (PCR0-2 all zeros): development only.
    #[arg(long)]
    pub(crate) allow_debug: bool,
    /// Verify at this time (seconds since the UNIX epoch) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) at: Option<u64>,
    /// Write the sealed share to this new file instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `custody quorum boot`.
#[derive(Debug, Args)]
pub(crate) struct BootArgs {
    /// The enclave's working directory (of `enclave start`).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// The public share set.
    #[arg(long, value_name = "FILE")]
    pub(crate) shareset: PathBuf,
    /// The sealed shares (JSON, or its base64url as seal-share prints it).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    pub(crate) sealed: Vec<PathBuf>,
}
