//! The consensus write-ahead log: what a validator must remember across a crash so that, restarted at any
//! moment, it re-derives its round state (locks included) and never signs two different votes for one
//! height/round.
//!
//! **Owns**: the entry type, its framing (pure: [`encode_entry`], [`decode_log`]) and a small file-backed shell
//! ([`WalFile`]) with batched fsync. **Must never**: panic on a damaged file. A torn tail (a crash in the middle of
//! a write) is detected by its length or checksum and truncated; a frame that checks out but cannot be read is
//! an error, never silently skipped.
//!
//! Layout: the 8-byte magic [`WAL_MAGIC`], then frames `len: u32 LE ‖ crc32(body): u32 LE ‖ body`, where
//! `body = version byte ‖ Borsh(entry)`. The log holds one height: [`WalEntry::StartHeight`] truncates it.
//!
//! Ordering contract with [`super::core`]: every input that changed the round state is appended before anything
//! it caused leaves the node, and [`super::core::Effect::FlushWal`] (one fsync for the whole batch) precedes the
//! sending of every signed message.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::types::MAX_BLOCK_BYTES;
use causeway_light_client::Block;

use super::types::{SignedProposal, SignedVote, TimeoutKind};

/// First bytes of every consensus WAL file.
pub const WAL_MAGIC: &[u8; 8] = b"CWYWAL\x00\x01";
/// Version byte of every entry this build writes and reads.
pub const WAL_ENTRY_VERSION: u8 = 1;
/// Largest frame body accepted (a proposal carries a whole block).
pub const MAX_WAL_ENTRY: usize = MAX_BLOCK_BYTES + 64 * 1024;

/// One thing consensus remembered.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalEntry {
    /// Consensus started this height; everything before it is obsolete.
    StartHeight {
        /// The height.
        height: u64,
    },
    /// A verified proposal of another validator, with the application's verdict on its block.
    Proposal {
        /// The proposal.
        proposal: SignedProposal,
        /// The verdict it was fed with.
        valid: bool,
    },
    /// A verified vote of another validator (or our own, fed back).
    Vote(SignedVote),
    /// A timer elapsed.
    Timeout {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Which timer.
        kind: TimeoutKind,
    },
    /// The application's block for our own proposal.
    ProposeValue {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// The block.
        block: Block,
    },
    /// A proposal we signed (written and synced before it was sent).
    OwnProposal(SignedProposal),
    /// A vote we signed (written and synced before it was sent).
    OwnVote(SignedVote),
}

impl WalEntry {
    /// The height the entry belongs to.
    pub fn height(&self) -> u64 {
        match self {
            WalEntry::StartHeight { height } => *height,
            WalEntry::Proposal { proposal, .. } | WalEntry::OwnProposal(proposal) => proposal.proposal.height,
            WalEntry::Vote(v) | WalEntry::OwnVote(v) => v.vote.height,
            WalEntry::Timeout { height, .. } | WalEntry::ProposeValue { height, .. } => *height,
        }
    }
}

/// Why a WAL could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The file does not start with [`WAL_MAGIC`]: it is not a consensus WAL.
    #[error("not a consensus WAL (bad magic)")]
    BadMagic,
    /// A frame with a valid checksum carries an entry version this build does not know.
    #[error("WAL entry at offset {offset} has unknown version {version}")]
    UnknownVersion {
        /// Offset of the frame.
        offset: usize,
        /// Its version byte.
        version: u8,
    },
    /// A frame with a valid checksum does not decode: written by an incompatible build.
    #[error("WAL entry at offset {offset} does not decode: {reason}")]
    Undecodable {
        /// Offset of the frame.
        offset: usize,
        /// Decoder message.
        reason: String,
    },
    /// The file system failed.
    #[error("WAL i/o on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What was read back from a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Entries, in write order.
    pub entries: Vec<WalEntry>,
    /// Length of the valid prefix (magic and whole, checked frames).
    pub valid_len: usize,
    /// Bytes after the valid prefix (a torn or corrupt tail) that must be truncated.
    pub discarded: usize,
}

/// The frame of one entry: `len ‖ crc32 ‖ version ‖ borsh`.
pub fn encode_entry(entry: &WalEntry) -> Vec<u8> {
    let mut body = Vec::with_capacity(128);
    body.push(WAL_ENTRY_VERSION);
    // Writing into a Vec cannot fail.
    let _ = BorshSerialize::serialize(entry, &mut body);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Read a whole log. An empty input (or a torn magic) is an empty log; a tail that is cut short or fails its
/// checksum is reported in [`Recovered::discarded`], never an error.
pub fn decode_log(bytes: &[u8]) -> Result<Recovered, WalError> {
    if bytes.len() < WAL_MAGIC.len() {
        if WAL_MAGIC.starts_with(bytes) {
            return Ok(Recovered { entries: Vec::new(), valid_len: 0, discarded: bytes.len() });
        }
        return Err(WalError::BadMagic);
    }
    if &bytes[..WAL_MAGIC.len()] != WAL_MAGIC {
        return Err(WalError::BadMagic);
    }
    let mut entries = Vec::new();
    let mut at = WAL_MAGIC.len();
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_WAL_ENTRY {
            break;
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len) else { break };
        if crc32fast::hash(body) != crc {
            break;
        }
        let (&version, rest) = body.split_first().ok_or(WalError::Undecodable { offset: at, reason: "empty".into() })?;
        if version != WAL_ENTRY_VERSION {
            return Err(WalError::UnknownVersion { offset: at, version });
        }
        let entry = borsh::from_slice::<WalEntry>(rest)
            .map_err(|e| WalError::Undecodable { offset: at, reason: e.to_string() })?;
        entries.push(entry);
        at += 8 + len;
    }
    Ok(Recovered { entries, valid_len: at, discarded: bytes.len() - at })
}

/// A WAL in a file. Appends are buffered; [`WalFile::flush`] writes the batch and fsyncs once.
#[derive(Debug)]
pub struct WalFile {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

impl WalFile {
    /// Open (or create) the log at `path`, read it back and truncate a torn tail.
    pub fn open(path: impl AsRef<Path>) -> Result<(WalFile, Recovered), WalError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| WalError::Io { path: path.clone(), source };
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let recovered = decode_log(&bytes)?;
        if recovered.valid_len < WAL_MAGIC.len() {
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(WAL_MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
        } else if recovered.discarded > 0 {
            file.set_len(recovered.valid_len as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((WalFile { path, file, pending: Vec::new() }, recovered))
    }

    /// Buffer `entry`. [`WalEntry::StartHeight`] first truncates the log (the previous height is committed).
    pub fn append(&mut self, entry: &WalEntry) -> Result<(), WalError> {
        if matches!(entry, WalEntry::StartHeight { .. }) {
            self.pending.clear();
            let io = |source| WalError::Io { path: self.path.clone(), source };
            self.file.set_len(WAL_MAGIC.len() as u64).map_err(io)?;
            self.file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        self.pending.extend_from_slice(&encode_entry(entry));
        Ok(())
    }

    /// Write everything buffered and fsync once. A no-op when nothing is buffered.
    pub fn flush(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let io = |source| WalError::Io { path: self.path.clone(), source };
        self.file.write_all(&self.pending).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.pending.clear();
        Ok(())
    }

    /// Bytes buffered but not yet durable.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::{Vote, VoteKind};
    use causeway_light_client::{Address, Hash, SecretKey, Suite};
    use proptest::prelude::*;

    fn vote(round: u32) -> WalEntry {
        let key = SecretKey::from_bytes(Suite::Ed25519, &[3; 32]).expect("key");
        WalEntry::OwnVote(
            Vote { height: 7, round, kind: VoteKind::Prevote, block_id: Some(Hash([round as u8; 32])), validator: Address([2; 20]) }
                .sign("c", &key),
        )
    }

    fn log(entries: &[WalEntry]) -> Vec<u8> {
        let mut out = WAL_MAGIC.to_vec();
        for e in entries {
            out.extend_from_slice(&encode_entry(e));
        }
        out
    }

    #[test]
    fn round_trip_and_every_torn_tail_is_truncated() {
        let entries = vec![WalEntry::StartHeight { height: 7 }, vote(0), vote(1), WalEntry::Timeout { height: 7, round: 1, kind: TimeoutKind::Prevote }];
        let bytes = log(&entries);
        let r = decode_log(&bytes).expect("decode");
        assert_eq!(r.entries, entries);
        assert_eq!((r.valid_len, r.discarded), (bytes.len(), 0));
        // Cut anywhere: a prefix of the entries survives, nothing panics, the tail is reported.
        for cut in 0..bytes.len() {
            let r = decode_log(&bytes[..cut]).expect("torn tails are not errors");
            assert_eq!(r.entries[..], entries[..r.entries.len()]);
            assert_eq!(r.valid_len + r.discarded, cut);
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_log_there() {
        let entries = vec![vote(0), vote(1)];
        let mut bytes = log(&entries);
        let second = WAL_MAGIC.len() + encode_entry(&entries[0]).len();
        bytes[second + 20] ^= 0x10;
        let r = decode_log(&bytes).expect("decode");
        assert_eq!(r.entries, entries[..1]);
        assert_eq!(r.valid_len, second);
    }

    #[test]
    fn foreign_files_and_unknown_versions_are_errors() {
        assert!(matches!(decode_log(b"NOTAWAL!xxxx"), Err(WalError::BadMagic)));
        let mut body = vec![9u8];
        body.extend_from_slice(&[1, 2, 3]);
        let mut bytes = WAL_MAGIC.to_vec();
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        assert!(matches!(decode_log(&bytes), Err(WalError::UnknownVersion { version: 9, .. })));
    }

    #[test]
    fn file_shell_batches_truncates_torn_tails_and_resets_per_height() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cons.wal");
        {
            let (mut wal, r) = WalFile::open(&path).expect("open");
            assert!(r.entries.is_empty());
            wal.append(&WalEntry::StartHeight { height: 7 }).expect("append");
            wal.append(&vote(0)).expect("append");
            assert!(wal.pending_bytes() > 0);
            wal.flush().expect("flush");
            wal.append(&vote(1)).expect("append");
            // Dropped without flush: vote(1) never reached the disk.
        }
        // Simulate a torn write at the end.
        let mut raw = std::fs::read(&path).expect("read");
        raw.extend_from_slice(&encode_entry(&vote(2))[..10]);
        std::fs::write(&path, &raw).expect("write");
        let (mut wal, r) = WalFile::open(&path).expect("reopen");
        assert_eq!(r.entries, vec![WalEntry::StartHeight { height: 7 }, vote(0)]);
        assert_eq!(r.discarded, 10);
        assert_eq!(std::fs::metadata(&path).expect("meta").len() as usize, r.valid_len);
        wal.append(&WalEntry::StartHeight { height: 8 }).expect("reset");
        wal.flush().expect("flush");
        let (_, r) = WalFile::open(&path).expect("reopen");
        assert_eq!(r.entries, vec![WalEntry::StartHeight { height: 8 }]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = WAL_MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = decode_log(&bytes);
            let _ = decode_log(&tail);
        }
    }
}
