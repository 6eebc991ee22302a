//! Besu BFT headers: the recorded IBFT 1.0 chain, the IBFT 2.0 hash vector, and generated QBFT/IBFT 2.0 chains.
