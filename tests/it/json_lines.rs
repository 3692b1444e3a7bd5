//! Every `--json` and `--format json` output is JSON lines: each line of standard output parses
//! as JSON and conforms to the schema in `docs/` that documents it (a document on one line, or
//! `apply`'s and `rollback`'s events with a summary last). Run on the sandbox, in-process.

use std::collections::BTreeMap;

use cairn_tests::{Output, ci_vars, root, temp_dir};
use serde_json::Value as J;

/// Every schema of `docs/`, by its `$id`.
pub(crate) fn schemas() -> BTreeMap<String, J> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with("schema.json") {
            let schema: J = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let id = schema["$id"].as_str().expect("an $id").to_owned();
            all.insert(id, schema);
        }
    }
    all
}

/// Checks `value` against `schema` (within the schema file `root`), with the subset of JSON
/// Schema the files use: `$ref` (local or to another file's `$id`), `const`, `enum`, `type`,
/// `required`, `properties`, `additionalProperties: false`, `items`, `oneOf`.
pub(crate) fn conforms(
    all: &BTreeMap<String, J>,
    root: &J,
    schema: &J,
    value: &J,
    path: &str,
) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(J::as_str) {
        let (file, pointer) = r.split_once('#').unwrap_or((r, ""));
        let root = if file.is_empty() {
            root
        } else {
            all.get(file)
                .ok_or_else(|| format!("{path}: no schema {file}"))?
        };
        let target = root
            .pointer(pointer)
            .ok_or_else(|| format!("{path}: {r} not found"))?;
        return conforms(all, root, target, value, path);
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{path}: {value} is not {c}"));
    }
    if let Some(options) = schema.get("enum").and_then(J::as_array)
        && !options.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {options:?}"));
    }
    let type_ok = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    };
    match schema.get("type") {
        Some(J::String(t)) if !type_ok(t) => return Err(format!("{path}: not a {t}: {value}")),
        Some(J::Array(ts)) if !ts.iter().filter_map(J::as_str).any(type_ok) => {
            return Err(format!("{path}: not any of {ts:?}: {value}"));
        }
        _ => {}
    }
    if let Some(obj) = value.as_object() {
        let required = schema.get("required").and_then(J::as_array);
        for req in required.into_iter().flatten().filter_map(J::as_str) {
            if !obj.contains_key(req) {
                return Err(format!("{path}: missing {req}"));
            }
        }
        let props = schema.get("properties").and_then(J::as_object);
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(all, root, s, v, &format!("{path}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&J::Bool(false)) => {
                    return Err(format!("{path}: unexpected {k}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            conforms(all, root, items, v, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(J::as_array) {
        let results: Vec<_> = options
            .iter()
            .map(|o| conforms(all, root, o, value, path))
            .collect();
        let matched = results.iter().filter(|r| r.is_ok()).count();
        if matched != 1 {
            return Err(format!(
                "{path}: {matched} alternatives of oneOf match: {results:?}"
            ));
        }
    }
    Ok(())
}

/// Parses every line of a command's standard output and checks it against the schema `id`;
/// the lines, parsed.
fn json_lines(all: &BTreeMap<String, J>, id: &str, what: &str, out: &Output) -> Vec<J> {
    assert!(
        !out.stdout.is_empty(),
        "{what} printed nothing:\n{}",
        out.stderr
    );
    let schema = &all[&format!("https://cairn.dev/schemas/{id}")];
    out.stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let value: J = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: line {} is not JSON ({e}): {line}", i + 1));
            if let Err(e) = conforms(all, schema, schema, &value, "$") {
                panic!("{what}: line {} does not follow {id}: {e}\n{line}", i + 1);
            }
            value
        })
        .collect()
}

const SCRIPT: &str = r#"
let env = environment("jl", #{});
env.namespace("jl", #{});
let web = env.deployment("web", #{ image: "nginx:1.27", port: 80, ready: http_get("/", 80) });
env.smoke("local", http_get("http://127.0.0.1:PORT/health", #{ body: "ok" }));
env.smoke("api", http_get("https://web.jl.example.com/health", #{}));
env.smoke("web-port", tcp_socket("web.jl.svc.cluster.local", 80));
"#;

#[test]
fn every_json_output_is_json_lines_that_follow_the_documented_schemas() {
    let all = schemas();
    for id in [
        "plan/1",
        "apply-events/1",
        "status/1",
        "drift/1",
        "history/1",
    ] {
        assert!(
            all.contains_key(&format!("https://cairn.dev/schemas/{id}")),
            "{id}"
        );
    }
    let port = crate::smoke::http_server();
    let dir = temp_dir("json-lines");
    let script = dir.join("jl.rhai");
    std::fs::write(&script, SCRIPT.replace("PORT", &port.to_string())).expect("script");
    let script = script.to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.insert(1, &script);
        cairn_tests::cairn_in(&dir, &all, ci_vars())
    };
    let one = |id: &str, args: &[&str], code: i32| {
        let out = run(args);
        assert_eq!(out.code, code, "{args:?}\n{}\n{}", out.stdout, out.stderr);
        let lines = json_lines(&all, id, &args.join(" "), &out);
        assert_eq!(lines.len(), 1, "{args:?}: one document on one line");
        lines.into_iter().next().unwrap_or_default()
    };
    assert_eq!(
        one("check/1", &["check", "--format", "json"], 0),
        J::Array(vec![])
    );
    let docs = one("render/1", &["render", "--format", "json"], 0);
    assert!(docs.as_array().is_some_and(|d| d.len() > 3), "{docs}");
    for args in [
        &["plan", "--sandbox", "--json"][..],
        &["plan", "--sandbox", "--format", "json"],
    ] {
        let plan = one("plan/1", args, 2);
        assert_eq!(plan["has_changes"], true);
        let notes = plan["plan"]["notes"].to_string();
        assert!(
            notes.contains("smoke checks not run on the sandbox: api, web-port (2 of 3;"),
            "the plan says which checks will not run: {notes}"
        );
    }
    // Without --yes and without a terminal, apply stops before running anything: its summary
    // is the last line all the same.
    let out = run(&["apply", "--sandbox", "--json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&all, "apply-events/1", "apply --json (not confirmed)", &out);
    let last = events.last().expect("events");
    assert_eq!(
        (&last["event"], &last["exit_code"]),
        (&J::from("summary"), &J::from(1))
    );
    let out = run(&["apply", "--sandbox", "--yes", "--json", "--timeout", "60"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&all, "apply-events/1", "apply --json", &out);
    assert_eq!(events[0]["event"], "plan");
    let last = events.last().expect("events");
    assert_eq!(
        (&last["event"], &last["ok"]),
        (&J::from("summary"), &J::Bool(true))
    );
    let verdicts: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "smoke_check")
        .map(|e| {
            let c = &e["smoke_check"];
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["verdict"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("api", "not-run"),
        ("local", "passed"),
        ("web-port", "not-run"),
    ]
    .map(|(n, v)| (n.to_owned(), v.to_owned()));
    assert_eq!(verdicts, expected);
    let status = one("status/1", &["status", "--sandbox", "--json"], 0);
    assert_eq!(status["healthy"], true, "{status}");
    let healths: Vec<&str> = status["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["health"].as_str())
        .collect();
    assert_eq!(healths, ["ok", "not-run", "ok", "not-run"], "{status}");
    let drift = one("drift/1", &["drift", "--sandbox", "--json"], 0);
    assert_eq!(
        (&drift["has_drift"], &drift["baseline_revision"]),
        (&J::Bool(false), &J::from(1))
    );
    let history = one("history/1", &["history", "--sandbox", "--json"], 0);
    assert_eq!(history["revisions"][0]["outcome"], "succeeded", "{history}");
    let out = run(&["rollback", "--sandbox", "--to", "1", "--yes", "--json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&all, "apply-events/1", "rollback --json", &out);
    assert_eq!(events[0]["event"], "plan");
    let _ = std::fs::remove_dir_all(&dir);
}
