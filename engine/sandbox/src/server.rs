//! HTTPS server: TLS (rustls + ring, self-signed CA), bearer-token auth, request recording,
//! JSON responses and chunked watch streams.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request as HRequest, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{self, Reply, Request, WatchSpec};
use crate::store::{State, meta_str};
use crate::{Error, RecordedRequest};

pub struct Tls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn make_tls() -> Result<Tls, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let tls = |e: rcgen::Error| Error::Tls(e.to_string());
    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cairn-sandbox-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(tls)?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(tls)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    })
}

/// A response body: either whole, or a stream of chunks from a channel.
pub enum OutBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            OutBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Stream(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }
}

pub struct Shared {
    pub state: Arc<Mutex<State>>,
    pub token: String,
    pub requests: Arc<Mutex<Vec<RecordedRequest>>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

fn respond(status: u16, content_type: &str, body: OutBody) -> Response<OutBody> {
    let mut r = Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if content_type.is_empty() {
        return r;
    }
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(status: u16, v: &Value) -> Response<OutBody> {
    let text = serde_json::to_vec(v).unwrap_or_default();
    respond(
        status,
        "application/json",
        OutBody::Full(Some(Bytes::from(text))),
    )
}

pub async fn serve_request(
    shared: Arc<Shared>,
    req: HRequest<Incoming>,
) -> Result<Response<OutBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let header = |k: hyper::header::HeaderName| {
        parts
            .headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let auth = header(hyper::header::AUTHORIZATION);
    let path = parts.uri.path().to_string();
    let query_str = parts.uri.query().unwrap_or("").to_string();
    if let Ok(mut r) = shared.requests.lock() {
        r.push(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query_str.clone(),
        });
    }
    let expected = format!("Bearer {}", shared.token);
    if auth != expected {
        return Ok(json_response(
            401,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        ));
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let request = Request {
        method: parts.method.to_string(),
        path,
        query: api::parse_query(&query_str),
        content_type: header(hyper::header::CONTENT_TYPE),
        accept: header(hyper::header::ACCEPT),
        user_agent: header(hyper::header::USER_AGENT),
        body,
    };
    let reply = api::handle(&shared.state, &request);
    Ok(match reply {
        Reply::Json(status, v) => json_response(status, &v),
        Reply::Object(status, v) => json_response(status, &v),
        Reply::List(list) => {
            let text = serde_json::to_vec(&list).unwrap_or_default();
            respond(
                200,
                "application/json",
                OutBody::Full(Some(Bytes::from(text))),
            )
        }
        Reply::Raw(status, ct, text) => respond(status, ct, OutBody::Full(Some(Bytes::from(text)))),
        Reply::Bytes(status, ct, b) => respond(status, ct, OutBody::Full(Some(b))),
        Reply::Watch(spec) => {
            let (tx, rx) = mpsc::channel(256);
            tokio::spawn(run_watch(*spec, tx, shared.shutdown.clone()));
            respond(200, "application/json", OutBody::Stream(rx))
        }
    })
}

fn line(v: &Value) -> Bytes {
    let mut s = serde_json::to_vec(v).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

/// `{"type": kind, "object": object}` and a newline, without copying the object.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut s = b"{\"type\":".to_vec();
    let _ = serde_json::to_writer(&mut s, kind);
    s.extend_from_slice(b",\"object\":");
    let _ = serde_json::to_writer(&mut s, object);
    s.extend_from_slice(b"}\n");
    Bytes::from(s)
}

async fn run_watch(
    mut spec: WatchSpec,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let matches = |spec: &WatchSpec, o: &Value| {
        spec.labels.matches_object(o)
            && spec.fields.matches(o)
            && spec.name.as_ref().is_none_or(|n| meta_str(o, "name") == n)
    };
    let start_rv = spec.from_rv;
    let mut last_sent = start_rv;
    let mut max_seen = start_rv;
    for e in std::mem::take(&mut spec.initial) {
        if tx.send(line(&e)).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(Duration::from_secs(spec.timeout_secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = shutdown.changed() => break,
            ev = spec.rx.recv() => {
                match ev {
                    Ok(e) => {
                        max_seen = max_seen.max(e.rv);
                        if e.rv <= last_sent || e.group != spec.rt.group || e.plural != spec.rt.plural {
                            continue;
                        }
                        if !spec.namespace.is_empty() && e.namespace != spec.namespace {
                            continue;
                        }
                        if !matches(&spec, &e.object) {
                            continue;
                        }
                        last_sent = e.rv;
                        if tx.send(event_line(e.kind, &e.object)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // The client fell behind: end the watch so it relists.
                        return;
                    }
                    Err(_) => break,
                }
            }
        }
    }
    if spec.bookmarks && max_seen > start_rv {
        let bm = json!({"type": "BOOKMARK", "object": {"kind": spec.rt.kind, "apiVersion": spec.rt.api_version(), "metadata": {"resourceVersion": max_seen.to_string(), "creationTimestamp": null}}});
        let _ = tx.send(line(&bm)).await;
    }
}
