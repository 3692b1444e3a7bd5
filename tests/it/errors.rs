//! The diagnostics of `cairn check` for a corpus of broken scripts, one snapshot each: every
//! problem at once, each pointing at the span that caused it.

use std::collections::BTreeSet;
use std::path::Path;

use cairn_tests::{cairn, ci_vars, secret_values};

/// Human output (exit code, then what `check` printed) and the diagnostic codes.
fn check(rel: &str) -> (String, BTreeSet<String>) {
    let out = cairn(&["check", rel], ci_vars());
    let json = cairn(&["check", rel, "--format", "json"], ci_vars());
    for secret in secret_values() {
        for text in [&out.stdout, &out.stderr, &json.stdout] {
            assert!(!text.contains(&secret), "secret leaked in check of {rel}");
        }
    }
    assert_eq!(out.code, json.code);
    let diags: Vec<serde_json::Value> =
        serde_json::from_str(&json.stdout).expect("JSON diagnostics");
    let codes = diags
        .iter()
        .filter_map(|d| d["code"].as_str().map(str::to_owned))
        .collect();
    (
        format!("exit code: {}\n{}{}", out.code, out.stdout, out.stderr),
        codes,
    )
}

#[test]
fn broken_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/errors");
    let mut fixtures: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    fixtures.sort();
    let mut all_codes = BTreeSet::new();
    for file in &fixtures {
        let name = file.trim_end_matches(".rhai");
        let (output, codes) = check(&format!("fixtures/errors/{file}"));
        assert!(!codes.is_empty(), "{name}: no diagnostic");
        let expected_exit = if name.starts_with("warn-") {
            "exit code: 0"
        } else {
            "exit code: 1"
        };
        assert!(output.starts_with(expected_exit), "{name}: {output}");
        assert!(
            output.contains(&format!("fixtures/errors/{file}:")) || output.contains("plugins/"),
            "{name}: diagnostic without a span:\n{output}"
        );
        all_codes.extend(codes);
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("check", output);
        });
    }
    let errors: Vec<_> = all_codes
        .iter()
        .filter(|c| !matches!(c.as_str(), "latest-tag" | "no-readiness-probe"))
        .collect();
    assert!(
        errors.len() >= 15,
        "only {} distinct error kinds: {errors:?}",
        errors.len()
    );
}
