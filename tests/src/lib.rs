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
        (
            "RBX_TSIG_KEY",
            "dGVzdC10c2lnLWtleS12YWx1ZS0wMDAwMDAwMDAwMDA=",
        ),
        ("GHCR_TOKEN", "ghp_TESTTOKENVALUE123"),
        ("BINANCE_TESTNET_KEY", "testnet-key-VALUE-1"),
        ("BINANCE_TESTNET_SECRET", "testnet-secret-VALUE-2"),
        ("BINANCE_API_KEY", "live-key-VALUE-3"),
        ("BINANCE_API_SECRET", "live-secret-VALUE-4"),
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
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = {
        let mut io = cairn::Io {
            out: &mut out,
            err: &mut err,
            vars,
            color: false,
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
