//! `https://` servers: TLS on rustls, the platform's roots plus a server's `caFile`, and a
//! certificate nobody trusted refused. The certificates are made here with `rcgen`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_client::config::{Config, ConfigError};
use gauntlet_client::{LinkState, MultiServerClient};
use serde_json::{Value, json};

use crate::support::{GAUNTLET, NetServer, args, printed, text};

/// A CA and a certificate it signed for 127.0.0.1, as PEM files in their own directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(format!("gauntlet-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("Gauntlet test CA {tag}"));
        let ca_cert = ca.self_signed(&ca_key).expect("a self-signed CA");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write ca.pem");
        std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key.pem");
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A test server serving HTTPS with this PKI's server certificate.
    fn server(&self, name: &str) -> NetServer {
        let server =
            NetServer::start(name, &["--tls-cert", &self.file("cert.pem"), "--tls-key", &self.file("key.pem")]);
        assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
        server
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn parse(servers: &Value) -> Config {
    Config::parse(&json!({"mcpServers": servers}).to_string(), &|_| None).expect("a valid config")
}

/// Waits for the one server to settle and returns its link.
async fn link(client: &MultiServerClient) -> LinkState {
    client.wait_ready(Duration::from_secs(20)).await;
    client.servers().remove(0).link
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_server_whose_ca_is_its_ca_file_is_called() {
    let pki = Pki::new("trusted");
    let server = pki.server("secure");
    let config = parse(&json!({"secure": {"type": "http", "url": server.url, "caFile": pki.file("ca.pem")}}));
    let client = MultiServerClient::start(config);
    assert_eq!(link(&client).await, LinkState::Ready);
    for i in 0..5 {
        let r = client.call_tool("secure__whoami", args(json!({}))).await.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(text(&r.result), "secure");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_no_trusted_root_signed_is_refused() {
    let pki = Pki::new("untrusted");
    let other = Pki::new("other");
    let server = pki.server("forged");
    // The platform's roots do not hold a CA made a moment ago, nor does another CA's file.
    for entry in [
        json!({"type": "http", "url": server.url}),
        json!({"type": "http", "url": server.url, "caFile": other.file("ca.pem")}),
    ] {
        let client = MultiServerClient::start(parse(&json!({"forged": entry})));
        match link(&client).await {
            LinkState::Down { reason } => {
                // The reason a person reads names the certificate as the cause.
                assert!(reason.contains("certificate"), "{reason}");
            }
            other => panic!("an untrusted certificate must not connect: {other:?} ({entry})"),
        }
        assert_eq!(client.servers()[0].connects, 0);
        assert!(client.catalog().is_empty());
    }
}

#[test]
fn probe_reads_a_relative_ca_file_beside_its_config_and_refuses_a_missing_one() {
    let pki = Pki::new("probe");
    let server = pki.server("secure");
    let write = |name: &str, ca: &str| -> PathBuf {
        let path = pki.dir.join(name);
        let text = json!({"mcpServers": {"secure": {"url": server.url, "caFile": ca}}}).to_string();
        std::fs::write(&path, text).expect("write config");
        path
    };
    let run = |config: &Path| {
        std::process::Command::new(GAUNTLET)
            .args(["probe", "--calls", "3", "--tool", "secure__whoami", "--config"])
            .arg(config)
            .output()
            .expect("gauntlet runs")
    };
    let good = run(&write("good.json", "ca.pem"));
    assert_eq!(good.status.code(), Some(0), "{}{}", printed(&good.stdout), printed(&good.stderr));
    assert!(printed(&good.stdout).contains("overall: 3/3 ok"), "{}", printed(&good.stdout));

    let missing = run(&write("missing.json", "nowhere.pem"));
    assert_eq!(missing.status.code(), Some(2), "bad input: {}", printed(&missing.stderr));
    assert!(
        printed(&missing.stderr).contains("server `secure`: `caFile`: cannot read"),
        "{}",
        printed(&missing.stderr)
    );
}

#[test]
fn a_ca_file_is_checked_before_any_connection() {
    let dir = std::env::temp_dir().join(format!("gauntlet-tls-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    std::fs::write(dir.join("empty.pem"), "no certificate here\n").expect("write");
    let https = |ca: &str| json!({"s": {"type": "http", "url": "https://127.0.0.1:1/mcp", "caFile": ca}});
    let field = |e: ConfigError| match e {
        ConfigError::Server { server, field, .. } => (server, field),
        other => panic!("a server's field error, got {other:?}"),
    };
    // Only https is verified against a CA.
    let plain = json!({"mcpServers": {"s": {"type": "http", "url": "http://127.0.0.1:1/mcp", "caFile": "ca.pem"}}});
    let err = Config::parse(&plain.to_string(), &|_| None).expect_err("caFile on http");
    assert_eq!(field(err), ("s".to_owned(), "caFile".to_owned()));
    // A file without a certificate, and a missing one, are refused when the paths are resolved.
    for ca in ["empty.pem", "missing.pem"] {
        let mut config = parse(&https(ca));
        let err = config.rebase(&dir).expect_err("no usable CA");
        assert_eq!(field(err), ("s".to_owned(), "caFile".to_owned()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
