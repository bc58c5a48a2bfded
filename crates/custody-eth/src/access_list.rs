//! EIP-2930 access lists: the addresses and storage slots a transaction
//! declares it will touch (used by transaction types 1 to 4).

use rlp::Rlp;

use crate::rlp_encode::{Encode, bytes_len, list_len, write_bytes, write_list_header};
use crate::{Address, Error, codec};

/// One entry of an access list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AccessListItem {
    /// The account.
    pub address: Address,
    /// The storage slots of that account, 32 bytes each.
    pub storage_keys: Vec<[u8; 32]>,
}

impl AccessListItem {
    /// The length of the encodings of `address` and the storage keys, without
    /// the entry's list header.
    fn payload_len(&self) -> usize {
        bytes_len(self.address.as_bytes()) + self.storage_keys.as_slice().encoded_len()
    }
}

/// An EIP-2930 access list: `[[address, [storageKey, ...]], ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AccessList(pub Vec<AccessListItem>);

impl AccessList {
    /// The entries.
    #[must_use]
    pub fn items(&self) -> &[AccessListItem] {
        &self.0
    }

    /// The length of the encodings of the entries, without the list header.
    fn payload_len(&self) -> usize {
        self.0.iter().map(|item| list_len(item.payload_len())).sum()
    }

    /// Decodes `[[address, [storageKey, ...]], ...]`, strictly.
    pub(crate) fn decode(rlp: &Rlp<'_>) -> Result<Self, Error> {
        let mut items = Vec::new();
        for entry in codec::list(rlp, "access_list")? {
            let [address, keys] = codec::fields(&entry, "access list entry")?;
            let address = codec::address(&address, "access_list.address")?;
            let storage_keys = codec::list(&keys, "access_list.storage_keys")?
                .iter()
                .map(|k| codec::fixed::<32>(k, "access_list.storage_key"))
                .collect::<Result<_, _>>()?;
            items.push(AccessListItem {
                address,
                storage_keys,
            });
        }
        Ok(Self(items))
    }
}

/// `[[address, [storageKey, ...]], ...]`.
impl Encode for AccessList {
    fn encoded_len(&self) -> usize {
        list_len(self.payload_len())
    }

    fn write(&self, out: &mut Vec<u8>) {
        write_list_header(out, self.payload_len());
        for item in &self.0 {
            write_list_header(out, item.payload_len());
            write_bytes(out, item.address.as_bytes());
            item.storage_keys.as_slice().write(out);
        }
    }
}

impl From<Vec<AccessListItem>> for AccessList {
    fn from(items: Vec<AccessListItem>) -> Self {
        Self(items)
    }
}
