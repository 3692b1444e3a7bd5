//! Every exported Rhai function is documented with an example, and every example runs clean.

use cairn_stdlib::{EvalOptions, evaluate, function_docs};
use cairn_tests::root;

#[test]
fn every_function_has_a_working_example() {
    let docs = function_docs();
    assert!(docs.len() >= 40, "only {} documented functions", docs.len());
    let plugins = vec![root().join("plugins")];
    let options = EvalOptions {
        vars: cairn_tests::ci_vars(),
        ..EvalOptions::default()
    };
    let mut failures = Vec::new();
    for f in &docs {
        let examples = f.examples();
        if examples.is_empty() {
            failures.push(format!("{}: no ```rhai example", f.name));
        }
        for example in examples {
            let eval = evaluate(
                &format!("example of {}", f.name),
                &example,
                &plugins,
                &options,
            );
            let mut problems: Vec<_> = eval
                .diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.code, d.message))
                .collect();
            problems.extend(
                cairn_plan::check(&eval.state)
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| format!("{}: {}", d.code, d.message)),
            );
            if !problems.is_empty() {
                failures.push(format!("{}: {}\n{example}", f.name, problems.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_docs_command_lists_them() {
    let out = cairn_tests::cairn(&["docs", "deployment"], cairn_tests::ci_vars());
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .contains("## deployment(env: Environment, name: &str, options: Map)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("```rhai"));
}

#[test]
fn every_option_of_every_function_is_documented() {
    let docs = function_docs();
    let mut missing = Vec::new();
    let mut checked = 0;
    for f in &docs {
        // "Options as for `deployment`": the options documented there count too.
        let flat = |doc: &str| doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut text = flat(f.doc);
        for other in &docs {
            if flat(f.doc).contains(&format!("as for `{}`", other.name)) {
                text.push_str(&flat(other.doc));
                for third in &docs {
                    if flat(other.doc).contains(&format!("as for `{}`", third.name)) {
                        text.push_str(&flat(third.doc));
                    }
                }
            }
        }
        for option in f.options() {
            checked += 1;
            // `key` alone, or `key: value` as in an example.
            if !text.contains(&format!("`{option}`")) && !text.contains(&format!("`{option}: ")) {
                missing.push(format!("{}({}): `{option}`", f.name, f.params.join(", ")));
            }
        }
    }
    assert!(checked >= 80, "only {checked} options checked");
    assert!(
        missing.is_empty(),
        "undocumented options:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_docs_command_searches_descriptions_too() {
    // No function is named after it: `slack`, `email`, `webhook` and `alert_route` say it.
    let out = cairn_tests::cairn(&["docs", "alertmanager"], cairn_tests::ci_vars());
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in ["## slack(", "## email(", "## webhook(", "## alert_route("] {
        assert!(out.stdout.contains(name), "no {name} in:\n{}", out.stdout);
    }
    // Every word must match, in any case.
    let out = cairn_tests::cairn(&["docs", "Sidecar exporter"], cairn_tests::ci_vars());
    assert!(out.stdout.contains("## deployment("), "{}", out.stdout);
    assert!(!out.stdout.contains("## cronjob("), "{}", out.stdout);
    let out = cairn_tests::cairn(&["docs", "no-such-word-anywhere"], cairn_tests::ci_vars());
    assert_eq!(out.code, 0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}
