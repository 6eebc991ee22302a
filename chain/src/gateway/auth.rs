//! Access tokens: expiring, scoped, HMAC-SHA256 signed with a secret only the gateway operator holds.
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, "causeway-token-v1" ‖ claims JSON))`,
//! where the claims are `{"sub", "scopes", "exp"}` (`exp` in Unix seconds). Minting and checking are pure; the
//! current time is an argument.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"causeway-token-v1";
/// Shortest accepted secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read blocks, state, events, status, metrics; subscribe.
    Read,
    /// Submit transactions.
    Submit,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "submit" => Ok(Scope::Submit),
            other => Err(format!("unknown scope {other:?} (expected read or submit)")),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Submit => "submit",
        })
    }
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Who it was issued to (for logs).
    pub sub: String,
    /// What it allows.
    pub scopes: Vec<Scope>,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Why a token was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token form, or the claims do not parse.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not match this gateway's secret.
    #[error("token signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// Its expiry.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// Valid, but not for this.
    #[error("token lacks the {0} scope")]
    MissingScope(Scope),
    /// The secret is unusable.
    #[error("token secret: {0}")]
    Secret(String),
}

/// The HMAC secret of a gateway.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(Vec<u8>);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

impl TokenSecret {
    /// Wrap secret bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn new(bytes: Vec<u8>) -> Result<Self, TokenError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TokenError::Secret(format!(
                "{} bytes, at least {MIN_SECRET_BYTES} needed",
                bytes.len()
            )));
        }
        Ok(TokenSecret(bytes))
    }

    /// A fresh random secret.
    pub fn generate() -> Self {
        use rand_core::RngCore;
        let mut bytes = vec![0u8; 32];
        rand_core::OsRng.fill_bytes(&mut bytes);
        TokenSecret(bytes)
    }

    /// Read a secret file (hex, surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenError::Secret(format!("{}: {e}", path.display())))?;
        let bytes =
            hex::decode(text.trim()).map_err(|e| TokenError::Secret(format!("{}: {e}", path.display())))?;
        Self::new(bytes)
    }

    /// Write the secret as hex to a new file readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        let err = |e: std::io::Error| TokenError::Secret(format!("{}: {e}", path.display()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(err)?;
        file.write_all(format!("{}\n", hex::encode(&self.0)).as_bytes())
            .map_err(err)?;
        file.sync_all().map_err(err)
    }

    fn tag(&self, claims: &[u8]) -> Result<HmacSha256, TokenError> {
        // HMAC takes keys of any length, so this error is never seen in practice.
        let mut mac = HmacSha256::new_from_slice(&self.0).map_err(|e| TokenError::Secret(e.to_string()))?;
        mac.update(DOMAIN);
        mac.update(claims);
        Ok(mac)
    }

    /// Mint a token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> Result<String, TokenError> {
        let json = serde_json::to_vec(claims).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let tag = self.tag(&json)?.finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// Check a token's signature and expiry at `now` (Unix seconds) and return its claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let (payload, tag) = token
            .split_once('.')
            .ok_or_else(|| TokenError::Malformed("expected <claims>.<signature>".into()))?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|e| TokenError::Malformed(format!("signature: {e}")))?;
        self.tag(&json)?
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims =
            serde_json::from_slice(&json).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if claims.exp <= now {
            return Err(TokenError::Expired { exp: claims.exp, now });
        }
        Ok(claims)
    }

    /// Check a token and that it carries `scope`.
    pub fn authorize(&self, token: &str, scope: Scope, now: u64) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now)?;
        if !claims.scopes.contains(&scope) {
            return Err(TokenError::MissingScope(scope));
        }
        Ok(claims)
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            scopes: vec![Scope::Read],
            exp,
        }
    }

    #[test]
    fn minted_tokens_verify_until_they_expire() {
        let s = TokenSecret::generate();
        let t = s.mint(&claims(1_000)).unwrap();
        assert_eq!(s.verify(&t, 999).unwrap(), claims(1_000));
        assert_eq!(
            s.verify(&t, 1_000),
            Err(TokenError::Expired {
                exp: 1_000,
                now: 1_000
            })
        );
        assert!(s.authorize(&t, Scope::Read, 10).is_ok());
        assert_eq!(
            s.authorize(&t, Scope::Submit, 10),
            Err(TokenError::MissingScope(Scope::Submit))
        );
    }

    #[test]
    fn forged_or_mangled_tokens_are_refused() {
        let s = TokenSecret::generate();
        let other = TokenSecret::generate();
        let t = s.mint(&claims(1_000)).unwrap();
        assert_eq!(other.verify(&t, 1), Err(TokenError::BadSignature));
        // Widen the scopes but keep the old signature.
        let (_, tag) = t.split_once('.').unwrap();
        let wider = Claims {
            scopes: vec![Scope::Read, Scope::Submit],
            ..claims(1_000)
        };
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wider).unwrap())
        );
        assert_eq!(s.verify(&forged, 1), Err(TokenError::BadSignature));
        for bad in ["", "abc", "a.b", "!!.??", &format!("{t}x")] {
            assert!(s.verify(bad, 1).is_err(), "{bad:?}");
        }
        assert!(TokenSecret::new(vec![1; 8]).is_err());
    }

    #[test]
    fn secret_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let s = TokenSecret::generate();
        s.save(&path).unwrap();
        assert_eq!(TokenSecret::load(&path).unwrap(), s);
        assert!(s.save(&path).is_err(), "must not overwrite");
    }
}
