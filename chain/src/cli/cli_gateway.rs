//! The `tx`, `query` and `token` subcommands of `causeway-chain`: clients of a node's gateway.

use std::path::PathBuf;
use std::time::Duration;

use crate::gateway::auth::unix_now;
use crate::gateway::client::{BlockRef, EventQuery, GatewayClient};
use crate::gateway::tls::ClientTls;
use crate::gateway::{Claims, Scope, TokenSecret};
use crate::keys;
use crate::message::{Amount, Bytes, Denom, Message};
use crate::tx::Transaction;
use anyhow::{bail, Context, Result};
use causeway_light_client::{Address, Hash, Namespace};
use clap::{Args, Subcommand};

/// Where the gateway is and how to authenticate.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8600")]
    pub gateway: String,
    /// An access token, when the gateway requires one.
    #[arg(long)]
    pub token: Option<String>,
    /// CA certificate (PEM) of a TLS gateway (`https://…`).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for gateways that require mutual TLS.
    #[arg(long, requires_all = ["ca", "cert_key"])]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    pub cert_key: Option<PathBuf>,
}

/// What every transaction subcommand needs.
#[derive(Args, Debug, Clone)]
pub struct TxCommon {
    /// The gateway.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The signer's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The nonce to use (default: the account's next nonce on chain).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait until the transaction is committed and print its result.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait with --wait (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `causeway-chain tx …`.
#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Move an amount of an asset to an address.
    Transfer {
        /// Recipient address (hex).
        #[arg(long, value_parser = parse_address)]
        to: Address,
        /// Asset.
        #[arg(long)]
        denom: Denom,
        /// Amount (integer).
        #[arg(long)]
        amount: u128,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Issue an amount of an asset (the first issue creates it with the signer as issuer).
    Issue {
        /// Asset.
        #[arg(long)]
        denom: Denom,
        /// Amount (integer).
        #[arg(long)]
        amount: u128,
        /// Recipient (default: the signer).
        #[arg(long, value_parser = parse_address)]
        to: Option<Address>,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Write a data record in an organisation's namespace.
    PutRecord {
        /// Namespace (`org/<id>` or `org/<id>/…`).
        #[arg(long)]
        namespace: Namespace,
        /// Record key.
        #[arg(long = "record-key")]
        record_key: String,
        /// Record content as text.
        #[arg(long, conflicts_with_all = ["value_hex", "value_file"])]
        value: Option<String>,
        /// Record content as hex.
        #[arg(long)]
        value_hex: Option<String>,
        /// Record content from a file.
        #[arg(long)]
        value_file: Option<PathBuf>,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Propose a governance action (validators only), given as JSON, e.g.
    /// `{"action":"admit_org","org":"acme","admin":"<address>"}`; the proposer's vote counts as yes.
    Propose {
        /// The action as JSON (or @FILE to read it from a file).
        #[arg(long)]
        action: String,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Vote on an open governance proposal (validators only).
    Vote {
        /// The proposal id (printed by `propose`, in its `gov.proposal` event).
        #[arg(long)]
        proposal: u64,
        /// Vote no (default: yes).
        #[arg(long)]
        reject: bool,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
    /// Propose creating this member chain's light client of the hub, trusting the hub's latest header as read from
    /// the hub's gateway (each validator that votes should check that header against the hub independently).
    CreateHubClient {
        /// The hub's gateway.
        #[arg(long)]
        hub_gateway: String,
        /// The gateway and the signer.
        #[command(flatten)]
        common: TxCommon,
    },
}

/// A chain's latest header and the validators that sign the next height, read from its gateway: the trusted point
/// of a new light client. Also the chain's hash function.
pub async fn trusted_point(
    gateway: &str,
) -> Result<(
    causeway_light_client::Header,
    causeway_light_client::ValidatorSet,
    causeway_light_client::HashAlg,
)> {
    let c = GatewayClient::new(gateway)?;
    let status = c.status().await.with_context(|| format!("reading {gateway}"))?;
    let h = status.height;
    let header = c.header(BlockRef::Height(h)).await?.header;
    let next = c.validators(BlockRef::Height(h + 1)).await?.validators;
    Ok((header, next, status.hash_alg))
}

/// `causeway-chain query …`.
#[derive(Subcommand, Debug)]
pub enum QueryCommand {
    /// The node's status.
    Status {
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// A block (a height or `latest`).
    Block {
        /// Height or `latest`.
        #[arg(default_value = "latest", value_parser = parse_block_ref)]
        height: BlockRef,
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// A committed transaction with its result.
    Tx {
        /// Its hash (hex).
        #[arg(value_parser = parse_hash)]
        hash: Hash,
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// A state value with its proof, checked against the state root the gateway names.
    State {
        /// Namespace.
        namespace: Namespace,
        /// Key: text, or hex with --hex.
        key: String,
        /// The key is hex.
        #[arg(long)]
        hex: bool,
        /// Height (default latest).
        #[arg(long)]
        height: Option<u64>,
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// An account's nonce and balances.
    Account {
        /// Address (hex).
        #[arg(value_parser = parse_address)]
        address: Address,
        /// Denominations to show, comma-separated.
        #[arg(long, value_delimiter = ',')]
        denoms: Vec<String>,
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
    /// Events of a height or a range.
    Events {
        /// One height.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        height: Option<u64>,
        /// First height.
        #[arg(long)]
        from: Option<u64>,
        /// Last height.
        #[arg(long)]
        to: Option<u64>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// The gateway.
        #[command(flatten)]
        gateway: GatewayArgs,
    },
}

/// `causeway-chain token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Write a new random token secret (hex, mode 0600) for a gateway's configuration.
    NewSecret {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Mint an access token signed with a gateway's secret.
    Mint {
        /// The gateway's secret file.
        #[arg(long)]
        secret_file: PathBuf,
        /// Scopes, comma-separated: read, submit.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,
        /// Lifetime (e.g. 1h, 30d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Who the token is for (shown in logs).
        #[arg(long)]
        subject: String,
    },
}

fn parse_block_ref(s: &str) -> Result<BlockRef, String> {
    if s == "latest" {
        return Ok(BlockRef::Latest);
    }
    s.parse::<u64>()
        .map(BlockRef::Height)
        .map_err(|_| format!("{s:?} is not a height or `latest`"))
}

fn parse_address(s: &str) -> Result<Address, String> {
    Address::from_hex(s).map_err(|e| format!("{s:?} is not a 20-byte hex address: {e}"))
}

fn parse_hash(s: &str) -> Result<Hash, String> {
    Hash::from_hex(s).map_err(|e| format!("{s:?} is not a 32-byte hex hash: {e}"))
}

fn client(g: &GatewayArgs) -> Result<GatewayClient> {
    let c = match &g.ca {
        Some(ca) => {
            let identity = g.cert.clone().zip(g.cert_key.clone());
            GatewayClient::with_tls(
                &g.gateway,
                &ClientTls {
                    ca: ca.clone(),
                    identity,
                },
            )?
        }
        None => GatewayClient::new(&g.gateway)?,
    };
    Ok(match &g.token {
        Some(t) => c.with_token(t.clone()),
        None => c,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Run a `tx` subcommand.
pub fn tx(cmd: TxCommand) -> Result<()> {
    let (common, build): (TxCommon, Box<dyn FnOnce(Address) -> Result<Message>>) = match cmd {
        TxCommand::Propose { action, common } => (
            common,
            Box::new(move |_| {
                let text = match action.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?,
                    None => action,
                };
                let action: crate::message::GovAction =
                    serde_json::from_str(&text).context("--action is not a governance action")?;
                Ok(Message::Propose { action })
            }),
        ),
        TxCommand::Vote {
            proposal,
            reject,
            common,
        } => (
            common,
            Box::new(move |_| {
                Ok(Message::Vote {
                    proposal,
                    approve: !reject,
                })
            }),
        ),
        TxCommand::CreateHubClient { hub_gateway, common } => {
            let (header, next_validators, alg) = runtime()?.block_on(trusted_point(&hub_gateway))?;
            let action = crate::xchain::EndpointGov::CreateHubClient {
                options: causeway_light_client::native::TrustOptions::new(header.chain_id.clone(), alg),
                header,
                next_validators,
            }
            .into_action();
            return submit_message(common, Message::Propose { action });
        }
        TxCommand::Transfer {
            to,
            denom,
            amount,
            common,
        } => (
            common,
            Box::new(move |_| {
                Ok(Message::Transfer {
                    to,
                    denom,
                    amount: Amount(amount),
                })
            }),
        ),
        TxCommand::Issue {
            denom,
            amount,
            to,
            common,
        } => (
            common,
            Box::new(move |me| {
                Ok(Message::Issue {
                    denom,
                    amount: Amount(amount),
                    to: to.unwrap_or(me),
                })
            }),
        ),
        TxCommand::PutRecord {
            namespace,
            record_key,
            value,
            value_hex,
            value_file,
            common,
        } => (
            common,
            Box::new(move |_| {
                let bytes = match (value, value_hex, value_file) {
                    (Some(v), None, None) => v.into_bytes(),
                    (None, Some(h), None) => {
                        hex::decode(h.trim_start_matches("0x")).context("--value-hex")?
                    }
                    (None, None, Some(f)) => {
                        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?
                    }
                    _ => bail!("give exactly one of --value, --value-hex, --value-file"),
                };
                Ok(Message::PutRecord {
                    namespace,
                    key: record_key,
                    value: Bytes(bytes),
                })
            }),
        ),
    };
    let me = keys::load(&common.key)?.public_key().address();
    submit_message(common, build(me)?)
}

/// Sign `message` with `common.key`, submit it through `common.gateway`, print the answer (and wait with --wait);
/// an error if it was committed but failed.
pub fn submit_message(common: TxCommon, message: Message) -> Result<()> {
    let key = keys::load(&common.key)?;
    let me = key.public_key().address();
    let c = client(&common.gateway)?;
    runtime()?.block_on(async move {
        let status = c
            .status()
            .await
            .context("reading the chain id from the gateway")?;
        let nonce = match common.nonce {
            Some(n) => n,
            None => {
                c.account(&me, &[])
                    .await
                    .context("reading the account nonce")?
                    .nonce
            }
        };
        let signed = Transaction {
            chain_id: status.chain_id,
            signer: key.public_key(),
            nonce,
            messages: vec![message],
        }
        .sign(&key);
        let view = if common.wait {
            c.submit_and_wait(&signed, common.timeout).await?
        } else {
            c.submit(&signed).await?
        };
        print_json(&view)?;
        if let Some(failure) = view.result.as_ref().and_then(|r| r.failure.as_ref()) {
            bail!("the transaction was committed but failed: {failure}");
        }
        Ok(())
    })
}

/// Run a `query` subcommand.
pub fn query(cmd: QueryCommand) -> Result<()> {
    let rt = runtime()?;
    match cmd {
        QueryCommand::Status { gateway } => {
            rt.block_on(async { print_json(&client(&gateway)?.status().await?) })
        }
        QueryCommand::Block { height, gateway } => {
            rt.block_on(async { print_json(&client(&gateway)?.block(height).await?) })
        }
        QueryCommand::Tx { hash, gateway } => {
            rt.block_on(async { print_json(&client(&gateway)?.tx(&hash).await?) })
        }
        QueryCommand::State {
            namespace,
            key,
            hex: is_hex,
            height,
            gateway,
        } => {
            let key = if is_hex {
                hex::decode(key.trim_start_matches("0x")).context("key")?
            } else {
                key.into_bytes()
            };
            rt.block_on(async {
                print_json(&client(&gateway)?.state_verified(&namespace, &key, height).await?)
            })
        }
        QueryCommand::Account {
            address,
            denoms,
            gateway,
        } => rt.block_on(async {
            let denoms: Vec<&str> = denoms.iter().map(String::as_str).collect();
            print_json(&client(&gateway)?.account(&address, &denoms).await?)
        }),
        QueryCommand::Events {
            height,
            from,
            to,
            kind,
            gateway,
        } => rt.block_on(async {
            print_json(
                &client(&gateway)?
                    .events(&EventQuery {
                        height,
                        from,
                        to,
                        kind,
                    })
                    .await?,
            )
        }),
    }
}

/// Run a `token` subcommand.
pub fn token(cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::NewSecret { out } => {
            TokenSecret::generate().save(&out)?;
            println!("wrote a token secret to {}", out.display());
            Ok(())
        }
        TokenCommand::Mint {
            secret_file,
            scopes,
            ttl,
            subject,
        } => {
            let secret = TokenSecret::load(&secret_file)?;
            let exp = unix_now().saturating_add(ttl.as_secs());
            println!(
                "{}",
                secret.mint(&Claims {
                    sub: subject,
                    scopes,
                    exp
                })?
            );
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn gateway_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "causeway-chain",
            "tx",
            "transfer",
            "--to",
            &"ab".repeat(20),
            "--denom",
            "cash",
            "--amount",
            "5",
            "--key",
            "k.json",
            "--wait",
            "--gateway",
            "http://h:1",
        ])
        .unwrap();
        match cli.command {
            Command::Tx(TxCommand::Transfer { amount, common, .. }) => {
                assert_eq!(amount, 5);
                assert!(common.wait);
                assert_eq!(common.gateway.gateway, "http://h:1");
                assert_eq!(common.timeout, Duration::from_secs(30));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "causeway-chain",
            "tx",
            "transfer",
            "--to",
            "xyz",
            "--denom",
            "cash",
            "--amount",
            "5",
            "--key",
            "k"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "causeway-chain",
            "tx",
            "issue",
            "--denom",
            "Cash",
            "--amount",
            "5",
            "--key",
            "k"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "causeway-chain",
            "tx",
            "put-record",
            "--namespace",
            "org/acme",
            "--record-key",
            "a",
            "--value",
            "x",
            "--value-hex",
            "00",
            "--key",
            "k",
        ])
        .is_err());
        let cli = Cli::try_parse_from(["causeway-chain", "query", "block"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Query(QueryCommand::Block {
                height: BlockRef::Latest,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["causeway-chain", "query", "block", "12"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Query(QueryCommand::Block {
                height: BlockRef::Height(12),
                ..
            })
        ));
        assert!(Cli::try_parse_from(["causeway-chain", "query", "block", "twelve"]).is_err());
        assert!(Cli::try_parse_from(["causeway-chain", "query", "tx", "00"]).is_err());
        let cli = Cli::try_parse_from([
            "causeway-chain",
            "query",
            "state",
            "sys/accounts",
            "00ff",
            "--hex",
            "--height",
            "3",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Query(QueryCommand::State {
                hex: true,
                height: Some(3),
                ..
            })
        ));
        let cli = Cli::try_parse_from([
            "causeway-chain",
            "token",
            "mint",
            "--secret-file",
            "s",
            "--scopes",
            "read,submit",
            "--subject",
            "a",
        ])
        .unwrap();
        match cli.command {
            Command::Token(TokenCommand::Mint { scopes, ttl, .. }) => {
                assert_eq!(scopes, vec![Scope::Read, Scope::Submit]);
                assert_eq!(ttl, Duration::from_secs(24 * 3600));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "causeway-chain",
            "token",
            "mint",
            "--secret-file",
            "s",
            "--scopes",
            "admin",
            "--subject",
            "a"
        ])
        .is_err());
    }
}
