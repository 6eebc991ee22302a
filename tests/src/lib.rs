//! # causeway-tests
//!
//! **Owns**: end-to-end tests that run Causeway's real binaries as containers on private Docker networks
//! (`tests/containers.rs`): crashes, restarts and partitions of validators, checked through the gateways.
//!
//! **Must never**: pull an image from a registry (the image is built locally from the workspace's binaries), or
//! pass silently when Docker is missing under `CI=true`.
