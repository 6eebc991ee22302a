//! Locating and reading fixtures.

use std::path::PathBuf;

/// The fixtures folder, or `None` (with a printed reason) when it is absent outside CI.
pub fn dir() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures"));
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("fixtures folder {} is missing and CI=true", p.display());
    }
    eprintln!(
        "SKIPPED: fixtures folder {} is absent; fixture tests did not run",
        p.display()
    );
    None
}

/// Read a fixture file as text.
pub fn text(rel: &str) -> Option<String> {
    let d = dir()?;
    let path = d.join(rel);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}

/// Read a fixture file as bytes.
pub fn bytes(rel: &str) -> Option<Vec<u8>> {
    let d = dir()?;
    let path = d.join(rel);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}

/// Every file with extension `ext` in the fixture subfolder `rel`, sorted.
pub fn files(rel: &str, ext: &str) -> Option<Vec<PathBuf>> {
    let d = dir()?.join(rel);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no .{ext} fixtures in {}", d.display());
    Some(out)
}

/// The JSON-RPC response line (`<< …`) of an execution-apis `.io` file.
pub fn io_response(io: &str) -> String {
    io.lines()
        .find_map(|l| l.strip_prefix("<< "))
        .unwrap_or_else(|| panic!("no response line in .io file"))
        .to_string()
}

/// Flip the lowest bit of byte `i` of a hex string (keeping an optional 0x prefix).
pub fn flip_hex(s: &str, i: usize) -> String {
    let (prefix, digits) = s.strip_prefix("0x").map_or(("", s), |d| ("0x", d));
    let mut b = hex::decode(digits).expect("hex");
    let n = b.len();
    b[i % n] ^= 1;
    format!("{prefix}{}", hex::encode(b))
}
