"""Regenerates seaport_opensea_listing.json with eth-account, the oracle.

A Seaport 1.6 listing shaped as OpenSea's API hands one to a wallet
(`eth_signTypedData_v4` over the order's `parameters` plus `counter`): the
message carries `totalOriginalConsiderationItems`, which `OrderComponents`
does not declare. eth-account, like MetaMask, ethers and viem, hashes only
the declared fields. The key is eth-account's documentation key.

Usage: python seaport_opensea_listing.py > seaport_opensea_listing.json
(needs `pip install eth-account`; the version used is recorded in the file).
"""
import json
import sys
from importlib.metadata import version

from eth_account import Account
from eth_account.messages import encode_typed_data

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

ORDER = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "OrderComponents": [
            {"name": "offerer", "type": "address"},
            {"name": "zone", "type": "address"},
            {"name": "offer", "type": "OfferItem[]"},
            {"name": "consideration", "type": "ConsiderationItem[]"},
            {"name": "orderType", "type": "uint8"},
            {"name": "startTime", "type": "uint256"},
            {"name": "endTime", "type": "uint256"},
            {"name": "zoneHash", "type": "bytes32"},
            {"name": "salt", "type": "uint256"},
            {"name": "conduitKey", "type": "bytes32"},
            {"name": "counter", "type": "uint256"},
        ],
        "OfferItem": [
            {"name": "itemType", "type": "uint8"},
            {"name": "token", "type": "address"},
            {"name": "identifierOrCriteria", "type": "uint256"},
            {"name": "startAmount", "type": "uint256"},
            {"name": "endAmount", "type": "uint256"},
        ],
        "ConsiderationItem": [
            {"name": "itemType", "type": "uint8"},
            {"name": "token", "type": "address"},
            {"name": "identifierOrCriteria", "type": "uint256"},
            {"name": "startAmount", "type": "uint256"},
            {"name": "endAmount", "type": "uint256"},
            {"name": "recipient", "type": "address"},
        ],
    },
    "primaryType": "OrderComponents",
    "domain": {
        "name": "Seaport",
        "version": "1.6",
        "chainId": 1,
        "verifyingContract": "0x0000000000000068F116a894984e2DB1123eB395",
    },
    "message": {
        "offerer": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
        "zone": "0x000056F7000000EcE9003ca63978907a00FFD100",
        "offer": [
            {
                "itemType": 2,
                "token": "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D",
                "identifierOrCriteria": "8520",
                "startAmount": "1",
                "endAmount": "1",
            }
        ],
        "consideration": [
            {
                "itemType": 0,
                "token": "0x0000000000000000000000000000000000000000",
                "identifierOrCriteria": "0",
                "startAmount": "11875000000000000000",
                "endAmount": "11875000000000000000",
                "recipient": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
            },
            {
                "itemType": 0,
                "token": "0x0000000000000000000000000000000000000000",
                "identifierOrCriteria": "0",
                "startAmount": "62500000000000000",
                "endAmount": "62500000000000000",
                "recipient": "0x0000a26b00c1F0DF003000390027140000fAa719",
            },
            {
                "itemType": 0,
                "token": "0x0000000000000000000000000000000000000000",
                "identifierOrCriteria": "0",
                "startAmount": "562500000000000000",
                "endAmount": "562500000000000000",
                "recipient": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
            },
        ],
        "orderType": 2,
        "startTime": "1764633600",
        "endTime": "1767225600",
        "zoneHash": "0x0000000000000000000000000000000000000000000000000000000000000000",
        "salt": "0x3d958fe20000000000000000000000000000000000000000a5a2b9f1c0e3d671",
        "conduitKey": "0x0000007b02230091a7ed01230072f7006a004d60a8d4e71d599b8104250f0000",
        "totalOriginalConsiderationItems": 3,
        "counter": "0",
    },
}


def main():
    signable = encode_typed_data(full_message=ORDER)
    signed = Account.sign_message(signable, private_key=KEY)
    out = {
        "source": "eth-account " + version("eth-account")
        + ": Account.sign_message(encode_typed_data(full_message=typedData), privateKey)",
        "note": "Seaport 1.6 listing in the shape OpenSea's API gives a wallet; "
        "message.totalOriginalConsiderationItems is not declared by OrderComponents "
        "and is left out of the hash by eth-account, MetaMask, ethers and viem.",
        "privateKey": KEY,
        "address": Account.from_key(KEY).address,
        "ignoredFields": ["message.totalOriginalConsiderationItems"],
        "typedData": ORDER,
        "digest": "0x" + signed.message_hash.hex().removeprefix("0x"),
        "signature": "0x" + signed.signature.hex().removeprefix("0x"),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
