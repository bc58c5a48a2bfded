//! The keystore keyring: the keys that seal a v2 keystore's secrets, as the
//! plaintext of `keyring.env` (`SPEC.md`, "Keyring v1").
//!
//! ```text
//! "CKR1" | count (1 byte, 1..=16) | count × ( id length (1 byte, 1..=128) | id | key (32 bytes) )
//! ```
//!
//! The first entry is the current key (new secrets are sealed under it); the
//! others are retired keys that still open what was sealed under them. Ids
//! are KEK ids (printable ASCII) and are unique. Nothing may follow the last
//! entry. The bytes are authenticated (they are an envelope's payload), but
//! decoding is still strict: any deviation is a typed error.

use zeroize::Zeroizing;

use crate::{DataKey, Error, KekId, LocalKek, SecretVec};

const MAGIC: &[u8; 4] = b"CKR1";
/// Most keys a keyring holds.
pub(crate) const MAX_KEYS: usize = 16;
/// Longest id in a keyring.
const MAX_ID_BYTES: usize = 128;

fn malformed() -> Error {
    Error::MalformedRecord("keyring.env does not hold a valid keyring")
}

/// Encodes `kek`'s keys, its current key first.
pub(crate) fn encode(kek: &LocalKek) -> Result<SecretVec, Error> {
    let entries = kek.entries_current_first();
    let count = u8::try_from(entries.len())
        .ok()
        .filter(|n| (1..=MAX_KEYS).contains(&usize::from(*n)))
        .ok_or(Error::InvalidKeyMaterial("a keyring holds 1 to 16 keys"))?;
    // Sized exactly, so the buffer never reallocates (which would leave an
    // unwiped copy of the keys behind).
    let size = 5 + entries
        .iter()
        .map(|(id, _)| 1 + id.as_str().len() + DataKey::LEN)
        .sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(size));
    buf.extend_from_slice(MAGIC);
    buf.push(count);
    for (id, key) in entries {
        let len = u8::try_from(id.as_str().len())
            .ok()
            .filter(|n| usize::from(*n) <= MAX_ID_BYTES)
            .ok_or(Error::InvalidKeyId("keyring ids are at most 128 bytes"))?;
        buf.push(len);
        buf.extend_from_slice(id.as_str().as_bytes());
        buf.extend_from_slice(key.expose_secret());
    }
    Ok(SecretVec::new(std::mem::take(&mut *buf)))
}

/// Decodes a keyring into a [`LocalKek`] whose current KEK is the first
/// entry.
pub(crate) fn decode(bytes: &[u8]) -> Result<LocalKek, Error> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let (&count, mut rest) = rest.split_first().ok_or_else(malformed)?;
    let count = usize::from(count);
    if !(1..=MAX_KEYS).contains(&count) {
        return Err(malformed());
    }
    let mut kek: Option<LocalKek> = None;
    for _ in 0..count {
        let (&len, tail) = rest.split_first().ok_or_else(malformed)?;
        let len = usize::from(len);
        if len == 0 || len > MAX_ID_BYTES || tail.len() < len + DataKey::LEN {
            return Err(malformed());
        }
        let (id, tail) = tail.split_at(len);
        let (key, tail) = tail.split_at(DataKey::LEN);
        rest = tail;
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(|s| KekId::new(s).ok())
            .ok_or_else(malformed)?;
        let entry = LocalKek::from_key(id.clone(), DataKey::from_slice(key)?);
        kek = Some(match kek {
            None => entry,
            Some(k) if k.holds(&id) => return Err(malformed()),
            Some(k) => k.with_retired(entry)?,
        });
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    kek.ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KekId {
        KekId::new(s).unwrap()
    }

    #[test]
    fn round_trips_with_the_current_key_first() {
        let kek = LocalKek::from_key(id("keystore:0011223344556677"), DataKey::new([7; 32]))
            .with_retired(LocalKek::from_key(
                id("passphrase:aa"),
                DataKey::new([9; 32]),
            ))
            .unwrap();
        let bytes = encode(&kek).unwrap();
        let b = bytes.expose_secret();
        assert_eq!(&b[..5], b"CKR1\x02");
        // The current key comes first although "keystore:" sorts after "passphrase:".
        assert_eq!(b[5], 25);
        assert_eq!(&b[6..31], b"keystore:0011223344556677");
        assert_eq!(&b[31..63], &[7; 32]);
        assert_eq!(b.len(), 5 + (1 + 25 + 32) + (1 + 13 + 32));
        let back = decode(b).unwrap();
        assert_eq!(back.current_kek(), kek.current_kek());
        assert_eq!(
            back.kek_ids().collect::<Vec<_>>(),
            kek.kek_ids().collect::<Vec<_>>()
        );
        assert_eq!(encode(&back).unwrap().expose_secret(), b);
    }

    #[test]
    fn every_deviation_is_malformed() {
        let good = encode(&LocalKek::from_key(id("k"), DataKey::new([1; 32]))).unwrap();
        let good = good.expose_secret().to_vec();
        let mut dup = good.clone();
        dup[4] = 2;
        dup.extend_from_slice(&good[5..]);
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"CKR2\x01".to_vec(),
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0]].concat(),
            dup,
        ];
        for (at, value) in [(4, 0u8), (4, 17), (5, 0), (5, 129), (6, b' ')] {
            let mut c = good.clone();
            c[at] = value;
            cases.push(c);
        }
        for case in cases {
            assert!(
                matches!(decode(&case), Err(Error::MalformedRecord(_))),
                "{case:02x?}"
            );
        }
    }
}
