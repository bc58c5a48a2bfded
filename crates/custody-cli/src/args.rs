//! The command line, as `shared/CLI.md` specifies it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Hold keys the way custodians do: one protected master, keys per wallet,
/// every secret envelope-encrypted. Every command prints one JSON object.
///
/// The keystore passphrase comes from the environment variable
/// `CUSTODY_PASSPHRASE` or from `--passphrase-file`, never from a flag value.
#[derive(Debug, Parser)]
#[command(name = "custody", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// The keystore directory.
    #[arg(
        long,
        global = true,
        env = "CUSTODY_KEYSTORE",
        default_value = "./custody-keystore",
        value_name = "DIR"
    )]
    pub(crate) keystore: PathBuf,

    /// A file holding the keystore passphrase (one trailing newline removed).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,

    /// Where the TOTP guard, lockouts and audit log live, and the policy
    /// state (the WebAuthn relying party, wallets' signed policy logs,
    /// approvers' roles and signature counters): `file` (the keystore
    /// directory) or `postgres://USER@HOST:PORT/DB`, shared by every signer
    /// using that database (password from PGPASSWORD or ~/.pgpass, never in
    /// this value). The policy key is the keystore's wallet `custody-policy`,
    /// index 0.
    #[arg(
        long,
        global = true,
        env = "CUSTODY_STATE",
        default_value = "file",
        value_name = "URI"
    )]
    pub(crate) state: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a keystore from a BIP39 mnemonic, or from a fresh 24-word one.
    ///
    /// Example: custody init --show-mnemonic   (with CUSTODY_PASSPHRASE set)
    Init(InitArgs),
    /// Show the public key and address of a key.
    ///
    /// Example: custody derive --wallet alice@example.com --index 0
    Derive(KeyArgs),
    /// Sign a bare 32-byte hash (the explicit raw entry point).
    ///
    /// Example: custody sign-hash --wallet alice@example.com --index 0 --hash 0x<64 hex digits>
    SignHash(SignHashArgs),
    /// Sign an Ethereum transaction given as JSON-RPC JSON (types 0x0-0x4).
    ///
    /// Example: custody sign-tx --wallet alice@example.com --index 0 --tx tx.json --code 123456
    SignTx(SignTxArgs),
    /// Sign an EIP-191 personal message (v = 27/28).
    ///
    /// Example: custody sign-message --wallet alice@example.com --index 0 --message "hello"
    SignMessage(SignMessageArgs),
    /// Sign EIP-712 typed data, as eth_signTypedData_v4 takes it (v = 27/28).
    ///
    /// Example: custody sign-typed-data --wallet alice@example.com --index 0 --file mail.json
    SignTypedData(SignTypedDataArgs),
    /// TOTP second factor: enrol a wallet or a key.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Import and export keys.
    #[command(subcommand)]
    Keystore(KeystoreCommand),
    /// Check the audit log, and sign checkpoints of a shared one.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The shared state database.
    #[command(subcommand)]
    State(StateCommand),
    /// AWS Nitro Enclaves attestation documents.
    #[command(subcommand)]
    Attestation(AttestationCommand),
    /// The WebAuthn relying party approvals are bound to.
    #[command(subcommand)]
    Webauthn(crate::policy::WebauthnCommand),
    /// Approvers' devices (WebAuthn credentials) of a wallet.
    #[command(subcommand)]
    Approver(crate::policy::ApproverCommand),
    /// Print the WebAuthn challenge of an operation (its operation hash).
    #[command(subcommand)]
    Challenge(crate::policy::ChallengeCommand),
    /// A wallet's policy and its signed log.
    #[command(subcommand)]
    Policy(crate::policy::PolicyCommand),
    /// The quorum boot of a Nitro enclave: split, seal, boot.
    #[command(subcommand)]
    Quorum(crate::quorum::args::QuorumCommand),
    /// JWTs: sign with any key through the gates, verify against a JWKS.
    #[command(subcommand)]
    Jwt(crate::jose::JwtCommand),
    /// Print the public JWK Set of keys (RFC 7517; each `kid` its RFC 7638
    /// thumbprint): keys of the keystore by id, external keys by URI.
    ///
    /// Example: custody jwks --key-id p256-0123456789abcdef --key aws-kms:alias/jwt
    Jwks(crate::jose::JwksArgs),
    /// A scope's sealing keys (service/purpose, e.g. importer/api-keys):
    /// create (and rotate), retire, revoke, list. The lifecycle: create a
    /// key and publish its JWK; senders `seal` to it; on schedule create
    /// the next key (rotation: the old one still opens), `reseal` what is
    /// stored, then retire the old key. Revoke a key believed compromised:
    /// what is sealed to it then fails to open, saying it is revoked.
    #[command(subcommand)]
    SealingKey(crate::sealing::SealingKeyCommand),
    /// Seal a secret to a public JWK for a scope (a compact JWE, enc
    /// A256GCM, the scope bound in the protected header), as a browser
    /// does: no keystore needed.
    ///
    /// Prints {"jwe"}.
    ///
    /// Example: custody seal --jwk importer.jwk --scope importer/api-keys --alg ECDH-ES --in api-key.txt
    Seal(crate::sealing::SealArgs),
    /// Open a sealed secret with the scope's sealing key, through the TOTP
    /// gate, the policy gate and the audit log (intent unseal), into a new
    /// file of mode 0600 (never stdout; an existing file is refused). Every
    /// failure to open is kind unseal-failed (exit 3); a gate's refusal
    /// keeps its kind (totp-required, ...).
    ///
    /// Prints {"bytes", "kid"}.
    ///
    /// Example: custody unseal --scope importer/api-keys --in secret.jwe --out api-key.txt
    Unseal(crate::sealing::UnsealArgs),
    /// Open a sealed secret and seal it again to the scope's current key,
    /// in this process (the plaintext never leaves it): what rotation
    /// does to stored secrets before the old key is retired.
    ///
    /// Prints {"jwe", "kid"}.
    ///
    /// Example: custody reseal --scope importer/api-keys --in secret.jwe
    Reseal(crate::sealing::ResealArgs),
}

/// `custody attestation ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AttestationCommand {
    /// Verify a Nitro attestation document: strict COSE_Sign1 (ES384)
    /// decoding, the certificate chain to the pinned AWS Nitro root G1
    /// (SHA-256 641a0321...79bb5b) with every certificate valid at the
    /// verification time, the signature with the leaf's key, then the
    /// expected PCRs, nonce and user data. A debug-mode enclave (PCR0-2 all
    /// zeros) is refused unless --allow-debug. Any failed check is kind
    /// attestation-invalid (exit 3), its message naming the check.
    ///
    /// Prints {"moduleId", "timestamp" (ms), "digest", "pcrs": {"0": "0x..",
    /// ...}, "publicKey", "userData", "nonce"} (absent fields null).
    ///
    /// Example: custody attestation verify --doc attestation.cose --expect-pcrs pcrs.json --nonce 0x0123
    Verify(AttestationVerifyArgs),
}

/// `custody attestation verify`.
#[derive(Debug, Args)]
pub(crate) struct AttestationVerifyArgs {
    /// The document: raw COSE_Sign1 bytes, or their base64.
    #[arg(long, value_name = "FILE")]
    pub(crate) doc: PathBuf,
    /// Verify at this time (seconds since the UNIX epoch) instead of now:
    /// for an archived document, whose certificates have expired since.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) at: Option<u64>,
    /// A JSON object of the PCRs the document must have, by index:
    /// {"0": "hex", "1": "hex", "2": "hex", ...} (0x optional). Without it
    /// any enclave image passes.
    #[arg(long, value_name = "FILE")]
    pub(crate) expect_pcrs: Option<PathBuf>,
    /// Accept a debug-mode enclave (PCR0-2 all zeros): development only.
    #[arg(long)]
    pub(crate) allow_debug: bool,
    /// The nonce the document must carry (hex, 0x optional).
    #[arg(long, value_name = "HEX")]
    pub(crate) nonce: Option<String>,
    /// The user data the document must carry (hex, 0x optional).
    #[arg(long, value_name = "HEX")]
    pub(crate) user_data: Option<String>,
}

/// `custody audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the whole audit log (file or database) from its start, and
    /// against the last signed checkpoint if any.
    ///
    /// Example: custody audit verify --state postgres://signer@db:5432/custody
    Verify(AuditVerifyArgs),
    /// Sign a checkpoint of the database's audit log: every chain's head,
    /// so that records cut off a chain's end are detected.
    ///
    /// Example: custody audit checkpoint --state postgres://signer@db:5432/custody
    Checkpoint(AuditCheckpointArgs),
}

/// `custody audit verify`.
#[derive(Debug, Args)]
pub(crate) struct AuditVerifyArgs {
    /// The public key (0x, SEC 1) that must have signed the last checkpoint.
    #[arg(long, value_name = "0xKEY")]
    pub(crate) checkpoint_key: Option<String>,
}

/// `custody audit checkpoint`.
#[derive(Debug, Args)]
pub(crate) struct AuditCheckpointArgs {
    /// The log's name in the signed checkpoint (default: `custody:DATABASE`).
    #[arg(long, value_name = "NAME")]
    pub(crate) origin: Option<String>,
    /// Sign with this KMS or HSM key instead of the keystore's checkpoint key
    /// (wallet `custody-audit-checkpoints`, index 0).
    #[arg(long, value_name = "URI")]
    pub(crate) key: Option<String>,
}

/// `custody state ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Create or upgrade the database schema (idempotent).
    ///
    /// Example: custody state migrate --state postgres://owner@db:5432/custody
    Migrate,
}

/// `custody sign-tx`.
#[derive(Debug, Args)]
pub(crate) struct SignTxArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// A file holding the transaction JSON, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) tx: String,
    /// A TOTP code, for wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
    /// For a wallet governed by a policy: a JSON array of approvers'
    /// WebAuthn assertions (PublicKeyCredential.toJSON()) over this
    /// operation's challenge (see `custody challenge`).
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody sign-message`.
#[derive(Debug, Args)]
pub(crate) struct SignMessageArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// The message as UTF-8 text.
    #[arg(long, value_name = "S")]
    pub(crate) message: Option<String>,
    /// The message as 0x-prefixed hex bytes.
    #[arg(long, value_name = "0xHEX", conflicts_with = "message")]
    pub(crate) message_hex: Option<String>,
    /// A TOTP code, for wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
    /// For a wallet governed by a policy: a JSON array of approvers'
    /// WebAuthn assertions (PublicKeyCredential.toJSON()) over this
    /// operation's challenge (see `custody challenge`).
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody sign-typed-data`.
#[derive(Debug, Args)]
pub(crate) struct SignTypedDataArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// A file holding the typed-data JSON, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: String,
    /// A TOTP code, for wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
    /// Hash struct values as MetaMask, ethers, viem and eth-account do,
    /// leaving out fields their type does not declare (OpenSea's Seaport
    /// orders carry one), instead of refusing them. Every field left out is
    /// listed by its path in "ignoredFields" and in the audit record.
    #[arg(long)]
    pub(crate) allow_undeclared_fields: bool,
    /// For a wallet governed by a policy: a JSON array of approvers'
    /// WebAuthn assertions (PublicKeyCredential.toJSON()) over this
    /// operation's challenge (see `custody challenge`).
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody totp ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TotpCommand {
    /// Enrol a wallet (or an imported or external key) for TOTP: prints the
    /// otpauth URI and the base32 secret (once). Refused for an enrolled
    /// one unless --rotate with a code.
    ///
    /// Example: custody totp register --wallet alice@example.com --qr
    /// Example: custody totp register --key aws-kms:alias/treasury
    Register(RegisterArgs),
}

/// `custody totp register`.
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The wallet name.
    #[arg(long, value_name = "NAME", required_unless_present_any = ["key", "key_id"])]
    pub(crate) wallet: Option<String>,
    /// An external key (`aws-kms:KEY`, `pkcs11:…`), gated by its public
    /// key however it is named later.
    #[arg(long, value_name = "URI", conflicts_with_all = ["wallet", "key_id"])]
    pub(crate) key: Option<String>,
    /// A key of the keystore by id (imported, or generated of any
    /// algorithm: a P-256 or Ed25519 key's JWTs and unseals then need a
    /// code as a transaction does).
    #[arg(long, value_name = "K", conflicts_with_all = ["wallet", "key"])]
    pub(crate) key_id: Option<String>,
    /// The issuer shown by authenticator apps (default: custody).
    #[arg(long, value_name = "S")]
    pub(crate) issuer: Option<String>,
    /// Also draw the QR code on stderr.
    #[arg(long)]
    pub(crate) qr: bool,
    /// Replace the secret of an enrolled wallet (needs --code from the old one).
    #[arg(long, requires = "code")]
    pub(crate) rotate: bool,
    /// A current code of the enrolled secret, with --rotate.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
}

/// `custody init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// A file holding the BIP39 mnemonic (any standard length and language).
    #[arg(long, value_name = "FILE")]
    pub(crate) mnemonic_file: Option<PathBuf>,
    /// A file holding the optional BIP39 passphrase ("25th word").
    #[arg(long, value_name = "FILE")]
    pub(crate) bip39_passphrase_file: Option<PathBuf>,
    /// Use a cheap passphrase KDF (tests only), like geth's --lightkdf.
    #[arg(long)]
    pub(crate) light_kdf: bool,
    /// How wallet names map to BIP32 paths: `default` or `fortanix`.
    #[arg(long, value_name = "S", default_value = "default")]
    pub(crate) wallet_scheme: String,
    /// Print the mnemonic (once, now) in the output.
    #[arg(long)]
    pub(crate) show_mnemonic: bool,
    /// Where the master seed's key-encryption key lives: `passphrase` (the
    /// keystore passphrase), `aws-kms:KEY` (a SYMMETRIC_DEFAULT KMS key) or
    /// `pkcs11:token=LABEL;object=LABEL` (an AES key on a token). With a
    /// KMS or token KEK no passphrase is needed afterwards.
    #[arg(long, value_name = "URI", default_value = "passphrase")]
    pub(crate) kek: String,
}

/// Which key: a BIP32 path, a wallet and index, or an imported key's id.
#[derive(Debug, Args, Clone)]
pub(crate) struct KeyArgs {
    /// A BIP32 path such as m/44'/60'/0'/0/7 (h or H also mark hardened).
    #[arg(long, value_name = "P")]
    pub(crate) path: Option<String>,
    /// A wallet name (any UTF-8 label, e.g. an e-mail address).
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: Option<String>,
    /// The key index within the wallet.
    #[arg(long, value_name = "N")]
    pub(crate) index: Option<u32>,
    /// The id of an imported key.
    #[arg(long, value_name = "K")]
    pub(crate) key_id: Option<String>,
    /// A key that never leaves its hardware: `aws-kms:KEY` (an
    /// ECC_SECG_P256K1 SIGN_VERIFY key) or `pkcs11:token=LABEL;object=LABEL`
    /// (an EC secp256k1 key on a token).
    #[arg(long, value_name = "URI")]
    pub(crate) key: Option<String>,
}

/// `custody sign-hash`.
#[derive(Debug, Args)]
pub(crate) struct SignHashArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// The 32-byte hash, 0x-prefixed hex.
    #[arg(long, value_name = "0xHASH")]
    pub(crate) hash: String,
    /// A TOTP code, for wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
    /// For a wallet governed by a policy: a JSON array of approvers'
    /// WebAuthn assertions (PublicKeyCredential.toJSON()) over this
    /// operation's challenge (see `custody challenge`).
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody keystore ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeystoreCommand {
    /// Import a Web3 Secret Storage v3 file (geth, MetaMask, eth-account) or a
    /// raw private key (hex, 0x optional, whitespace ignored).
    ///
    /// Example: custody keystore import --file UTC--2024...json --password-file pw.txt
    Import(ImportArgs),
    /// Export a key as a Web3 Secret Storage v3 file (scrypt) that geth and
    /// eth-account decrypt.
    ///
    /// An export is judged by what it exposes: with the public xpubs, the
    /// private key of P yields every ancestor reached through P's trailing
    /// normal (non-hardened) steps. If that reaches an ancestor of an
    /// enrolled wallet's node (P is such an ancestor, or a normal child of
    /// one), the export is refused (kind forbidden), code or not; a key at
    /// or under an enrolled wallet's node needs --code. Signing with any key
    /// is allowed: a signature exposes nothing.
    ///
    /// Example: custody keystore export --key-id key-0123456789abcdef --password-file pw.txt
    Export(ExportArgs),
    /// Move every secret of the keystore to a new key-encryption key
    /// (rotation, or passphrase -> KMS/HSM, or back). Addresses never
    /// change; a run killed midway leaves the keystore opening with
    /// exactly one of the two KEKs. To a new passphrase: give it in
    /// CUSTODY_NEW_PASSPHRASE or --new-passphrase-file.
    ///
    /// Example: custody keystore rewrap --kek aws-kms:alias/custody-root
    Rewrap(RewrapArgs),
    /// Generate a fresh signing key of an algorithm in the keystore
    /// (secp256k1, P-256 or Ed25519), sealed under the keystore's KEK like
    /// every secret; it signs by its id (--key-id).
    ///
    /// Prints {"keyId", "jwk"} (the public JWK).
    ///
    /// Example: custody keystore generate --alg P-256
    Generate(crate::jose::GenerateArgs),
}

/// `custody keystore rewrap`.
#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// The new KEK: `passphrase`, `aws-kms:KEY` or `pkcs11:…`.
    #[arg(long, value_name = "URI")]
    pub(crate) kek: String,
    /// A file holding the new passphrase, with --kek passphrase (else
    /// CUSTODY_NEW_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub(crate) new_passphrase_file: Option<PathBuf>,
    /// Use a cheap passphrase KDF for the new passphrase (tests only).
    #[arg(long)]
    pub(crate) light_kdf: bool,
}

/// `custody keystore import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A Web3 Secret Storage v3 JSON file.
    #[arg(long, value_name = "F")]
    pub(crate) file: Option<PathBuf>,
    /// The v3 file's password (default: the keystore passphrase).
    #[arg(long, value_name = "F", requires = "file")]
    pub(crate) password_file: Option<PathBuf>,
    /// A file holding a raw 32-byte private key as hex.
    #[arg(long, value_name = "F", conflicts_with = "file")]
    pub(crate) private_key_file: Option<PathBuf>,
}

/// `custody keystore export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// The password to encrypt to (default: the keystore passphrase).
    #[arg(long, value_name = "F")]
    pub(crate) password_file: Option<PathBuf>,
    /// A TOTP code, for wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
    /// Use geth's light scrypt parameters (n=4096, p=6) instead of the
    /// standard ones (n=262144, p=1): for tests.
    #[arg(long)]
    pub(crate) light_kdf: bool,
}
