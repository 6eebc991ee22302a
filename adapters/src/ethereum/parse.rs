//! Reading Besu data as nodes and tools produce it: headers as RLP (hex) or JSON (an `eth_getBlockByNumber`
//! response, its `result`, or a plain header object with decimal numbers), RLP block files, validator lists and
//! Besu genesis files. Everything here takes strings or bytes; nothing reads files.

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use alloy_rlp::Decodable;
use serde_json::{Map, Value};

use super::extra::BftFamily;
use super::{EthError, Result};

fn malformed(what: &str, e: impl std::fmt::Display) -> EthError {
    EthError::Malformed(format!("{what}: {e}"))
}

/// The `result` object of a JSON-RPC response, or the value itself when it is not a response.
pub fn rpc_result(json: &str, what: &str) -> Result<Value> {
    let mut v: Value = serde_json::from_str(json).map_err(|e| malformed(what, e))?;
    if let Some(err) = v.get("error") {
        return Err(EthError::Malformed(format!(
            "{what}: the node answered with an error: {err}"
        )));
    }
    Ok(match v.get_mut("result") {
        Some(r) => r.take(),
        None => v,
    })
}

/// Decode hex with or without `0x`.
pub fn decode_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| malformed("hex", e))
}

/// Decode one RLP-encoded header; trailing bytes are refused.
pub fn header_from_rlp(bytes: &[u8]) -> Result<Header> {
    let mut buf = bytes;
    let h = Header::decode(&mut buf)?;
    if !buf.is_empty() {
        return Err(EthError::Malformed(format!(
            "{} bytes after the header",
            buf.len()
        )));
    }
    Ok(h)
}

const QUANTITY_FIELDS: [&str; 9] = [
    "difficulty",
    "number",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "baseFeePerGas",
    "blobGasUsed",
    "excessBlobGas",
    "size",
];

/// Bring a header object to the JSON-RPC shape: `coinbase` → `miner`, decimal numbers → hex quantities.
fn normalise_header_object(mut obj: Map<String, Value>) -> Value {
    if let Some(c) = obj.remove("coinbase") {
        obj.entry("miner").or_insert(c);
    }
    for field in QUANTITY_FIELDS {
        if let Some(Value::Number(n)) = obj.get(field) {
            if let Some(u) = n.as_u64() {
                obj.insert(field.to_string(), Value::String(format!("{u:#x}")));
            }
        }
    }
    if let Some(Value::Number(n)) = obj.get("nonce") {
        if let Some(u) = n.as_u64() {
            obj.insert("nonce".to_string(), Value::String(format!("0x{u:016x}")));
        }
    }
    Value::Object(obj)
}

/// Parse a header from JSON: an `eth_getBlockByNumber` response or its result, or a plain header object.
/// Returns the header and the hash the document claims for it, if any (never trusted; compare it).
pub fn header_from_json(json: &str) -> Result<(Header, Option<B256>)> {
    let v = rpc_result(json, "header JSON")?;
    let Value::Object(obj) = v else {
        return Err(EthError::Malformed(
            "header JSON is not an object (was the block found?)".into(),
        ));
    };
    let claimed = match obj.get("hash") {
        Some(Value::String(s)) => Some(s.parse::<B256>().map_err(|e| malformed("hash field", e))?),
        _ => None,
    };
    let header: Header =
        serde_json::from_value(normalise_header_object(obj)).map_err(|e| malformed("header fields", e))?;
    Ok((header, claimed))
}

/// Parse a header given as text: JSON when it starts with `{`, otherwise RLP in hex.
pub fn header_from_text(text: &str) -> Result<(Header, Option<B256>)> {
    if text.trim_start().starts_with('{') {
        header_from_json(text)
    } else {
        Ok((header_from_rlp(&decode_hex(text)?)?, None))
    }
}

/// The RLP encoding of a header (what [`header_from_rlp`] reads back).
pub fn header_to_rlp(header: &Header) -> Vec<u8> {
    alloy_rlp::encode(header)
}

/// Headers of concatenated RLP blocks (`[header, transactions, ommers, …]` each).
pub fn headers_from_block_stream(mut bytes: &[u8]) -> Result<Vec<Header>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let outer = alloy_rlp::Header::decode(&mut bytes)?;
        if !outer.list || outer.payload_length > bytes.len() {
            return Err(EthError::Malformed(format!(
                "block #{} is not a complete RLP list",
                out.len()
            )));
        }
        let (mut block, rest) = bytes.split_at(outer.payload_length);
        out.push(Header::decode(&mut block)?);
        bytes = rest;
    }
    Ok(out)
}

/// A validator list: a JSON array of addresses (or a JSON-RPC response whose result is one, or an object with a
/// `validators` array).
pub fn validators_from_json(json: &str) -> Result<Vec<Address>> {
    let mut v = rpc_result(json, "validators JSON")?;
    if let Some(list) = v.get_mut("validators") {
        v = list.take();
    }
    let list: Vec<Address> = serde_json::from_value(v).map_err(|e| malformed("validators JSON", e))?;
    if list.is_empty() {
        return Err(EthError::Malformed("empty validator list".into()));
    }
    let mut sorted = list.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != list.len() {
        return Err(EthError::Malformed("validator list repeats an address".into()));
    }
    Ok(list)
}

/// What a Besu genesis file fixes about block 0, and the chain's BFT parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// Chain id from `config.chainId`.
    pub chain_id: u64,
    /// Blocks per epoch (`config.<family>.epochlength`, Besu's default 30000 when absent).
    pub epoch_length: u64,
    /// Header fields the genesis fixes (its state root comes from `alloc` and is not recomputed here).
    pub extra_data: Vec<u8>,
    /// Genesis timestamp.
    pub timestamp: u64,
    /// Genesis gas limit.
    pub gas_limit: u64,
    /// Genesis mix hash.
    pub mix_hash: B256,
    /// Genesis coinbase.
    pub coinbase: Address,
}

fn flex_u64(v: Option<&Value>, what: &str) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| EthError::Malformed(format!("{what} is not a u64"))),
        Some(Value::String(s)) => match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).map_err(|e| malformed(what, e)),
            None => s.parse().map_err(|e| malformed(what, e)),
        },
        Some(_) => Err(EthError::Malformed(format!(
            "{what} is neither a number nor a string"
        ))),
    }
}

fn str_field<'a>(g: &'a Value, name: &str) -> Option<&'a str> {
    g.get(name).and_then(Value::as_str)
}

/// Parse a Besu genesis file for the given family.
pub fn genesis_from_json(json: &str, family: BftFamily) -> Result<Genesis> {
    let g: Value = serde_json::from_str(json).map_err(|e| malformed("genesis JSON", e))?;
    let config = g
        .get("config")
        .ok_or_else(|| EthError::Malformed("genesis has no config".into()))?;
    let section = match family {
        BftFamily::Qbft => "qbft",
        BftFamily::Ibft2 => "ibft2",
        BftFamily::Ibft1 => "ibft",
    };
    let epoch = config.get(section).and_then(|s| s.get("epochlength"));
    let epoch_length = if epoch.is_some() {
        flex_u64(epoch, "epochlength")?
    } else {
        30_000
    };
    Ok(Genesis {
        chain_id: flex_u64(config.get("chainId"), "chainId")?,
        epoch_length,
        extra_data: decode_hex(str_field(&g, "extraData").unwrap_or("0x"))?,
        timestamp: flex_u64(g.get("timestamp"), "timestamp")?,
        gas_limit: flex_u64(g.get("gasLimit"), "gasLimit")?,
        mix_hash: match str_field(&g, "mixHash") {
            Some(h) => h.parse().map_err(|e| malformed("mixHash", e))?,
            None => B256::ZERO,
        },
        coinbase: match str_field(&g, "coinbase") {
            Some(a) => a.parse().map_err(|e| malformed("coinbase", e))?,
            None => Address::ZERO,
        },
    })
}

impl Genesis {
    /// Check that `header` is the block 0 this genesis describes.
    pub fn matches(&self, header: &Header) -> Result<()> {
        let mismatch = |field: &str| {
            Err(EthError::HashMismatch(format!(
                "block 0 {field} differs from the genesis file"
            )))
        };
        if header.number != 0 {
            return Err(EthError::NotSequential(format!(
                "first block is {}, not 0",
                header.number
            )));
        }
        if header.extra_data.as_ref() != self.extra_data.as_slice() {
            return mismatch("extraData");
        }
        if header.timestamp != self.timestamp {
            return mismatch("timestamp");
        }
        if header.gas_limit != self.gas_limit {
            return mismatch("gasLimit");
        }
        if header.mix_hash != self.mix_hash {
            return mismatch("mixHash");
        }
        if header.beneficiary != self.coinbase {
            return mismatch("coinbase");
        }
        Ok(())
    }
}
