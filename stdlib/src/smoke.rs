//! Smoke checks: `env.smoke(name, check)` with `http_get(url, expect)`, `tcp_socket(host,
//! port)` or `sql(database)`. They are recorded as `Smoke` resources, which `cairn apply` runs
//! once everything else is applied and ready, and `cairn status` runs on demand. HTTP and TCP
//! checks run from where cairn runs; a SQL check runs `psql` in a Job with the database's
//! connection settings.

use cairn_model::Code;
use cairn_model::validate;
use cairn_model::{Diagnostic, Provider, ResourceId, Value};
use rhai::{Dynamic, Engine, Map, NativeCallContext};

use crate::api::Ctx;
use crate::builder;
use crate::docs::Docs;
use crate::export;
use crate::k8s::{self, Container};
use crate::opts::Opts;
use crate::types::{Component, EnvHandle, EnvValue, Workload};

/// A check made by `http_get(url, expect)`, `tcp_socket(host, port)` or `sql(database)`,
/// waiting to be declared with `env.smoke(name, check)`.
#[derive(Debug, Clone)]
pub struct SmokeCheck {
    /// What the check does, as recorded (`check`: `http`, `tcp` or `sql`).
    pub body: Value,
    /// For a SQL check: how its Job reaches the database.
    pub sql: Option<SqlCheck>,
}

/// The parts of a SQL check that become a Job once the namespace is known.
#[derive(Debug, Clone)]
pub struct SqlCheck {
    pub image: String,
    pub query: String,
    pub env: Vec<(String, EnvValue)>,
    pub database: Workload,
}

/// Status codes an HTTP server can answer with.
const STATUS: std::ops::RangeInclusive<i64> = 100..=599;

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    engine.register_type_with_name::<SmokeCheck>("SmokeCheck");
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "http_get",
        ["url: &str", "expect: Map"],
        "A smoke check: an HTTP(S) GET of `url` from where cairn runs must answer with the\n\
         expected `status` (default 200) and, when `body` is given, a body containing that text.\n\
         Redirects are not followed. Declare it with `env.smoke(...)`.\n\n\
         ```rhai\nlet check = http_get(\"https://api.demo.example.com/health\", #{ status: 200, body: \"ok\" });\n```",
        move |nc: NativeCallContext, url: &str, expect: Map| -> SmokeCheck {
            let site = c.site(&nc);
            let mut o = Opts::new("http_get(url, expect)", expect, &["status", "body"], &site);
            let status = o.int("status").unwrap_or(200);
            if !STATUS.contains(&status) {
                o.diagnostics.push(site.error(
                    Code::InvalidOption,
                    &status.to_string(),
                    format!("`status` must be an HTTP status code (100 to 599), found {status}"),
                ));
            }
            let body = o.str("body");
            c.report(o.finish());
            if let Err(message) = check_url(url) {
                c.report1(
                    site.error(Code::InvalidUrl, url, message)
                        .label("not an http(s) URL"),
                );
            }
            let mut value = Value::obj([
                ("check", Value::str("http")),
                ("url", Value::str(url)),
                ("status", Value::Int(status)),
            ]);
            if let Some(b) = body {
                value.insert("body", Value::str(b));
            }
            SmokeCheck {
                body: value,
                sql: None,
            }
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "tcp_socket",
        ["host: &str", "port: i64"],
        "A smoke check: a TCP connection to `host`:`port` from where cairn runs must open.\n\
         Declare it with `env.smoke(...)`.\n\n\
         ```rhai\nlet check = tcp_socket(\"db.demo.example.com\", 5432);\n```",
        move |nc: NativeCallContext, host: &str, port: i64| -> SmokeCheck {
            let site = c.site(&nc);
            let host_ok = validate::ipv4(host).is_ok()
                || validate::ipv6(host).is_ok()
                || validate::dns_name(host, false, true).is_ok();
            if !host_ok {
                c.report1(
                    site.error(
                        Code::InvalidAddress,
                        host,
                        format!("`{host}` is neither a host name nor an IP address"),
                    )
                    .label("not a host"),
                );
            }
            if !(1..=65535).contains(&port) {
                c.report1(site.error(
                    Code::InvalidOption,
                    &port.to_string(),
                    format!("a TCP port is 1 to 65535, found {port}"),
                ));
            }
            SmokeCheck {
                body: Value::obj([
                    ("check", Value::str("tcp")),
                    ("host", Value::str(host)),
                    ("port", Value::Int(port)),
                ]),
                sql: None,
            }
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "sql",
        ["database: Component"],
        "A smoke check: `SELECT 1` on a PostgreSQL service, run by `psql` in a Job inside the\n\
         environment with the service's connection settings; the Job's log is reported when it\n\
         fails. `sql(database, #{ query, image })` sets the query and the psql image. Declare it\n\
         with `env.smoke(...)`.\n\n\
         ```rhai\nimport \"postgres\" as postgres;\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = postgres::instance(env, \"pg\", #{ storage: \"1Gi\" });\nlet check = sql(db);\n```",
        move |nc: NativeCallContext, database: Component| -> SmokeCheck {
            sql_check(&c, &nc, &database, Map::new())
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "sql",
        ["database: Component", "options: Map"],
        "A SQL smoke check with options: `query` (default `SELECT 1`) and `image` (default\n\
         `postgres:16-alpine`, which has `psql`).\n\n\
         ```rhai\nimport \"postgres\" as postgres;\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = postgres::instance(env, \"pg\", #{ storage: \"1Gi\" });\nlet check = sql(db, #{ query: \"SELECT count(*) FROM pg_stat_activity\" });\n```",
        move |nc: NativeCallContext, database: Component, options: Map| -> SmokeCheck {
            sql_check(&c, &nc, &database, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "smoke",
        ["env: Environment", "name: &str", "check: SmokeCheck"],
        "Declares a smoke check: `cairn apply` runs every check once all other steps succeeded and\n\
         fails (exit 1) when one does, saying what was expected and what came back; `cairn\n\
         status` runs them on demand. `check` is `http_get(url, expect)`, `tcp_socket(host, port)`\n\
         or `sql(database)`.\n\n\
         ```rhai\nimport \"postgres\" as postgres;\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = postgres::instance(env, \"pg\", #{ storage: \"1Gi\" });\nenv.smoke(\"api\", http_get(\"https://api.demo.example.com/health\", #{ status: 200, body: \"ok\" }));\nenv.smoke(\"db-port\", tcp_socket(\"db.demo.example.com\", 5432));\nenv.smoke(\"db\", sql(db));\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, check: Dynamic| {
            let site = c.site(&nc);
            let type_name = check.type_name();
            let Some(check) = check.try_cast::<SmokeCheck>() else {
                let probe = type_name.ends_with("Tagged") || type_name == "Setting";
                let mut d = Diagnostic::error(
                    Code::InvalidSmokeCheck,
                    format!(
                        "env.smoke(\"{name}\", ...) takes http_get(url, expect), tcp_socket(host, port) or sql(database)"
                    ),
                )
                .at(site.span.clone());
                if probe {
                    d = d.help("`http_get(path, port)` and `tcp_socket(port)` are readiness probes; a smoke check names the host: `http_get(\"https://host/path\", #{ status: 200 })`, `tcp_socket(\"host\", port)`");
                }
                c.report1(d);
                return;
            };
            // The Job of a SQL check is named after it: a DNS label with room for a suffix.
            if let Err(e) = validate::dns1123_label(name) {
                c.report1(site.error(Code::InvalidName, name, e.0));
                return;
            }
            if name.len() > 40 {
                c.report1(site.error(
                    Code::InvalidName,
                    name,
                    format!(
                        "smoke check names are at most 40 characters, `{name}` has {}",
                        name.len()
                    ),
                ));
                return;
            }
            let mut b = builder::lock(&c.b);
            let env = b.env_name();
            let ns = b.namespace();
            let mut body = check.body;
            let mut depends_on = Vec::new();
            if let Some(sql) = check.sql {
                let job_name = format!("{name}-smoke");
                body.insert("job", sql_job(&job_name, &ns, &env, name, &sql));
                depends_on.push(sql.database.id.clone());
                // The Job's pod may reach the database through the derived network policies.
                let id = ResourceId::kube("Job", Some(&ns), &job_name);
                b.peers.insert(
                    job_name.clone(),
                    (
                        Workload {
                            name: job_name,
                            id,
                            service: None,
                            ports: Vec::new(),
                            route_port: None,
                            pods: None,
                        },
                        vec![sql.database],
                    ),
                );
            }
            b.add(
                ResourceId::other(Provider::Smoke, "SmokeCheck", Some(&env), name),
                body,
                depends_on,
                false,
                site.primary(),
            );
        }
    );
}

/// An `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("`{url}` has an unclosed `[`"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("`{url}` has an invalid port `{port}`"));
    }
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if validate::ipv4(host).is_err()
        && validate::ipv6(host).is_err()
        && validate::dns_name(host, false, true).is_err()
    {
        return Err(format!("`{url}` has an invalid host `{host}`"));
    }
    Ok(())
}

fn sql_check(ctx: &Ctx, nc: &NativeCallContext, database: &Component, options: Map) -> SmokeCheck {
    let site = ctx.site(nc);
    let mut o = Opts::new(
        "sql(database, options)",
        options,
        &["query", "image"],
        &site,
    );
    let query = o.str("query").unwrap_or_else(|| "SELECT 1".to_owned());
    let image = o
        .str("image")
        .unwrap_or_else(|| "postgres:16-alpine".to_owned());
    if let Err(e) = validate::image_ref(&image) {
        o.diagnostics
            .push(site.error(Code::InvalidImage, &image, e.0));
    }
    ctx.report(o.finish());
    let mut env = Vec::new();
    for (var, pg) in [
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("DATABASE", "PGDATABASE"),
    ] {
        if let Some((_, v)) = database.vars.iter().find(|(k, _)| k == var) {
            env.push((pg.to_owned(), v.clone()));
        }
    }
    env.push((
        "PGCONNECT_TIMEOUT".to_owned(),
        EnvValue::Plain("10".to_owned()),
    ));
    SmokeCheck {
        body: Value::obj([
            ("check", Value::str("sql")),
            ("database", Value::str(database.name.as_str())),
            ("query", Value::str(query.as_str())),
        ]),
        sql: Some(SqlCheck {
            image,
            query,
            env,
            database: database.workload.clone(),
        }),
    }
}

/// The Job a SQL check runs (`metadata.name` gets a unique suffix when it runs). It carries the
/// environment's label but not cairn's `managed-by`, so plans never see it.
fn sql_job(job_name: &str, ns: &str, env: &str, check: &str, sql: &SqlCheck) -> Value {
    let container = Container {
        name: "sql".to_owned(),
        image: sql.image.clone(),
        command: vec![
            "psql".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "--no-psqlrc".into(),
            "-tA".into(),
            "-c".into(),
            sql.query.clone(),
        ],
        env: sql.env.clone(),
        resources: k8s::Resources {
            request_cpu: Some("50m".to_owned()),
            request_memory: Some("64Mi".to_owned()),
            limit_cpu: Some("200m".to_owned()),
            limit_memory: Some("128Mi".to_owned()),
        },
        ..Container::default()
    };
    let mut template = k8s::pod_template(
        job_name,
        vec![k8s::container(&container)],
        Vec::new(),
        &[],
        Some("Never"),
    );
    let labels = Value::obj([
        (k8s::NAME, Value::str(job_name)),
        (k8s::ENVIRONMENT, Value::str(env)),
    ]);
    template.insert("metadata", Value::obj([("labels", labels)]));
    let mut body = k8s::object("batch/v1", "Job", job_name, Some(ns));
    if let Some(Value::Object(meta)) = body.get("metadata").cloned() {
        let mut meta = Value::Object(meta);
        meta.insert(
            "labels",
            Value::obj([
                ("cairn.dev/smoke", Value::str(check)),
                (k8s::ENVIRONMENT, Value::str(env)),
            ]),
        );
        body.insert("metadata", meta);
    }
    body.insert(
        "spec",
        Value::obj([
            ("backoffLimit", Value::Int(0)),
            ("activeDeadlineSeconds", Value::Int(300)),
            ("ttlSecondsAfterFinished", Value::Int(3600)),
            ("template", template),
        ]),
    );
    body
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(check_url("https://api.example.com/health").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        assert!(check_url("http://[::1]:8080/x").is_ok());
        assert!(check_url("http://[::1]/x").is_ok());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https:///health").is_err());
        assert!(check_url("http://127.0.0.1:99999/").is_err());
        assert!(check_url("http://exa mple.com/").is_err());
    }
}
