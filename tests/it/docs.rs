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
