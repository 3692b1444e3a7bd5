//! The script engine is a sandbox: runaway scripts stop with a clear error at their span, and
//! scripts cannot reach files or the network.

use std::time::{Duration, Instant};

use cairn_stdlib::{EvalOptions, evaluate};

fn eval(text: &str) -> Vec<(String, String, Option<u32>)> {
    let start = Instant::now();
    let e = evaluate("s.rhai", text, &[], &EvalOptions::default());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "evaluation took {:?}",
        start.elapsed()
    );
    e.diagnostics
        .iter()
        .map(|d| {
            (
                d.code.as_str().to_owned(),
                d.message.clone(),
                d.span.as_ref().map(|s| s.line),
            )
        })
        .collect()
}

#[test]
fn an_infinite_loop_stops_at_its_line() {
    let d = eval("let x = 0;\nloop {\n    x += 1;\n}\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, "script-limit");
    assert!(d[0].1.contains("too many operations"), "{d:?}");
    assert!(matches!(d[0].2, Some(2..=3)), "{d:?}");
}

#[test]
fn runaway_recursion_stops() {
    let d = eval("fn f(n) { f(n + 1) }\nf(0);\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, "script-limit");
    assert!(d[0].1.contains("nested function calls too deeply"), "{d:?}");
}

#[test]
fn a_huge_string_stops() {
    let d = eval("let s = \"x\";\nwhile true { s += s; }\n");
    assert_eq!(d[0].0, "script-limit", "{d:?}");
}

#[test]
fn a_huge_array_stops() {
    let d = eval("let a = [];\nwhile true { a.push(1); }\n");
    assert_eq!(d[0].0, "script-limit", "{d:?}");
}

#[test]
fn no_file_or_network_access() {
    for script in [
        "let f = open_file(\"/etc/passwd\");",
        "import \"../../etc/passwd\" as p;",
        "import \"/etc/passwd\" as p;",
        "eval(\"1 + 1\");",
        "let x = http(\"http://127.0.0.1\");",
    ] {
        let d = eval(script);
        assert_eq!(d.len(), 1, "{script}: {d:?}");
        assert!(
            matches!(
                d[0].0.as_str(),
                "script-error" | "plugin-not-found" | "syntax-error"
            ),
            "{script}: {d:?}"
        );
    }
}

#[test]
fn print_goes_nowhere() {
    assert!(eval("print(\"hello\"); debug(\"x\");").is_empty());
}
