//! `causeway-chain`: run and manage a Causeway ledger node (the command line is [`causeway_chain::cli`]). Its
//! nodes run the member endpoint module (`xchain`: the hub client, packets, transfers, atomic legs), so any chain
//! started with it can join an alliance.

/// mimalloc instead of the system allocator: the node, relay and benchmark paths allocate many small objects.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    causeway_chain::cli::main("causeway-chain", vec![causeway_chain::xchain::Endpoint::extension()])
}
