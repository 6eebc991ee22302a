//! Key files: a secret key of any suite as JSON (`{"suite", "secret", "public_key", "address"}`), written
//! readable by its owner only. Validator keys and node (p2p) keys use the same format.

use std::io::Write;
use std::path::Path;

use causeway_light_client::{Address, PublicKey, SecretKey, Suite};
use serde::{Deserialize, Serialize};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a key file.
    #[error("key file {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    suite: Suite,
    secret: String,
    public_key: PublicKey,
    address: Address,
}

/// Write `key` to `path` (mode 0600), refusing to overwrite an existing file.
pub fn save(key: &SecretKey, path: &Path) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
    let json = KeyFileJson {
        suite: key.suite(),
        secret: hex::encode(key.to_bytes()),
        public_key: key.public_key(),
        address: key.public_key().address(),
    };
    let bytes = serde_json::to_vec_pretty(&json).map_err(|e| KeyFileError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Read a key file, checking that its public key and address match the secret.
pub fn load(path: &Path) -> Result<SecretKey, KeyFileError> {
    let invalid = |reason: String| KeyFileError::Invalid { path: path.display().to_string(), reason };
    let raw = std::fs::read(path).map_err(|source| KeyFileError::Io { path: path.display().to_string(), source })?;
    let json: KeyFileJson = serde_json::from_slice(&raw).map_err(|e| invalid(e.to_string()))?;
    let secret = hex::decode(json.secret.trim()).map_err(|e| invalid(format!("secret: {e}")))?;
    let key = SecretKey::from_bytes(json.suite, &secret).map_err(|e| invalid(e.to_string()))?;
    if key.public_key() != json.public_key || key.public_key().address() != json.address {
        return Err(invalid("public key or address does not match the secret".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_refuse_overwrite_or_tampering() {
        let dir = tempfile::tempdir().unwrap();
        for suite in Suite::ALL {
            let path = dir.path().join(format!("{suite:?}.json"));
            let key = SecretKey::generate(suite);
            save(&key, &path).unwrap();
            assert_eq!(load(&path).unwrap().public_key(), key.public_key());
            assert!(save(&key, &path).is_err(), "must not overwrite");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
        let path = dir.path().join("Ed25519.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let other = SecretKey::generate(Suite::Ed25519);
        let tampered = dir.path().join("tampered.json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut v = v.as_object().unwrap().clone();
        v.insert("secret".into(), serde_json::Value::String(hex::encode(other.to_bytes())));
        std::fs::write(&tampered, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(load(&tampered), Err(KeyFileError::Invalid { .. })));
        assert!(matches!(load(&dir.path().join("missing.json")), Err(KeyFileError::Io { .. })));
    }
}
