//! The quorum boot of a signing enclave, end to end, with custody-kms's
//! fake Nitro Security Module (feature `quorum`): the `quorum_boot`
//! example prints it, `tests/quorum_boot.rs` checks its values.
//!
//! 1. An air-gapped machine makes the quorum key and splits it 2 of 3;
//!    only the three share files and the public share set leave it.
//! 2. A first enclave boots: it draws an ephemeral key and puts it in an
//!    attestation document with the manifest hash as `user_data`; holders
//!    1 and 2 each verify the document (the pinned root, the image's PCRs,
//!    the manifest) and seal their share to the key it attests; the enclave
//!    rebuilds the quorum key and wraps Alice's signing key under the
//!    quorum KEK. The host stores only that envelope.
//! 3. The enclave restarts (a new ephemeral key, a new document): holders
//!    2 and 3 this time. A document of another image is refused by the
//!    holders first. The enclave rebuilds the same quorum key, unwraps
//!    Alice's key, and signs; the signature recovers to her address.
//!
//! The fake NSM's documents verify only under its test root: a verifier
//! pinned to AWS's root refuses every one of them.

use std::io::Write;
use std::sync::Arc;

use custody_core::{
    Authorization, EncryptionContext, Envelope, KeyId, KeyRef, KeySigner, PrivateKeyBytes,
    SharedBackend, Vault, WalletScheme, WrappingBackend,
};
use custody_eth::{EthSigner, PersonalMessage};
use custody_kms::nitro::fake::{self, FakeNsm};
use custody_kms::nitro::{
    AttestRequest, Expectations, Nsm, TrustAnchor, VerificationTime, Verifier,
};
use custody_quorum::{
    EnclaveBoot, EnclavePublicKey, QuorumKey, SealedShare, Share, ShareSet, seal_share,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Alice's signing key in this demo: Anvil's first account, whose address
/// everyone knows ([`ALICE`]).
const ALICE_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Its address.
pub const ALICE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// The message Alice's key signs in the restarted enclave.
pub const MESSAGE: &str = "quorum boot: signed inside the enclave";
/// The manifest hash the enclave attests as `user_data` (the HPKE `info`
/// of every sealed share).
const MANIFEST: [u8; 32] = [0x4d; 32];

/// What the ceremony produced, for the caller to check.
#[derive(Debug)]
pub struct Outcome {
    /// The quorum public key the split published (compressed, hex).
    pub quorum_public_key: String,
    /// The quorum public key each boot rebuilt and checked.
    pub booted_keys: Vec<String>,
    /// The share indices each boot used.
    pub shares_used: Vec<Vec<u8>>,
    /// The quorum KEK's id.
    pub kek_id: String,
    /// Why a holder refused the document of another image.
    pub refusal: String,
    /// The address the signature recovers to.
    pub recovered: String,
    /// The signature (65 bytes r ‖ s ‖ v, hex).
    pub signature: String,
}

/// A holder: a share file, the share set, and what the enclave must be.
struct Holder {
    share_file: String,
    set_file: String,
    verifier: Verifier,
    expected: Expectations,
}

impl Holder {
    /// Verifies the enclave's document, then seals the share to the key it
    /// attests (never to a key handed over beside it).
    fn seal(&self, document: &[u8]) -> Result<String> {
        let verified =
            self.verifier
                .verify(document, &self.expected, VerificationTime::At(fake::T0))?;
        let key = EnclavePublicKey::from_sec1_bytes(
            verified
                .public_key()
                .ok_or("the document has no public key")?,
        )?;
        let share = Share::from_json(&self.share_file)?;
        let set = ShareSet::from_json(&self.set_file)?;
        let manifest = verified.user_data().unwrap_or_default();
        Ok(seal_share(&share, &set, &key, manifest)?.to_json())
    }
}

/// One enclave boot: a fresh ephemeral key, its document, the holders'
/// sealed shares, the rebuilt quorum key.
fn boot(nsm: &dyn Nsm, set_file: &str, holders: &[&Holder]) -> Result<(QuorumKey, Vec<u8>)> {
    let mut boot = EnclaveBoot::new(ShareSet::from_json(set_file)?, &MANIFEST)?;
    let document = nsm.attest(&AttestRequest {
        public_key: Some(&boot.public_key().to_bytes()),
        user_data: Some(&MANIFEST),
        nonce: None,
    })?;
    for holder in holders {
        let sealed = holder.seal(&document)?;
        boot.accept(&SealedShare::from_json(&sealed)?)?;
    }
    let used = boot.accepted();
    Ok((boot.finish()?, used))
}

/// Runs the ceremony, narrating to `out`.
///
/// # Errors
/// Any step's error (none is expected).
pub fn run(out: &mut dyn Write) -> Result<Outcome> {
    // 1. The split, air-gapped.
    let (key, set, shares) = custody_quorum::generate(2, 3)?;
    let quorum_public_key = key.public_key().to_string();
    drop(key);
    let set_file = set.to_json();
    writeln!(out, "1. quorum key {quorum_public_key}, split 2 of 3")?;

    // The enclave's NSM (here the fake) and what holders expect of it: the
    // image's PCR0-2 (as `nitro-cli build-enclave` prints them) and the
    // manifest; the root is the fake's test root.
    let nsm = FakeNsm::new();
    let anchor: TrustAnchor = nsm.anchor()?;
    let image = Expectations::for_image(&fake::pcr(0), &fake::pcr(1), &fake::pcr(2))
        .with_user_data(&MANIFEST);
    let holders: Vec<Holder> = shares
        .iter()
        .map(|share| Holder {
            share_file: share.to_json().to_string(),
            set_file: set_file.clone(),
            verifier: Verifier::new(anchor.clone()),
            expected: image.clone(),
        })
        .collect();
    drop(shares);

    // 2. First boot, holders 1 and 2; Alice's key wrapped under the KEK.
    let (quorum, used_1) = boot(&nsm, &set_file, &[&holders[0], &holders[1]])?;
    let mut booted_keys = vec![quorum.public_key().to_string()];
    let kek = quorum.kek()?;
    let kek_id = kek.kek_id().to_string();
    let context = EncryptionContext::new().with("wallet", "alice")?;
    let alice_key = PrivateKeyBytes::from_slice(&hex::decode(ALICE_KEY)?)?;
    let stored = Envelope::seal(
        &kek,
        &kek.default_kek(),
        &context,
        alice_key.expose_secret(),
    )
    .wait()?
    .into_bytes();
    drop((alice_key, kek, quorum));
    writeln!(
        out,
        "2. booted with shares {used_1:?}; Alice's key wrapped under {kek_id} ({} bytes stored)",
        stored.len()
    )?;

    // 3. The restart. Holder 3 first sees a document of another image.
    let mut other = fake::Doc::valid();
    other.pcrs.insert(2, vec![0x99; 48]);
    let impostor_key = custody_quorum::EnclaveSecretKey::generate()?;
    let impostor = FakeNsm::with_template(other).attest(&AttestRequest {
        public_key: Some(&impostor_key.public_key().to_bytes()),
        user_data: Some(&MANIFEST),
        nonce: None,
    })?;
    let refusal = match holders[2].seal(&impostor) {
        Ok(_) => return Err("a document of another image was accepted".into()),
        Err(e) => e.to_string(),
    };
    writeln!(out, "3. holder 3 refuses another image: {refusal}")?;
    let (quorum, used_2) = boot(&nsm, &set_file, &[&holders[1], &holders[2]])?;
    booted_keys.push(quorum.public_key().to_string());
    let kek = quorum.kek()?;
    let opened = Envelope::from_bytes(&stored)?.open(&kek, &context).wait()?;
    let vault = Vault::new(Arc::new(kek), WalletScheme::Default);
    let alice_id = KeyId::new("alice")?;
    vault.insert_key(
        alice_id.clone(),
        PrivateKeyBytes::from_slice(opened.expose_secret())?,
    )?;
    drop(opened);
    let backend: SharedBackend = Arc::new(vault);
    let alice = EthSigner::new(KeySigner::pin(backend, KeyRef::Stored(alice_id)).wait()?)?;
    let message = PersonalMessage::from_text(MESSAGE);
    let signature = alice
        .sign_personal_message(&message, &Authorization::none())
        .wait()?;
    let recovered = message.recover_signer(&signature)?.to_checksum();
    let signature = hex::encode(signature.to_bytes());
    writeln!(
        out,
        "   rebooted with shares {used_2:?}; Alice's key unwrapped; signature 0x{signature} \
         recovers to {recovered}"
    )?;
    Ok(Outcome {
        quorum_public_key,
        booted_keys,
        shares_used: vec![used_1, used_2],
        kek_id,
        refusal,
        recovered,
        signature,
    })
}
