//! Isolation proven at plan time: `cairn check` holds the network policies to the connections
//! the script implies (`path-blocked`) and to the namespaces it denies (`isolation-breach`);
//! `check --network` prints who reaches whom, `graph --network` draws it. The seed
//! environments check clean with their matrices as snapshots (staging ↛ production both ways);
//! spacetime staging with ELK and Jaeger written by hand fails, naming each broken path, until
//! the connections are declared.

use std::path::{Path, PathBuf};

use cairn_tests::{Output, cairn, ci_vars, root, secret_values, temp_dir};

const SEEDS: &[(&str, &str)] = &[
    ("staging", "staging ↛ robson, robson ↛ staging"),
    ("production", "robson ↛ staging, staging ↛ robson"),
    (
        "rsolv-staging",
        "staging ↛ production, production ↛ staging",
    ),
    (
        "ventros-staging",
        "staging ↛ production, production ↛ staging",
    ),
    (
        "spacetime-staging",
        "staging ↛ production, production ↛ staging",
    ),
];

fn seed(env: &str) -> String {
    root()
        .join("environments")
        .join(format!("{env}.rhai"))
        .to_string_lossy()
        .into_owned()
}

fn no_secret(what: &str, out: &Output) {
    for secret in secret_values() {
        assert!(
            !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
            "{what} shows a secret value"
        );
    }
}

#[test]
fn seed_environments_check_clean_with_their_network_matrix() {
    for (env, denied) in SEEDS {
        let out = cairn(&["check", &seed(env), "--network"], ci_vars());
        no_secret(env, &out);
        assert_eq!(out.code, 0, "check {env}:\n{}\n{}", out.stdout, out.stderr);
        assert!(out.stderr.is_empty(), "check {env}:\n{}", out.stderr);
        assert!(out.stdout.contains("no problems"), "{env}:\n{}", out.stdout);
        assert!(
            out.stdout.contains(denied),
            "{env}: expected `{denied}` in\n{}",
            out.stdout
        );
        let matrix = out
            .stdout
            .replace(&seed(env), &format!("environments/{env}.rhai"));
        insta::assert_snapshot!(format!("network-{env}"), matrix);
    }
}

#[test]
fn the_backup_cronjobs_reach_their_database_and_nothing_else_in_staging() {
    let out = cairn(&["check", &seed("staging"), "--network"], ci_vars());
    let open = |line: &str| out.stdout.lines().any(|l| l == line);
    for job in ["backup", "restore"] {
        assert!(
            open(&format!(
                "staging/postgres-staging-{job} -> staging/postgres-staging: TCP 5432"
            )),
            "{job}:\n{}",
            out.stdout
        );
        assert!(
            !out.stdout.contains(&format!(
                "staging/postgres-staging-{job} -> staging/redis-staging"
            )),
            "{job} reaches only what it uses"
        );
    }
}

/// The spacetime seed with ELK (Elasticsearch, Logstash, Kibana) and Jaeger added by hand,
/// `after:` saying who talks to whom, and `allows` appended (or not).
fn spacetime_with_elk(allows: &str) -> PathBuf {
    spacetime_with_elk_sources("", allows)
}

/// The same, with more Grafana data sources given to `monitoring::stack` (`datasources`
/// entries, as `Name: #{ type, url }`).
fn spacetime_with_elk_sources(datasources: &str, allows: &str) -> PathBuf {
    let dir = temp_dir("isolation-elk");
    std::os::unix::fs::symlink(root().join("plugins"), dir.join("plugins")).expect("plugins");
    let mut seed_text = std::fs::read_to_string(seed("spacetime-staging")).expect("seed");
    if !datasources.is_empty() {
        let stack = "let mon = monitoring::stack(env, #{\n";
        assert!(
            seed_text.contains(stack),
            "the seed calls monitoring::stack"
        );
        seed_text = seed_text.replace(
            stack,
            &format!("{stack}    datasources: #{{ {datasources} }},\n"),
        );
    }
    let elk = r#"
// Logs and traces, written by hand.
let es = env.statefulset("elasticsearch", #{
    image: "docker.elastic.co/elasticsearch/elasticsearch:8.15.0",
    replicas: 3, headless: true,
    ports: #{ http: 9200, transport: 9300 },
    env: [#{ DISCOVERY_SEED_HOSTS: "elasticsearch", ES_JAVA_OPTS: "-Xms1g -Xmx1g" }],
    resources: #{ cpu: "1", memory: "2Gi" },
    ready: http_get("/_cluster/health", 9200),
});
let logstash = env.deployment("logstash", #{
    image: "docker.elastic.co/logstash/logstash:8.15.0",
    ports: #{ beats: 5044 },
    env: [#{ ELASTICSEARCH_HOSTS: "http://elasticsearch:9200" }],
    resources: #{ cpu: "500m", memory: "1Gi" },
    after: [es],
});
let kibana = env.deployment("kibana", #{
    image: "docker.elastic.co/kibana/kibana:8.15.0",
    port: 5601,
    env: [#{ ELASTICSEARCH_HOSTS: "http://elasticsearch:9200" }],
    resources: #{ cpu: "500m", memory: "1Gi" },
    ready: http_get("/api/status", 5601),
    after: [es],
});
let jaeger = env.deployment("jaeger", #{
    image: "jaegertracing/all-in-one:1.60",
    ports: #{ ui: 16686, otlp: 4317 },
    env: [#{ SPAN_STORAGE_TYPE: "elasticsearch", ES_SERVER_URLS: "http://elasticsearch:9200" }],
    resources: #{ cpu: "250m", memory: "512Mi" },
    ready: http_get("/", 16686),
    after: [es],
});
"#;
    let path = dir.join("spacetime-elk.rhai");
    std::fs::write(&path, format!("{seed_text}{elk}{allows}")).expect("script");
    path
}

fn check(path: &Path) -> Output {
    let out = cairn(&["check", &path.to_string_lossy()], ci_vars());
    no_secret("check", &out);
    out
}

#[test]
fn spacetime_with_elk_by_hand_fails_naming_each_broken_path_until_declared() {
    let broken = spacetime_with_elk("");
    let out = check(&broken);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for (from, to) in [
        ("logstash", "elasticsearch"),
        ("kibana", "elasticsearch"),
        ("jaeger", "elasticsearch"),
    ] {
        let message = format!(
            "{from} cannot reach {to}:9200 ({from} runs after {to}): egress of {from} is blocked by staging/allow-dns, staging/allow-internet, staging/default-deny-all-egress"
        );
        // miette wraps the message: compare without whitespace and its margin.
        let bare = |s: &str| s.replace('│', "").split_whitespace().collect::<String>();
        let flat = bare(&out.stderr);
        assert!(
            flat.contains(&bare(&message)),
            "expected `{message}` in\n{}",
            out.stderr
        );
        assert!(
            flat.contains(&bare(&format!("env.allow({from}, {to}, 9200)"))),
            "a fix hint for {from}:\n{}",
            out.stderr
        );
    }
    assert_eq!(
        out.stderr.matches("path-blocked").count(),
        3,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("3 errors"), "{}", out.stderr);

    // Two of three declared: the third is still named.
    let partly =
        spacetime_with_elk("env.allow(logstash, es, 9200);\nenv.allow(kibana, es, 9200);\n");
    let out = check(&partly);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("path-blocked").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("jaeger cannot reach elasticsearch:9200"),
        "{}",
        out.stderr
    );

    let fixed = spacetime_with_elk(
        "env.allow(logstash, es, 9200);\nenv.allow(kibana, es, 9200);\nenv.allow(jaeger, es, 9200);\nenv.allow(es, es, 9300);\n",
    );
    let out = cairn(&["check", &fixed.to_string_lossy(), "--network"], ci_vars());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for line in [
        "staging/kibana -> staging/elasticsearch: TCP 9200",
        "staging/logstash -> staging/elasticsearch: TCP 9200",
        "staging/jaeger -> staging/elasticsearch: TCP 9200",
        "staging/elasticsearch -> staging/cockroachdb",
    ] {
        let present = out.stdout.lines().any(|l| l.starts_with(line));
        if line.contains("cockroachdb") {
            assert!(!present, "elasticsearch reaches nothing it does not use");
        } else {
            assert!(present, "expected `{line}` in\n{}", out.stdout);
        }
    }
    assert!(
        out.stdout
            .contains("staging ↛ production, production ↛ staging"),
        "{}",
        out.stdout
    );
    for dir in [&broken, &partly, &fixed] {
        let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(dir));
    }
}

const ELK_ALLOWS: &str = "env.allow(logstash, es, 9200);\nenv.allow(kibana, es, 9200);\nenv.allow(jaeger, es, 9200);\nenv.allow(es, es, 9300);\n";

/// The 1-based line of the script that holds `needle`, as miette shows it (`file:line:`).
fn line_of(path: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(path).expect("script");
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the script");
    format!("spacetime-elk.rhai:{}:", line + 1)
}

#[test]
fn grafana_reaches_its_data_sources_by_url_and_each_host_is_checked() {
    // Jaeger and Elasticsearch (written by hand) as Grafana data sources, by Service name and
    // by the Service's full name: the derived policies let Grafana reach them.
    let sources = r#"Jaeger: #{ type: "jaeger", url: "http://jaeger:16686" }, Logs: #{ type: "elasticsearch", url: "http://elasticsearch.staging.svc.cluster.local:9200" }"#;
    let fixed = spacetime_with_elk_sources(sources, ELK_ALLOWS);
    let out = cairn(&["check", &fixed.to_string_lossy(), "--network"], ci_vars());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for code in ["unknown-host", "path-blocked", "path-unproven"] {
        assert!(!out.stderr.contains(code), "{}", out.stderr);
    }
    for line in [
        "staging/grafana -> staging/jaeger: TCP 16686",
        "staging/grafana -> staging/elasticsearch: TCP 9200",
        "staging/grafana -> staging/prometheus: TCP 9090",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "expected `{line}` in\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout
            .contains("staging/grafana -> staging/cockroachdb"),
        "Grafana reaches only its data sources"
    );

    // A typo: a warning at the script's line, naming the host.
    let typo = spacetime_with_elk_sources(
        r#"Jaeger: #{ type: "jaeger", url: "http://jaegr:16686" }"#,
        ELK_ALLOWS,
    );
    let out = check(&typo);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("unknown-host"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "env.allow(grafana, \"http://jaegr:16686\") names host `jaegr`, but no workload of namespace"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&line_of(&typo, "http://jaegr:16686")),
        "at the script's line:\n{}",
        out.stderr
    );

    // Outside the cluster: an IP address the namespace's egress (443 only) blocks is an error
    // at the script's line; a name is a warning (its address is unknown).
    let outside = spacetime_with_elk_sources(
        r#"Loki: #{ type: "loki", url: "http://10.20.0.5:3100" }, Cloud: #{ type: "loki", url: "http://logs.example.com:3100" }, Tls: #{ type: "loki", url: "https://logs.example.com" }"#,
        ELK_ALLOWS,
    );
    let out = check(&outside);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let bare = |s: &str| s.replace('│', "").split_whitespace().collect::<String>();
    let flat = bare(&out.stderr);
    assert!(
        flat.contains(&bare("× grafana cannot reach 10.20.0.5:3100 (env.allow(grafana, \"http://10.20.0.5:3100\")): egress of grafana is blocked by staging/allow-dns, staging/allow-grafana-to-deps, staging/allow-internet, staging/default-deny-all-egress")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&line_of(&outside, "http://10.20.0.5:3100")),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("path-blocked").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("path-unproven").count(),
        1,
        "only port 3100 is unproven, 443 is open:\n{}",
        out.stderr
    );
    assert!(
        flat.contains(&bare("grafana may not reach logs.example.com:3100")),
        "{}",
        out.stderr
    );
    for dir in [&fixed, &typo, &outside] {
        let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(dir));
    }
}

#[test]
fn graph_network_draws_who_reaches_whom() {
    let svg = cairn(
        &["graph", &seed("staging"), "--network", "--format", "svg"],
        ci_vars(),
    );
    assert_eq!(svg.code, 0, "{}", svg.stderr);
    assert!(svg.stdout.starts_with("<svg"), "{}", svg.stdout);
    assert!(
        svg.stdout.contains(
            "<title>staging/backend-staging -&gt; staging/postgres-staging: TCP 5432</title>"
        ),
        "an edge per open pair, with its ports"
    );
    assert!(
        svg.stdout.contains("<title>robson/any-pod</title>")
            && !svg.stdout.contains("robson/any-pod -&gt;")
            && !svg.stdout.contains("-&gt; robson/any-pod"),
        "the denied namespace is drawn, with no edge into or out of it"
    );
    let dot = cairn(
        &["graph", &seed("staging"), "--network", "--format", "dot"],
        ci_vars(),
    );
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    insta::assert_snapshot!("network-staging.dot", dot.stdout);
}

/// An environment with an API and a Redis, isolated from `production` (`isolate`), with
/// `more` appended.
fn netenv(isolate: &str, more: &str) -> String {
    format!(
        "let env = environment(\"netenv\", #{{}});\nenv.namespace(\"netenv\", #{{ {isolate} }});\nlet redis = env.statefulset(\"redis\", #{{ image: \"redis:7.4\", ports: #{{ redis: 6379 }} }});\nlet api = env.deployment(\"api\", #{{ image: \"nginx:1.27\", port: 8000, ready: http_get(\"/\", 8000) }});\n{more}"
    )
}

#[test]
fn the_plan_shows_the_paths_that_open_and_close_between_live_and_desired() {
    let cluster = cairn_tests::TestCluster::start(cairn_sandbox::SandboxConfig {
        pod_start_delay: std::time::Duration::from_millis(50),
        ..cairn_sandbox::SandboxConfig::default()
    });
    let isolated = "isolate: #{ deny_namespaces: [\"production\"] }";
    let allow = "env.allow(api, redis, 6379);\n";
    let script = cluster.write("net.rhai", &netenv(isolated, ""));
    let out = cluster.cairn(&["apply", &script, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains("Network"),
        "nothing when reachability does not change:\n{}",
        out.stdout
    );

    // A connection declared: it opens.
    cluster.write("net.rhai", &netenv(isolated, allow));
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("plan-network-opens", out.stdout);
    let out = cluster.cairn(&["plan", &script, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        doc["plan"]["network"],
        serde_json::json!([{ "action": "open", "from": "netenv/api", "to": "netenv/redis", "ports": "TCP 6379" }]),
        "{}",
        out.stdout
    );
    let saved = cluster.dir.join("net.plan");
    let saved = saved.to_string_lossy().into_owned();
    let out = cluster.cairn(&["plan", &script, "-o", &saved]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).expect("the plan file"))
            .expect("JSON");
    assert_eq!(file["plan"]["network"], doc["plan"]["network"]);
    let out = cluster.cairn(&["apply", &saved, "--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // The connection dropped: it closes.
    cluster.write("net.rhai", &netenv(isolated, ""));
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("plan-network-closes", out.stdout);

    // The isolation dropped: everything opens, and the paths to and from production say so.
    cluster.write("net.rhai", &netenv("", allow));
    let out = cluster.cairn(&["plan", &script]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!("plan-network-isolation-dropped", out.stdout);
    let out = cluster.cairn(&["plan", &script, "--format", "markdown"]);
    assert!(
        out.stdout.contains("`+ production/* -> netenv/api all` — **‼ to or from `production`, another environment's namespace**"),
        "{}",
        out.stdout
    );
}
