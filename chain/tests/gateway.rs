//! The gateway end to end over real HTTP and WebSocket, in front of an in-process chain (real blocks, certificates
//! and state; no consensus): submit → committed → query; state proofs that verify against the header's root;
//! subscriptions; batches; access tokens; and every kind of bad input answered with its code.
#![allow(clippy::unwrap_used)] // a failing test panics by design

use std::sync::Arc;
use std::time::Duration;

use causeway_chain::gateway::client::{namespace_segment, BlockRef, EventQuery, GatewayClient};
use causeway_chain::gateway::testnode::TestNode;
use causeway_chain::gateway::types::{SubmitStatus, WsFrame};
use causeway_chain::gateway::{self, AuthSettings, Claims, GatewayConfig, Scope, Server, TokenSecret};
use causeway_chain::genesis::GenesisOrg;
use causeway_chain::message::{Amount, Bytes, Denom, Message, OrgId};
use causeway_chain::testkit::genesis;
use causeway_chain::tx::{SignedTx, Transaction};
use causeway_light_client::proof::verify;
use causeway_light_client::{Address, Canonical, ChainId, HashAlg, Namespace, SecretKey, Suite};

struct Net {
    _dir: tempfile::TempDir,
    node: Arc<TestNode>,
    server: Server,
    client: GatewayClient,
    user: SecretKey,
    chain_id: ChainId,
}

async fn start_with(config: GatewayConfig) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, keys) = genesis("gw", 1, Suite::Ed25519, HashAlg::Sha256);
    let user = SecretKey::from_bytes(Suite::Ed25519, &[42; 32]).unwrap();
    g.orgs.push(GenesisOrg {
        id: OrgId::new("acme").unwrap(),
        admin: user.public_key().address(),
    });
    let chain_id = g.chain_id.clone();
    let node = TestNode::open(dir.path(), g, keys).unwrap();
    let server = gateway::serve(
        node.clone(),
        GatewayConfig {
            listen: "127.0.0.1:0".into(),
            ..config
        },
    )
    .await
    .unwrap();
    let client = GatewayClient::new(&server.url()).unwrap();
    Net {
        _dir: dir,
        node,
        server,
        client,
        user,
        chain_id,
    }
}

async fn start() -> Net {
    start_with(GatewayConfig::default()).await
}

fn cash() -> Denom {
    Denom::new("cash").unwrap()
}

fn tx(net: &Net, key: &SecretKey, nonce: u64, messages: Vec<Message>) -> SignedTx {
    Transaction {
        chain_id: net.chain_id.clone(),
        signer: key.public_key(),
        nonce,
        messages,
    }
    .sign(key)
}

fn issue(net: &Net, nonce: u64, amount: u128) -> SignedTx {
    let to = net.user.public_key().address();
    tx(
        net,
        &net.user,
        nonce,
        vec![Message::Issue {
            denom: cash(),
            amount: Amount(amount),
            to,
        }],
    )
}

async fn produce(net: &Net) -> u64 {
    let node = net.node.clone();
    tokio::task::spawn_blocking(move || node.produce().unwrap().block.header.height)
        .await
        .unwrap()
}

/// A raw request, for inputs the typed client never sends.
async fn raw(method: &str, url: String, body: Option<(&str, Vec<u8>)>) -> (u16, serde_json::Value) {
    let client = GatewayClient::new(&url).unwrap();
    let http = client.http();
    let mut r = http.request(method.parse().unwrap(), url);
    if let Some((content_type, bytes)) = body {
        r = r.header("content-type", content_type).body(bytes);
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A request (method, URL, content type and body) and the status and code it must get.
type Case<'a> = (&'a str, String, Option<(&'a str, Vec<u8>)>, u16, &'a str);

fn code(v: &serde_json::Value) -> &str {
    v.get("code").and_then(|c| c.as_str()).unwrap_or("<no code>")
}

#[tokio::test]
async fn submitted_transactions_are_committed_and_found_by_hash() {
    let net = start().await;
    let account = net
        .client
        .account(&net.user.public_key().address(), &["cash"])
        .await
        .unwrap();
    assert_eq!(account.nonce, 0);
    let t = issue(&net, account.nonce, 1_000);
    let accepted = net.client.submit(&t).await.unwrap();
    assert_eq!(accepted.status, SubmitStatus::Accepted);
    assert_eq!(accepted.hash, t.hash(HashAlg::Sha256));
    assert_eq!(net.client.status().await.unwrap().mempool_txs, 1);
    // Not committed yet.
    let err = net.client.tx(&accepted.hash).await.unwrap_err();
    assert_eq!(err.code(), Some("tx_not_found"));

    let h = produce(&net).await;
    let found = net.client.tx(&accepted.hash).await.unwrap();
    assert_eq!((found.height, found.index), (h, 0));
    assert_eq!(found.tx, t);
    assert!(found.result.is_ok(), "{:?}", found.result.failure);
    assert_eq!(found.result.events.len(), 1);
    assert_eq!(found.result.events[0].kind, "issue");
    assert_eq!(found.result.events[0].attribute("amount"), Some("1000"));

    let block = net.client.block(BlockRef::Latest).await.unwrap();
    assert_eq!(block.header.height, h);
    assert_eq!(block.tx_hashes, vec![accepted.hash]);
    assert_eq!(block.txs.as_deref(), Some(&[t.clone()][..]));
    let header = net.client.header(h).await.unwrap();
    assert_eq!(header.block_id, block.block_id);
    let commit = net.client.commit(h).await.unwrap();
    assert_eq!(commit.certificate.block_id, block.block_id);
    let vals = net.client.validators(h).await.unwrap();
    assert_eq!(vals.hash, block.header.validators_hash);
    // The certificate verifies with the light client's pure check against the set the gateway names.
    causeway_light_client::commit::verify_commit(
        net.chain_id.as_str(),
        &vals.validators,
        &commit.certificate,
    )
    .unwrap();

    let account = net
        .client
        .account(&net.user.public_key().address(), &["cash"])
        .await
        .unwrap();
    assert_eq!(account.nonce, 1);
    assert_eq!(account.balances.get("cash"), Some(&Amount(1_000)));

    let events = net
        .client
        .events(&EventQuery {
            height: Some(h),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(!events.events.is_empty());
    assert!(events.events.iter().all(|e| e.tx_hash == Some(accepted.hash)));
    net.server.stop().await.unwrap();
}

#[tokio::test]
async fn wait_for_commit_returns_height_and_result() {
    let net = start().await;
    let node = net.node.clone();
    let producer = node.spawn_producer(Duration::from_millis(100));
    let t = issue(&net, 0, 5);
    let done = net
        .client
        .submit_and_wait(&t, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status, SubmitStatus::Committed);
    let h = done.height.unwrap();
    assert!(done.result.as_ref().unwrap().is_ok());
    assert_eq!(net.client.tx(&done.hash).await.unwrap().height, h);
    producer.abort();

    // With nobody producing blocks, the wait ends with `commit_timeout`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t2 = issue(&net, 1, 5);
    let err = net
        .client
        .submit_and_wait(&t2, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("commit_timeout"), "{err}");
}

#[tokio::test]
async fn state_proofs_verify_against_the_header_root() {
    let net = start().await;
    let me = net.user.public_key().address();
    net.client.submit(&issue(&net, 0, 777)).await.unwrap();
    let record = Message::PutRecord {
        namespace: Namespace::new("org/acme").unwrap(),
        key: "invoice-1".into(),
        value: Bytes(b"{\"total\":12}".to_vec()),
    };
    net.client
        .submit(&tx(&net, &net.user, 1, vec![record]))
        .await
        .unwrap();
    let h = produce(&net).await;
    let block = net.client.block(h).await.unwrap();
    assert!(net.client.tx(&block.tx_hashes[1]).await.unwrap().result.is_ok());
    let root = net.client.header(h).await.unwrap().header.state_root;

    let mut balance_key = vec![b'b'];
    balance_key.extend_from_slice(&me.0);
    let cases: Vec<(Namespace, Vec<u8>, bool)> = vec![
        (cash().namespace(), balance_key.clone(), true),
        (Namespace::new("org/acme").unwrap(), b"invoice-1".to_vec(), true),
        (Namespace::new("sys/accounts").unwrap(), me.0.to_vec(), true),
        // Absent key in an existing namespace, and a namespace that does not exist.
        (cash().namespace(), b"nobody".to_vec(), false),
        (Namespace::new("org/nobody").unwrap(), b"k".to_vec(), false),
    ];
    // The same keys in one batch request: same values, every proof against the header's root.
    let keys: Vec<(Namespace, Vec<u8>)> = cases.iter().map(|(ns, k, _)| (ns.clone(), k.clone())).collect();
    let many = net.client.proofs_verified(&keys, Some(h)).await.unwrap();
    assert_eq!((many.height, many.state_root), (h, root));
    assert_eq!(many.items.len(), cases.len());
    for (item, (ns, key, present)) in many.items.iter().zip(&cases) {
        assert_eq!(
            (&item.namespace, &item.key.0, item.value.is_some()),
            (ns, key, *present)
        );
        let value = item.value.as_ref().map(|v| v.0.as_slice());
        verify(HashAlg::Sha256, &root, ns, key, value, &item.proof).unwrap();
    }
    // No keys, too many keys and an uncommitted height are refused with their codes.
    let err = net.client.proofs_verified(&[], Some(h)).await.unwrap_err();
    assert_eq!(err.code(), Some("bad_body"), "{err}");
    let too_many = vec![keys[0].clone(); causeway_chain::gateway::types::MAX_PROOF_KEYS + 1];
    let err = net.client.proofs_verified(&too_many, Some(h)).await.unwrap_err();
    assert_eq!(err.code(), Some("bad_body"), "{err}");
    let err = net
        .client
        .proofs_verified(&keys, Some(h + 100))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("height_not_found"), "{err}");
    for (ns, key, present) in cases {
        let view = net.client.state(&ns, &key, Some(h)).await.unwrap();
        assert_eq!(view.value.is_some(), present, "{ns} {key:?}");
        assert_eq!(view.state_root, root);
        assert_eq!(view.header.as_ref().map(|hd| hd.state_root), Some(root));
        let value = view.value.as_ref().map(|v| v.0.as_slice());
        verify(HashAlg::Sha256, &root, &ns, &key, value, &view.proof).unwrap();
        // The proof binds the value: another value (or a claimed absence) does not verify.
        let forged: Option<&[u8]> = if present { None } else { Some(b"forged") };
        assert!(verify(HashAlg::Sha256, &root, &ns, &key, forged, &view.proof).is_err());
        if let Some(v) = value {
            let mut other = v.to_vec();
            other[0] ^= 1;
            assert!(verify(HashAlg::Sha256, &root, &ns, &key, Some(&other), &view.proof).is_err());
        }
    }
    let balance = net
        .client
        .state(&cash().namespace(), &balance_key, None)
        .await
        .unwrap();
    assert_eq!(balance.value.unwrap().0, 777u128.to_le_bytes().to_vec());
    // The client's checked read, and height 0 (genesis state, no header).
    net.client
        .state_verified(&cash().namespace(), &balance_key, Some(h))
        .await
        .unwrap();
    let genesis_view = net
        .client
        .state_verified(&cash().namespace(), &balance_key, Some(0))
        .await
        .unwrap();
    assert_eq!(genesis_view.hash_alg, HashAlg::Sha256);
    assert!(genesis_view.header.is_none() && genesis_view.value.is_none());
}

#[tokio::test]
async fn websocket_delivers_the_next_block_and_its_events() {
    let net = start().await;
    let mut blocks = net.client.subscribe(&["blocks"], &[]).await.unwrap();
    let mut events = net.client.subscribe(&["events"], &["transfer"]).await.unwrap();
    let other = Address([9; 20]);
    net.client.submit(&issue(&net, 0, 50)).await.unwrap();
    let send = Message::Transfer {
        to: other,
        denom: cash(),
        amount: Amount(20),
    };
    let transfer = tx(&net, &net.user, 1, vec![send]);
    net.client.submit(&transfer).await.unwrap();
    let h = produce(&net).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), blocks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match frame {
        WsFrame::Block {
            height,
            tx_hashes,
            failed,
            ..
        } => {
            assert_eq!(height, h);
            assert_eq!(tx_hashes.len(), 2);
            assert_eq!(failed, 0);
        }
        other => panic!("expected a block frame, got {other:?}"),
    }
    let frame = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match frame {
        WsFrame::Event(e) => {
            assert_eq!(e.height, h);
            assert_eq!(e.event.kind, "transfer");
            assert_eq!(e.tx_hash, Some(transfer.hash(HashAlg::Sha256)));
        }
        other => panic!("expected a transfer event, got {other:?}"),
    }
    // Switching to blocks only: the next frame after the confirmation is the next block.
    events.resubscribe(&["blocks"], &[]).await.unwrap();
    let confirm = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(confirm, WsFrame::Subscribed { ref topics, .. } if topics == &["blocks".to_string()]));
    let h2 = produce(&net).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(frame, WsFrame::Block { height, .. } if height == h2));
    // A bad subscription frame is answered, and the connection stays usable.
    events.resubscribe(&["nonsense"], &[]).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(frame, WsFrame::Error(ref e) if e.code == "bad_subscription"));
    blocks.close().await;
    events.close().await;
}

#[tokio::test]
async fn batches_admit_good_transactions_and_report_bad_ones_in_place() {
    let net = start().await;
    let keys: Vec<SecretKey> = (1..=5u8)
        .map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i; 32]).unwrap())
        .collect();
    let mut txs = Vec::new();
    for k in &keys {
        let to = k.public_key().address();
        for nonce in 0..40u64 {
            let m = if nonce == 0 {
                Message::Issue {
                    denom: Denom::new(format!("d{}", to.0[0])).unwrap(),
                    amount: Amount(1_000),
                    to,
                }
            } else {
                Message::Transfer {
                    to: Address([7; 20]),
                    denom: Denom::new(format!("d{}", to.0[0])).unwrap(),
                    amount: Amount(1),
                }
            };
            txs.push(tx(&net, k, nonce, vec![m]));
        }
    }
    let (json_half, binary_half) = txs.split_at(100);
    let view = net.client.submit_batch(json_half).await.unwrap();
    assert_eq!((view.accepted, view.rejected), (100, 0));
    let encoded: Vec<Vec<u8>> = binary_half.iter().map(|t| t.encode()).collect();
    let view = net.client.submit_batch_encoded(&encoded).await.unwrap();
    assert_eq!((view.accepted, view.rejected), (100, 0));
    assert_eq!(view.results[0].hash, Some(binary_half[0].hash(HashAlg::Sha256)));
    let h = produce(&net).await;
    let block = net.client.block(h).await.unwrap();
    assert_eq!(block.tx_hashes.len(), 200);

    // Mixed batch: a duplicate of a committed tx, garbage hex, an object with two encodings, and one good one.
    let good = issue(&net, 0, 1);
    let body = serde_json::json!({"txs": [
        hex::encode(txs[0].encode()),
        "zz",
        {"hex": "00", "base64": "AA=="},
        {"base64": base64_of(&good.encode())},
    ]});
    let (status, v) = raw(
        "POST",
        format!("{}/v1/txs/batch", net.server.url()),
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(code(&results[0]["error"]), "nonce_too_low");
    assert_eq!(code(&results[1]["error"]), "bad_encoding");
    assert_eq!(code(&results[2]["error"]), "bad_body");
    assert!(results[3]["error"].is_null());
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"], 3);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn bad_inputs_get_clear_codes_and_never_break_the_server() {
    let net = start_with(GatewayConfig {
        max_body_bytes: 4096,
        max_batch_txs: 3,
        max_event_range: 2,
        ..GatewayConfig::default()
    })
    .await;
    let url = net.server.url();
    let json = |s: &str| Some(("application/json", s.as_bytes().to_vec()));
    let good = issue(&net, 0, 10);
    let other_chain = Transaction {
        chain_id: ChainId::new("elsewhere").unwrap(),
        signer: net.user.public_key(),
        nonce: 0,
        messages: vec![Message::Issue {
            denom: cash(),
            amount: Amount(1),
            to: Address([1; 20]),
        }],
    }
    .sign(&net.user);
    let mut bad_sig = good.clone();
    bad_sig.tx.nonce = 5;
    let cases: Vec<Case<'_>> = vec![
        ("POST", format!("{url}/v1/txs"), json("not json"), 400, "bad_body"),
        ("POST", format!("{url}/v1/txs"), json("{}"), 400, "bad_body"),
        (
            "POST",
            format!("{url}/v1/txs"),
            json(r#"{"hex":"xyz"}"#),
            400,
            "bad_encoding",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            json(r#"{"base64":"***"}"#),
            400,
            "bad_encoding",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            json(r#"{"hex":"00010203"}"#),
            400,
            "malformed_tx",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            json(r#"{"json":{"tx":1}}"#),
            400,
            "malformed_tx",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            json(r#"{"hex":"00","extra":1}"#),
            400,
            "bad_body",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            Some(("application/octet-stream", vec![0xff; 64])),
            400,
            "malformed_tx",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            Some(("application/json", vec![b' '; 5000])),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            format!("{url}/v1/txs?wait=soon"),
            json("{}"),
            400,
            "bad_query",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            Some(("application/octet-stream", other_chain.encode())),
            400,
            "wrong_chain",
        ),
        (
            "POST",
            format!("{url}/v1/txs"),
            Some(("application/octet-stream", bad_sig.encode())),
            400,
            "bad_signature",
        ),
        (
            "POST",
            format!("{url}/v1/txs/batch"),
            json(r#"{"txs":[]}"#),
            400,
            "empty_batch",
        ),
        (
            "POST",
            format!("{url}/v1/txs/batch"),
            json(r#"{"txs":["00","00","00","00"]}"#),
            400,
            "batch_too_large",
        ),
        (
            "POST",
            format!("{url}/v1/txs/batch"),
            Some(("application/octet-stream", vec![9; 7])),
            400,
            "bad_body",
        ),
        ("GET", format!("{url}/v1/txs/1234"), None, 400, "bad_hash"),
        (
            "GET",
            format!("{url}/v1/txs/{}", "ab".repeat(32)),
            None,
            404,
            "tx_not_found",
        ),
        ("GET", format!("{url}/v1/blocks/abc"), None, 400, "bad_height"),
        ("GET", format!("{url}/v1/blocks/-1"), None, 400, "bad_height"),
        (
            "GET",
            format!("{url}/v1/blocks/99999999999999999999999"),
            None,
            400,
            "bad_height",
        ),
        ("GET", format!("{url}/v1/blocks/0"), None, 404, "block_not_found"),
        ("GET", format!("{url}/v1/blocks/7"), None, 404, "block_not_found"),
        (
            "GET",
            format!("{url}/v1/blocks/latest?txs=maybe"),
            None,
            400,
            "bad_query",
        ),
        ("GET", format!("{url}/v1/headers/7"), None, 404, "block_not_found"),
        (
            "GET",
            format!("{url}/v1/commits/7"),
            None,
            404,
            "commit_not_found",
        ),
        (
            "GET",
            format!("{url}/v1/validators/0"),
            None,
            404,
            "validators_not_found",
        ),
        (
            "GET",
            format!("{url}/v1/validators/3"),
            None,
            404,
            "validators_not_found",
        ),
        (
            "GET",
            format!("{url}/v1/state/Bad%20NS/00"),
            None,
            400,
            "bad_namespace",
        ),
        (
            "GET",
            format!("{url}/v1/state/sys%2Faccounts/xyz"),
            None,
            400,
            "bad_key",
        ),
        (
            "GET",
            format!("{url}/v1/state/sys%2Faccounts/{}", "00".repeat(1025)),
            None,
            400,
            "bad_key",
        ),
        (
            "GET",
            format!("{url}/v1/state/sys%2Faccounts/00?height=9"),
            None,
            404,
            "height_not_found",
        ),
        (
            "GET",
            format!("{url}/v1/state/sys%2Faccounts/00?height=x"),
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            format!("{url}/v1/accounts/nothex"),
            None,
            400,
            "bad_address",
        ),
        (
            "GET",
            format!("{url}/v1/accounts/{}?denoms=BAD", "01".repeat(20)),
            None,
            400,
            "bad_denom",
        ),
        (
            "GET",
            format!("{url}/v1/events?height=5"),
            None,
            404,
            "height_not_found",
        ),
        (
            "GET",
            format!("{url}/v1/events?height=1&from=1"),
            None,
            400,
            "bad_query",
        ),
        ("GET", format!("{url}/v1/ws"), None, 400, "not_websocket"),
        ("GET", format!("{url}/v1/nothing"), None, 404, "not_found"),
        (
            "DELETE",
            format!("{url}/v1/status"),
            None,
            405,
            "method_not_allowed",
        ),
        ("GET", format!("{url}/v1/txs"), None, 405, "method_not_allowed"),
    ];
    for (method, u, body, status, expected) in cases {
        let (got, v) = raw(method, u.clone(), body).await;
        assert_eq!((got, code(&v)), (status, expected), "{method} {u}: {v}");
        assert!(
            v.get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| !m.is_empty()),
            "{u}: {v}"
        );
    }
    // Mempool refusals.
    net.client.submit(&good).await.unwrap();
    assert_eq!(
        net.client.submit(&good).await.unwrap_err().code(),
        Some("duplicate_tx")
    );
    let same_nonce = issue(&net, 0, 11);
    assert_eq!(
        net.client.submit(&same_nonce).await.unwrap_err().code(),
        Some("nonce_taken")
    );
    assert_eq!(
        net.client
            .submit(&issue(&net, 1_000_000, 1))
            .await
            .unwrap_err()
            .code(),
        Some("nonce_too_high")
    );
    for _ in 0..3 {
        produce(&net).await;
    }
    assert_eq!(
        net.client.submit(&issue(&net, 0, 12)).await.unwrap_err().code(),
        Some("nonce_too_low")
    );
    let (status, v) = raw("GET", format!("{url}/v1/events?from=1&to=3"), None).await;
    assert_eq!((status, code(&v)), (400, "range_too_large"));
    // Still serving.
    assert_eq!(net.client.status().await.unwrap().height, 3);
    assert_eq!(net.client.validators(4).await.unwrap().height, 4);
    assert_eq!(
        net.client
            .events(&EventQuery {
                from: Some(2),
                to: Some(3),
                ..EventQuery::default()
            })
            .await
            .unwrap()
            .to,
        3
    );
}

#[tokio::test]
async fn tokens_gate_reads_and_submissions_by_scope() {
    let secret = TokenSecret::generate();
    let auth = AuthSettings {
        secret: secret.clone(),
        public_read: false,
    };
    let net = start_with(GatewayConfig {
        auth: Some(auth),
        ..GatewayConfig::default()
    })
    .await;
    let now = gateway::auth::unix_now();
    let mint = |scopes: Vec<Scope>, exp: u64| {
        secret
            .mint(&Claims {
                sub: "t".into(),
                scopes,
                exp,
            })
            .unwrap()
    };
    let reader = net.client.clone().with_token(mint(vec![Scope::Read], now + 600));
    let submitter = net
        .client
        .clone()
        .with_token(mint(vec![Scope::Read, Scope::Submit], now + 600));
    let expired = net
        .client
        .clone()
        .with_token(mint(vec![Scope::Read, Scope::Submit], now.saturating_sub(1)));
    let forged = net.client.clone().with_token(
        TokenSecret::generate()
            .mint(&Claims {
                sub: "x".into(),
                scopes: vec![Scope::Read],
                exp: now + 600,
            })
            .unwrap(),
    );

    assert_eq!(
        net.client.status().await.unwrap_err().code(),
        Some("unauthorized")
    );
    assert_eq!(expired.status().await.unwrap_err().code(), Some("unauthorized"));
    assert_eq!(forged.status().await.unwrap_err().code(), Some("unauthorized"));
    assert!(reader.status().await.is_ok());
    assert!(reader.metrics().await.is_ok());
    let t = issue(&net, 0, 3);
    assert_eq!(reader.submit(&t).await.unwrap_err().code(), Some("forbidden"));
    assert_eq!(
        net.client.submit(&t).await.unwrap_err().code(),
        Some("unauthorized")
    );
    submitter.submit(&t).await.unwrap();
    // A token in the query string counts on the WebSocket only.
    let read_token = mint(vec![Scope::Read], now + 600);
    let (status, v) = raw(
        "GET",
        format!("{}/v1/status?token={read_token}", net.server.url()),
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    // The WebSocket takes the token from the query; health is always open.
    assert!(net.client.subscribe(&["blocks"], &[]).await.is_err());
    let mut sub = reader.subscribe(&["blocks"], &[]).await.unwrap();
    let h = produce(&net).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(frame, WsFrame::Block { height, .. } if height == h));
    assert!(net.client.health().await.unwrap().healthy);
}

#[tokio::test]
async fn health_follows_the_age_of_the_last_commit_and_metrics_are_served() {
    let net = start_with(GatewayConfig {
        max_block_age: Duration::from_secs(1),
        ..GatewayConfig::default()
    })
    .await;
    produce(&net).await;
    let health = net.client.health().await.unwrap();
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.status.height, 1);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, v) = raw("GET", format!("{}/health", net.server.url()), None).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["healthy"], false);
    produce(&net).await;
    assert!(net.client.health().await.unwrap().healthy);

    let text = net.client.metrics().await.unwrap();
    assert!(text.contains("causeway_height 2"), "{text}");
    assert!(
        text.contains("causeway_gateway_requests_total{route=\"/health\",status=\"503\"} 1"),
        "{text}"
    );
}

#[test]
fn every_route_is_described_in_the_openapi_document() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    // Paths sit at two spaces of indentation under `paths:`, their operations at four.
    let mut described: Vec<(String, String)> = Vec::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            current = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
            current = Some(
                p.trim_end()
                    .trim_end_matches(':')
                    .trim_matches('\'')
                    .trim_matches('"')
                    .to_string(),
            );
        } else if let (Some(p), Some(op)) = (
            &current,
            line.strip_prefix("    ").filter(|l| !l.starts_with(' ')),
        ) {
            let op = op.trim_end().trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&op) {
                described.push((op.to_uppercase(), p.clone()));
            }
        }
    }
    let routes = gateway::route_list();
    assert!(routes.len() >= 14);
    for (method, path) in routes {
        assert!(
            described.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in openapi.yaml (described: {described:?})"
        );
    }
    // And nothing described is missing from the router.
    let routes: Vec<(String, String)> = gateway::route_list()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for d in &described {
        assert!(
            routes.contains(d),
            "openapi.yaml describes {d:?}, which the router does not serve"
        );
    }
    // The namespace segment encoding the client uses is the one documented.
    assert_eq!(
        namespace_segment(&Namespace::new("org/acme").unwrap()),
        "org%2Facme"
    );
    assert!(doc.contains("%2F"));
}

#[tokio::test]
async fn a_batch_of_ten_thousand_transactions_is_admitted_in_one_request() {
    let net = start().await;
    let keys: Vec<SecretKey> = (0..100u32)
        .map(|i| SecretKey::from_bytes(Suite::Ed25519, &[&i.to_le_bytes()[..], &[3; 28]].concat()).unwrap())
        .collect();
    let mut encoded = Vec::with_capacity(10_000);
    for k in &keys {
        let to = k.public_key().address();
        for nonce in 0..100u64 {
            let m = Message::Issue {
                denom: cash(),
                amount: Amount(1),
                to,
            };
            encoded.push(tx(&net, k, nonce, vec![m]).encode());
        }
    }
    let started = std::time::Instant::now();
    let view = net.client.submit_batch_encoded(&encoded).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        (view.accepted, view.rejected),
        (10_000, 0),
        "{:?}",
        view.results.iter().find(|r| r.error.is_some())
    );
    eprintln!("10k-transaction binary batch admitted in {elapsed:?}");
    assert_eq!(net.client.status().await.unwrap().mempool_txs, 10_000);
    let h = produce(&net).await;
    let block = net.client.block(h).await.unwrap();
    assert_eq!(block.tx_hashes.len(), 10_000);
    assert_eq!(net.client.status().await.unwrap().mempool_txs, 0);
}

#[tokio::test]
async fn subscriptions_are_bounded() {
    let net = start_with(GatewayConfig {
        max_subscriptions: 1,
        ..GatewayConfig::default()
    })
    .await;
    let first = net.client.subscribe(&["blocks"], &[]).await.unwrap();
    let refused = net.client.subscribe(&["blocks"], &[]).await;
    assert!(refused.is_err());
    let text = net.client.metrics().await.unwrap();
    assert!(text.contains("causeway_gateway_ws_connections 1\n"), "{text}");
    first.close().await;
    // Once the first is gone, a new one is admitted.
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(s) = net.client.subscribe(&["blocks"], &[]).await {
            admitted = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sub = admitted.expect("a subscription after the first closed");
    let h = produce(&net).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(frame, WsFrame::Block { height, .. } if height == h));
}
