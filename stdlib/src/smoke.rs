//! Smoke checks: `env.smoke(name, check)` with `http_get(url, expect)`, `tcp_socket(host,
//! port)` or `sql(database)`. They are recorded as `Smoke` resources, which `cairn apply` runs
//! once everything else is applied and ready, and `cairn status` runs on demand. HTTP and TCP
//! checks run from where cairn runs; a SQL check runs `psql` in a Job with the database's
//! connection settings.

use cairn_model::Code;
use cairn_model::spec::network::{EnvSource, SmokeCheckSpec, SmokeSpec, SqlCheckSpec};
use cairn_model::validate;
use cairn_model::{Diagnostic, ResourceId};
use rhai::{Dynamic, Engine, Map, NativeCallContext};

use crate::api::Ctx;
use crate::builder::{self, Builder};
use crate::docs::Docs;
use crate::export;
use crate::lower::network as lower;
use crate::network::pg_connection;
use crate::opts::{Opts, Site};
use crate::types::{Component, EnvHandle, Workload};

/// A check made by `http_get(url, expect)`, `tcp_socket(host, port)` or `sql(database)`,
/// waiting to be declared with `env.smoke(name, check)`.
#[derive(Debug, Clone)]
pub struct SmokeCheck {
    /// What the check does.
    pub check: SmokeCheckSpec,
    /// For a SQL check: the database's workload, which its Job's pod talks to.
    pub database: Option<Workload>,
}

/// Status codes an HTTP server can answer with.
const STATUS: std::ops::RangeInclusive<i64> = 100..=599;

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    engine.register_type_with_name::<SmokeCheck>("SmokeCheck");
    register_network_checks(engine, docs, ctx);
    register_sql(engine, docs, ctx);
    register_smoke(engine, docs, ctx);
}

/// `http_get(url, expect)` and `tcp_socket(host, port)`.
fn register_network_checks(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
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
            http_get(&c, &c.site(&nc), url, expect)
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
            tcp_socket(&c, &c.site(&nc), host, port)
        }
    );
}

fn register_sql(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
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
}

fn register_smoke(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
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
            smoke(&c, &c.site(&nc), name, check);
        }
    );
}

fn http_get(c: &Ctx, site: &Site, url: &str, expect: Map) -> SmokeCheck {
    let mut o = Opts::new("http_get(url, expect)", expect, &["status", "body"], site);
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
    if let Err(e) = check_url(url) {
        c.report1(
            site.error(Code::InvalidUrl, url, e.to_string())
                .label("not an http(s) URL"),
        );
    }
    SmokeCheck {
        check: SmokeCheckSpec::Http {
            url: url.to_owned(),
            status,
            body,
        },
        database: None,
    }
}

fn tcp_socket(c: &Ctx, site: &Site, host: &str, port: i64) -> SmokeCheck {
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
        check: SmokeCheckSpec::Tcp {
            host: host.to_owned(),
            port,
        },
        database: None,
    }
}

fn smoke(c: &Ctx, site: &Site, name: &str, check: Dynamic) {
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
    let spec = SmokeSpec {
        name: name.to_owned(),
        environment: b.env_name(),
        namespace: b.namespace(),
        check: check.check,
    };
    if let Some(database) = check.database {
        sql_peer(&mut b, &spec, database);
    }
    let o = lower::smoke(&spec);
    b.add(o.id, o.body, o.deps, false, site.primary());
}

/// The Job of a SQL check may reach the database through the derived network policies.
fn sql_peer(b: &mut Builder, spec: &SmokeSpec, database: Workload) {
    let job_name = lower::smoke_job_name(&spec.name);
    let id = ResourceId::kube("Job", Some(&spec.namespace), &job_name);
    b.peers.insert(
        job_name.clone(),
        (
            Workload {
                name: job_name,
                id,
                service: None,
                ports: Vec::new(),
                route_port: None,
                service_ports: Vec::new(),
                pods: None,
            },
            vec![database],
        ),
    );
}

/// Why a smoke check's URL is not an `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another scheme, or none.
    #[error("`{0}` is not an http:// or https:// URL")]
    Scheme(String),
    /// An IPv6 host without its `]`.
    #[error("`{0}` has an unclosed `[`")]
    Unclosed(String),
    /// A port that is not a number up to 65535.
    #[error("`{url}` has an invalid port `{port}`")]
    Port {
        /// The URL.
        url: String,
        /// The port as written.
        port: String,
    },
    /// No host at all.
    #[error("`{0}` has no host")]
    NoHost(String),
    /// A host that is neither a host name nor an address.
    #[error("`{url}` has an invalid host `{host}`")]
    Host {
        /// The URL.
        url: String,
        /// The host as written.
        host: String,
    },
}

/// An `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), UrlError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| UrlError::Unclosed(url.to_owned()))?;
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
        return Err(UrlError::Port {
            url: url.to_owned(),
            port: port.to_owned(),
        });
    }
    if host.is_empty() {
        return Err(UrlError::NoHost(url.to_owned()));
    }
    if validate::ipv4(host).is_err()
        && validate::ipv6(host).is_err()
        && validate::dns_name(host, false, true).is_err()
    {
        return Err(UrlError::Host {
            url: url.to_owned(),
            host: host.to_owned(),
        });
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
    let mut connection = pg_connection(database);
    connection.push((
        "PGCONNECT_TIMEOUT".to_owned(),
        EnvSource::Plain("10".to_owned()),
    ));
    SmokeCheck {
        check: SmokeCheckSpec::Sql(SqlCheckSpec {
            database: database.name.clone(),
            query,
            image,
            connection,
            workload: database.workload.id.clone(),
        }),
        database: Some(database.workload.clone()),
    }
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
