//! The enclave ↔ host link (feature `nitro-transport`): frames and
//! messages, every refusal named, and the attested-unwrap exchange end to
//! end over `tokio::io::duplex` and a Unix socket, with the fake NSM and a
//! `CiphertextForRecipient` the host side builds independently
//! (`support/recipient.rs`) for the public key in the enclave's document.
#![cfg(all(feature = "nitro-transport", feature = "nsm-fake"))]
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

#[path = "support/recipient.rs"]
mod build;

use custody_kms::nitro::fake::{Doc, FakeNsm, T0, pcr};
use custody_kms::nitro::transport::{
    EnclaveLink, HostLink, MAX_FRAME_BYTES, Message, Refusal, TransportError, read_frame,
    read_message, split_frame, write_frame, write_message,
};
use custody_kms::nitro::{
    AttestRequest, AttestationError, Expectations, Nsm, RecipientError, TrustAnchor,
    VerificationTime, Verifier,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, duplex};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

#[test]
fn frames_round_trip_over_a_duplex_pipe() {
    rt().block_on(async {
        let (mut a, mut b) = duplex(64);
        let big = vec![0x5a; MAX_FRAME_BYTES];
        let writer = tokio::spawn(async move {
            write_frame(&mut a, b"one").await.unwrap();
            write_frame(&mut a, &big).await.unwrap();
            a
        });
        assert_eq!(read_frame(&mut b).await.unwrap(), b"one");
        assert_eq!(
            read_frame(&mut b).await.unwrap(),
            vec![0x5a; MAX_FRAME_BYTES]
        );
        drop(writer.await.unwrap());
        assert!(matches!(
            read_frame(&mut b).await,
            Err(TransportError::Closed)
        ));
    });
}

#[test]
fn oversize_frame_announced_is_refused_before_reading_it() {
    rt().block_on(async {
        let (mut a, mut b) = duplex(64);
        let len = u32::try_from(MAX_FRAME_BYTES + 1).unwrap();
        a.write_all(&len.to_be_bytes()).await.unwrap();
        // Nothing of the body is sent: the refusal must not wait for it.
        match read_frame(&mut b).await {
            Err(TransportError::Oversize { len, max }) => {
                assert_eq!((len, max), (MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES));
            }
            other => panic!("{other:?}"),
        }
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(TransportError::Oversize { len, .. }) if len == u32::MAX as usize
        ));
    });
}

#[test]
fn oversize_frame_is_refused_by_the_writer() {
    rt().block_on(async {
        let (mut a, _b) = duplex(64);
        let too_big = vec![0; MAX_FRAME_BYTES + 1];
        assert!(matches!(
            write_frame(&mut a, &too_big).await,
            Err(TransportError::Oversize { .. })
        ));
        assert!(matches!(
            write_frame(&mut a, &[]).await,
            Err(TransportError::EmptyFrame)
        ));
    });
}

#[test]
fn empty_frame_is_refused() {
    rt().block_on(async {
        let (mut a, mut b) = duplex(64);
        a.write_all(&[0, 0, 0, 0]).await.unwrap();
        assert!(matches!(
            read_frame(&mut b).await,
            Err(TransportError::EmptyFrame)
        ));
    });
}

#[test]
fn stream_ending_inside_the_header_is_truncated() {
    rt().block_on(async {
        let (mut a, mut b) = duplex(64);
        a.write_all(&[0, 0]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b).await,
            Err(TransportError::Truncated {
                expected: 4,
                got: 2
            })
        ));
    });
}

#[test]
fn stream_ending_inside_the_body_is_truncated() {
    rt().block_on(async {
        let (mut a, mut b) = duplex(64);
        a.write_all(&[0, 0, 0, 10, 1, 2, 3]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b).await,
            Err(TransportError::Truncated {
                expected: 10,
                got: 3
            })
        ));
    });
}

#[test]
fn split_frame_reads_what_read_frame_reads() {
    let bytes = [0, 0, 0, 2, 7, 8, 9];
    assert_eq!(split_frame(&bytes).unwrap(), (&[7u8, 8][..], &[9u8][..]));
    assert!(matches!(split_frame(&[]), Err(TransportError::Closed)));
    assert!(matches!(
        split_frame(&[0, 0, 1]),
        Err(TransportError::Truncated {
            expected: 4,
            got: 3
        })
    ));
    assert!(matches!(
        split_frame(&[0, 0, 0, 3, 1]),
        Err(TransportError::Truncated {
            expected: 3,
            got: 1
        })
    ));
    assert!(matches!(
        split_frame(&[0, 0, 0, 0]),
        Err(TransportError::EmptyFrame)
    ));
    assert!(matches!(
        split_frame(&[0xff, 0, 0, 0]),
        Err(TransportError::Oversize { .. })
    ));
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

#[test]
fn messages_round_trip() {
    for m in [
        Message::AttestationRequest { nonce: vec![] },
        Message::AttestationRequest {
            nonce: vec![1; 512],
        },
        Message::AttestationDocument {
            document: vec![2; 100],
        },
        Message::CiphertextForRecipient {
            ciphertext: vec![3; 100],
        },
        Message::Unwrapped,
        Message::Refused(Refusal::Protocol),
        Message::Refused(Refusal::Attestation),
        Message::Refused(Refusal::Decryption),
        Message::Refused(Refusal::Untrusted),
    ] {
        assert_eq!(Message::decode(&m.encode()).unwrap(), m, "{m:?}");
    }
    assert_eq!(Message::Unwrapped.encode(), [4]);
    assert_eq!(
        Message::AttestationRequest { nonce: vec![9] }.encode(),
        [1, 9]
    );
}

#[test]
fn unknown_message_type_is_refused() {
    for t in [0u8, 6, 0xff] {
        assert!(matches!(
            Message::decode(&[t, 1]),
            Err(TransportError::UnknownMessage(x)) if x == t
        ));
    }
}

#[test]
fn malformed_messages_are_refused_by_name() {
    let cases: [(Vec<u8>, &str); 6] = [
        ([vec![1], vec![0; 513]].concat(), "AttestationRequest"),
        (vec![2], "AttestationDocument"),
        (vec![3], "CiphertextForRecipient"),
        (vec![4, 0], "Unwrapped"),
        (vec![5], "Refused"),
        (vec![5, 9], "Refused"),
    ];
    for (bytes, name) in cases {
        match Message::decode(&bytes) {
            Err(TransportError::Malformed(n)) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        Message::decode(&[]),
        Err(TransportError::EmptyFrame)
    ));
    // Debug never shows the fields' bytes.
    let m = Message::CiphertextForRecipient {
        ciphertext: vec![0xab; 3],
    };
    assert_eq!(format!("{m:?}"), "CiphertextForRecipient(3 bytes)");
}

// ---------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------

fn expected_image() -> Expectations {
    Expectations::for_image(&pcr(0), &pcr(1), &pcr(2)).with_user_data(b"manifest")
}

/// The host's side with an independently built answer: asks, verifies,
/// builds a `CiphertextForRecipient` for the document's public key
/// (standing in for KMS), forwards.
async fn host_side<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    verifier: &Verifier,
    plaintext: &[u8],
) -> Result<(), TransportError> {
    let mut host = HostLink::new(stream);
    let (document, verified) = host
        .request_attestation(
            b"host nonce",
            verifier,
            &expected_image(),
            VerificationTime::At(T0),
        )
        .await?;
    assert!(!document.is_empty());
    let spki = verified.public_key().unwrap();
    let answer = build::build(spki, &build::Parts::new(plaintext), build::BER);
    host.forward(&answer).await
}

#[test]
fn attested_unwrap_over_a_duplex_pipe() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let enclave = tokio::spawn(async move {
            let mut link = EnclaveLink::new(enclave_end);
            link.serve_unwrap(&nsm, Some(b"manifest")).await
        });
        host_side(host_end, &verifier, b"the master data key, 32 bytes!!")
            .await
            .unwrap();
        let plaintext = enclave.await.unwrap().unwrap();
        assert_eq!(
            plaintext.expose_secret(),
            b"the master data key, 32 bytes!!"
        );
    });
}

#[test]
fn attested_unwrap_over_a_unix_socket() {
    rt().block_on(async {
        let dir = std::env::temp_dir().join(format!("custody-nitro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("enclave.sock");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let enclave = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            EnclaveLink::new(stream)
                .serve_unwrap(&nsm, Some(b"manifest"))
                .await
        });
        let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        host_side(stream, &verifier, b"key over a unix socket")
            .await
            .unwrap();
        let plaintext = enclave.await.unwrap().unwrap();
        assert_eq!(plaintext.expose_secret(), b"key over a unix socket");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn host_refuses_a_document_from_another_nsm_root() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        let nsm = FakeNsm::new();
        // The host pins AWS's root: the fake's documents are untrusted.
        let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1().unwrap());
        let enclave = tokio::spawn(async move {
            EnclaveLink::new(enclave_end)
                .serve_unwrap(&nsm, Some(b"manifest"))
                .await
        });
        let mut host = HostLink::new(host_end);
        let err = host
            .request_attestation(b"n", &verifier, &expected_image(), VerificationTime::At(T0))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Attestation(AttestationError::UntrustedRoot)
        ));
        // The enclave was told, and never received an answer.
        assert!(matches!(
            enclave.await.unwrap(),
            Err(TransportError::Refused(Refusal::Untrusted))
        ));
    });
}

#[test]
fn host_refuses_a_document_with_other_pcrs() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        let mut template = Doc::valid();
        template.pcrs.insert(0, vec![0x99; 48]);
        let nsm = FakeNsm::with_template(template);
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let enclave = tokio::spawn(async move {
            EnclaveLink::new(enclave_end)
                .serve_unwrap(&nsm, Some(b"manifest"))
                .await
        });
        let err = HostLink::new(host_end)
            .request_attestation(b"n", &verifier, &expected_image(), VerificationTime::At(T0))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Attestation(AttestationError::PcrMismatch(0))
        ));
        assert!(enclave.await.unwrap().is_err());
    });
}

/// A dishonest enclave side: answers the request with `document`.
async fn answer_with<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, document: Vec<u8>) -> S {
    let request = read_message(&mut stream).await.unwrap();
    assert!(matches!(request, Message::AttestationRequest { .. }));
    write_message(&mut stream, &Message::AttestationDocument { document })
        .await
        .unwrap();
    stream
}

#[test]
fn host_refuses_a_document_for_another_nonce() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(64 * 1024);
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        // A replayed document: made for an earlier nonce.
        let old = nsm
            .attest(&AttestRequest {
                public_key: Some(b"k"),
                user_data: Some(b"manifest"),
                nonce: Some(b"earlier nonce"),
            })
            .unwrap();
        let enclave = tokio::spawn(answer_with(enclave_end, old));
        let err = HostLink::new(host_end)
            .request_attestation(
                b"fresh nonce",
                &verifier,
                &expected_image(),
                VerificationTime::At(T0),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Attestation(AttestationError::NonceMismatch)
        ));
        let mut stream = enclave.await.unwrap();
        assert_eq!(
            read_message(&mut stream).await.unwrap(),
            Message::Refused(Refusal::Untrusted)
        );
    });
}

#[test]
fn host_refuses_a_document_without_a_public_key() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(64 * 1024);
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let document = nsm
            .attest(&AttestRequest {
                public_key: None,
                user_data: Some(b"manifest"),
                nonce: Some(b"n"),
            })
            .unwrap();
        let _enclave = tokio::spawn(answer_with(enclave_end, document));
        let err = HostLink::new(host_end)
            .request_attestation(b"n", &verifier, &expected_image(), VerificationTime::At(T0))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::Attestation(AttestationError::MissingField("public_key"))
        ));
    });
}

#[test]
fn enclave_refuses_an_answer_it_cannot_open_and_says_so() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let enclave = tokio::spawn(async move {
            EnclaveLink::new(enclave_end)
                .serve_unwrap(&nsm, Some(b"manifest"))
                .await
        });
        let mut host = HostLink::new(host_end);
        host.request_attestation(b"n", &verifier, &expected_image(), VerificationTime::At(T0))
            .await
            .unwrap();
        // An answer for another key (a replayed or misdirected one).
        let other = custody_kms::nitro::EphemeralRsaKey::generate().unwrap();
        let answer = build::build(other.public_key_der(), &build::Parts::new(b"x"), build::BER);
        assert!(matches!(
            host.forward(&answer).await,
            Err(TransportError::Refused(Refusal::Decryption))
        ));
        assert!(matches!(
            enclave.await.unwrap(),
            Err(TransportError::Recipient(RecipientError::DecryptionFailed))
        ));
    });
}

#[test]
fn enclave_refuses_a_message_off_the_protocol() {
    rt().block_on(async {
        let (enclave_end, mut host_end) = duplex(1024);
        let nsm = FakeNsm::new();
        let enclave =
            tokio::spawn(
                async move { EnclaveLink::new(enclave_end).serve_unwrap(&nsm, None).await },
            );
        // An answer before any request.
        write_message(
            &mut host_end,
            &Message::CiphertextForRecipient {
                ciphertext: vec![1],
            },
        )
        .await
        .unwrap();
        assert_eq!(
            read_message(&mut host_end).await.unwrap(),
            Message::Refused(Refusal::Protocol)
        );
        assert!(matches!(
            enclave.await.unwrap(),
            Err(TransportError::Unexpected {
                expected: "AttestationRequest",
                got: "CiphertextForRecipient"
            })
        ));
    });
}

#[test]
fn enclave_reports_an_nsm_failure_as_a_refusal() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        let nsm = FakeNsm::new();
        // user data over the NSM's limit: the NSM refuses to attest.
        let enclave = tokio::spawn(async move {
            EnclaveLink::new(enclave_end)
                .serve_unwrap(&nsm, Some(&[0u8; 513]))
                .await
        });
        let verifier = Verifier::new(FakeNsm::new().anchor().unwrap());
        let err = HostLink::new(host_end)
            .request_attestation(b"n", &verifier, &expected_image(), VerificationTime::At(T0))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Refused(Refusal::Attestation)));
        assert!(matches!(
            enclave.await.unwrap(),
            Err(TransportError::Nsm(_))
        ));
    });
}

#[test]
fn enclave_sees_a_closed_link_as_closed() {
    rt().block_on(async {
        let (enclave_end, host_end) = duplex(1024);
        drop(host_end);
        let nsm = FakeNsm::new();
        assert!(matches!(
            EnclaveLink::new(enclave_end).serve_unwrap(&nsm, None).await,
            Err(TransportError::Closed)
        ));
    });
}
