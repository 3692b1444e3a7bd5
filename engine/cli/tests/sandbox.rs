//! `cairn sandbox up|down` and `--sandbox`, through the real binary: state under `.cairn/` in
//! the working directory, a kubeconfig kubectl can use, and a later plan that sees what an
//! earlier apply did.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cairn(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .current_dir(dir)
        .env("CAIRN_PLUGIN_PATH", root.join("plugins"))
        .env("CAIRN_BIN", env!("CARGO_BIN_EXE_cairn"))
        .output()
        .expect("cairn runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cairn-cli-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const SCRIPT: &str = r#"
let env = environment("web", #{});
env.namespace("web", #{});
env.config_map("settings", #{ MODE: "sandbox" });
env.deployment("web", #{ image: "nginx:1.27", port: 80, ready: http_get("/", 80) });
"#;

#[test]
fn sandbox_state_persists_between_runs() {
    let dir = temp_dir("persist");
    std::fs::write(dir.join("web.rhai"), SCRIPT).expect("script");
    let (code, out, err) = cairn(&dir, &["apply", "--sandbox", "web.rhai", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(dir.join(".cairn/sandbox/state.json").exists());
    let (code, out, err) = cairn(&dir, &["plan", "--sandbox", "web.rhai"]);
    assert_eq!(code, 0, "a later plan sees what was applied:\n{out}\n{err}");
    assert!(out.contains("No changes"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sandbox_up_serves_kubectl_and_cairn_until_down() {
    let dir = temp_dir("up");
    std::fs::write(dir.join("web.rhai"), SCRIPT).expect("script");
    let (code, out, err) = cairn(&dir, &["sandbox", "up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("export KUBECONFIG="), "{out}");
    let (code, out, err) = cairn(&dir, &["apply", "--sandbox", "web.rhai", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let kubectl = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.test-tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        kubectl.exists(),
        "kubectl is missing: run scripts/install-test-servers"
    );
    let got = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            ".cairn/sandbox/kubeconfig",
            "get",
            "configmap",
            "settings",
            "-n",
            "web",
            "-o",
            "jsonpath={.data.MODE}",
        ])
        .current_dir(&dir)
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "sandbox",
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let (code, out, _) = cairn(&dir, &["sandbox", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("sandbox running"), "{out}");
    let (code, out, err) = cairn(&dir, &["sandbox", "down"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (_, out, _) = cairn(&dir, &["sandbox", "status"]);
    assert!(out.contains("not running"), "{out}");
    // The state outlives the background server.
    let (code, out, err) = cairn(&dir, &["plan", "--sandbox", "web.rhai"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
