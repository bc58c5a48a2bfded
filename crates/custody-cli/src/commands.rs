//! Each command: parse what the library does not, call it, shape the JSON.

use std::path::Path;
use std::sync::Arc;

use custody_core::{
    Audited, Authorization, CreateOptions, DerivationPath, Digest32, KdfParams, KekKind, KeyId,
    KeyRef, KeySigner, Keystore, Mnemonic, Passphrase, PrivateKeyBytes, Records, RootKek, Seed,
    SharedBackend, Unlock, WalletScheme,
};
use custody_eth::keystore_v3::{self, KdfChoice};
use custody_eth::{Address, EthSigner, PersonalMessage, Transaction, TypedData};
use custody_kms::BackendUri;
use custody_totp::{EnrolMode, TotpConfig, TotpGate, TotpRegistry};
use serde_json::{Value, json};

use crate::args::{
    AttestationCommand, AuditCheckpointArgs, AuditCommand, AuditVerifyArgs, Cli, Command,
    ExportArgs, ImportArgs, InitArgs, KeyArgs, KeystoreCommand, RegisterArgs, RewrapArgs,
    SignHashArgs, SignMessageArgs, SignTxArgs, SignTypedDataArgs, StateCommand, TotpCommand,
};
use crate::backends;
use crate::error::CliError;
use crate::policy::{self, OperationInput};
use crate::state::{self, State};

/// Runs one command.
pub(crate) fn run(cli: Cli) -> Result<Value, CliError> {
    let ctx = Context {
        dir: cli.keystore,
        passphrase_file: cli.passphrase_file,
        state: State::parse(&cli.state)?,
    };
    match cli.command {
        Command::Init(a) => init(&ctx, a),
        Command::Derive(k) => derive(&ctx, &k),
        Command::SignHash(a) => sign_hash(&ctx, &a),
        Command::SignTx(a) => sign_tx(&ctx, &a),
        Command::SignMessage(a) => sign_message(&ctx, &a),
        Command::SignTypedData(a) => sign_typed_data(&ctx, &a),
        Command::Totp(TotpCommand::Register(a)) => totp_register(&ctx, &a),
        Command::Keystore(KeystoreCommand::Import(a)) => import(&ctx, &a),
        Command::Keystore(KeystoreCommand::Export(a)) => export(&ctx, &a),
        Command::Keystore(KeystoreCommand::Rewrap(a)) => rewrap(&ctx, &a),
        Command::Audit(AuditCommand::Verify(a)) => audit_verify(&ctx, &a),
        Command::Audit(AuditCommand::Checkpoint(a)) => audit_checkpoint(&ctx, &a),
        Command::State(StateCommand::Migrate) => state_migrate(&ctx),
        Command::Attestation(AttestationCommand::Verify(a)) => crate::attestation::verify(&a),
        Command::Webauthn(c) => policy_command(&ctx, PolicyRun::Webauthn(c)),
        Command::Approver(c) => policy_command(&ctx, PolicyRun::Approver(c)),
        Command::Challenge(c) => policy_command(&ctx, PolicyRun::Challenge(c)),
        Command::Policy(c) => policy_command(&ctx, PolicyRun::Policy(c)),
        Command::Quorum(q) => crate::quorum::run(q),
        Command::Keystore(KeystoreCommand::Generate(a)) => crate::jose::generate(&ctx.open()?, &a),
        Command::Jwt(crate::jose::JwtCommand::Sign(a)) => jwt_sign(&ctx, &a),
        Command::Jwt(crate::jose::JwtCommand::Verify(a)) => crate::jose::verify(&a),
        Command::SealingKey(c) => {
            use crate::sealing::SealingKeyCommand;
            let ks = ctx.open()?;
            match c {
                SealingKeyCommand::Create(a) => crate::sealing::create(&ks, &a),
                SealingKeyCommand::Retire(a) => crate::sealing::retire(&ks, &a),
                SealingKeyCommand::Revoke(a) => crate::sealing::revoke(&ks, &a),
                SealingKeyCommand::List(a) => crate::sealing::list(&ks, &a),
            }
        }
        Command::Seal(a) => crate::sealing::seal(&a),
        Command::Unseal(a) => crate::sealing::unseal(&ctx.open()?, &a),
        Command::Reseal(a) => crate::sealing::reseal(&ctx.open()?, &a),
        Command::Jwks(a) => {
            // External keys alone need no keystore.
            let ks = if a.key_id.is_empty() {
                None
            } else {
                Some(ctx.open()?)
            };
            crate::jose::jwks(ks.as_ref(), &a)
        }
    }
}

struct Context {
    dir: std::path::PathBuf,
    passphrase_file: Option<std::path::PathBuf>,
    state: State,
}

impl Context {
    fn passphrase(&self) -> Result<Passphrase, CliError> {
        if let Some(f) = &self.passphrase_file {
            let bytes = std::fs::read(f)
                .map_err(|e| CliError::bad_input(format!("--passphrase-file: {e}")))?;
            return Ok(Passphrase::from_file_contents(bytes));
        }
        match std::env::var_os("CUSTODY_PASSPHRASE") {
            Some(p) => Ok(Passphrase::new(p.into_encoded_bytes())),
            None => Err(CliError::bad_input(
                "no keystore passphrase: set CUSTODY_PASSPHRASE or pass --passphrase-file",
            )),
        }
    }

    /// The records `--state` names, if not the keystore directory's own.
    fn records(&self) -> Result<Option<Records>, CliError> {
        match &self.state {
            State::File => Ok(None),
            #[cfg(feature = "postgres")]
            State::Postgres(config) => Ok(Some(state::pg::records(&state::pg::connect(config)?))),
        }
    }

    /// Opens the keystore with what its metadata says holds its KEK: the
    /// passphrase, or the backend its URI names; its records where
    /// `--state` says.
    fn open(&self) -> Result<Keystore, CliError> {
        self.open_in(None)
    }

    /// [`Context::open`] with the records given, if any (else where
    /// `--state` says).
    fn open_in(&self, given: Option<Records>) -> Result<Keystore, CliError> {
        let kind = match Keystore::kek_of(&self.dir) {
            // No keystore and no passphrase: the missing passphrase is the
            // usage error to report first, as before backends existed.
            Err(custody_core::Error::KeystoreNotFound) => {
                self.passphrase()?;
                return Err(custody_core::Error::KeystoreNotFound.into());
            }
            other => other?,
        };
        let records = match given {
            Some(records) => Some(records),
            None => self.records()?,
        };
        let open = |unlock: Unlock<'_>| match records {
            Some(records) => Ok(Keystore::open_recorded(&self.dir, unlock, records)?),
            None => Ok(Keystore::open_with(&self.dir, unlock)?),
        };
        match kind {
            KekKind::Backend { uri, .. } => {
                let parsed = backends::parse(&uri, "the keystore's KEK")?;
                let kek = backends::kek(&parsed, "the keystore's KEK")?;
                open(Unlock::Backend(kek))
            }
            _ => {
                let passphrase = self.passphrase()?;
                open(Unlock::Passphrase(&passphrase))
            }
        }
    }
}

/// The TOTP registry over the keystore's KEK, state store and audit log.
fn registry(ks: &Keystore, issuer: Option<&str>) -> Result<Arc<TotpRegistry>, CliError> {
    let mut config = TotpConfig::new(ks.scheme());
    if let Some(issuer) = issuer {
        config.issuer = issuer.to_owned();
    }
    Ok(Arc::new(TotpRegistry::new(
        ks.backend(),
        ks.state(),
        ks.audit(),
        config,
    )?))
}

/// Every signature and export goes through the TOTP gate and the audit
/// layer: `Audited(TotpGate(Vault))`.
pub(crate) fn backend(ks: &Keystore) -> Result<SharedBackend, CliError> {
    gated(ks, ks.backend())
}

/// `Audited(TotpGate(PolicyGate(inner)))` with the keystore's registry,
/// policy logs and audit log: an external key passes the same gates and
/// lands in the same audit log as a wallet's, and a governed wallet's key
/// signs only what a policy verdict covers.
pub(crate) fn gated(ks: &Keystore, inner: SharedBackend) -> Result<SharedBackend, CliError> {
    gated_with(ks, inner, None)
}

/// [`gated`], its policy gate telling `witness` what it decided.
fn gated_with(
    ks: &Keystore,
    inner: SharedBackend,
    witness: Option<&policy::Witness>,
) -> Result<SharedBackend, CliError> {
    let inner = crate::policy::gate(ks, inner, witness)?;
    let gate: SharedBackend = Arc::new(TotpGate::new(inner, registry(ks, None)?));
    Ok(Arc::new(Audited::new(gate, ks.audit())))
}

/// The gated signer for the key a command names: a key of the keystore, or
/// with `--key` one that never leaves its KMS or HSM.
fn signer_for(ks: &Keystore, k: &KeyArgs) -> Result<EthSigner, CliError> {
    match external(k)? {
        Some((inner, key)) => pin_ref(gated(ks, inner)?, key),
        None => pin(backend(ks)?, k),
    }
}

/// [`signer_for`] for a signing command: with the witness of its policy
/// gate's decision (`policy::Witness::report`).
fn witnessed_signer(ks: &Keystore, k: &KeyArgs) -> Result<(EthSigner, policy::Witness), CliError> {
    let witness = policy::Witness::default();
    let signer = match external(k)? {
        Some((inner, key)) => pin_ref(gated_with(ks, inner, Some(&witness))?, key)?,
        None => pin(gated_with(ks, ks.backend(), Some(&witness))?, k)?,
    };
    Ok((signer, witness))
}

/// The backend and reference of `--key URI`, if given (alone).
fn external(k: &KeyArgs) -> Result<Option<(SharedBackend, KeyRef)>, CliError> {
    let Some(uri) = &k.key else {
        return Ok(None);
    };
    if k.path.is_some() || k.wallet.is_some() || k.index.is_some() || k.key_id.is_some() {
        return Err(CliError::bad_input(
            "use exactly one of --path, --wallet/--index, --key-id, --key",
        ));
    }
    let parsed = backends::parse(uri, "--key")?;
    backends::signer(&parsed, "--key").map(Some)
}

fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn read_secret_file(path: &Path, flag: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::bad_input(format!("{flag}: {e}")))
}

fn init(ctx: &Context, a: InitArgs) -> Result<Value, CliError> {
    let kek = backends::parse(&a.kek, "--kek")?;
    let passphrase = match kek {
        BackendUri::Passphrase => Some(ctx.passphrase()?),
        _ => None,
    };
    let scheme: WalletScheme = a
        .wallet_scheme
        .parse()
        .map_err(|_| CliError::bad_input("--wallet-scheme: must be 'default' or 'fortanix'"))?;
    let mnemonic = match &a.mnemonic_file {
        Some(f) => {
            let bytes = read_secret_file(f, "--mnemonic-file")?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| CliError::bad_input("--mnemonic-file: not UTF-8"))?;
            Mnemonic::parse(text.trim())
                .map_err(|_| CliError::bad_input("--mnemonic-file: not a valid BIP39 mnemonic"))?
        }
        None => Mnemonic::generate(24)?,
    };
    let bip39_passphrase = match &a.bip39_passphrase_file {
        Some(f) => {
            let p = Passphrase::from_file_contents(read_secret_file(f, "--bip39-passphrase-file")?);
            String::from_utf8(p.expose_secret().to_vec())
                .map_err(|_| CliError::bad_input("--bip39-passphrase-file: not UTF-8"))?
        }
        None => String::new(),
    };
    let seed: Seed = mnemonic.to_seed(&bip39_passphrase);
    drop(bip39_passphrase);
    let options = if a.light_kdf {
        CreateOptions::light()?
    } else {
        CreateOptions::standard()?
    }
    .with_scheme(scheme);
    let root = match &passphrase {
        Some(passphrase) => RootKek::Passphrase {
            passphrase,
            kdf: &options.kdf,
        },
        None => RootKek::Backend {
            uri: &a.kek,
            backend: backends::kek(&kek, "--kek")?,
        },
    };
    let ks = match ctx.records()? {
        Some(records) => Keystore::create_recorded(&ctx.dir, root, &seed, &options, records)?,
        None => Keystore::create_with(&ctx.dir, root, &seed, &options)?,
    };
    let mut out = json!({
        "xpub": ks.xpub(),
        "fingerprint": hex0x(ks.fingerprint()),
        "kek": ks.kek_uri(),
    });
    if a.show_mnemonic {
        out["mnemonic"] = Value::String(mnemonic.expose_phrase().to_string());
    }
    Ok(out)
}

/// The key a command names, checked against the one-of rule.
fn key_ref(k: &KeyArgs) -> Result<KeyRef, CliError> {
    match (&k.path, &k.wallet, k.index, &k.key_id) {
        (Some(p), None, None, None) => {
            let path: DerivationPath = p
                .parse()
                .map_err(|e: custody_core::Error| CliError::from(e).context("--path"))?;
            Ok(KeyRef::Path(path))
        }
        (None, Some(name), Some(index), None) => Ok(KeyRef::Wallet {
            name: name.clone(),
            index,
        }),
        (None, Some(_), None, None) => Err(CliError::bad_input("--index: required with --wallet")),
        (None, None, Some(_), None) => Err(CliError::bad_input("--wallet: required with --index")),
        (None, None, None, Some(id)) => Ok(KeyRef::Stored(
            KeyId::new(id.as_str()).map_err(|e| CliError::from(e).context("--key-id"))?,
        )),
        (None, None, None, None) => Err(CliError::bad_input(
            "name a key with --path P, --wallet NAME --index N, --key-id K or --key URI",
        )),
        _ => Err(CliError::bad_input(
            "use exactly one of --path, --wallet/--index, --key-id",
        )),
    }
}

fn pin(backend: SharedBackend, k: &KeyArgs) -> Result<EthSigner, CliError> {
    pin_ref(backend, key_ref(k)?)
}

fn pin_ref(backend: SharedBackend, key: KeyRef) -> Result<EthSigner, CliError> {
    let signer = KeySigner::pin(backend, key).wait().map_err(|e| match e {
        custody_core::Error::KeyNotFound => CliError::new("not-found", "no such key"),
        custody_core::Error::InvalidWallet(r) => {
            CliError::bad_input(format!("--wallet/--index: {r}"))
        }
        other => other.into(),
    })?;
    Ok(EthSigner::new(signer)?)
}

fn key_json(signer: &EthSigner, k: &KeyArgs) -> Value {
    let key = signer.key_signer().key();
    let mut out = json!({
        "publicKey": hex0x(signer.public_key().to_uncompressed()),
        "address": signer.address().to_checksum(),
    });
    if let Some(path) = key.path() {
        out["path"] = Value::String(path.to_string());
    }
    if let (Some(w), Some(i)) = (&k.wallet, k.index) {
        out["wallet"] = Value::String(w.clone());
        out["index"] = json!(i);
    }
    if let Some(id) = &k.key_id {
        out["keyId"] = Value::String(id.clone());
    }
    if let Some(uri) = &k.key {
        out["key"] = Value::String(uri.clone());
    }
    out
}

fn derive(ctx: &Context, k: &KeyArgs) -> Result<Value, CliError> {
    let ks = ctx.open()?;
    let signer = match external(k)? {
        // A public key: nothing to gate, and nothing of the keystore used.
        Some((inner, key)) => pin_ref(inner, key)?,
        None => pin(ks.backend(), k)?,
    };
    Ok(key_json(&signer, k))
}

pub(crate) fn consent(code: Option<&String>) -> Authorization {
    code.map_or_else(Authorization::none, |c| Authorization::totp(c.as_str()))
}

fn parse_hash(s: &str) -> Result<Digest32, CliError> {
    let hexpart = s
        .strip_prefix("0x")
        .ok_or_else(|| CliError::bad_input("--hash: must start with 0x"))?;
    let bytes = hex::decode(hexpart).map_err(|_| CliError::bad_input("--hash: not hex"))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CliError::bad_input("--hash: must be 32 bytes"))?;
    Ok(Digest32(arr))
}

fn sign_hash(ctx: &Context, a: &SignHashArgs) -> Result<Value, CliError> {
    let digest = parse_hash(&a.hash)?;
    let ks = ctx.open()?;
    let (signer, witness) = witnessed_signer(&ks, &a.key)?;
    let auth = policy::authorize(
        &ks,
        &signer,
        a.approvals.as_deref(),
        consent(a.code.as_ref()),
    )?;
    let (sig, policy) = witness.report(signer.sign_hash_raw(digest, &auth).wait())?;
    let v = 27 + u8::from(sig.y_parity());
    let mut rsv = sig.to_compact().to_vec();
    rsv.push(v);
    Ok(with_policy(
        json!({
            "r": hex0x(sig.r()),
            "s": hex0x(sig.s()),
            "yParity": u8::from(sig.y_parity()),
            "v": v,
            "signature": hex0x(rsv),
            "address": signer.address().to_checksum(),
        }),
        policy,
    ))
}

fn import(ctx: &Context, a: &ImportArgs) -> Result<Value, CliError> {
    let key = match (&a.file, &a.private_key_file) {
        (Some(f), None) => {
            let raw = read_secret_file(f, "--file")?;
            let text =
                std::str::from_utf8(&raw).map_err(|_| CliError::bad_input("--file: not UTF-8"))?;
            let v3 = keystore_v3::parse(text).map_err(|e| CliError::from(e).context("--file"))?;
            let password = match &a.password_file {
                Some(p) => Passphrase::from_file_contents(read_secret_file(p, "--password-file")?),
                None => ctx.passphrase()?,
            };
            // Open the keystore first: a missing keystore or a wrong
            // keystore passphrase is reported before the v3 KDF runs.
            let ks = ctx.open()?;
            let key = v3.decrypt(&password)?;
            return finish_import(&ks, key);
        }
        (None, Some(f)) => parse_private_key_hex(&read_secret_file(f, "--private-key-file")?)?,
        _ => {
            return Err(CliError::bad_input(
                "give exactly one of --file or --private-key-file",
            ));
        }
    };
    let ks = ctx.open()?;
    finish_import(&ks, key)
}

fn finish_import(ks: &Keystore, key: PrivateKeyBytes) -> Result<Value, CliError> {
    let (id, public) = ks.import_key(key)?;
    Ok(json!({
        "address": Address::from_public_key(&public).to_checksum(),
        "keyId": id.as_str(),
    }))
}

fn export(ctx: &Context, a: &ExportArgs) -> Result<Value, CliError> {
    let password = match &a.password_file {
        Some(p) => Passphrase::from_file_contents(read_secret_file(p, "--password-file")?),
        None => ctx.passphrase()?,
    };
    if a.key.key.is_some() {
        return Err(CliError::new(
            "unsupported",
            "--key: a key in KMS or an HSM never leaves it and cannot be exported",
        ));
    }
    let ks = ctx.open()?;
    let backend = backend(&ks)?;
    let signer = pin(backend.clone(), &a.key)?;
    policy::refuse_export(&ks, signer.key_signer().key())?;
    let exporting = backend
        .exporting()
        .ok_or_else(|| CliError::new("unsupported", "keys of this backend cannot be exported"))?;
    let auth = consent(a.code.as_ref());
    let secret = exporting
        .export_private_key(signer.key_signer().key(), &auth)
        .wait()
        .map_err(export_refusal)?;
    let kdf = if a.light_kdf {
        KdfChoice::ScryptLight
    } else {
        KdfChoice::ScryptStandard
    };
    let json = keystore_v3::encrypt(&secret, &password, kdf)?;
    serde_json::from_str(&json).map_err(|_| CliError::new("io", "could not re-read the v3 JSON"))
}

/// An export refused as `forbidden` says which rule refused it: the rest
/// keep the gate's kind and message.
fn export_refusal(e: custody_core::Error) -> CliError {
    if let custody_core::Error::Denied(custody_core::Denial::Forbidden) = e {
        return CliError::new(
            "forbidden",
            "export refused: with the public xpubs, this private key exposes an ancestor \
             of an enrolled wallet's node (the key is such an ancestor, or a normal child \
             of one); sign with it instead, or export a key at or under the wallet with --code",
        );
    }
    e.into()
}

/// A raw private key file: hex, `0x` optional, surrounding whitespace ignored.
fn parse_private_key_hex(raw: &[u8]) -> Result<PrivateKeyBytes, CliError> {
    let bad = || CliError::bad_input("--private-key-file: expected 32 bytes of hex");
    let text = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| bad())?;
    let key = PrivateKeyBytes::new(out);
    out.fill(0);
    Ok(key)
}

/// Reads a file argument, or stdin for `-`, as text.
pub(crate) fn read_input(arg: &str, flag: &str) -> Result<String, CliError> {
    String::from_utf8(read_input_bytes(arg, flag)?)
        .map_err(|_| CliError::bad_input(format!("{flag}: not UTF-8")))
}

/// Reads a file argument, or stdin for `-`, as bytes.
pub(crate) fn read_input_bytes(arg: &str, flag: &str) -> Result<Vec<u8>, CliError> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
        Ok(buf)
    } else {
        std::fs::read(arg).map_err(|e| CliError::bad_input(format!("{flag}: {e}")))
    }
}

/// A JSON number when it fits in 64 bits, else a 0x quantity (a `v` for a
/// chain id above 2^63 does not fit a JSON number most parsers read).
fn quantity(v: u128) -> Value {
    u64::try_from(v).map_or_else(|_| Value::String(format!("0x{v:x}")), |n| json!(n))
}

fn sign_tx(ctx: &Context, a: &SignTxArgs) -> Result<Value, CliError> {
    let text = read_input(&a.tx, "--tx")?;
    let tx = Transaction::from_json_str(&text)?;
    let ks = ctx.open()?;
    let (signer, witness) = witnessed_signer(&ks, &a.key)?;
    let auth = policy::authorize(
        &ks,
        &signer,
        a.approvals.as_deref(),
        consent(a.code.as_ref()),
    )?;
    let (signed, policy) = witness.report(signer.sign_transaction(&tx, &auth).wait())?;
    let sig = signed.signature();
    Ok(with_policy(
        json!({
            "raw": hex0x(signed.encoded()),
            "hash": hex0x(signed.hash()),
            "signingHash": hex0x(signed.signing_hash().0),
            "from": signer.address().to_checksum(),
            "r": hex0x(sig.r()),
            "s": hex0x(sig.s()),
            "v": quantity(signed.v()),
        }),
        policy,
    ))
}

fn message_json(
    digest: Digest32,
    sig: &custody_eth::MessageSignature,
    signer: &EthSigner,
) -> Value {
    json!({
        "digest": hex0x(digest.0),
        "signature": sig.to_string(),
        "address": signer.address().to_checksum(),
    })
}

/// The message of `sign-message`: `--message` text or `--message-hex` bytes.
fn personal_message(a: &SignMessageArgs) -> Result<PersonalMessage, CliError> {
    Ok(match (&a.message, &a.message_hex) {
        (Some(text), None) => PersonalMessage::from_text(text),
        (None, Some(h)) => {
            let hexpart = h
                .strip_prefix("0x")
                .ok_or_else(|| CliError::bad_input("--message-hex: must start with 0x"))?;
            PersonalMessage::from_bytes(
                hex::decode(hexpart).map_err(|_| CliError::bad_input("--message-hex: not hex"))?,
            )
        }
        _ => {
            return Err(CliError::bad_input(
                "give exactly one of --message or --message-hex",
            ));
        }
    })
}

fn sign_message(ctx: &Context, a: &SignMessageArgs) -> Result<Value, CliError> {
    let message = personal_message(a)?;
    let ks = ctx.open()?;
    let (signer, witness) = witnessed_signer(&ks, &a.key)?;
    let auth = policy::authorize(
        &ks,
        &signer,
        a.approvals.as_deref(),
        consent(a.code.as_ref()),
    )?;
    let (sig, policy) = witness.report(signer.sign_personal_message(&message, &auth).wait())?;
    Ok(with_policy(
        message_json(message.signing_hash(), &sig, &signer),
        policy,
    ))
}

/// The typed data of `sign-typed-data`.
fn typed_data(a: &SignTypedDataArgs) -> Result<TypedData, CliError> {
    let text = read_input(&a.file, "--file")?;
    Ok(if a.allow_undeclared_fields {
        TypedData::from_json_str_lenient(&text)?
    } else {
        TypedData::from_json_str(&text)?
    })
}

fn sign_typed_data(ctx: &Context, a: &SignTypedDataArgs) -> Result<Value, CliError> {
    let typed = typed_data(a)?;
    let ks = ctx.open()?;
    let (signer, witness) = witnessed_signer(&ks, &a.key)?;
    let auth = policy::authorize(
        &ks,
        &signer,
        a.approvals.as_deref(),
        consent(a.code.as_ref()),
    )?;
    let (sig, policy) = witness.report(signer.sign_typed_data(&typed, &auth).wait())?;
    let mut out = with_policy(message_json(typed.signing_hash(), &sig, &signer), policy);
    if a.allow_undeclared_fields
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert("ignoredFields".into(), json!(typed.ignored_fields()));
    }
    Ok(out)
}

fn totp_register(ctx: &Context, a: &RegisterArgs) -> Result<Value, CliError> {
    let ks = ctx.open()?;
    let registry = registry(&ks, a.issuer.as_deref())?;
    let mode = if a.rotate {
        let code = a
            .code
            .as_deref()
            .ok_or_else(|| CliError::bad_input("--code: required with --rotate"))?;
        EnrolMode::Rotate(custody_core::OneTimeCode::new(code))
    } else {
        EnrolMode::New
    };
    let enrolment = match (&a.wallet, &a.key, &a.key_id) {
        (Some(wallet), None, None) => registry.enrol(wallet, mode).wait()?,
        (None, Some(uri), None) => {
            let (inner, key) = backends::signer(&backends::parse(uri, "--key")?, "--key")?;
            let pinned = pin_ref(inner, key)?;
            let public = pinned.public_key();
            registry
                .enrol_key(BackendUri::label(uri), public, mode)
                .wait()?
        }
        (None, None, Some(id)) => {
            // A key of any algorithm: a generated P-256 or Ed25519 key is
            // enrolled by its algorithm and public key.
            let id = KeyId::new(id.as_str()).map_err(|e| CliError::from(e).context("--key-id"))?;
            let pinned = crate::jose::pin_any(ks.backend(), KeyRef::Stored(id.clone()))?;
            let public = pinned.key().public().clone();
            registry.enrol_any_key(id.as_str(), &public, mode).wait()?
        }
        _ => {
            return Err(CliError::bad_input(
                "give exactly one of --wallet, --key or --key-id",
            ));
        }
    };
    if a.qr {
        let qr = enrolment.qr()?;
        let mut err = std::io::stderr().lock();
        // The QR code is for the person at the terminal; stdout stays one
        // JSON object for programs.
        let _ = std::io::Write::write_all(&mut err, qr.to_terminal().as_bytes());
    }
    Ok(json!({
        "uri": enrolment.to_uri().as_str(),
        "secret": enrolment.secret_base32().as_str(),
    }))
}

/// `custody jwt sign`: the key a command names (`--key URI`, a wallet's
/// key, a key of the keystore by id) behind the same gates and audit
/// layer as a transaction.
fn jwt_sign(ctx: &Context, a: &crate::jose::JwtSignArgs) -> Result<Value, CliError> {
    let ks = ctx.open()?;
    let (gated_backend, key) = match external(&a.key)? {
        Some((inner, key)) => (gated(&ks, inner)?, key),
        None => (backend(&ks)?, key_ref(&a.key)?),
    };
    let signer = crate::jose::pin_any(gated_backend, key)?;
    crate::jose::sign(&signer, a)
}

/// The new passphrase of `keystore rewrap --kek passphrase`.
fn new_passphrase(a: &RewrapArgs) -> Result<Passphrase, CliError> {
    if let Some(f) = &a.new_passphrase_file {
        return Ok(Passphrase::from_file_contents(read_secret_file(
            f,
            "--new-passphrase-file",
        )?));
    }
    match std::env::var_os("CUSTODY_NEW_PASSPHRASE") {
        Some(p) => Ok(Passphrase::new(p.into_encoded_bytes())),
        None => Err(CliError::bad_input(
            "no new passphrase: set CUSTODY_NEW_PASSPHRASE or pass --new-passphrase-file",
        )),
    }
}

fn rewrap(ctx: &Context, a: &RewrapArgs) -> Result<Value, CliError> {
    let target = backends::parse(&a.kek, "--kek")?;
    let (ks, report) = match target {
        BackendUri::Passphrase => {
            let passphrase = new_passphrase(a)?;
            let kdf = if a.light_kdf {
                KdfParams::light()?
            } else {
                KdfParams::standard()?
            };
            ctx.open()?.rewrap(RootKek::Passphrase {
                passphrase: &passphrase,
                kdf: &kdf,
            })?
        }
        other => {
            let ks = ctx.open()?;
            let backend = backends::kek(&other, "--kek")?;
            ks.rewrap(RootKek::Backend {
                uri: &a.kek,
                backend,
            })?
        }
    };
    drop(ks);
    Ok(json!({ "kek": report.kek, "rewrapped": report.rewrapped }))
}

/// `custody audit verify`: the file log in the keystore directory, or the
/// database's chains against its last checkpoint.
fn audit_verify(ctx: &Context, a: &AuditVerifyArgs) -> Result<Value, CliError> {
    let expected = match &a.checkpoint_key {
        Some(k) => {
            let bytes = hex::decode(k.strip_prefix("0x").unwrap_or(k))
                .map_err(|_| CliError::bad_input("--checkpoint-key: not hex"))?;
            Some(
                custody_core::PublicKey::from_sec1_bytes(&bytes).map_err(|_| {
                    CliError::bad_input("--checkpoint-key: not a secp256k1 public key")
                })?,
            )
        }
        None => None,
    };
    match &ctx.state {
        State::File => {
            if expected.is_some() {
                return Err(state::needs_database("--checkpoint-key"));
            }
            state::verify_file(&ctx.dir)
        }
        #[cfg(feature = "postgres")]
        State::Postgres(config) => state::pg::verify(config, expected.as_ref()),
    }
}

/// The wallet whose key signs the database log's checkpoints when no
/// `--key` is given.
#[cfg(feature = "postgres")]
const CHECKPOINT_WALLET: &str = "custody-audit-checkpoints";

/// `custody audit checkpoint`: signs every chain's head through the same
/// gates and audit layer as any signature.
fn audit_checkpoint(ctx: &Context, a: &AuditCheckpointArgs) -> Result<Value, CliError> {
    match &ctx.state {
        State::File => {
            let _ = a;
            Err(state::needs_database("audit checkpoint"))
        }
        #[cfg(feature = "postgres")]
        State::Postgres(config) => {
            let store = state::pg::connect(config)?;
            let records = state::pg::records(&store);
            let ks = ctx.open_in(Some(records))?;
            let (backend, key) = match &a.key {
                Some(uri) => {
                    let parsed = backends::parse(uri, "--key")?;
                    let (inner, key) = backends::signer(&parsed, "--key")?;
                    (gated(&ks, inner)?, key)
                }
                None => (
                    backend(&ks)?,
                    KeyRef::Wallet {
                        name: CHECKPOINT_WALLET.to_owned(),
                        index: 0,
                    },
                ),
            };
            let pinned = KeySigner::pin(backend.clone(), key).wait()?;
            state::pg::checkpoint(&store, config, a.origin.as_deref(), &backend, pinned.key())
        }
    }
}

/// `custody state migrate`.
fn state_migrate(ctx: &Context) -> Result<Value, CliError> {
    match &ctx.state {
        State::File => Err(state::needs_database("state migrate")),
        #[cfg(feature = "postgres")]
        State::Postgres(config) => state::pg::migrate(config),
    }
}

/// Adds the `"policy"` member a governed key's signature carries.
fn with_policy(mut out: Value, policy: Option<Value>) -> Value {
    if let (Some(policy), Some(obj)) = (policy, out.as_object_mut()) {
        obj.insert("policy".into(), policy);
    }
    out
}

/// The approvals and policy commands (`crate::policy`).
enum PolicyRun {
    Webauthn(policy::WebauthnCommand),
    Approver(policy::ApproverCommand),
    Challenge(policy::ChallengeCommand),
    Policy(policy::PolicyCommand),
}

fn policy_command(ctx: &Context, run: PolicyRun) -> Result<Value, CliError> {
    use policy::{ApproverCommand, ChallengeCommand, PolicyCommand, WebauthnCommand};
    let ks = ctx.open()?;
    match run {
        PolicyRun::Webauthn(WebauthnCommand::Config(a)) => policy::webauthn_config(&ks, &a),
        PolicyRun::Approver(ApproverCommand::Add(a)) => policy::approver_add(&ks, &a),
        PolicyRun::Approver(ApproverCommand::Recover(a)) => policy::approver_recover(&ks, &a),
        PolicyRun::Approver(ApproverCommand::Veto(a)) => policy::approver_veto(&ks, &a),
        PolicyRun::Policy(PolicyCommand::Set(a)) => policy::policy_set(&ks, &a),
        PolicyRun::Policy(PolicyCommand::Show(a)) => policy::policy_show(&ks, &a),
        PolicyRun::Policy(PolicyCommand::Log(a)) => policy::policy_log(&ks, &a),
        PolicyRun::Challenge(ChallengeCommand::PolicySet(a)) => {
            policy::challenge_policy_set(&ks, &a)
        }
        PolicyRun::Challenge(ChallengeCommand::ApproverAdd(a)) => {
            policy::challenge_approver_add(&ks, &a)
        }
        PolicyRun::Challenge(ChallengeCommand::ApproverRecover(a)) => {
            policy::challenge_approver_recover(&ks, &a)
        }
        PolicyRun::Challenge(ChallengeCommand::ApproverVeto(a)) => {
            policy::challenge_approver_veto(&ks, &a)
        }
        PolicyRun::Challenge(ChallengeCommand::SignTx(a)) => {
            let tx = Transaction::from_json_str(&read_input(&a.tx, "--tx")?)?;
            let signer = signer_for(&ks, &a.key)?;
            policy::challenge(
                &ks,
                &policy::operation_of(&signer, OperationInput::Transaction(tx)),
            )
        }
        PolicyRun::Challenge(ChallengeCommand::SignMessage(a)) => {
            let message = personal_message(&a)?;
            let signer = signer_for(&ks, &a.key)?;
            let input = OperationInput::Message(message.as_bytes().to_vec());
            policy::challenge(&ks, &policy::operation_of(&signer, input))
        }
        PolicyRun::Challenge(ChallengeCommand::SignTypedData(a)) => {
            let typed = typed_data(&a)?;
            let signer = signer_for(&ks, &a.key)?;
            policy::challenge(
                &ks,
                &policy::operation_of(&signer, OperationInput::TypedData(typed)),
            )
        }
        PolicyRun::Challenge(ChallengeCommand::SignHash(a)) => {
            let digest = parse_hash(&a.hash)?;
            let signer = signer_for(&ks, &a.key)?;
            policy::challenge(
                &ks,
                &policy::operation_of(&signer, OperationInput::Digest(digest)),
            )
        }
    }
}
