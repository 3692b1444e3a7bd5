//! The test harness shared by cairn's end-to-end tests: where the project is, the stand-in CI
//! variables, and running the CLI in-process.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The project's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The variables a CI job would set for the example environments.
pub fn ci_vars() -> BTreeMap<String, String> {
    [
        ("GIT_SHA", "4f2c9e1"),
        ("PR_NUMBER", "123"),
        (
            "RBX_TSIG_KEY",
            "dGVzdC10c2lnLWtleS12YWx1ZS0wMDAwMDAwMDAwMDA=",
        ),
        ("GHCR_TOKEN", "ghp_TESTTOKENVALUE123"),
        ("BINANCE_TESTNET_KEY", "testnet-key-VALUE-1"),
        ("BINANCE_TESTNET_SECRET", "testnet-secret-VALUE-2"),
        ("BINANCE_API_KEY", "live-key-VALUE-3"),
        ("BINANCE_API_SECRET", "live-secret-VALUE-4"),
        ("RSOLV_STAGING_CONVERTKIT_KEY", "convertkit-VALUE-5"),
        ("RSOLV_STAGING_STRIPE_KEY", "sk_test_VALUE-6"),
        ("RSOLV_STAGING_OAUTH_SECRET", "oauth-VALUE-7"),
        ("VENTROS_STAGING_JWT_SECRET", "jwt-ventros-VALUE-8"),
        ("SPACETIME_STAGING_JWT_SECRET", "jwt-spacetime-VALUE-9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The secret values of [`ci_vars`], which must never appear in any output.
pub fn secret_values() -> Vec<String> {
    let vars = ci_vars();
    [
        "RBX_TSIG_KEY",
        "GHCR_TOKEN",
        "BINANCE_TESTNET_KEY",
        "BINANCE_TESTNET_SECRET",
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "RSOLV_STAGING_CONVERTKIT_KEY",
        "RSOLV_STAGING_STRIPE_KEY",
        "RSOLV_STAGING_OAUTH_SECRET",
        "VENTROS_STAGING_JWT_SECRET",
        "SPACETIME_STAGING_JWT_SECRET",
    ]
    .iter()
    .filter_map(|k| vars.get(*k).cloned())
    .collect()
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cairn ARGS` in-process with the given environment variables, without colour.
pub fn cairn(args: &[&str], vars: BTreeMap<String, String>) -> Output {
    cairn_in(&std::env::current_dir().unwrap_or_default(), args, vars)
}

/// Runs `cairn ARGS` in-process in the working directory `cwd` (where `.cairn/` goes).
pub fn cairn_in(cwd: &std::path::Path, args: &[&str], vars: BTreeMap<String, String>) -> Output {
    cairn_answering(cwd, args, vars, None)
}

/// Runs `cairn ARGS` in-process, with `answer` typed at the terminal it asks on (none: no
/// terminal).
pub fn cairn_answering(
    cwd: &std::path::Path,
    args: &[&str],
    vars: BTreeMap<String, String>,
    answer: Option<&str>,
) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut typed = answer.map(|a| std::io::Cursor::new(a.as_bytes().to_vec()));
    let code = {
        let mut io = cairn::Io {
            out: &mut out,
            err: &mut err,
            vars,
            color: false,
            terminal: false,
            input: typed.as_mut().map(|t| t as &mut dyn std::io::BufRead),
            cwd: cwd.to_path_buf(),
        };
        cairn::run(
            std::iter::once("cairn").chain(args.iter().copied()),
            &mut io,
        )
    };
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A Kubernetes API emulator for one test, with a kubeconfig written to a temp dir.
pub struct TestCluster {
    /// The runtime that serves the emulator (kept alive for the test's duration).
    pub runtime: tokio::runtime::Runtime,
    /// The emulator.
    pub sandbox: Option<cairn_sandbox::Sandbox>,
    /// A temp dir for the test (kubeconfig, scripts).
    pub dir: PathBuf,
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
}

impl TestCluster {
    /// Starts an emulator with `config`.
    pub fn start(config: cairn_sandbox::SandboxConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sandbox = runtime
            .block_on(cairn_sandbox::Sandbox::start(config))
            .expect("the emulator starts");
        let dir = temp_dir("cluster");
        let kubeconfig = dir.join("kubeconfig");
        sandbox
            .write_kubeconfig(&kubeconfig, "test")
            .expect("kubeconfig written");
        Self {
            runtime,
            sandbox: Some(sandbox),
            dir,
            kubeconfig,
        }
    }

    /// The emulator.
    pub fn sandbox(&self) -> &cairn_sandbox::Sandbox {
        self.sandbox.as_ref().expect("running")
    }

    /// cairn's own client for this cluster (to act "as another run" in tests).
    pub async fn provider_cluster(&self) -> cairn_kube::Cluster {
        cairn_kube::Cluster::from_kubeconfig_yaml(&self.sandbox().kubeconfig_yaml("test"), "test")
            .await
            .expect("cluster")
    }

    /// Writes a script into the test's directory and gives its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("script written");
        path.to_string_lossy().into_owned()
    }

    /// Runs `cairn ARGS --kubeconfig <this cluster> --context test`.
    pub fn cairn(&self, args: &[&str]) -> Output {
        self.cairn_with(args, &[])
    }

    /// Like [`TestCluster::cairn`], with more environment variables.
    pub fn cairn_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.cairn_answering(args, vars, None)
    }

    /// Like [`TestCluster::cairn_with`], with `answer` typed at the terminal cairn asks on.
    pub fn cairn_answering(
        &self,
        args: &[&str],
        vars: &[(&str, &str)],
        answer: Option<&str>,
    ) -> Output {
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--kubeconfig", &kubeconfig, "--context", "test"]);
        let mut env = ci_vars();
        env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let cwd = std::env::current_dir().unwrap_or_default();
        cairn_answering(&cwd, &all, env, answer)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            let _ = self.runtime.block_on(sandbox.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh temp directory.
pub fn temp_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cairn-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A kube client for the test cluster (for making changes "by hand" in tests).
pub async fn kube_client(cluster: &TestCluster) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let yaml = cluster.sandbox().kubeconfig_yaml("test");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: Some("test".to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}
