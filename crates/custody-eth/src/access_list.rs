//! EIP-2930 access lists: the addresses and storage slots a transaction
//! declares it will touch (used by transaction types 1 to 4).

use rlp::{Rlp, RlpStream};

use crate::{Address, Error, codec};

/// One entry of an access list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AccessListItem {
    /// The account.
    pub address: Address,
    /// The storage slots of that account, 32 bytes each.
    pub storage_keys: Vec<[u8; 32]>,
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

    pub(crate) fn append(&self, s: &mut RlpStream) {
        s.begin_list(self.0.len());
        for item in &self.0 {
            s.begin_list(2);
            codec::append_address(s, &item.address);
            s.begin_list(item.storage_keys.len());
            for key in &item.storage_keys {
                codec::append_bytes(s, key);
            }
        }
    }

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

impl From<Vec<AccessListItem>> for AccessList {
    fn from(items: Vec<AccessListItem>) -> Self {
        Self(items)
    }
}
