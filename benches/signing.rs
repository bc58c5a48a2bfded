//! The signing hot path, each stage, the cold path, envelopes and
//! throughput, every one beside its baseline measured in the same run.
//!
//! Run `cargo bench -p custody-benches`, then `benches/report.sh` for the
//! ratio table.
#![expect(
    clippy::unwrap_used,
    clippy::missing_docs_in_private_items,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use alloy_network::TxSignerSync;
use alloy_signer_local::PrivateKeySigner;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use custody_benches::{
    Gated, Pairing, SEED, WALLET, eip1559, gated_stack, hot_secret, kek, sign_once,
    software_signer, vault,
};
use custody_core::{
    AuditLog, AuditSink, Authorization, Digest32, EncryptionContext, Envelope, FileStore, Intent,
    KeyId, KeyRef, KeySigner, MemoryAuditLog, MemoryStore, OneTimeCode, PrivateKeyBytes,
    SharedBackend, StateStore, Vault, WalletScheme, WrappingBackend,
};
use custody_eth::{
    AccessList, AccessListItem, Address, EthSigner, Transaction, TxEip2930, TxEip4844, TxEip7702,
    TxLegacy, TypedData, U256,
};
use custody_totp::{
    Clock, EnrolMode, Enrolment, ManualClock, TotpConfig, TotpRegistry, Verification,
};
use k256::ecdsa::SigningKey;

fn every_type() -> Vec<(&'static str, Transaction)> {
    let to = Address::parse("0x9858EfFD232B4033E47d90003D41EC34EcaEda94").unwrap();
    let access_list = AccessList(vec![AccessListItem {
        address: to,
        storage_keys: vec![[1; 32], [2; 32]],
    }]);
    let data = vec![0xa9; 68]; // an ERC-20 transfer's calldata size
    vec![
        (
            "legacy-eip155",
            Transaction::Legacy(TxLegacy {
                chain_id: Some(1),
                nonce: 7,
                gas_price: U256::from(20_000_000_000u64),
                gas_limit: 60_000,
                to: Some(to),
                value: U256::from(0u64),
                data: data.clone(),
            }),
        ),
        (
            "eip2930",
            Transaction::Eip2930(TxEip2930 {
                chain_id: 1,
                nonce: 7,
                gas_price: U256::from(20_000_000_000u64),
                gas_limit: 60_000,
                to: Some(to),
                value: U256::from(0u64),
                data: data.clone(),
                access_list: access_list.clone(),
            }),
        ),
        ("eip1559", eip1559(7)),
        (
            "eip4844",
            Transaction::Eip4844(TxEip4844 {
                chain_id: 1,
                nonce: 7,
                max_priority_fee_per_gas: U256::from(1u64),
                max_fee_per_gas: U256::from(30_000_000_000u64),
                gas_limit: 60_000,
                to,
                value: U256::from(0u64),
                data: data.clone(),
                access_list: access_list.clone(),
                max_fee_per_blob_gas: U256::from(1u64),
                blob_versioned_hashes: vec![[1; 32], [2; 32]],
            }),
        ),
        (
            "eip7702",
            Transaction::Eip7702(TxEip7702 {
                chain_id: 1,
                nonce: 7,
                max_priority_fee_per_gas: U256::from(1u64),
                max_fee_per_gas: U256::from(30_000_000_000u64),
                gas_limit: 60_000,
                to,
                value: U256::from(0u64),
                data,
                access_list,
                authorization_list: Vec::new(),
            }),
        ),
    ]
}

/// A Seaport 1.5 listing shaped as OpenSea asks a wallet to sign one
/// (`eth_signTypedData_v4`): one ERC-721 offered for ETH, paid out in three
/// consideration items (seller, marketplace fee, creator royalty), restricted
/// to OpenSea's SignedZone and routed through its conduit. The domain, zone,
/// fee recipient and conduit key are the mainnet values; the offerer, token
/// id, amounts, times and salt are made up. OpenSea's own requests also
/// carry `totalOriginalConsiderationItems`, which `OrderComponents` does not
/// declare: the strict parse this bench times refuses an undeclared field,
/// so it is not here (`TypedData::from_json_value_lenient` reads it and
/// reports it; see `vectors/eip712/seaport_opensea_listing.json`).
const SEAPORT_ORDER: &str = r#"{
  "types": {
    "EIP712Domain": [
      { "name": "name", "type": "string" },
      { "name": "version", "type": "string" },
      { "name": "chainId", "type": "uint256" },
      { "name": "verifyingContract", "type": "address" }
    ],
    "OrderComponents": [
      { "name": "offerer", "type": "address" },
      { "name": "zone", "type": "address" },
      { "name": "offer", "type": "OfferItem[]" },
      { "name": "consideration", "type": "ConsiderationItem[]" },
      { "name": "orderType", "type": "uint8" },
      { "name": "startTime", "type": "uint256" },
      { "name": "endTime", "type": "uint256" },
      { "name": "zoneHash", "type": "bytes32" },
      { "name": "salt", "type": "uint256" },
      { "name": "conduitKey", "type": "bytes32" },
      { "name": "counter", "type": "uint256" }
    ],
    "OfferItem": [
      { "name": "itemType", "type": "uint8" },
      { "name": "token", "type": "address" },
      { "name": "identifierOrCriteria", "type": "uint256" },
      { "name": "startAmount", "type": "uint256" },
      { "name": "endAmount", "type": "uint256" }
    ],
    "ConsiderationItem": [
      { "name": "itemType", "type": "uint8" },
      { "name": "token", "type": "address" },
      { "name": "identifierOrCriteria", "type": "uint256" },
      { "name": "startAmount", "type": "uint256" },
      { "name": "endAmount", "type": "uint256" },
      { "name": "recipient", "type": "address" }
    ]
  },
  "primaryType": "OrderComponents",
  "domain": {
    "name": "Seaport",
    "version": "1.5",
    "chainId": "1",
    "verifyingContract": "0x00000000000000ADc04C56Bf30aC9d3c0aAF14dC"
  },
  "message": {
    "offerer": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
    "zone": "0x004C00500000aD104D7DBd00e3ae0A5C00560C00",
    "offer": [
      {
        "itemType": "2",
        "token": "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D",
        "identifierOrCriteria": "8520",
        "startAmount": "1",
        "endAmount": "1"
      }
    ],
    "consideration": [
      {
        "itemType": "0",
        "token": "0x0000000000000000000000000000000000000000",
        "identifierOrCriteria": "0",
        "startAmount": "11875000000000000000",
        "endAmount": "11875000000000000000",
        "recipient": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
      },
      {
        "itemType": "0",
        "token": "0x0000000000000000000000000000000000000000",
        "identifierOrCriteria": "0",
        "startAmount": "62500000000000000",
        "endAmount": "62500000000000000",
        "recipient": "0x0000a26b00c1F0DF003000390027140000fAa719"
      },
      {
        "itemType": "0",
        "token": "0x0000000000000000000000000000000000000000",
        "identifierOrCriteria": "0",
        "startAmount": "562500000000000000",
        "endAmount": "562500000000000000",
        "recipient": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"
      }
    ],
    "orderType": "2",
    "startTime": "1718000000",
    "endTime": "1720592000",
    "zoneHash": "0x0000000000000000000000000000000000000000000000000000000000000000",
    "salt": "27855337018906766782546881864045825683096516384821792734235727453648963741985",
    "conduitKey": "0x0000007b02230091a7ed01230072f7006a004d60a8d4e71d599b8104250f0000",
    "counter": "0"
  }
}"#;

/// A Uniswap Permit2 `PermitSingle` as the Uniswap app asks a wallet to sign
/// one before a swap: an unlimited (2^160 - 1), 30-day allowance of USDC to
/// the Universal Router. Addresses are the mainnet ones; times are made up.
const PERMIT2_SINGLE: &str = r#"{
  "types": {
    "EIP712Domain": [
      { "name": "name", "type": "string" },
      { "name": "chainId", "type": "uint256" },
      { "name": "verifyingContract", "type": "address" }
    ],
    "PermitSingle": [
      { "name": "details", "type": "PermitDetails" },
      { "name": "spender", "type": "address" },
      { "name": "sigDeadline", "type": "uint256" }
    ],
    "PermitDetails": [
      { "name": "token", "type": "address" },
      { "name": "amount", "type": "uint160" },
      { "name": "expiration", "type": "uint48" },
      { "name": "nonce", "type": "uint48" }
    ]
  },
  "primaryType": "PermitSingle",
  "domain": {
    "name": "Permit2",
    "chainId": "1",
    "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3"
  },
  "message": {
    "details": {
      "token": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
      "amount": "1461501637330902918203684832716283019655932542975",
      "expiration": "1720592000",
      "nonce": "0"
    },
    "spender": "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD",
    "sigDeadline": "1718001800"
  }
}"#;

/// The EIP-712 documents timed: name, JSON, the primary type's type hash
/// (the contract's own constant: Seaport's order type hash, Permit2's
/// `_PERMIT_SINGLE_TYPEHASH`) and the digest as alloy-dyn-abi 1.7 (an
/// independent implementation) computes it. A parse that read either
/// document differently fails the benchmark instead of timing something
/// else.
const EIP712_DOCUMENTS: [(&str, &str, &str, &str); 2] = [
    (
        "seaport_order",
        SEAPORT_ORDER,
        "fa445660b7e21515a59617fcd68910b487aa5808b8abda3d78bc85df364b2c2f",
        "c88f02b3ad291cffe0315e523102910bd86d2ea974fd1f8819269db49da5f79b",
    ),
    (
        "permit2_single",
        PERMIT2_SINGLE,
        "f3841cd1ff0085026a6327b620b67997ce40f282c88a8e905a7a5626e310f3d0",
        "b81503289bfd08c54c8b6eb8f7ec42179c188093c4e0971a6a75e3674b124560",
    ),
];

/// The hot path: a warm wallet signs an EIP-1559 transaction, against raw
/// k256 signing the same digest with the same key.
fn hot_path(c: &mut Criterion) {
    let signer = software_signer();
    let tx = eip1559(42);
    let digest = tx.signing_hash();
    let raw_key = SigningKey::from_slice(&hot_secret()).unwrap();
    let none = Authorization::none();

    let alloy_signer = PrivateKeySigner::from_slice(&raw_key.to_bytes()).unwrap();
    let alloy_tx = alloy_consensus::TxEip1559 {
        chain_id: 1,
        nonce: 42,
        max_priority_fee_per_gas: 1_500_000_000,
        max_fee_per_gas: 30_000_000_000,
        gas_limit: 21_000,
        to: alloy_primitives::TxKind::Call(alloy_primitives::Address::from(
            Address::parse("0x9858EfFD232B4033E47d90003D41EC34EcaEda94")
                .unwrap()
                .0,
        )),
        value: alloy_primitives::U256::from(1_000_000_000_000_000_000u128),
        access_list: Default::default(),
        input: alloy_primitives::Bytes::new(),
    };

    // The in-memory variant measures the CPU cost (its audit records are
    // shipped between timed batches); the file variant, durable writes.
    let gated_memory = Gated::in_memory(vault());
    let tmp = tempfile::tempdir().unwrap();
    let gated_file = Gated::new(
        vault(),
        Arc::new(FileStore::open(tmp.path().join("state")).unwrap()),
        Arc::new(AuditLog::open(tmp.path().join("audit.log")).unwrap()),
    );

    let mut g = c.benchmark_group("hot_path");
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&digest.0)));
    });
    g.bench_function("custody_sign_eip1559_software", |b| {
        b.iter(|| black_box(sign_once(&signer, black_box(&tx), &none)));
    });
    g.bench_function("alloy_signer_local_sign_transaction_sync", |b| {
        b.iter(|| {
            let mut t = alloy_tx.clone();
            alloy_signer
                .sign_transaction_sync(black_box(&mut t))
                .unwrap()
        });
    });
    for (name, gated) in [
        ("custody_totp_gated_eip1559_memory", &gated_memory),
        ("custody_totp_gated_eip1559_file", &gated_file),
    ] {
        g.bench_function(name, |b| {
            // Each signature presents the next period's code (a code is
            // accepted once), computed before the timing starts.
            b.iter_custom(|iters| gated.sign_timed(&tx, iters));
        });
    }
    g.finish();

    // The same two ratios measured in pairs: each path timed in blocks
    // interleaved with raw signatures (see `Pairing`); report.sh prints the
    // ratio of the two totals. Sequential benchmarks on a shared machine
    // drift by a few percent between one benchmark and the next; the ratio
    // of interleaved totals does not.
    let mut g = c.benchmark_group("hot_path_paired");
    let raw = || {
        black_box(raw_key.sign_prehash_recoverable(black_box(&digest.0)));
    };
    let mut software = Pairing::default();
    g.bench_function("software_interleaved_with_raw_k256", |b| {
        b.iter_custom(|iters| {
            software.run(iters, raw, |_| {
                black_box(sign_once(&signer, black_box(&tx), &none));
            })
        });
    });
    software.save("hot_path_paired", "software_interleaved_with_raw_k256");
    let mut gated = Pairing::default();
    g.bench_function("gated_memory_interleaved_with_raw_k256", |b| {
        b.iter_custom(|iters| gated_memory.paired_timed(&mut gated, &tx, iters, raw));
    });
    gated.save("hot_path_paired", "gated_memory_interleaved_with_raw_k256");
    g.finish();
}

/// Each stage alone.
fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("stages");
    let master = custody_core::ExtendedPrivateKey::from_seed(&SEED).unwrap();
    let node_path = WalletScheme::Default.wallet_path(WALLET).unwrap();
    let node = master.derive_path(&node_path).unwrap().into_hd_node();
    let child = WalletScheme::Default.key_child(3).unwrap();
    g.bench_function("child_from_cached_node", |b| {
        b.iter(|| node.child_secret(black_box(child)).unwrap());
    });
    let raw_key = SigningKey::from_slice(&[0x11; 32]).unwrap();
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&[7u8; 32])));
    });
    // The same key and digest signed by the vault (an imported key: no
    // derivation), through a pinned signer: k256's arithmetic with
    // custody-core's RFC 6979 nonces, normalization included.
    let imported = vault();
    imported
        .insert_key(
            KeyId::new("bench-imported").unwrap(),
            PrivateKeyBytes::new([0x11; 32]),
        )
        .unwrap();
    let imported: SharedBackend = imported;
    let imported = KeySigner::pin(
        imported,
        KeyRef::Stored(KeyId::new("bench-imported").unwrap()),
    )
    .wait()
    .unwrap();
    let none = Authorization::none();
    g.bench_function("custody_sign_digest_imported_key", |b| {
        b.iter(|| {
            imported
                .sign(Digest32(black_box([7u8; 32])), Intent::raw_digest(), &none)
                .wait()
                .unwrap()
        });
    });
    for (name, tx) in every_type() {
        g.bench_with_input(BenchmarkId::new("signing_hash", name), &tx, |b, tx| {
            b.iter(|| black_box(tx).signing_hash());
        });
    }

    // EIP-712. Parsing validates the whole document and computes
    // `hashStruct(message)` and the domain separator (every keccak but the
    // last); `signing_hash` on a parsed document is then one keccak over
    // the 66 bytes `\x19\x01 ‖ domainSeparator ‖ hashStruct`. So the first
    // bench is that last step alone and the second is the real per-request
    // cost: the JSON text a dapp sends, to the digest signed.
    for (name, json, type_hash, digest) in EIP712_DOCUMENTS {
        let typed = TypedData::from_json_str(json).unwrap();
        assert_eq!(to_hex(&typed.encoded_message()[..32]), type_hash, "{name}");
        assert_eq!(to_hex(&typed.signing_hash().0), digest, "{name}");
        g.bench_with_input(
            BenchmarkId::new("eip712_signing_hash", name),
            &typed,
            |b, typed| b.iter(|| black_box(typed).signing_hash()),
        );
        g.bench_with_input(
            BenchmarkId::new("eip712_parse_and_hash", name),
            json,
            |b, json| {
                b.iter(|| {
                    TypedData::from_json_str(black_box(json))
                        .unwrap()
                        .signing_hash()
                })
            },
        );
    }

    // TOTP verification alone: `TotpRegistry::verify` on an enrolled wallet
    // over the in-memory store and audit log (one read of the enrolment,
    // one of the guard, one HMAC (a code of the current step; a wrong code
    // costs three, for the default skew of one step: see the next bench), one
    // compare-and-swap of the guard, one audit record). `iter_custom` with
    // a fresh registry per sample rather than `iter_batched`: each
    // verification appends a record to the `MemoryAuditLog`, which keeps
    // them all, and at a few microseconds each a whole run would keep
    // millions of them in memory, with the `Vec`'s regrowth copies landing
    // in the timings; a sample holds at most tens of thousands. The codes
    // are computed before the timing starts (the user's app's work).
    let kek: SharedBackend = vault();
    g.bench_function("totp_verify", |b| {
        b.iter_custom(|iters| {
            VerifyBench::new(&kek, TotpConfig::new(WalletScheme::Default)).accepted(iters)
        });
    });
    // A wrong (well-formed) code: the same reads and HMACs, then the
    // failure count written to the guard and a `denied` record. With the
    // default lockout the fifth wrong code in a row would lock the wallet
    // and every later one would be refused unchecked, which is a different
    // (cheaper) path; this registry's lockout never triggers, so each
    // iteration is the full check of a wrong code.
    g.bench_function("totp_verify_wrong_code", |b| {
        b.iter_custom(|iters| {
            let mut config = TotpConfig::new(WalletScheme::Default);
            config.lockout.max_failures = u32::MAX;
            VerifyBench::new(&kek, config).wrong(iters)
        });
    });
    g.finish();
}

/// Lower-case hex.
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One enrolled wallet in a TOTP registry over `MemoryStore` and
/// `MemoryAuditLog`, with a manual clock, to time `TotpRegistry::verify`.
struct VerifyBench {
    registry: TotpRegistry,
    enrolment: Enrolment,
    clock: Arc<ManualClock>,
}

impl VerifyBench {
    /// A fresh registry with `WALLET` enrolled and warm (its secret
    /// unwrapped and its records decoded by one accepted code).
    fn new(kek: &SharedBackend, config: TotpConfig) -> Self {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let registry = TotpRegistry::new(
            kek.clone(),
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryAuditLog::new()),
            config,
        )
        .unwrap()
        .with_clock(clock.clone());
        let enrolment = registry.enrol(WALLET, EnrolMode::New).wait().unwrap();
        let bench = Self {
            registry,
            enrolment,
            clock,
        };
        bench
            .clock
            .advance(bench.enrolment.params().period.seconds());
        let code = bench.code_at_step(bench.step());
        assert!(
            bench
                .registry
                .verify(WALLET, Some(&code))
                .wait()
                .unwrap()
                .is_accepted()
        );
        bench
    }

    fn step(&self) -> u64 {
        self.enrolment.params().step_at(self.clock.now_unix())
    }

    fn code_at_step(&self, step: u64) -> OneTimeCode {
        let code = self
            .enrolment
            .params()
            .code_at_step(self.enrolment.uri().expose_secret(), step)
            .unwrap();
        OneTimeCode::new(code.expose_str())
    }

    /// Times `iters` accepted codes, each for the next step (the clock
    /// moves one period before each; an atomic add).
    fn accepted(&self, iters: u64) -> Duration {
        let first = self.step() + 1;
        let codes: Vec<OneTimeCode> = (first..first + iters)
            .map(|s| self.code_at_step(s))
            .collect();
        let period = self.enrolment.params().period.seconds();
        let start = Instant::now();
        for code in &codes {
            self.clock.advance(period);
            let v = self.registry.verify(WALLET, Some(code)).wait().unwrap();
            assert!(v.is_accepted());
        }
        start.elapsed()
    }

    /// Times `iters` wrong codes (well-formed, matching no step of the
    /// window), the clock standing still.
    fn wrong(&self, iters: u64) -> Duration {
        let skew = u64::from(self.registry.config().skew_steps);
        let step = self.step();
        let window: Vec<String> = (step - skew..=step + skew)
            .map(|s| self.code_at_step(s).expose_secret().to_owned())
            .collect();
        let digits = usize::from(self.enrolment.params().digits.get());
        let wrong = (0u32..)
            .map(|n| format!("{n:0digits$}"))
            .find(|c| !window.contains(c))
            .unwrap();
        let wrong = OneTimeCode::new(wrong);
        let start = Instant::now();
        for _ in 0..iters {
            let v = self.registry.verify(WALLET, Some(&wrong)).wait().unwrap();
            assert_eq!(v, Verification::Invalid);
        }
        start.elapsed()
    }
}

/// The cold path: the first signature for a wallet, from the wrapped seed.
fn cold_path(c: &mut Criterion) {
    let kek = kek();
    let context = EncryptionContext::new()
        .with("custody", "master-seed")
        .unwrap();
    let kek_id = kek.current_kek().clone();
    let sealed = Envelope::seal(kek.as_ref(), &kek_id, &context, &SEED)
        .wait()
        .unwrap();
    let digest = Digest32([5; 32]);
    let none = Authorization::none();
    let raw_key = SigningKey::from_slice(&[0x11; 32]).unwrap();

    let mut g = c.benchmark_group("cold_path");
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&digest.0)));
    });
    g.bench_function("unwrap_derive_first_signature", |b| {
        b.iter(|| {
            let seed = sealed
                .open(kek.as_ref() as &dyn WrappingBackend, &context)
                .wait()
                .unwrap();
            let mut v = Vault::new(kek.clone(), WalletScheme::Default);
            v.set_master_seed(seed.expose_secret()).unwrap();
            let backend: SharedBackend = Arc::new(v);
            let s = KeySigner::pin(
                backend,
                KeyRef::Wallet {
                    name: WALLET.into(),
                    index: 0,
                },
            )
            .wait()
            .unwrap();
            s.sign(digest, Intent::raw_digest(), &none).wait().unwrap()
        });
    });
    g.finish();
}

/// Envelope seal/open against raw AES-256-GCM on the same sizes.
fn envelopes(c: &mut Criterion) {
    let kek = kek();
    let kek_id = kek.current_kek().clone();
    let context = EncryptionContext::new().with("wallet", WALLET).unwrap();
    let cipher = Aes256Gcm::new_from_slice(&[3; 32]).unwrap();
    let nonce = Nonce::from([4u8; 12]);
    for size in [32usize, 1 << 20] {
        let mut g = c.benchmark_group(format!("envelope_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0x5a; size];
        g.bench_function("raw_aes_gcm_seal", |b| {
            b.iter(|| {
                let mut buf = plaintext.clone();
                let tag = cipher
                    .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                    .unwrap();
                black_box((buf, tag))
            });
        });
        g.bench_function("envelope_seal", |b| {
            b.iter(|| {
                Envelope::seal(kek.as_ref(), &kek_id, &context, black_box(&plaintext))
                    .wait()
                    .unwrap()
            });
        });
        let mut ct = plaintext.clone();
        let tag = cipher
            .encrypt_inout_detached(&nonce, b"", ct.as_mut_slice().into())
            .unwrap();
        g.bench_function("raw_aes_gcm_open", |b| {
            b.iter(|| {
                let mut buf = ct.clone();
                cipher
                    .decrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into(), &tag)
                    .unwrap();
                black_box(buf)
            });
        });
        let sealed = Envelope::seal(kek.as_ref(), &kek_id, &context, &plaintext)
            .wait()
            .unwrap();
        g.bench_function("envelope_open", |b| {
            b.iter(|| sealed.open(kek.as_ref(), &context).wait().unwrap());
        });
        g.finish();
    }
}

/// Signatures per second with one thread and with two, each thread signing
/// for its own wallet: shows whether anything in the hot path serializes.
fn throughput(c: &mut Criterion) {
    let backend: SharedBackend = vault();
    let signers: Vec<Arc<EthSigner>> = (0..2)
        .map(|t| {
            let key = KeyRef::Wallet {
                name: format!("user{t}@example.com"),
                index: t,
            };
            Arc::new(EthSigner::new(KeySigner::pin(backend.clone(), key).wait().unwrap()).unwrap())
        })
        .collect();
    let tx = Arc::new(eip1559(1));
    let mut g = c.benchmark_group("throughput");
    for threads in [1usize, 2] {
        // Each iteration is one signature per thread: time per iteration
        // over threads gives the aggregate rate.
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| run_threads(&signers[..threads], &tx, iters));
        });
    }
    g.finish();
}

fn run_threads(signers: &[Arc<EthSigner>], tx: &Arc<Transaction>, iters: u64) -> Duration {
    let barrier = Arc::new(std::sync::Barrier::new(signers.len() + 1));
    let handles: Vec<_> = signers
        .iter()
        .map(|s| {
            let (s, tx, barrier) = (s.clone(), tx.clone(), barrier.clone());
            std::thread::spawn(move || {
                let none = Authorization::none();
                barrier.wait();
                for _ in 0..iters {
                    black_box(s.sign_transaction(&tx, &none).wait().unwrap());
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// How many wallets sign in `file_store_throughput`.
const FILE_STORE_WALLETS: usize = 32;

/// Gated signatures per second over the durable stores, beside the rate of
/// bare durable appends on the same disk in the same run.
///
/// `signatures`: `FILE_STORE_WALLETS` TOTP-enrolled wallets behind
/// `Audited(TotpGate(Vault))` over a `FileStore` and a file `AuditLog`,
/// signed for by 1, 2, 4 and 8 threads, each thread signing for its own
/// wallets (wallet `w` belongs to thread `w % threads`). One iteration is
/// one round: the shared `ManualClock` moves one period and every wallet
/// signs once with its code for the new step, so the throughput is
/// `FILE_STORE_WALLETS` elements per iteration whatever the thread count,
/// and criterion's elem/s is signatures per second. The codes are computed
/// before the timing starts; a round ends at a barrier before the clock
/// moves again (microseconds, in rounds of tens of milliseconds).
///
/// `raw_append_fsync` (the baseline): the same rounds, threads and
/// ownership, where each "wallet" appends one 529-byte line (about the size
/// of a signature's audit record here) to a file of its own and fsyncs it. Its elem/s
/// is what this disk gives independent durable writes at that concurrency;
/// fsync latency on a shared virtual disk moves with everything else
/// writing to it, so only the ratio of the two, run side by side, means
/// much.
///
/// The durable writes of one signature, read off the code and counted with
/// `strace -f -e fsync` when this bench was written:
/// - the TOTP guard's compare-and-swap (`FileStore::compare_and_swap`):
///   under the *wallet's* guard-key lock file (`flock`), a temp file written
///   and fsynced, renamed over the record, and the directory fsynced: two
///   fsyncs, and different wallets never wait on each other's lock;
/// - the one audit record (`AuditLog::append`): under the log's single lock
///   file (`flock` on `audit.log.lock`, which every thread and process
///   takes), the file reopened, its last record read back and checked, the
///   line appended and fsynced.
///
/// Three fsyncs per signature, of which the audit one is shared: appends
/// that queue in this process while a batch is being written are written
/// together by the next one, with one fsync (`AuditLog` group commit;
/// `AuditLog::syncs` counts the fsyncs). The
/// state-store swaps are per wallet and run in parallel. Any grouping
/// beyond that is the filesystem's and the disk's (ext4 may commit
/// concurrent fsyncs in one journal transaction), and the baseline
/// measures it.
fn file_store_throughput(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let state: Arc<dyn StateStore> = Arc::new(FileStore::open(tmp.path().join("state")).unwrap());
    let audit: Arc<dyn AuditSink> = Arc::new(AuditLog::open(tmp.path().join("audit.log")).unwrap());
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let (registry, backend) = gated_stack(vault(), state, audit, clock.clone());
    let wallets: Arc<Vec<FileWallet>> = Arc::new(
        (0..FILE_STORE_WALLETS)
            .map(|w| {
                let name = format!("user{w}@example.com");
                let enrolment = registry.enrol(&name, EnrolMode::New).wait().unwrap();
                let key = KeyRef::Wallet { name, index: 0 };
                let signer =
                    EthSigner::new(KeySigner::pin(backend.clone(), key).wait().unwrap()).unwrap();
                FileWallet { signer, enrolment }
            })
            .collect(),
    );
    let tx = Arc::new(eip1559(1));
    let raw_dir = tmp.path().join("raw");
    std::fs::create_dir(&raw_dir).unwrap();
    let raw_files: Arc<Vec<std::fs::File>> = Arc::new(
        (0..FILE_STORE_WALLETS)
            .map(|w| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(raw_dir.join(format!("{w}.log")))
                    .unwrap()
            })
            .collect(),
    );

    let mut g = c.benchmark_group("file_store_throughput");
    // Rounds of tens of milliseconds: flat samples of a few rounds each.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(FILE_STORE_WALLETS as u64));
    for threads in [1usize, 2, 4, 8] {
        g.bench_function(BenchmarkId::new("raw_append_fsync", threads), |b| {
            b.iter_custom(|rounds| raw_rounds(&raw_files, threads, rounds));
        });
        g.bench_function(BenchmarkId::new("signatures", threads), |b| {
            b.iter_custom(|rounds| signature_rounds(&wallets, &clock, &tx, threads, rounds));
        });
    }
    g.finish();
}

/// A wallet of `file_store_throughput`.
struct FileWallet {
    signer: EthSigner,
    enrolment: Enrolment,
}

/// `rounds` rounds in which every wallet signs once.
fn signature_rounds(
    wallets: &Arc<Vec<FileWallet>>,
    clock: &Arc<ManualClock>,
    tx: &Arc<Transaction>,
    threads: usize,
    rounds: u64,
) -> Duration {
    // Every wallet's consent for every round, before the timing starts.
    let now = clock.now_unix();
    let consents: Vec<Vec<Authorization>> = (1..=rounds)
        .map(|r| {
            wallets
                .iter()
                .map(|w| {
                    let params = w.enrolment.params();
                    let at = now + r * params.period.seconds();
                    let code = params
                        .code_at(w.enrolment.uri().expose_secret(), at)
                        .unwrap();
                    Authorization::totp(code.expose_str())
                })
                .collect()
        })
        .collect();
    let period = wallets[0].enrolment.params().period.seconds();
    let (wallets, tx) = (wallets.clone(), tx.clone());
    run_rounds(
        threads,
        FILE_STORE_WALLETS,
        rounds,
        || clock.advance(period),
        move |round, w| {
            let signed = wallets[w]
                .signer
                .sign_transaction(&tx, &consents[round][w])
                .wait()
                .map_err(|e| e.to_string())?;
            black_box(signed.encoded().len());
            Ok(())
        },
    )
}

/// `rounds` rounds in which every file gets one line appended and fsynced.
fn raw_rounds(files: &Arc<Vec<std::fs::File>>, threads: usize, rounds: u64) -> Duration {
    use std::io::Write as _;
    let mut line = vec![b'x'; 528];
    line.push(b'\n');
    let files = files.clone();
    run_rounds(
        threads,
        FILE_STORE_WALLETS,
        rounds,
        || {},
        move |_, w| {
            let mut file = &files[w];
            file.write_all(&line)
                .and_then(|()| file.sync_all())
                .map_err(|e| e.to_string())
        },
    )
}

/// Runs `rounds` rounds on `threads` threads. In each, `before_round` runs
/// on the calling thread, then `work(round, item)` runs once for every item
/// in `0..items`, item `i` on thread `i % threads`, and the round ends when
/// all are done. Returns the time from the first round's start to the last
/// one's end (thread start-up excluded).
fn run_rounds<W>(
    threads: usize,
    items: usize,
    rounds: u64,
    before_round: impl Fn(),
    work: W,
) -> Duration
where
    W: Fn(usize, usize) -> Result<(), String> + Send + Sync + 'static,
{
    let rounds = usize::try_from(rounds).unwrap();
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (work, barrier) = (work.clone(), barrier.clone());
            std::thread::spawn(move || {
                // A failure is reported after the last round: a thread that
                // panicked here would leave the others waiting at the
                // barrier for ever.
                let mut failure = None;
                for round in 0..rounds {
                    barrier.wait(); // the round has begun
                    for item in (t..items).step_by(threads) {
                        if let Err(e) = work(round, item) {
                            failure = failure.or(Some(e));
                        }
                    }
                    barrier.wait(); // every item is done
                }
                failure
            })
        })
        .collect();
    let start = Instant::now();
    for _ in 0..rounds {
        before_round();
        barrier.wait();
        barrier.wait();
    }
    let elapsed = start.elapsed();
    for h in handles {
        let failure = h.join().unwrap();
        assert!(failure.is_none(), "{failure:?}");
    }
    elapsed
}

criterion_group!(
    benches,
    hot_path,
    stages,
    cold_path,
    envelopes,
    throughput,
    file_store_throughput
);
criterion_main!(benches);
