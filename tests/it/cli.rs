//! CLI conventions: shell completions (loaded into a real bash), man pages (rendered by `man`),
//! and each subcommand's `--help` listing only the flags it uses.

use cairn_tests::{cairn, ci_vars, temp_dir};

const SUBCOMMANDS: &[&str] = &[
    "render",
    "check",
    "plan",
    "apply",
    "status",
    "drift",
    "history",
    "rollback",
    "graph",
    "unlock",
    "sandbox",
    "plugin",
    "docs",
    "completions",
    "man",
];

#[test]
fn completions_name_every_subcommand_and_load_into_bash() {
    for shell in ["bash", "zsh", "fish"] {
        let out = cairn(&["completions", shell], ci_vars());
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        for sub in SUBCOMMANDS {
            assert!(out.stdout.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let dir = temp_dir("completions");
    let file = dir.join("cairn.bash");
    std::fs::write(&file, cairn(&["completions", "bash"], ci_vars()).stdout).expect("written");
    // Loaded into bash, the function completes `cairn pl` and `cairn status --sa`.
    let script = format!(
        r#"source {}
complete -p cairn
COMP_WORDS=(cairn pl); COMP_CWORD=1; _cairn cairn pl cairn; echo "first: ${{COMPREPLY[*]}}"
COMP_WORDS=(cairn status --sa); COMP_CWORD=2; _cairn cairn --sa status; echo "status: ${{COMPREPLY[*]}}"
COMP_WORDS=(cairn status --ad); COMP_CWORD=2; _cairn cairn --ad status; echo "adopt: ${{COMPREPLY[*]}}""#,
        file.display()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("-F _cairn") && text.contains(" cairn"),
        "{text}"
    );
    assert!(text.contains("first: plan plugin"), "{text}");
    assert!(text.contains("status: --sandbox"), "{text}");
    assert!(
        text.lines().any(|l| l.trim() == "adopt:"),
        "status has no --adopt: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn man_pages_render_with_man_one_per_subcommand() {
    let dir = temp_dir("man");
    let out = cairn(&["man", "--out", &dir.to_string_lossy()], ci_vars());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("wrote the man pages to "),
        "{}",
        out.stderr
    );
    let pages = std::fs::read_dir(&dir).expect("dir").count();
    assert_eq!(
        pages, 25,
        "cairn, 16 subcommands, 5 of plugin, 3 of sandbox"
    );
    for page in [
        "cairn",
        "cairn-plan",
        "cairn-status",
        "cairn-plugin-list",
        "cairn-completions",
    ] {
        assert!(dir.join(format!("{page}.1")).is_file(), "{page}.1");
    }
    let render = |page: &str| {
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(dir.join(format!("{page}.1")))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("man runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = render("cairn");
    assert!(
        top.contains("NAME") && top.contains("cairn - Environments as Rhai scripts"),
        "{top}"
    );
    assert!(
        top.contains("SUBCOMMANDS") && top.contains("cairn-plan(1)"),
        "{top}"
    );
    let status = render("cairn-status");
    assert!(
        status.contains("cairn-status - Is the environment healthy now"),
        "{status}"
    );
    assert!(
        status.contains("--sandbox") && status.contains("--json"),
        "{status}"
    );
    assert!(
        !status.contains("--adopt") && !status.contains("--format"),
        "{status}"
    );
    let plan = render("cairn-plan");
    assert!(
        plan.contains("--adopt") && plan.contains("--force-conflicts"),
        "{plan}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_subcommand_lists_only_the_flags_it_uses() {
    for sub in ["status", "drift", "history", "unlock"] {
        let out = cairn(&[sub, "--help"], ci_vars());
        assert_eq!(out.code, 0, "{}", out.stderr);
        insta::assert_snapshot!(format!("help-{sub}"), out.stdout);
    }
    for (args, flag) in [
        (&["status", "env.rhai", "--adopt"][..], "--adopt"),
        (
            &["drift", "env.rhai", "--force-conflicts"],
            "--force-conflicts",
        ),
        (&["history", "env.rhai", "--format", "json"], "--format"),
        (&["unlock", "env.rhai", "--json"], "--json"),
        (
            &["unlock", "env.rhai", "--accept-cluster"],
            "--accept-cluster",
        ),
    ] {
        let out = cairn(args, ci_vars());
        assert_eq!(out.code, 1, "{args:?}: {}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("error: unexpected argument '{flag}' found")),
            "{args:?}: {}",
            out.stderr
        );
    }
    // plan, apply and rollback keep their plan options.
    for sub in ["plan", "apply", "rollback"] {
        let out = cairn(&[sub, "--help"], ci_vars());
        for flag in [
            "--sandbox",
            "--json",
            "--format",
            "--adopt",
            "--accept-cluster",
            "--force",
        ] {
            assert!(out.stdout.contains(flag), "{sub} --help lacks {flag}");
        }
    }
}
