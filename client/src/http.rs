//! The Streamable HTTP path: one HTTP client per server, kept across its sessions (connections
//! are reused), TLS on rustls with the platform's trust store plus the server's own `caFile`,
//! and the same message size limit as stdio and TCP.
//!
//! rmcp's default HTTP client turns connection pooling off, so every POST opens a new TCP
//! (and TLS) connection; the client built here keeps idle connections to the server open.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sse_stream::Sse;

use crate::session::{ConnectError, MAX_MESSAGE_BYTES};

/// The most certificates one `caFile` may hold.
pub const MAX_CA_CERTS: usize = 1_024;
/// The largest `caFile` read.
pub const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Idle connections kept per server.
const IDLE_PER_SERVER: usize = 64;
/// Redirects followed for one request (same origin, 307 and 308 only).
const MAX_REDIRECTS: usize = 10;

/// The certificates of a PEM file of CA certificates, checked: at least one, at most
/// [`MAX_CA_CERTS`], the file at most [`MAX_CA_FILE_BYTES`].
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if len > MAX_CA_FILE_BYTES {
        return Err(format!("{} is {len} bytes; a CA file is at most {MAX_CA_FILE_BYTES}", path.display()));
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
        if certs.len() == MAX_CA_CERTS {
            return Err(format!("{}: more than {MAX_CA_CERTS} certificates", path.display()));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate (`-----BEGIN CERTIFICATE-----`) in it", path.display()));
    }
    Ok(certs)
}

/// The HTTP clients of the configured servers, one per server, made at its first connect.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    by_server: Mutex<BTreeMap<String, Bounded>>,
}

impl Clients {
    /// `server`'s client, made on first use with its `caFile` (if any) trusted beside the
    /// platform's roots.
    pub(crate) fn get(&self, server: &str, ca_file: Option<&Path>) -> Result<Bounded, ConnectError> {
        let mut by_server = self.by_server.lock().expect("http clients lock");
        if let Some(c) = by_server.get(server) {
            return Ok(c.clone());
        }
        let client = Bounded(build(ca_file)?);
        by_server.insert(server.to_owned(), client.clone());
        Ok(client)
    }
}

/// The rustls configuration of servers without their own CA file: built once, since reading
/// the platform's roots reads every file of the system's certificate directory.
fn platform_tls() -> Result<rustls::ClientConfig, ConnectError> {
    static PLATFORM: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    PLATFORM.get_or_init(|| tls_config(Vec::new())).clone().map_err(ConnectError::Tls)
}

fn tls_config(extra_roots: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        .map_err(|e| format!("no trusted root certificates: {e} (install the system's CA certificates, or give the server a `caFile`)"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn build(ca_file: Option<&Path>) -> Result<reqwest::Client, ConnectError> {
    let tls = match ca_file {
        None => platform_tls()?,
        Some(path) => tls_config(read_ca_file(path).map_err(ConnectError::Tls)?).map_err(ConnectError::Tls)?,
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(IDLE_PER_SERVER)
        .tcp_nodelay(true)
        .redirect(same_origin_redirects())
        .build()
        .map_err(|e| ConnectError::Tls(e.to_string()))
}

/// Only same-origin 307 and 308 redirects are followed: they keep the method and the body
/// (the JSON-RPC message), and a cross-origin one would hand the session and the headers
/// (perhaps a token) to another host.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
        if keeps_body && same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// A server's HTTP client with [`MAX_MESSAGE_BYTES`] enforced on what the server sends.
///
/// An SSE event is bounded at the byte layer, before parsing. A plain JSON response is
/// bounded by rmcp's client at 16 MiB of raw body, then refused here when its message, encoded
/// again, is over the limit: what reaches the call is never bigger than on stdio or TCP.
#[derive(Clone, Debug)]
pub(crate) struct Bounded(reqwest::Client);

/// Counts the bytes of a message's encoding, stopping once over the limit.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        if self.0 > MAX_MESSAGE_BYTES {
            return Err(std::io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type HttpError = StreamableHttpError<reqwest::Error>;

// rmcp's client trait takes a HashMap of headers; nothing iterates it into a decision.
#[allow(clippy::disallowed_types)]
type Headers = std::collections::HashMap<HeaderName, HeaderValue>;

impl StreamableHttpClient for Bounded {
    type Error = reqwest::Error;

    fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> impl Future<Output = Result<StreamableHttpPostResponse, HttpError>> + Send + '_ {
        self.post_message_with_max_sse_event_size(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            MAX_MESSAGE_BYTES,
        )
    }

    fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> impl Future<Output = Result<StreamableHttpPostResponse, HttpError>> + Send + '_ {
        let limit = max_sse_event_size.min(MAX_MESSAGE_BYTES);
        async move {
            let response = self
                .0
                .post_message_with_max_sse_event_size(uri, message, session_id, auth_header, custom_headers, limit)
                .await?;
            if let StreamableHttpPostResponse::Json(message, _) = &response
                && serde_json::to_writer(Counter(0), message).is_err()
            {
                return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: MAX_MESSAGE_BYTES });
            }
            Ok(response)
        }
    }

    fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> impl Future<Output = Result<(), HttpError>> + Send + '_ {
        self.0.delete_session(uri, session_id, auth_header, custom_headers)
    }

    fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Headers,
    ) -> impl Future<Output = Result<BoxStream<'static, Result<Sse, SseError>>, HttpError>> + Send + '_ {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            MAX_MESSAGE_BYTES,
        )
    }

    fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Headers,
        max_sse_event_size: usize,
    ) -> impl Future<Output = Result<BoxStream<'static, Result<Sse, SseError>>, HttpError>> + Send + '_ {
        self.0.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            max_sse_event_size.min(MAX_MESSAGE_BYTES),
        )
    }
}
