//! The gateway over mutual TLS: a client with a certificate of the configured CA is served; a client without a
//! certificate, or with one of another CA, is not.
#![allow(clippy::unwrap_used)] // a failing test panics by design

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causeway_chain::gateway::client::GatewayClient;
use causeway_chain::gateway::testnode::TestNode;
use causeway_chain::gateway::tls::{ClientTls, TlsSettings};
use causeway_chain::gateway::types::WsFrame;
use causeway_chain::gateway::{self, GatewayConfig};
use causeway_chain::testkit::genesis;
use causeway_light_client::{HashAlg, Suite};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A leaf signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// GET /v1/status over TLS with an optional client certificate; the HTTP answer, or the error.
async fn get_status(
    addr: std::net::SocketAddr,
    root: &Ca,
    client: Option<&(String, String)>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /v1/status HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_with_a_certificate_of_the_configured_ca_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let authority = ca("alliance ca");
    let rogue = ca("rogue ca");
    let (server_cert, server_key) = leaf(&authority, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let member = leaf(&authority, "member", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = leaf(&rogue, "stranger", ExtendedKeyUsagePurpose::ClientAuth);
    let tls = TlsSettings {
        cert_chain: write(dir.path(), "server.pem", &server_cert),
        private_key: write(dir.path(), "server.key", &server_key),
        client_ca: Some(write(dir.path(), "ca.pem", &authority.cert.pem())),
    };
    let (g, keys) = genesis("tls", 1, Suite::Ed25519, HashAlg::Sha256);
    let node = TestNode::open(&dir.path().join("chain"), g, keys).unwrap();
    let config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        tls: Some(tls.clone()),
        ..GatewayConfig::default()
    };
    let server = gateway::serve(node.clone(), config).await.unwrap();
    assert!(server.url().starts_with("https://"));
    let addr = server.local_addr();

    let answer = get_status(addr, &authority, Some(&member)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"chain_id\":\"tls\""), "{answer}");
    for (who, cert) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&stranger)),
    ] {
        // Refused in the handshake, or the connection is closed before any answer.
        if let Ok(answer) = get_status(addr, &authority, cert).await {
            assert!(!answer.contains("200"), "{who}: served {answer}");
        }
    }
    // The typed client: REST and the WebSocket over mutual TLS with the member's certificate.
    let member_files = (
        write(dir.path(), "member.pem", &member.0),
        write(dir.path(), "member.key", &member.1),
    );
    let ca_file = write(dir.path(), "ca-client.pem", &authority.cert.pem());
    let url = format!("https://localhost:{}", addr.port());
    let client = GatewayClient::with_tls(
        &url,
        &ClientTls {
            ca: ca_file.clone(),
            identity: Some(member_files.clone()),
        },
    )
    .unwrap();
    assert_eq!(client.status().await.unwrap().chain_id.as_str(), "tls");
    let mut sub = client.subscribe(&["blocks"], &[]).await.unwrap();
    let n = node.clone();
    let h = tokio::task::spawn_blocking(move || n.produce().unwrap().block.header.height)
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(frame, WsFrame::Block { height, .. } if height == h),
        "{frame:?}"
    );
    let anonymous = GatewayClient::with_tls(
        &url,
        &ClientTls {
            ca: ca_file.clone(),
            identity: None,
        },
    )
    .unwrap();
    assert!(anonymous.status().await.is_err());
    assert!(anonymous.subscribe(&["blocks"], &[]).await.is_err());
    assert!(
        GatewayClient::new(&url).is_err(),
        "https without TLS settings is refused up front"
    );

    // The CLI with the same material.
    let cli = |extra: &[&str]| {
        let mut args = vec![
            "query",
            "status",
            "--gateway",
            url.as_str(),
            "--ca",
            ca_file.to_str().unwrap(),
        ];
        args.extend(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_causeway-chain"))
            .args(args)
            .output()
            .unwrap()
    };
    let member_cert = member_files.0.to_str().unwrap();
    let member_key = member_files.1.to_str().unwrap();
    let out = tokio::task::block_in_place(|| cli(&["--cert", member_cert, "--cert-key", member_key]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"chain_id\": \"tls\""));
    let out = tokio::task::block_in_place(|| cli(&[]));
    assert!(!out.status.success(), "no client certificate: refused");

    // Plain HTTP on the TLS port gets nothing either.
    let plain_url = format!("http://{addr}/v1/status");
    let plain = GatewayClient::new(&plain_url)
        .unwrap()
        .http()
        .get(&plain_url)
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    server.stop().await.unwrap();

    // Unusable material is refused at start.
    let bad = TlsSettings {
        private_key: write(dir.path(), "empty.key", ""),
        ..tls
    };
    let config = GatewayConfig {
        listen: "127.0.0.1:0".into(),
        tls: Some(bad),
        ..GatewayConfig::default()
    };
    assert!(gateway::serve(node, config).await.is_err());
}
