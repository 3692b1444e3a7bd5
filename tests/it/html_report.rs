//! The HTML plan report (`plan --format html`, `plan --report FILE`) checked in a real
//! browser: Debian's Chromium, headless, renders the report of real plans on the emulator.
//! A copy of the page inside a checking wrapper (two `srcdoc` frames, 375 and 1280 pixels
//! wide; the report itself has no script) walks the DOM — every change present, nothing
//! wider than the viewport with every `<details>` open, links that resolve, nothing loaded —
//! and Chromium's `--dump-dom` hands the verdict back; its console log must stay empty.
//! Screenshots of the report itself, light and dark, phone and desktop, are kept in
//! `target/tmp/html-report/` to be looked at.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_sandbox::SandboxConfig;
use cairn_tests::{TestCluster, cairn_in, ci_vars, root, secret_values, temp_dir};
use serde_json::Value as J;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's path; the test fails (never skips) when it is not installed.
fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium is missing at {CHROMIUM}: the HTML report is checked in a real browser. \
         Install Debian's chromium package (scripts/install-test-servers does, as root)"
    );
    CHROMIUM
}

/// Where the screenshots are kept.
fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// What one Chromium run printed.
struct Run {
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium with a fresh profile on `url`; fails after two minutes.
fn run_chromium(args: &[&str], url: &str) -> Run {
    let work = temp_dir("chromium");
    let (out, err) = (work.join("stdout"), work.join("stderr"));
    let profile = format!("--user-data-dir={}", work.join("profile").display());
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &profile,
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium runs") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within two minutes:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = Run {
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(
        status.success(),
        "chromium failed ({status}):\n{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&work);
    run
}

/// The console lines of a Chromium run with `--enable-logging=stderr`.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

fn attribute_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// The checking script, run by the wrapper once both frames have loaded.
const CHECK: &str = r##"
function describe(e) {
  return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '');
}
function check(frame) {
  const d = frame.contentDocument, w = frame.contentWindow;
  d.querySelectorAll('details').forEach(x => { x.open = true; });
  const vw = d.documentElement.clientWidth;
  const wide = [];
  for (const e of d.body.querySelectorAll('*')) {
    const box = e.parentElement && e.parentElement.closest('.scroll');
    if (box || e.closest('svg')) continue;
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 1 || r.left < -1)) wide.push(describe(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  const boxes = [...d.querySelectorAll('.scroll')].filter(b => b.getBoundingClientRect().right > vw + 1).map(describe);
  const style = w.getComputedStyle(d.body);
  return {
    width: vw,
    page_scrolls_sideways: d.documentElement.scrollWidth > d.documentElement.clientWidth || d.body.scrollWidth > d.body.clientWidth,
    wider_than_viewport: wide.slice(0, 12).concat(boxes),
    changes: [...d.querySelectorAll('details.change')].map(e => [e.dataset.resource, e.dataset.action]),
    resources: [...d.querySelectorAll('[data-resource]')].map(e => e.dataset.resource),
    sections: [...d.querySelectorAll('main > section')].map(s => s.id),
    broken_links: [...d.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href')).filter(h => !d.getElementById(h.slice(1))),
    summaries: d.querySelectorAll('summary').length,
    unfocusable_summaries: [...d.querySelectorAll('summary')].filter(s => s.tabIndex < 0).length,
    loads: d.querySelectorAll('script, link, img, iframe, object, embed, [src], [style*="url("]').length,
    marked_in_graph: [...d.querySelectorAll('svg g[class^="mark-"] title')].map(t => t.textContent),
    background: style.backgroundColor,
    color: style.color,
    dark: w.matchMedia('(prefers-color-scheme: dark)').matches,
    text_length: d.body.innerText.length,
  };
}
window.addEventListener('load', () => {
  const verdict = { narrow: check(document.getElementById('narrow')), wide: check(document.getElementById('wide')) };
  document.getElementById('verdict').textContent = JSON.stringify(verdict);
});
"##;

/// The verdict of the checking wrapper on `html`, at 375 and 1280 pixels, light or dark.
fn verdict(html: &str, dark: bool) -> J {
    let work = temp_dir("html-check");
    let page = work.join("check.html");
    let frame = attribute_escape(html);
    let wrapper = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\
         <iframe id=\"narrow\" style=\"width:375px;height:812px;border:0\" srcdoc=\"{frame}\"></iframe>\
         <iframe id=\"wide\" style=\"width:1280px;height:900px;border:0\" srcdoc=\"{frame}\"></iframe>\
         <pre id=\"verdict\">pending</pre><script>{CHECK}</script></body></html>"
    );
    std::fs::write(&page, wrapper).expect("wrapper written");
    let mut args = vec![
        "--window-size=1700,1000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        "--enable-logging=stderr",
        "--v=0",
    ];
    args.push(if dark {
        "--blink-settings=preferredColorScheme=0"
    } else {
        "--blink-settings=preferredColorScheme=1"
    });
    let run = run_chromium(&args, &format!("file://{}", page.display()));
    let console = console_lines(&run.stderr);
    assert!(
        console.is_empty(),
        "the browser's console has messages:\n{}",
        console.join("\n")
    );
    let start = run
        .stdout
        .find("<pre id=\"verdict\">")
        .expect("the verdict element in the dumped DOM")
        + "<pre id=\"verdict\">".len();
    let end = run.stdout[start..].find("</pre>").expect("verdict end") + start;
    let text = run.stdout[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let _ = std::fs::remove_dir_all(&work);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("verdict {text}: {e}"))
}

/// The relative luminance of a CSS `rgb(r, g, b)` colour.
fn luminance(css: &str) -> f64 {
    let digits: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .map(|c| c.trim().parse::<f64>().expect("a colour component") / 255.0)
        .collect();
    assert_eq!(digits.len(), 3, "a colour: {css}");
    0.2126 * digits[0] + 0.7152 * digits[1] + 0.0722 * digits[2]
}

/// The changes of a plan's JSON document, but the no-ops: `(resource, action)`.
fn planned_changes(doc: &J) -> Vec<(String, String)> {
    doc["plan"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "no-op")
        .map(|c| {
            let id = &c["id"];
            let name = match id["scope"].as_str() {
                Some(scope) => format!("{}/{scope}/{}", s(&id["kind"]), s(&id["name"])),
                None => format!("{}/{}", s(&id["kind"]), s(&id["name"])),
            };
            (name, s(&c["action"]))
        })
        .collect()
}

fn s(v: &J) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Checks the report of a plan in the browser, in the colour schemes `dark` says: every
/// change of `doc` is there, nothing is wider than a phone's or a desktop's viewport, nothing
/// is loaded.
fn check_in_browser(what: &str, html: &str, doc: &J, dark: &[bool]) {
    let expected = planned_changes(doc);
    for &dark in dark {
        let v = verdict(html, dark);
        for (frame, width) in [("narrow", 375), ("wide", 1280)] {
            let f = &v[frame];
            let at = format!("{what}, {frame}, dark {dark}");
            assert_eq!(f["width"], width, "{at}: the frame's viewport");
            assert_eq!(f["dark"], dark, "{at}: the colour scheme");
            assert_eq!(f["page_scrolls_sideways"], false, "{at}: {f}");
            assert_eq!(f["wider_than_viewport"], serde_json::json!([]), "{at}");
            let shown: Vec<(String, String)> = f["changes"]
                .as_array()
                .expect("changes")
                .iter()
                .map(|c| (s(&c[0]), s(&c[1])))
                .collect();
            assert_eq!(shown, expected, "{at}: every change, in plan order");
            let resources: BTreeSet<String> = f["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(s)
                .collect();
            assert_eq!(
                resources.len(),
                doc["plan"]["changes"].as_array().map_or(0, Vec::len),
                "{at}: every resource of the plan, unchanged ones too"
            );
            assert_eq!(
                f["sections"],
                serde_json::json!([
                    "summary",
                    "attention",
                    "changes",
                    "graph",
                    "isolation",
                    "inputs"
                ]),
                "{at}"
            );
            assert_eq!(f["broken_links"], serde_json::json!([]), "{at}");
            assert_eq!(
                f["unfocusable_summaries"], 0,
                "{at}: summaries take the focus"
            );
            assert!(
                f["summaries"].as_u64() >= Some(expected.len() as u64),
                "{at}"
            );
            assert_eq!(f["loads"], 0, "{at}: the report loads nothing");
            let (bg, fg) = (luminance(&s(&f["background"])), luminance(&s(&f["color"])));
            if dark {
                assert!(
                    bg < 0.2 && fg > 0.7,
                    "{at}: dark background, light text: {f}"
                );
            } else {
                assert!(
                    bg > 0.9 && fg < 0.3,
                    "{at}: light background, dark text: {f}"
                );
            }
        }
    }
}

/// A PNG's width and height.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
    let n = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (n(16), n(20))
}

/// Screenshots of the report file itself at phone and desktop sizes, light and dark.
fn screenshots(name: &str, report: &Path) {
    let url = format!("file://{}", report.display());
    for (w, h) in [(375, 812), (1280, 900)] {
        for (scheme, setting) in [("light", 1), ("dark", 0)] {
            let shot = shots_dir().join(format!("{name}-{w}-{scheme}.png"));
            let _ = std::fs::remove_file(&shot);
            run_chromium(
                &[
                    &format!("--window-size={w},{h}"),
                    &format!("--screenshot={}", shot.display()),
                    &format!("--blink-settings=preferredColorScheme={setting}"),
                ],
                &url,
            );
            let bytes = std::fs::read(&shot).expect("the screenshot is written");
            assert_eq!(png_size(&bytes), (w, h), "{}", shot.display());
            // A blank page compresses to a few kilobytes; a page of text does not.
            assert!(
                bytes.len() > 20_000,
                "{} looks blank: {} bytes",
                shot.display(),
                bytes.len()
            );
        }
    }
}

/// The text of a seed environment, changed by `edit`, and `extra` appended (with `env` the
/// environment's handle).
fn seed(env: &str, edit: &[(&str, &str)], extra: &str) -> String {
    let path = root().join("environments").join(format!("{env}.rhai"));
    let mut text = std::fs::read_to_string(path).expect("seed environment");
    text = text.replacen(
        "rbx::environment_of(#{",
        "let env = rbx::environment_of(#{",
        1,
    );
    for (from, to) in edit {
        assert!(text.contains(from), "{env}.rhai has {from}");
        text = text.replacen(from, to, 1);
    }
    text.push_str(extra);
    text
}

fn assert_no_secret(what: &str, text: &str, more: &[&str]) {
    for secret in secret_values()
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
    {
        assert!(
            !text.contains(secret),
            "{what} shows the secret value {secret}"
        );
    }
}

/// rbx staging, applied on the sandbox with one more ConfigMap, then planned changed: a
/// setting, its bucket's retention, a secret variable, the ConfigMap gone, a new job image on
/// a `latest` tag (a warning). The report of that plan, written beside a saved plan file and
/// the Markdown comment, shows all of it, in Chromium, at phone and desktop width.
#[test]
fn the_report_of_a_changed_seed_environment_reads_in_a_browser() {
    let dir = crate::environments::sandbox_with_operators("html-report");
    let plugins = root().join("plugins").display().to_string();
    let extra = "env.config_map(\"report-extra\", #{ NOTE: \"goes away\" });\n";
    let v1 = dir.join("staging.rhai");
    std::fs::write(&v1, seed("staging", &[], extra)).expect("v1");
    let v1 = v1.display().to_string();
    let apply = [
        "apply",
        "--sandbox",
        &v1,
        "--plugin-path",
        &plugins,
        "--yes",
        "--timeout",
        "180",
    ];
    let out = cairn_in(&dir, &apply, ci_vars());
    assert_eq!(out.code, 0, "apply:\n{}\n{}", out.stdout, out.stderr);

    let tool = "env.cronjob(\"report-tool\", #{ schedule: \"0 3 * * *\", image: \"busybox:latest\", command: [\"true\"] });\n";
    let edits = [
        ("binance_testnet: \"true\"", "binance_testnet: \"false\""),
        ("backup_days: 7", "backup_days: 14"),
    ];
    let v2 = dir.join("staging-v2.rhai");
    std::fs::write(&v2, seed("staging", &edits, tool)).expect("v2");
    let v2 = v2.display().to_string();
    let new_key = "testnet-key-CHANGED-11";
    let mut vars = ci_vars();
    vars.insert("BINANCE_TESTNET_KEY".to_owned(), new_key.to_owned());
    let (report, saved) = (dir.join("plan.html"), dir.join("plan.cairn"));
    let (report_arg, saved_arg) = (report.display().to_string(), saved.display().to_string());
    let base = ["plan", "--sandbox", &v2, "--plugin-path", &plugins];
    let mut args = base.to_vec();
    args.extend([
        "--format",
        "markdown",
        "-o",
        &saved_arg,
        "--report",
        &report_arg,
    ]);
    let out = cairn_in(&dir, &args, vars.clone());
    assert_eq!(out.code, 2, "plan:\n{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("### cairn plan"),
        "the Markdown comment:\n{}",
        out.stdout
    );
    assert!(out.stderr.contains("Saved this plan to"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Wrote the plan's report to"),
        "{}",
        out.stderr
    );
    let html = std::fs::read_to_string(&report).expect("the report is written");

    let mut json_args = base.to_vec();
    json_args.push("--json");
    let json = cairn_in(&dir, &json_args, vars);
    let doc: J = serde_json::from_str(&json.stdout).expect("plan JSON");
    let actions: BTreeSet<String> = planned_changes(&doc).into_iter().map(|c| c.1).collect();
    for action in ["create", "update", "delete"] {
        assert!(
            actions.contains(action),
            "the plan has a {action}: {actions:?}"
        );
    }
    assert_no_secret("the report", &html, &[new_key]);
    for shown in [
        "data-resource=\"ConfigMap/staging/report-extra\" data-action=\"delete\"",
        "data-resource=\"CronJob/staging/report-tool\" data-action=\"create\"",
        "[<code>latest-tag</code>]",
        "staging-v2.rhai:",
        "(sensitive)",
        "<section id=\"isolation\"",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
    ] {
        assert!(html.contains(shown), "the report shows {shown}");
    }
    std::fs::write(shots_dir().join("staging.html"), &html).expect("a copy to look at");
    let outside = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !html.contains("<script") && !outside.contains("http://") && !outside.contains("https://"),
        "the report has no script and no link out (the SVG's namespace aside)"
    );
    check_in_browser("staging", &html, &doc, &[false, true]);
    screenshots("staging", &report);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every seed environment's first plan (everything to create) as a report on standard output
/// (`--format html`), checked in Chromium.
#[test]
fn every_seed_environment_has_a_report_that_reads_in_a_browser() {
    let dir = crate::environments::sandbox_with_operators("html-seeds");
    for env in [
        "staging",
        "production",
        "rsolv-staging",
        "ventros-staging",
        "spacetime-staging",
    ] {
        let path = root().join("environments").join(format!("{env}.rhai"));
        let path = path.display().to_string();
        let out = cairn_in(
            &dir,
            &["plan", "--sandbox", &path, "--format", "html"],
            ci_vars(),
        );
        assert_eq!(out.code, 2, "plan {env}:\n{}", out.stderr);
        assert!(
            out.stdout.starts_with("<!DOCTYPE html>"),
            "{env}: {}",
            &out.stdout[..200.min(out.stdout.len())]
        );
        assert_no_secret(env, &out.stdout, &[]);
        let json = cairn_in(&dir, &["plan", "--sandbox", &path, "--json"], ci_vars());
        let doc: J = serde_json::from_str(&json.stdout).expect("plan JSON");
        check_in_browser(env, &out.stdout, &doc, &[false]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn shop(replicas: i64, note: &str, claim: &str, extra: &str) -> String {
    format!(
        r#"
let env = environment("shop", #{{}});
env.namespace("shop", #{{ quota: #{{ requests_cpu: "4", requests_memory: "8Gi" }} }});
let settings = env.config_map("settings", #{{ MODE: "one", NOTE: "{note}" }});
let creds = env.secret("creds", #{{ PASSWORD: generate_password(20) }});
env.volume_claim("data", #{{ storage: "{claim}" }});
env.deployment("web", #{{
    image: "nginx:1.27", replicas: {replicas}, port: 80, ready: http_get("/", 80),
    env: [settings, creds], resources: #{{ cpu: "100m", memory: "64Mi" }},
}});
{extra}"#
    )
}

/// The report of a small plan (an update, a deletion, a creation with a warning, a refusal),
/// as HTML: its structure and text without the stylesheet, paths and the cluster's uid; and
/// in the browser.
#[test]
fn the_report_of_a_small_plan_is_its_snapshot() {
    let cluster = TestCluster::start(SandboxConfig {
        pod_start_delay: Duration::from_millis(20),
        ..SandboxConfig::default()
    });
    let v1 = cluster.write(
        "shop.rhai",
        &shop(
            2,
            "plain",
            "1Gi",
            "env.config_map(\"old\", #{ A: \"1\" });\n",
        ),
    );
    let out = cluster.cairn(&["apply", &v1, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let tool = "env.deployment(\"tool\", #{ image: \"busybox:latest\", port: 80, ready: http_get(\"/\", 80), resources: #{ cpu: \"50m\", memory: \"32Mi\" } });\n";
    let v2 = cluster.write("shop.rhai", &shop(3, "<b>&amp; 'quoted'</b>", "2Gi", tool));
    // The claim cannot grow (nothing mounts it yet): a refusal, and the plan exits 1.
    let out = cluster.cairn(&["plan", &v2, "--format", "html"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let html = out.stdout;
    let json = cluster.cairn(&["plan", &v2, "--json"]);
    let doc: J = serde_json::from_str(&json.stdout).expect("plan JSON");
    check_in_browser("a small plan", &html, &doc, &[false]);
    std::fs::write(shots_dir().join("small.html"), &html).expect("a copy to look at");
    let style_start = html.find("<style>").expect("a stylesheet") + "<style>".len();
    let style_end = html.find("</style>").expect("its end");
    let mut shown = format!("{}…{}", &html[..style_start], &html[style_end..]);
    shown = shown.replace(&cluster.dir.display().to_string(), "[dir]");
    shown = shown.replace(env!("CARGO_PKG_VERSION"), "[version]");
    let uid_start = shown
        .find("<dt>cluster</dt><dd><code>")
        .expect("the cluster")
        + 26;
    let uid_end = shown[uid_start..].find("</code>").expect("its end") + uid_start;
    shown.replace_range(uid_start..uid_end, "[uid]");
    assert!(!shown.contains("/tmp/"), "no absolute path left:\n{shown}");
    insta::assert_snapshot!("report-small-plan.html", shown);
}

/// The CI example writes the reports with `--report`, uploads them as an artifact and links
/// that from the pull-request comment.
#[test]
fn the_github_actions_example_uploads_the_reports_and_links_them() {
    let text =
        std::fs::read_to_string(root().join("docs/ci/github-actions.yml")).expect("the example");
    let doc: J = serde_saphyr::from_str(&text).expect("valid YAML");
    let steps = doc["jobs"]["plan"]["steps"]
        .as_array()
        .expect("the plan job");
    let position = |what: &dyn Fn(&J) -> bool| steps.iter().position(what);
    let plan = position(&|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("--report \"plan-report/$env.html\""))
    })
    .expect("the plan step writes a report per environment");
    let upload = position(&|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
            && s["with"]["path"] == "plan-report/"
    })
    .expect("the reports are uploaded");
    assert_eq!(
        steps[upload]["if"], "always()",
        "a failed plan's reports are uploaded too"
    );
    let link = position(&|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("REPORT_URL") && r.contains(">> plan.md"))
    })
    .expect("the comment links the reports");
    assert_eq!(
        steps[link]["env"]["REPORT_URL"],
        format!(
            "${{{{ steps.{}.outputs.artifact-url }}}}",
            s(&steps[upload]["id"])
        )
    );
    assert!(s(&steps[link]["env"]["RUN_URL"]).ends_with("/actions/runs/${{ github.run_id }}"));
    let comment = position(&|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.contains("pull-request-comment"))
    })
    .expect("the comment");
    assert!(
        plan < upload && upload < link && link < comment,
        "{plan} {upload} {link} {comment}"
    );
    let help = cairn_tests::cairn(&["plan", "--help"], Default::default());
    assert!(help.stdout.contains("--report <FILE>"), "{}", help.stdout);
}

/// The report is `plan`'s: other commands that print a plan refuse `--format html`.
#[test]
fn only_plan_writes_the_report() {
    for sub in ["apply", "destroy", "rollback --to 1"] {
        let mut args: Vec<&str> = sub.split(' ').collect();
        args.extend(["env.rhai", "--format", "html"]);
        let out = cairn_tests::cairn(&args, Default::default());
        assert_eq!(out.code, 1, "{sub}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("error: --format html is the report of `cairn plan` only"),
            "{sub}: {}",
            out.stderr
        );
    }
    // Commands that print no plan have no --format at all.
    for sub in ["status", "drift"] {
        let out = cairn_tests::cairn(&[sub, "env.rhai", "--format", "html"], Default::default());
        assert_ne!(out.code, 0, "{sub}: {}", out.stderr);
        assert!(
            out.stderr.contains("unexpected argument '--format'"),
            "{}",
            out.stderr
        );
    }
}

/// The browser check is no rubber stamp: a page wider than a phone fails it.
#[test]
fn the_browser_check_catches_a_page_wider_than_a_phone() {
    let page = "<!DOCTYPE html><html><head><meta name=\"viewport\" content=\"width=device-width\"></head>\
                <body><main><section id=\"changes\"><div id=\"wide\" style=\"width:600px\">wide</div></section></main></body></html>";
    let v = verdict(page, false);
    assert_eq!(v["narrow"]["width"], 375, "{v}");
    assert_eq!(v["narrow"]["page_scrolls_sideways"], true, "{v}");
    let wide = v["narrow"]["wider_than_viewport"].to_string();
    assert!(wide.contains("div#wide"), "{v}");
    assert_eq!(v["wide"]["page_scrolls_sideways"], false, "{v}");
    assert_eq!(v["wide"]["sections"], serde_json::json!(["changes"]), "{v}");
}
