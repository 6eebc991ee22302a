//! Adapter tests over the recorded fixtures in `../shared/fixtures` (skipped with a message when the folder is
//! absent, unless `CI=true`), plus generated Besu and Tendermint chains that are then corrupted or forked.

mod besu;
mod eth_proofs;
mod fixtures;
mod ics23_fixtures;
mod props;
mod tendermint_fixtures;
mod tendermint_generated;
