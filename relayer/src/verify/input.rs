//! Reading the files `verify` is given: every failure is a [`Stop::Malformed`] naming the file.

use std::path::Path;

use super::Stop;

/// Largest input file read (a long block stream or a big validator set stays far below it).
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// The bytes of `path`.
pub(crate) fn bytes(path: &Path) -> Result<Vec<u8>, Stop> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Stop::Malformed(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > MAX_FILE {
        return Err(Stop::Malformed(format!(
            "{} is larger than {MAX_FILE} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| Stop::Malformed(format!("cannot read {}: {e}", path.display())))
}

/// The text of `path`.
pub(crate) fn text(path: &Path) -> Result<String, Stop> {
    String::from_utf8(bytes(path)?)
        .map_err(|_| Stop::Malformed(format!("{} is not UTF-8 text", path.display())))
}

/// Hex from the command line (an optional `0x` prefix is allowed).
pub(crate) fn hex_arg(name: &str, value: &str) -> Result<Vec<u8>, Stop> {
    let v = value.trim();
    hex::decode(v.strip_prefix("0x").unwrap_or(v))
        .map_err(|e| Stop::Malformed(format!("--{name} is not hex: {e}")))
}

/// Prefix a parse error with the file it came from.
pub(crate) fn in_file<T, E: Into<Stop>>(path: &Path, r: Result<T, E>) -> Result<T, Stop> {
    r.map_err(|e| match e.into() {
        Stop::Malformed(m) => Stop::Malformed(format!("{}: {m}", path.display())),
        rejected => rejected,
    })
}
