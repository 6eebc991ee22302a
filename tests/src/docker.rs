//! Docker plumbing for the container tests: whether an engine answers, the project's image built locally from
//! the workspace's own binaries (no registry), and thin `docker` commands (kill, pause, partition).
//!
//! The image is `FROM scratch`: the binaries plus every shared library `ldd` lists for them, so it runs exactly
//! what `cargo test --workspace` just built.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The image the container tests run (built by [`build_image`]).
pub const IMAGE: &str = "causeway";
/// Its tag.
pub const TAG: &str = "test";
/// The binaries in the image, each at `/<name>`.
pub const BINARIES: &[&str] = &[
    "causeway-chain",
    "causeway-hub",
    "causeway-relayer",
    "causeway-byzantine-relayer",
];

/// Run `docker` with `args`.
pub fn docker(args: &[&str]) -> std::io::Result<Output> {
    Command::new("docker").args(args).output()
}

/// Run `docker` with `args` and panic with its error output unless it succeeds.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args).unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when a Docker engine answers; otherwise prints why and returns false — except under `CI=true`, where a
/// missing engine is a failure (panics).
pub fn docker_available() -> bool {
    let ok = docker(&["info", "--format", "{{.ServerVersion}}"])
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let msg = "SKIP containers: no Docker engine reachable (`docker info` failed)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg}; CI=true requires one"
        );
        eprintln!("{msg}");
    }
    ok
}

pub use causeway_chain::testkit::sibling_binary as sibling;

/// The library paths `ldd` lists for `bin` (absolute paths only).
fn shared_libraries(bin: &Path) -> Vec<String> {
    let ldd = Command::new("ldd").arg(bin).output().expect("ldd runs");
    String::from_utf8_lossy(&ldd.stdout)
        .lines()
        // "libx.so => /lib/x86_64-linux-gnu/libx.so (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        .filter_map(|line| line.split("=>").last().and_then(|r| r.split_whitespace().next()))
        .filter(|p| p.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// Build `causeway:test` from [`BINARIES`] and their libraries (once per test process; Docker's layer cache makes
/// a rebuild with unchanged binaries cheap).
pub fn build_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().expect("temporary build context");
        let root = ctx.path().join("root");
        std::fs::create_dir_all(root.join("tmp")).expect("image root");
        let mut libraries = std::collections::BTreeSet::new();
        for name in BINARIES {
            let bin = sibling(name);
            std::fs::copy(&bin, root.join(name)).unwrap_or_else(|e| panic!("copying {}: {e}", bin.display()));
            libraries.extend(shared_libraries(&bin));
        }
        for lib in libraries {
            let dest = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().expect("library directory")).expect("library directory");
            std::fs::copy(&lib, &dest).unwrap_or_else(|e| panic!("copying {lib}: {e}"));
        }
        std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY root/ /\n").expect("Dockerfile");
        let context = ctx.path().to_str().expect("UTF-8 temp path");
        docker_ok(&["build", "-q", "-t", &format!("{IMAGE}:{TAG}"), context]);
    });
}

/// Create the private network `name` (removing a leftover one of that name first).
pub fn create_network(name: &str) {
    let _ = docker(&["network", "rm", name]);
    docker_ok(&["network", "create", name]);
}

/// The host port Docker publishes for `container`'s TCP `port` now (it can change after a restart or reconnect).
pub fn published_port(container: &str, port: u16) -> Option<u16> {
    let out = docker(&["port", container, &format!("{port}/tcp")]).ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.rsplit(':').next()?.trim().parse::<u16>().ok())
}
