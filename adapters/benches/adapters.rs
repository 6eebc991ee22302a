//! Placeholder replaced by the adapter benchmarks below.
fn main() {}
