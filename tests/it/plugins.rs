//! The plugin system: manifest checks at the caller's span, `cairn plugin` commands, the lock
//! file, and git plugins fetched from a local bare repository (real git, no network).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_tests::{Output, cairn_in, root, temp_dir};

fn vars(cache: &Path) -> BTreeMap<String, String> {
    [(
        "CAIRN_CACHE_DIR".to_owned(),
        cache.to_string_lossy().into_owned(),
    )]
    .into_iter()
    .collect()
}

fn run(cwd: &Path, args: &[&str], cache: &Path) -> Output {
    cairn_in(cwd, args, vars(cache))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=cairn",
            "-c",
            "user.email=cairn@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn fixture_project() -> PathBuf {
    root().join("tests/fixtures/plugin-project")
}

/// A project in a temp dir with a copy of the `kv` test plugin and a script using it.
fn kv_project(what: &str) -> PathBuf {
    let dir = temp_dir(what);
    copy_dir(
        &fixture_project().join("plugins/kv"),
        &dir.join("plugins/kv"),
    );
    std::fs::copy(
        fixture_project().join("defaults.rhai"),
        dir.join("env.rhai"),
    )
    .expect("script");
    dir
}

#[test]
fn manifest_checks_point_at_the_caller() {
    let dir = fixture_project();
    let mut scripts: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    scripts.sort();
    assert_eq!(scripts.len(), 6, "{scripts:?}");
    let cache = temp_dir("manifest-cache");
    for file in &scripts {
        let name = file.trim_end_matches(".rhai");
        let rel = format!("fixtures/plugin-project/{file}");
        let out = run(&dir, &["check", &rel], &cache);
        let expected = if name == "defaults" { 0 } else { 1 };
        assert_eq!(out.code, expected, "{name}: {}", out.stderr);
        if name == "invalid-manifest" {
            // A broken manifest is pointed at in plugin.toml.
            assert!(
                out.stderr.contains("[plugins/broken/plugin.toml:6:21]"),
                "{}",
                out.stderr
            );
        } else if name != "defaults" {
            // Every diagnostic points at the script, never into the plugin.
            assert!(
                out.stderr.contains(&format!("[{rel}:")),
                "{name}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("main.rhai"), "{name}: {}", out.stderr);
        }
        let text = format!("exit code: {}\n{}{}", out.code, out.stdout, out.stderr);
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("plugin-check", text);
        });
    }
    // The body saw the defaults of the manifest.
    let out = run(
        &dir,
        &["render", "fixtures/plugin-project/defaults.rhai"],
        &cache,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for wanted in ["image: kv:1.0", "replicas: 1", "memory: 256Mi", "- app"] {
        assert!(
            out.stdout.contains(wanted),
            "{wanted} missing:\n{}",
            out.stdout
        );
    }
    // A missing required option stops evaluation: the wrong option on the next line is not
    // reported.
    let out = run(
        &dir,
        &[
            "check",
            "fixtures/plugin-project/missing-required.rhai",
            "--format",
            "json",
        ],
        &cache,
    );
    let diags: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    let codes: Vec<&str> = diags.iter().filter_map(|d| d["code"].as_str()).collect();
    assert_eq!(codes, ["missing-option"]);
}

#[test]
fn shipped_plugins_pass_their_fixtures() {
    let cache = temp_dir("shipped-cache");
    for plugin in [
        "postgres",
        "redis",
        "rabbitmq",
        "monitoring",
        "rbx",
        "cockroachdb",
    ] {
        let out = run(&root(), &["plugin", "test", plugin], &cache);
        assert_eq!(out.code, 0, "{plugin}:\n{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(" fixtures, 0 failed") && !out.stdout.contains(": 0 fixtures"),
            "{plugin}: {}",
            out.stdout
        );
        // An expected render may not have accepted a problem: each fixture checks clean.
        let fixtures = root().join("plugins").join(plugin).join("fixtures");
        for entry in std::fs::read_dir(&fixtures).expect("fixtures").flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rhai") {
                continue;
            }
            let mut args = vec!["check".to_owned(), path.to_string_lossy().into_owned()];
            let env = path.with_extension("env");
            if env.is_file() {
                args.extend(["--env-file".to_owned(), env.to_string_lossy().into_owned()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&root(), &args, &cache);
            assert_eq!(out.code, 0, "{}:\n{}", path.display(), out.stderr);
            assert!(out.stderr.is_empty(), "{}:\n{}", path.display(), out.stderr);
        }
        let info = run(&root(), &["plugin", "info", plugin], &cache);
        assert_eq!(info.code, 0, "{}", info.stderr);
        assert!(
            info.stdout.starts_with(&format!("{plugin} 0.")),
            "{}",
            info.stdout
        );
        // Only the plugin's functions: not the closures its body uses.
        assert!(!info.stdout.contains("anon$"), "{}", info.stdout);
    }
    let info = run(&root(), &["plugin", "info", "postgres"], &cache);
    assert!(
        info.stdout
            .contains("postgres::instance(env, name, options)")
            && info
                .stdout
                .contains("storage        quantity, default \"10Gi\" — Size of the data volume"),
        "{}",
        info.stdout
    );
    let list = run(&root(), &["plugin", "list"], &cache);
    assert_eq!(list.code, 0, "{}", list.stderr);
    for plugin in ["monitoring", "postgres", "rabbitmq", "rbx", "redis"] {
        assert!(
            list.stdout.lines().any(|l| l.starts_with(plugin)
                && l.contains("0.1.0")
                && l.ends_with(&format!("plugins/{plugin}"))),
            "{plugin}: {}",
            list.stdout
        );
    }
}

#[test]
fn plugin_test_shows_a_diff_and_update_accepts_it() {
    let dir = temp_dir("plugin-test");
    copy_dir(&root().join("plugins/redis"), &dir.join("redis"));
    let cache = temp_dir("plugin-test-cache");
    let plugin = dir.join("redis");
    let plugin = plugin.to_string_lossy();
    let expected = dir.join("redis/fixtures/basic.expected");
    let text = std::fs::read_to_string(&expected).expect("expected file");
    std::fs::write(&expected, text.replace("storage: 1Gi", "storage: 2Gi")).expect("write");
    let out = run(&dir, &["plugin", "test", &plugin], &cache);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("FAILED redis/fixtures/basic.rhai"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("-      storage: 2Gi\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+      storage: 1Gi\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("redis: 2 fixtures, 1 failed"),
        "{}",
        out.stdout
    );

    let out = run(&dir, &["plugin", "test", &plugin, "--update"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&expected).expect("expected"), text);
    let out = run(&dir, &["plugin", "test", &plugin], &cache);
    assert_eq!(out.code, 0, "{}", out.stdout);

    // A fixture with no expected output fails until --update writes it.
    std::fs::copy(
        dir.join("redis/fixtures/basic.rhai"),
        dir.join("redis/fixtures/second.rhai"),
    )
    .expect("copy");
    let out = run(&dir, &["plugin", "test", &plugin], &cache);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("no second.expected"), "{}", out.stdout);
}

#[test]
fn a_new_plugin_is_documented_and_tests_clean() {
    let dir = temp_dir("plugin-new");
    std::fs::create_dir_all(dir.join("plugins")).expect("plugins/");
    let cache = temp_dir("plugin-new-cache");
    let out = run(&dir, &["plugin", "new", "web-app"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for file in [
        "plugin.toml",
        "main.rhai",
        "fixtures/basic.rhai",
        "README.md",
    ] {
        assert!(dir.join("plugins/web-app").join(file).is_file(), "{file}");
    }
    let out = run(&dir, &["plugin", "new", "web-app"], &cache);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = run(&dir, &["plugin", "new", "Web/App"], &cache);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("invalid plugin name"), "{}", out.stderr);

    let out = run(&dir, &["plugin", "test", "web-app", "--update"], &cache);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let expected = std::fs::read_to_string(dir.join("plugins/web-app/fixtures/basic.expected"))
        .expect("expected output");
    assert!(expected.contains("kind: Deployment"), "{expected}");
    assert!(expected.contains("image: nginx:1.27"), "{expected}");
    assert!(expected.contains("memory: 128Mi"), "{expected}");
    assert!(
        !expected.contains('×'),
        "the scaffold has problems:\n{expected}"
    );
    let out = run(&dir, &["plugin", "test", "web-app"], &cache);
    assert_eq!(out.code, 0, "{}", out.stdout);

    let info = run(&dir, &["plugin", "info", "web-app"], &cache);
    assert!(
        info.stdout
            .contains("web-app::instance(env, name, options)")
            && info
                .stdout
                .contains("image     string, required — The container image"),
        "{}",
        info.stdout
    );
}

#[test]
fn the_lock_pins_each_plugins_content() {
    let dir = kv_project("lock");
    let cache = temp_dir("lock-cache");
    let script = dir.join("env.rhai").to_string_lossy().into_owned();
    // Without a lock file, evaluation works as before.
    let out = run(&dir, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let out = run(&dir, &["plugin", "update"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("locked kv 1.0.0 (plugins/kv) sha256:"),
        "{}",
        out.stdout
    );
    let lock = std::fs::read_to_string(dir.join("cairn.lock")).expect("cairn.lock");
    assert!(lock.contains("[plugins.kv]"), "{lock}");
    assert!(lock.contains("source = \"dir\""), "{lock}");
    assert!(lock.contains("path = \"plugins/kv\""), "{lock}");
    let out = run(&dir, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list = run(&dir, &["plugin", "list"], &cache);
    assert!(
        list.stdout.contains("kv    1.0.0    locked"),
        "{}",
        list.stdout
    );

    // Someone edits the plugin: every evaluation refuses it, naming both hashes.
    let main = dir.join("plugins/kv/main.rhai");
    let text = std::fs::read_to_string(&main).expect("main.rhai");
    std::fs::write(&main, format!("{text}// changed\n")).expect("write");
    let out = run(&dir, &["render", &script], &cache);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("plugin-changed"), "{}", out.stderr);
    assert!(out.stderr.contains("env.rhai:2:8]"), "{}", out.stderr);
    let out = run(&dir, &["check", &script, "--format", "json"], &cache);
    assert_eq!(out.code, 1);
    let diags: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0]["code"], "plugin-changed");
    let message = diags[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("plugin `kv` (plugins/kv) does not match cairn.lock: locked sha256:")
            && message.contains(", found sha256:"),
        "{message}"
    );
    let help = diags[0]["help"].as_str().unwrap_or_default();
    assert!(help.contains("run `cairn plugin update`"), "{help}");
    let list = run(&dir, &["plugin", "list"], &cache);
    assert!(
        list.stdout.contains("kv    1.0.0    changed"),
        "{}",
        list.stdout
    );
    let out = run(&dir, &["plugin", "update", "kv"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(&dir, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // A plugin the lock does not know is refused too.
    copy_dir(&dir.join("plugins/kv"), &dir.join("plugins/kv2"));
    let manifest = dir.join("plugins/kv2/plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("name = \"kv\"", "name = \"kv2\"")).expect("write");
    std::fs::write(
        dir.join("two.rhai"),
        "import \"kv2\" as kv;\nlet env = environment(\"demo\", #{});\n",
    )
    .expect("script");
    let two = dir.join("two.rhai").to_string_lossy().into_owned();
    let out = run(&dir, &["check", &two], &cache);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("plugin `kv2` is not in cairn.lock"),
        "{}",
        out.stderr
    );
}

#[test]
fn git_plugins_are_fetched_once_locked_and_verified() {
    let base = temp_dir("git");
    let cache = base.join("cache");
    // A plugin repository with the kv plugin under kv/, tagged v1.0.0.
    let work = base.join("work");
    std::fs::create_dir_all(&work).expect("work");
    git(&work, &["init", "--quiet"]);
    copy_dir(&fixture_project().join("plugins/kv"), &work.join("kv"));
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "kv 1.0.0"]);
    git(&work, &["tag", "v1.0.0"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    let bare = base.join("plugins.git");
    git(
        &base,
        &["clone", "--quiet", "--bare", "work", "plugins.git"],
    );
    let url = format!("file://{}", bare.display());

    let project = base.join("project");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::copy(
        fixture_project().join("defaults.rhai"),
        project.join("env.rhai"),
    )
    .expect("script");
    let script = project.join("env.rhai").to_string_lossy().into_owned();
    let config = |tag: &str| {
        std::fs::write(
            project.join("cairn.toml"),
            format!("[plugins]\nkv = {{ git = \"{url}\", tag = \"{tag}\", path = \"kv\" }}\n"),
        )
        .expect("cairn.toml");
    };
    config("v1.0.0");

    // First use fetches it into the cache (no lock is written by evaluation).
    let out = run(&project, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("image: kv:1.0"), "{}", out.stdout);
    assert!(!project.join("cairn.lock").exists());
    assert!(cache.join("plugins/repos").is_dir());

    let out = run(&project, &["plugin", "update"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lock = std::fs::read_to_string(project.join("cairn.lock")).expect("lock");
    for wanted in [
        "source = \"git\"".to_owned(),
        format!("git = \"{url}\""),
        "tag = \"v1.0.0\"".to_owned(),
        format!("commit = \"{v1}\""),
        "path = \"kv\"".to_owned(),
        "version = \"1.0.0\"".to_owned(),
    ] {
        assert!(lock.contains(&wanted), "{wanted} missing:\n{lock}");
    }

    // Locked and cached: evaluation does not touch the repository (it is gone).
    let moved = base.join("moved.git");
    std::fs::rename(&bare, &moved).expect("move the repository away");
    let out = run(&project, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let list = run(&project, &["plugin", "list"], &cache);
    assert!(
        list.stdout.contains("kv    1.0.0    locked")
            && list
                .stdout
                .contains(&format!("{url} @ {v1} (tag v1.0.0) path kv")),
        "{}",
        list.stdout
    );
    std::fs::rename(&moved, &bare).expect("move it back");

    // A new release: the project moves to it only through `cairn plugin update`.
    let manifest = work.join("kv/plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("version = \"1.0.0\"", "version = \"2.0.0\"")
            .replace("default = \"kv:1.0\"", "default = \"kv:2.0\""),
    )
    .expect("write");
    git(&work, &["commit", "--quiet", "-am", "kv 2.0.0"]);
    git(&work, &["tag", "v2.0.0"]);
    git(
        &work,
        &[
            "push",
            "--quiet",
            "--tags",
            &bare.to_string_lossy(),
            "HEAD:main",
        ],
    );
    let v2 = git(&work, &["rev-parse", "HEAD"]);
    config("v2.0.0");
    let out = run(&project, &["render", &script], &cache);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("plugin-changed")
            && out.stderr.contains(&format!("{url}@{}/kv", &v2[..12]))
            && out.stderr.contains("run `cairn plugin update`"),
        "{}",
        out.stderr
    );
    let out = run(&project, &["plugin", "update", "kv"], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("locked kv 2.0.0 ({url}@{v2}) sha256:")),
        "{}",
        out.stdout
    );
    let out = run(&project, &["render", &script], &cache);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("image: kv:2.0"), "{}", out.stdout);

    // A commit instead of a tag, in a fresh cache.
    std::fs::remove_file(project.join("cairn.lock")).expect("unlock");
    std::fs::write(
        project.join("cairn.toml"),
        format!("[plugins]\nkv = {{ git = \"{url}\", rev = \"{v1}\", path = \"kv\" }}\n"),
    )
    .expect("cairn.toml");
    let fresh = base.join("cache2");
    let out = run(&project, &["render", &script], &fresh);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("image: kv:1.0"), "{}", out.stdout);

    // A tag that does not exist is a clear error at the import.
    config("v9.9.9");
    let out = run(&project, &["check", &script], &fresh);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("plugin-fetch-failed")
            && out
                .stderr
                .contains(&format!("plugin `kv`: {url} has no tag v9.9.9")),
        "{}",
        out.stderr
    );
}

/// A plugin importing itself, or two importing each other, is a diagnostic at the import
/// naming the cycle — for check, render and plan alike — never a stack overflow.
#[test]
fn plugin_import_cycles_are_diagnostics_at_the_import() {
    let dir = temp_dir("import-cycle");
    for (name, text) in [
        ("loop", "import \"loop\" as again;\nfn f() { 1 }\n"),
        ("ping", "import \"pong\" as pong;\nfn f() { 1 }\n"),
        ("pong", "import \"ping\" as ping;\nfn g() { 2 }\n"),
    ] {
        let p = dir.join("plugins").join(name);
        std::fs::create_dir_all(&p).expect("plugin dir");
        std::fs::write(p.join("main.rhai"), text).expect("plugin");
    }
    for (script, cycle) in [
        ("self.rhai", "loop → loop"),
        ("pair.rhai", "ping → pong → ping"),
    ] {
        let first = cycle.split(' ').next().unwrap_or_default();
        std::fs::write(
            dir.join(script),
            format!("import \"{first}\" as p;\nlet env = environment(\"x\", #{{}});\n"),
        )
        .expect("script");
        for cmd in ["check", "render", "plan"] {
            let path = dir.join(script).to_string_lossy().into_owned();
            let mut args = vec![cmd, path.as_str()];
            if cmd == "plan" {
                args.push("--sandbox");
            }
            let out = cairn_in(&dir, &args, BTreeMap::new());
            assert_eq!(
                out.code, 1,
                "{cmd} {script}:\n{}\n{}",
                out.stdout, out.stderr
            );
            let text = format!("{}{}", out.stdout, out.stderr);
            assert!(
                text.contains("plugin-import-cycle"),
                "{cmd} {script}:\n{text}"
            );
            assert!(
                text.contains(&format!("plugin import cycle: {cycle}")),
                "{cmd} {script}:\n{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
