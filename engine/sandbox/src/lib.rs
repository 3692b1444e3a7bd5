//! The Kubernetes API emulator: cairn's `--sandbox` cluster and the test cluster of its suite.
//!
//! [`Sandbox::start`] serves a kube-apiserver v1.26-like API over HTTPS on `127.0.0.1` with a
//! random bearer token and a self-signed CA: discovery and OpenAPI (recorded documents),
//! CRUD, lists with selectors and pagination, watches, server-side apply with managedFields,
//! the common server defaults, and a small controller loop (Deployments, ReplicaSets, Pods,
//! StatefulSets, Jobs, ResourceQuotas, namespace deletion, garbage collection, CRDs).

mod api;
mod apply;
mod controllers;
mod defaults;
mod fields;
pub mod files;
mod openapi_pb;
mod registry;
mod rules;
mod rules_hpa;
mod schema;
mod selector;
mod server;
mod store;
mod tables;
mod util;
mod volumes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rand::Rng;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Loaded on start if it exists; saved after writes and on shutdown.
    pub state_file: Option<PathBuf>,
    /// How long a pod takes to become Ready.
    pub pod_start_delay: Duration,
    /// Image substring -> outcome. The pod template annotation
    /// `sandbox.cairn.dev/outcome: ready|crashloop|image-pull-error|not-ready` is honoured too.
    pub outcomes: Vec<(String, PodOutcome)>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            state_file: None,
            pod_start_delay: Duration::from_millis(300),
            outcomes: Vec::new(),
        }
    }
}

/// What happens to a pod's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodOutcome {
    Ready,
    CrashLoop {
        exit_code: i32,
        logs: Vec<String>,
    },
    ImagePullError,
    /// Running, but its readiness probe fails: never Ready (as the kubelet reports it).
    NotReady,
}

/// One request the emulator served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sandbox I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("sandbox TLS setup failed: {0}")]
    Tls(String),
    #[error("sandbox state file {path}: {message}")]
    State { path: PathBuf, message: String },
}

/// A running emulator.
pub struct Sandbox {
    addr: std::net::SocketAddr,
    token: String,
    ca_pem: String,
    state: Arc<Mutex<store::State>>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    config: SandboxConfig,
    /// Held while the state is written (see [`save_state`]).
    saving: Arc<Mutex<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Saves the state: a cheap snapshot (shared object pointers) under the store's lock,
/// serialization and the file write outside it. Saves are one at a time (`saving`), so a
/// later snapshot is always written after an earlier one; a failed write leaves the state
/// marked as changed, for the next save to try again.
fn save_state(state: &Mutex<store::State>, saving: &Mutex<()>, path: &Path) -> Result<(), Error> {
    let _one_at_a_time = lock(saving);
    let snapshot = {
        let mut st = lock(state);
        if !st.dirty {
            return Ok(());
        }
        st.dirty = false;
        st.snapshot()
    };
    let written = snapshot
        .to_json()
        .map_err(|e| Error::State {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
        .and_then(|data| files::write_private(path, &data).map_err(Error::from));
    if written.is_err() {
        lock(state).dirty = true;
    }
    written
}

/// The store at start: empty, or what the state file holds.
fn restored_state(config: &SandboxConfig) -> Result<store::State, Error> {
    let mut st = store::State::new();
    if let Some(path) = &config.state_file
        && path.exists()
    {
        let text = std::fs::read(path)?;
        let p: store::Persisted = serde_json::from_slice(&text).map_err(|e| Error::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        st.restore(p);
    }
    Ok(st)
}

/// A bearer token of 32 lowercase letters and digits.
fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let i = rng.random_range(0..36u8);
            (if i < 10 { b'0' + i } else { b'a' + i - 10 }) as char
        })
        .collect()
}

/// Accepts connections until shutdown, each served on its own task.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<server::Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = shutdown.changed() => break,
        };
        let Ok((tcp, _)) = conn else { continue };
        tokio::spawn(serve_connection(acceptor.clone(), tcp, shared.clone()));
    }
}

/// One TLS connection's HTTP/1 requests; on shutdown, it gets 2 seconds to finish gracefully.
async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    shared: Arc<server::Shared>,
) {
    let mut conn_shutdown = shared.shutdown.clone();
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let svc = hyper::service::service_fn(move |req| server::serve_request(shared.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = conn_shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Saves the state every half second while it changes, until shutdown.
async fn save_loop(
    state: Arc<Mutex<store::State>>,
    saving: Arc<Mutex<()>>,
    path: PathBuf,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => break,
        }
        if lock(&state).dirty {
            // Off the runtime's workers: serializing a large store takes a while.
            let (state, saving, path) = (state.clone(), saving.clone(), path.clone());
            let _ = tokio::task::spawn_blocking(move || save_state(&state, &saving, &path)).await;
        }
    }
}

impl Sandbox {
    /// Starts the emulator on `127.0.0.1:<free port>`.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, Error> {
        let tls = server::make_tls()?;
        let state = Arc::new(Mutex::new(restored_state(&config)?));
        let token = random_token();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(server::Shared {
            state: state.clone(),
            token: token.clone(),
            requests: requests.clone(),
            shutdown: shutdown_rx.clone(),
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let accept_task =
            tokio::spawn(accept_loop(listener, acceptor, shared, shutdown_rx.clone()));
        let ctrl_task = tokio::spawn(controllers::run(
            state.clone(),
            config.clone(),
            shutdown_rx.clone(),
        ));
        let mut tasks = vec![accept_task, ctrl_task];
        let saving: Arc<Mutex<()>> = Arc::default();
        if let Some(path) = config.state_file.clone() {
            tasks.push(tokio::spawn(save_loop(
                state.clone(),
                saving.clone(),
                path,
                shutdown_rx.clone(),
            )));
        }
        Ok(Sandbox {
            addr,
            token,
            ca_pem: tls.ca_pem,
            state,
            requests,
            shutdown_tx,
            tasks,
            config,
            saving,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn token(&self) -> String {
        self.token.clone()
    }

    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A kubeconfig with one cluster, user and context named `context`.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: {context}\n  user:\n    token: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\ncurrent-context: {context}\npreferences: {{}}\n",
            self.url(),
            self.token
        )
    }

    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> std::io::Result<()> {
        files::write_private(path, self.kubeconfig_yaml(context).as_bytes())
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// Stops serving; saves the state when `state_file` is set.
    pub async fn shutdown(self) -> Result<(), Error> {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
        // Only what changed is written back: a plan that changed nothing leaves the file alone.
        if let Some(path) = &self.config.state_file {
            save_state(&self.state, &self.saving, path)?;
        }
        Ok(())
    }
}

/// Runs the emulator in the foreground until SIGINT/SIGTERM (for `cairn sandbox up`).
pub async fn serve_forever(
    config: SandboxConfig,
    kubeconfig_path: &Path,
    context: &str,
) -> Result<(), Error> {
    let sandbox = Sandbox::start(config).await?;
    sandbox.write_kubeconfig(kubeconfig_path, context)?;
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
    }
    sandbox.shutdown().await
}
