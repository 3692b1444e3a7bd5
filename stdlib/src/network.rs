//! Routes, DNS records, certificates, backups and alerts: the Rhai bindings. Each parses its
//! options into a spec of `cairn_model::spec::network` with diagnostics at the caller's span;
//! [`crate::lower::network`] turns the spec into resources.

use cairn_model::Code;
use cairn_model::records::{self, RecordValueError};
use cairn_model::spec::network::{
    AlertRouteSpec, AlertSpec, BackupBucket, BackupSpec, BucketCredentials, CertificateSpec,
    DnsRecordSpec, EnvSource, EnvVar, RouteSpec, RouteTls,
};
use cairn_model::validate::{self, name_covers};
use cairn_model::{Diagnostic, Provider, ResourceId, Value};
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext};

use crate::api::{Ctx, R, fail};
use crate::builder::{self, Builder};
use crate::docs::Docs;
use crate::export;
use crate::lower::network::{self as lower, Object};
use crate::opts::{Opts, Site};
use crate::types::{CertHandle, Component, EnvHandle, EnvValue, Tagged, Workload};

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    register_dns(engine, docs, ctx);
    register_dns_record(engine, docs, ctx);
    register_certificates(engine, docs, ctx);
    register_routes(engine, docs, ctx);
    register_backups(engine, docs, ctx);
    register_alerts(engine, docs, ctx);
    register_receivers(engine, docs, ctx);
    register_scrape(engine, docs, ctx);
}

/// Adds lowered objects to the builder, at `span`.
fn add_all(b: &mut Builder, objects: Vec<Object>, span: Option<cairn_model::Span>) {
    for o in objects {
        b.add(o.id, o.body, o.deps, false, span.clone());
    }
}

/// The zone and the fully qualified name of a record name given relative to the domain.
fn record_name(ctx: &Ctx, site: &Site, name: &str) -> Option<(String, String)> {
    let b = builder::lock(&ctx.b);
    let meta = b.env.as_ref();
    let domain = meta.and_then(|m| m.domain.clone());
    let zone = meta
        .and_then(|m| m.providers.get("dns"))
        .and_then(|d| d.get("zone"))
        .and_then(Value::as_str)
        .map(|z| z.trim_end_matches('.').to_owned());
    drop(b);
    let Some(zone) = zone else {
        ctx.report1(Diagnostic::error(Code::MissingSetting, "DNS records need a DNS provider: set `dns: rfc2136(...)` or `dns: manual_dns(...)` in environment(...)").at(site.span.clone()));
        return None;
    };
    let base = domain.unwrap_or_else(|| zone.clone());
    let fqdn = if let Some(abs) = name.strip_suffix('.') {
        abs.to_owned()
    } else if name == "@" {
        base
    } else {
        format!("{name}.{base}")
    };
    if let Err(e) = validate::dns_name(&fqdn, true, true) {
        ctx.report1(
            site.error(Code::InvalidDnsName, name, e.0)
                .label("not a DNS name"),
        );
        return None;
    }
    let inside = fqdn.eq_ignore_ascii_case(&zone)
        || fqdn
            .to_ascii_lowercase()
            .ends_with(&format!(".{}", zone.to_ascii_lowercase()));
    if !inside {
        ctx.report1(site.error(
            Code::OutsideZone,
            name,
            format!("record `{fqdn}` is outside the zone `{zone}`"),
        ));
        return None;
    }
    Some((zone, fqdn))
}

fn add_record(ctx: &Ctx, site: &Site, name: &str, rtype: &str, values: Vec<String>, ttl: i64) {
    let Some((zone, fqdn)) = record_name(ctx, site, name) else {
        return;
    };
    let spec = DnsRecordSpec {
        zone,
        fqdn,
        rtype: rtype.to_owned(),
        values,
        ttl,
    };
    let o = lower::dns_record(&spec);
    builder::lock(&ctx.b).add(o.id, o.body, o.deps, false, site.at(name));
}

fn names_of(v: &Dynamic) -> Vec<String> {
    if v.is_array() {
        v.clone()
            .into_array()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        vec![v.to_string()]
    }
}

/// `env.dns_a`, `env.dns_aaaa`, `env.dns_cname`, `env.dns_txt`.
fn register_dns(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    for (fname, rtype, doc) in [
        (
            "dns_a",
            "A",
            "A records: each name (relative to the environment's domain; `@` is the domain itself,\na trailing dot makes a name absolute) points at the IPv4 address.\n\n```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.dns_a([\"@\", \"api\"], \"203.0.113.10\");\n```",
        ),
        (
            "dns_aaaa",
            "AAAA",
            "AAAA records, as `dns_a` with an IPv6 address.\n\n```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.dns_aaaa(\"api\", \"2001:db8::10\");\n```",
        ),
        (
            "dns_cname",
            "CNAME",
            "A CNAME record from each name to the target host name.\n\n```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.dns_cname(\"www\", \"staging.example.com.\");\n```",
        ),
        (
            "dns_txt",
            "TXT",
            "A TXT record.\n\n```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.dns_txt(\"@\", \"v=spf1 -all\");\n```",
        ),
    ] {
        let c = ctx.clone();
        rhai::FuncRegistration::new(fname)
            .with_params_info(["env: Environment", "names: Array | &str", "value: &str"])
            .with_comments([doc])
            .register_into_engine(
                engine,
                move |nc: NativeCallContext, _env: &mut EnvHandle, names: Dynamic, value: &str| {
                    simple_record(&c, &c.site(&nc), rtype, &names, value);
                },
            );
        docs.0.push(crate::docs::FunctionDoc {
            name: fname,
            params: &["env: Environment", "names: Array | &str", "value: &str"],
            doc,
        });
    }
}

/// One value of type `rtype` at each of `names`.
fn simple_record(c: &Ctx, site: &Site, rtype: &str, names: &Dynamic, value: &str) {
    if let Err(e) = records::normalize_value(rtype, value) {
        let (code, message) = match rtype {
            "CNAME" => (Code::InvalidDnsName, e.message().to_owned()),
            "TXT" => (
                Code::InvalidRecord,
                InvalidRecordValue::new(rtype, value, e).to_string(),
            ),
            _ => (Code::InvalidAddress, e.message().to_owned()),
        };
        c.report1(site.error(code, value, message));
        return;
    }
    for name in names_of(names) {
        add_record(c, site, &name, rtype, vec![value.to_owned()], 300);
    }
}

fn register_dns_record(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "dns_record",
        ["env: Environment", "options: Map"],
        "Any record set: `name`, `type` (A, AAAA, CNAME, TXT, MX, SRV, CAA), `values` (a list; MX as\n\
         \"10 mail.example.com.\", SRV as \"10 5 5060 sip.example.com.\", CAA as \"0 issue \\\"letsencrypt.org\\\"\"), `ttl`.\n\n\
         ```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.dns_record(#{ name: \"@\", type: \"MX\", values: [\"10 mail.example.com.\"], ttl: 3600 });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, options: Map| {
            dns_record(&c, &c.site(&nc), options);
        }
    );
}

fn dns_record(c: &Ctx, site: &Site, options: Map) {
    let mut o = Opts::new(
        "env.dns_record(...)",
        options,
        &["name", "type", "values", "ttl"],
        site,
    );
    let name = o.req_str("name");
    let rtype = o.req_str("type").map(|t| t.to_ascii_uppercase());
    let values = o.str_list("values");
    let ttl = o.int("ttl").unwrap_or(300);
    if !(1..=604_800).contains(&ttl) {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &ttl.to_string(),
            format!("ttl {ttl} is out of range 1-604800"),
        ));
    }
    if let Some(t) = &rtype {
        if !matches!(
            t.as_str(),
            "A" | "AAAA" | "CNAME" | "TXT" | "MX" | "SRV" | "CAA"
        ) {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                t,
                format!("unsupported record type `{t}`"),
            ));
        }
        for v in &values {
            if let Err(e) = record_value(t, v) {
                o.diagnostics
                    .push(site.error(Code::InvalidRecord, v, e.to_string()));
            }
        }
    }
    c.report(o.finish());
    if let (Some(name), Some(rtype)) = (name, rtype) {
        add_record(c, site, &name, &rtype, values, ttl);
    }
}

/// A record value that the one rule of record values rejects, as the script is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {rtype} record value \"{value}\"")]
pub struct InvalidRecordValue {
    /// The record type.
    pub rtype: String,
    /// The value as written.
    pub value: String,
    /// What is wrong with it.
    #[source]
    pub source: RecordValueError,
}

impl InvalidRecordValue {
    fn new(rtype: &str, value: &str, source: RecordValueError) -> Self {
        Self {
            rtype: rtype.to_owned(),
            value: value.to_owned(),
            source,
        }
    }
}

/// Validates the text of one record value of type `rtype`, by the one rule of record values
/// ([`records::normalize_value`]).
pub fn record_value(rtype: &str, v: &str) -> Result<(), InvalidRecordValue> {
    records::normalize_value(rtype, v)
        .map(|_| ())
        .map_err(|e| InvalidRecordValue::new(rtype, v, e))
}

fn register_certificates(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "certificate",
        ["env: Environment", "name: &str", "names: Array"],
        "An ACME certificate for the names (wildcards allowed), issued with DNS-01 through the\n\
         environment's DNS provider, renewed 30 days before expiry, and stored as the TLS Secret\n\
         `<name>-tls` in the namespace. Use it in `env.route(...)`.\n\n\
         ```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\", acme: letsencrypt(#{ email: \"ops@example.com\" }), dns: rfc2136(#{ server: \"127.0.0.1:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"k\") }) });\nenv.namespace(\"staging\", #{});\nenv.dns_a([\"@\", \"api\"], \"203.0.113.10\");\nlet tls = env.certificate(\"staging-example-com\", [env.domain, \"*.\" + env.domain]);\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              name: &str,
              names: Array|
              -> CertHandle { certificate(&c, &c.site(&nc), name, &names) }
    );
}

fn certificate(c: &Ctx, site: &Site, name: &str, names: &Array) -> CertHandle {
    crate::api::check_name(c, site, "certificate", name, false);
    let names: Vec<String> = names.iter().map(ToString::to_string).collect();
    if names.is_empty() {
        c.report1(
            Diagnostic::error(
                Code::InvalidOption,
                format!("certificate `{name}` names no host"),
            )
            .at(site.span.clone()),
        );
    }
    for n in &names {
        if let Err(e) = validate::dns_name(n, true, false) {
            c.report1(
                site.error(Code::InvalidDnsName, n, e.0)
                    .label("not a DNS name"),
            );
        }
    }
    let mut b = builder::lock(&c.b);
    let issuer = b
        .env
        .as_ref()
        .and_then(|m| m.providers.get("acme"))
        .cloned();
    if issuer.is_none() {
        b.report(Diagnostic::error(Code::MissingSetting, format!("certificate `{name}` needs an ACME issuer: set `acme: letsencrypt(...)` in environment(...)")).at(site.span.clone()));
    }
    let spec = CertificateSpec {
        name: name.to_owned(),
        names,
        namespace: b.namespace(),
        issuer,
    };
    let o = lower::certificate(&spec, &b.resources);
    b.add(o.id.clone(), o.body, o.deps, false, site.primary());
    CertHandle {
        name: spec.name.clone(),
        secret_name: spec.secret_name(),
        names: spec.names,
        id: o.id,
    }
}

fn register_routes(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "route",
        [
            "env: Environment",
            "host: &str",
            "target: Workload",
            "options: Map"
        ],
        "Routes HTTP(S) traffic for `host` through the ingress controller to a workload's Service\n\
         (or a service's endpoint). Options: `tls` (a certificate covering the host), `path`.\n\
         The ingress controller may then reach the workload through the network policies.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{ domain: \"demo.example.com\" });\nenv.namespace(\"demo\", #{});\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", port: 80, ready: http_get(\"/\", 80) });\nenv.route(\"demo.example.com\", web, #{ path: \"/\" });\n```",
        move |nc: NativeCallContext,
              _env: &mut EnvHandle,
              host: &str,
              target: Workload,
              options: Map|
              -> R<()> { route(&c, &c.site(&nc), host, target, options) }
    );
}

fn route(c: &Ctx, site: &Site, host: &str, target: Workload, options: Map) -> R<()> {
    if let Err(e) = validate::dns_name(host, false, false) {
        c.report1(
            site.error(Code::InvalidDnsName, host, e.0)
                .label("not a host name"),
        );
        return Ok(());
    }
    let mut o = Opts::new(
        format!("env.route(\"{host}\", ...)"),
        options,
        &["tls", "path"],
        site,
    );
    let tls = o.custom::<CertHandle>("tls", "a certificate");
    let path = o.str("path").unwrap_or_else(|| "/".to_owned());
    c.report(o.finish());
    let Some(service) = target.service.clone() else {
        return fail(format!(
            "`{}` has no Service to route to: give it a `port`",
            target.name
        ));
    };
    let Some(port) = target
        .route_port
        .or_else(|| target.ports.first().map(|(_, p)| *p))
    else {
        return fail(format!("`{}` has no port to route to", target.name));
    };
    // The Ingress names the Service's port; the pods (and their policies) listen on the
    // container's.
    let service_port = target
        .ports
        .iter()
        .find(|(_, p)| *p == port)
        .and_then(|(n, _)| target.service_ports.iter().find(|(sn, _)| sn == n))
        .map_or(port, |(_, p)| *p);
    let mut b = builder::lock(&c.b);
    if let Some(cert) = &tls {
        check_coverage(&mut b, site, host, cert);
    }
    let spec = RouteSpec {
        host: host.to_owned(),
        path,
        namespace: b.namespace(),
        ingress_class: b
            .env
            .as_ref()
            .and_then(|m| m.providers.get("ingress_class"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        service,
        port: service_port,
        target: target.id.clone(),
        tls: tls.map(|cert| RouteTls {
            secret_name: cert.secret_name,
            certificate: cert.id,
        }),
    };
    add_all(&mut b, vec![lower::route(&spec)], site.primary());
    b.exposed.insert(target.name.clone(), (target, port));
    Ok(())
}

/// A route's certificate must cover its host.
fn check_coverage(b: &mut Builder, site: &Site, host: &str, cert: &CertHandle) {
    if !cert.names.iter().any(|n| name_covers(n, host)) {
        b.report(site.error(
            Code::TlsHostNotCovered,
            host,
            format!(
                "route host `{host}` is not covered by certificate `{}` ({})",
                cert.name,
                cert.names.join(", ")
            ),
        ));
    }
}

/// The model's form of an environment variable's source.
pub(crate) fn env_source(v: &EnvValue) -> EnvSource {
    match v {
        EnvValue::Plain(s) => EnvSource::Plain(s.clone()),
        EnvValue::Ref(r) if r.kind == "ConfigMap" => EnvSource::ConfigMap {
            name: r.name.clone(),
            key: r.key.clone(),
        },
        EnvValue::Ref(r) => EnvSource::Secret {
            name: r.name.clone(),
            key: r.key.clone(),
        },
    }
}

/// A PostgreSQL service's connection variables, as libpq reads them (`PGHOST`…).
pub(crate) fn pg_connection(database: &Component) -> Vec<EnvVar> {
    let mut env = Vec::new();
    for (var, pg) in [
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("DATABASE", "PGDATABASE"),
    ] {
        if let Some((_, v)) = database.vars.iter().find(|(k, _)| k == var) {
            env.push((pg.to_owned(), env_source(v)));
        }
    }
    env
}

fn register_backups(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "backup",
        ["env: Environment", "database: Component", "options: Map"],
        "A scheduled backup of a PostgreSQL service to the environment's backup bucket: a CronJob\n\
         runs `pg_dump | gzip` and uploads `<prefix><database>-<UTC time>.sql.gz`; the bucket keeps\n\
         objects under the prefix for `keep_days`. Options: `schedule`, `keep_days`, `prefix`.\n\n\
         ```rhai\nimport \"postgres\" as postgres;\nlet env = environment(\"demo\", #{ backups: s3(#{ bucket: \"demo-backups\", region: \"us-east-1\" }) });\nenv.namespace(\"demo\", #{});\nlet db = postgres::instance(env, \"pg\", #{ storage: \"1Gi\" });\nenv.backup(db, #{ schedule: \"0 2 * * *\", keep_days: 7, prefix: \"postgres/\" });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, database: Component, options: Map| {
            backup(&c, &c.site(&nc), &database, options);
        }
    );
}

/// The options of `env.backup(...)`, before the environment's bucket is known.
struct BackupOptions {
    schedule: String,
    keep_days: i64,
    prefix: String,
    image: String,
    upload_image: String,
}

fn backup_options(c: &Ctx, site: &Site, database: &Component, options: Map) -> BackupOptions {
    let mut o = Opts::new(
        "env.backup(...)",
        options,
        &["schedule", "keep_days", "prefix", "image", "upload_image"],
        site,
    );
    let schedule = o.str("schedule").unwrap_or_else(|| "0 2 * * *".to_owned());
    if let Err(e) = validate::cron_schedule_runs(&schedule) {
        o.diagnostics.push(
            site.error(Code::InvalidSchedule, &schedule, e.0)
                .label("not a cron schedule that runs"),
        );
    }
    let keep_days = o.int("keep_days").unwrap_or(7);
    if keep_days < 1 {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &keep_days.to_string(),
            format!("keep_days must be at least 1, found {keep_days}"),
        ));
    }
    let prefix = o
        .str("prefix")
        .unwrap_or_else(|| format!("{}/", database.name));
    let image = o
        .str("image")
        .unwrap_or_else(|| "postgres:16-alpine".to_owned());
    let upload_image = o
        .str("upload_image")
        .unwrap_or_else(|| "amazon/aws-cli:2.22.35".to_owned());
    c.report(o.finish());
    BackupOptions {
        schedule,
        keep_days,
        prefix,
        image,
        upload_image,
    }
}

/// The environment's backup bucket (`backups: s3(...)`), when it has one.
fn backup_bucket(b: &Builder) -> Option<BackupBucket> {
    let settings = b.env.as_ref()?.providers.get("backups")?;
    let text = |k: &str| settings.get(k).and_then(Value::as_str).map(str::to_owned);
    let credentials = settings
        .get("access_key_id")
        .map(|access_key_id| BucketCredentials {
            secret: format!("{}-backup-s3", b.env_name()),
            access_key_id: access_key_id.clone(),
            secret_access_key: settings
                .get("secret_access_key")
                .cloned()
                .unwrap_or_default(),
        });
    Some(BackupBucket {
        name: text("bucket").unwrap_or_default(),
        region: text("region"),
        endpoint: text("endpoint"),
        credentials,
    })
}

fn backup(c: &Ctx, site: &Site, database: &Component, options: Map) {
    let opts = backup_options(c, site, database, options);
    let mut b = builder::lock(&c.b);
    let Some(bucket) = backup_bucket(&b) else {
        b.report(
            Diagnostic::error(
                Code::MissingSetting,
                "backups need a bucket: set `backups: s3(...)` in environment(...)",
            )
            .at(site.span.clone()),
        );
        return;
    };
    b.bucket_rules
        .entry(bucket.name.clone())
        .or_default()
        .insert(opts.prefix.clone(), opts.keep_days);
    let spec = BackupSpec {
        database: database.name.clone(),
        target_database: database
            .extra
            .get("database")
            .map(ToString::to_string)
            .unwrap_or_else(|| database.name.clone()),
        workload: database.workload.id.clone(),
        namespace: b.namespace(),
        schedule: opts.schedule,
        keep_days: opts.keep_days,
        prefix: opts.prefix,
        image: opts.image,
        upload_image: opts.upload_image,
        connection: pg_connection(database),
        bucket,
    };
    if let Some(secret) = lower::backup_credentials(&spec)
        && b.resources.iter().all(|r| r.id != secret.id)
    {
        add_all(&mut b, vec![secret], site.primary());
    }
    add_all(&mut b, lower::backup(&spec), site.primary());
    backup_peers(&mut b, &spec.namespace, database);
}

/// The backup and restore CronJobs connect to the database.
fn backup_peers(b: &mut Builder, ns: &str, database: &Component) {
    let mut db = database.workload.clone();
    db.ports.retain(|(_, p)| *p == database.port);
    if db.ports.is_empty() {
        db.ports.push(("postgres".to_owned(), database.port));
    }
    for job in [
        format!("{}-backup", database.name),
        format!("{}-restore", database.name),
    ] {
        let client = Workload {
            id: ResourceId::kube("CronJob", Some(ns), &job),
            name: job,
            service: None,
            ports: Vec::new(),
            service_ports: Vec::new(),
            route_port: None,
            pods: None,
        };
        crate::paths::add_peer(b, &client, db.clone());
    }
}

/// Why a Prometheus duration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A unit without a number before it.
    #[error("invalid duration \"{0}\": expected a number")]
    Number(String),
    /// A number without a known unit after it.
    #[error("invalid duration \"{0}\": units are ms, s, m, h, d, w, y")]
    Unit(String),
    /// Nothing at all.
    #[error("empty duration")]
    Empty,
}

/// Validates a Prometheus duration such as `5m` or `1h30m`.
pub fn prom_duration(s: &str) -> Result<(), DurationError> {
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Number(s.to_owned()));
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return Err(DurationError::Unit(s.to_owned())),
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err(DurationError::Empty)
    }
}

fn register_alerts(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "alert",
        ["env: Environment", "name: &str", "options: Map"],
        "An alert rule: `expr` (PromQL), `for` (how long it must hold), `severity`, `summary`,\n\
         `description`. Rules carry the environment's label, so routing keeps environments apart.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.alert(\"HighErrorRate\", #{ expr: \"rate(http_requests_total{code=~\\\"5..\\\"}[5m]) > 1\", \"for\": \"10m\", severity: \"warning\", summary: \"many 5xx\" });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, name: &str, options: Map| {
            alert(&c, &c.site(&nc), name, options);
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "alert_route",
        ["env: Environment", "notify: Setting"],
        "Routes the environment's alerts (and only them: they match on its `environment` label) to\n\
         a receiver: `slack(...)`, `email(...)` or `webhook(...)`. Their secrets (a Slack webhook,\n\
         an SMTP password) go into a Secret Alertmanager reads: `monitoring::stack` mounts it.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.alert_route(slack(\"#demo-alerts\"));\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, notify: Tagged| -> R<()> {
            let site = c.site(&nc);
            if notify.kind != "notify" {
                return fail("alert_route(...) takes slack(...), email(...) or webhook(...)");
            }
            let mut b = builder::lock(&c.b);
            let spec = AlertRouteSpec {
                environment: b.env_name(),
                receiver: notify.value,
            };
            add_all(&mut b, vec![lower::alert_route(&spec)], site.primary());
            Ok(())
        }
    );
}

fn register_scrape(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "scrape",
        ["env: Environment", "job: &str", "options: Map"],
        "Declares a scrape target of the environment's Prometheus (`monitoring::stack` reads them\n\
         from a file cairn writes at plan time, whatever the order of the script) and the metrics\n\
         it provides, so that `check` warns about an alert rule that queries a metric nobody\n\
         provides (`metric-not-scraped`). Options: `target` (a workload's port, such as\n\
         `db.port(\"metrics\")`, whose pods also get `prometheus.io/scrape`, `port` and `path`\n\
         annotations; or \"host:port\" strings), `path` (\"/metrics\"), `metrics` (the metric names, or\n\
         prefixes ending in `*`), `probe` (a module of a multi-target exporter, such as a blackbox\n\
         exporter's \"tls_connect\": the target is the exporter, which probes every TLS host of the\n\
         environment's routes on port 443, listed in `probes-<job>.json` beside the targets file;\n\
         the exporter's pods alone may reach port 443 outside the cluster).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", ports: #{ http: 80, metrics: 9113 }, ready: http_get(\"/\", 80) });\nenv.scrape(\"web\", #{ target: web.port(\"metrics\"), metrics: [\"nginx_up\", \"nginx_http_requests_total\"] });\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, job: &str, options: Map| {
            scrape(&c, &c.site(&nc), job, options);
        }
    );
}

/// Options of `env.scrape`.
pub(crate) const SCRAPE_KEYS: &[&str] = &["target", "path", "metrics", "probe"];

/// What `target` of `env.scrape` names: the targets file's `host:port`s, the workload whose
/// pods get the scrape annotations, and the scraper's paths.
struct ScrapeTargets {
    targets: Vec<String>,
    annotate: Option<(ResourceId, i64)>,
    scraped: Vec<crate::builder::ScrapeTarget>,
}

fn scrape_targets(o: &mut Opts, site: &Site, job: &str) -> ScrapeTargets {
    let mut targets = Vec::new();
    let mut annotate = None;
    let mut scraped = Vec::new();
    for t in o.list("target") {
        if let Some(w) = t.clone().try_cast::<Workload>() {
            let port = w.route_port.or_else(|| w.ports.first().map(|(_, p)| *p));
            match (&w.service, port) {
                (Some(service), Some(port)) => {
                    targets.push(format!("{service}:{port}"));
                    annotate = Some((w.id.clone(), port));
                    let mut to = w.clone();
                    to.ports.retain(|(_, p)| *p == port);
                    scraped.push(crate::builder::ScrapeTarget::Workload(to));
                }
                _ => o.diagnostics.push(site.error(
                    Code::InvalidOption,
                    "target",
                    format!("`{}` has no Service port to scrape", w.name),
                )),
            }
        } else if t.is_string() {
            let text = t.to_string();
            if let Some((host, port)) = text.rsplit_once(':')
                && let Ok(port) = port.parse::<i64>()
            {
                scraped.push(crate::builder::ScrapeTarget::Host(
                    crate::hosts::HostTarget {
                        host: host.to_owned(),
                        port,
                        why: format!("scrape job `{job}`"),
                        span: site.at(&text),
                    },
                ));
            }
            targets.push(text);
        } else {
            o.diagnostics.push(site.error(
                Code::InvalidOption,
                "target",
                format!(
                    "`target` of scrape job `{job}` must be a workload's port or \"host:port\", found {}",
                    crate::types::script_type(&t)
                ),
            ));
        }
    }
    ScrapeTargets {
        targets,
        annotate,
        scraped,
    }
}

/// Binding of `env.scrape`: a `ScrapeTarget` of the alerts provider, and the workload's pods
/// annotated for scraping.
fn scrape(c: &Ctx, site: &Site, job: &str, options: Map) {
    let mut o = Opts::new(
        format!("env.scrape(\"{job}\", ...)"),
        options,
        SCRAPE_KEYS,
        site,
    );
    let path = o.str("path").unwrap_or_else(|| "/metrics".to_owned());
    let metrics = o.str_list("metrics");
    if o.get("metrics").is_none() {
        o.req_str("metrics");
    }
    let ScrapeTargets {
        targets,
        annotate,
        scraped,
    } = scrape_targets(&mut o, site, job);
    let probe = o.str("probe");
    if probe.is_some() && (scraped.len() != 1 || targets.len() != 1) {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            "probe",
            format!("scrape job `{job}` probes the routes: its `target` must be one workload's port, the exporter"),
        ));
    }
    c.report(o.finish());
    let mut b = builder::lock(&c.b);
    if let (Some(_), Some(crate::builder::ScrapeTarget::Workload(w))) = (&probe, scraped.first()) {
        b.probers.push((w.clone(), site.primary()));
    }
    b.scrape_targets.extend(scraped);
    if let (None, Some((id, port))) = (&probe, annotate) {
        annotate_for_scraping(&mut b, &id, port, &path);
    }
    let env = b.env_name();
    let mut body = Value::obj([
        ("job", Value::str(job)),
        ("targets", Value::from(targets)),
        ("path", Value::str(path)),
        ("metrics", Value::from(metrics)),
    ]);
    if let Some(module) = probe {
        body.insert("probe", Value::str(module));
    }
    let id = ResourceId::other(Provider::Alerts, "ScrapeTarget", Some(&env), job);
    b.add(id, body, Vec::new(), false, site.primary());
}

/// The `prometheus.io/scrape`, `port` and `path` annotations on a declared workload's pods.
fn annotate_for_scraping(b: &mut Builder, id: &ResourceId, port: i64, path: &str) {
    let Some(r) = b.resources.iter_mut().find(|r| &r.id == id) else {
        return;
    };
    let Some(mut meta) = r.body.pointer(&["spec", "template", "metadata"]).cloned() else {
        return;
    };
    let mut annotations = meta
        .get("annotations")
        .cloned()
        .unwrap_or_else(Value::object);
    annotations.insert("prometheus.io/scrape", Value::str("true"));
    annotations.insert("prometheus.io/port", Value::str(port.to_string()));
    annotations.insert("prometheus.io/path", Value::str(path));
    meta.insert("annotations", annotations);
    let mut spec = r.body.get("spec").cloned().unwrap_or_default();
    let mut template = spec.get("template").cloned().unwrap_or_default();
    template.insert("metadata", meta);
    spec.insert("template", template);
    r.body.insert("spec", spec);
}

fn register_receivers(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "slack",
        ["options: Map"],
        "Alerts posted to a Slack channel through an incoming webhook. Options: `channel`\n\
         (\"#staging-alerts\"), `webhook` (the incoming webhook's URL: `secret_env(...)`; it is\n\
         kept in a Secret that Alertmanager reads, never in its configuration), `send_resolved`\n\
         (true by default). `slack(\"#channel\")` alone needs an Alertmanager that has a global\n\
         `slack_api_url`.\n\n\
         ```rhai\nlet notify = slack(#{ channel: \"#staging-alerts\", webhook: sensitive(\"https://hooks.slack.com/services/T0/B0/x\") });\n```",
        move |nc: NativeCallContext, options: Map| -> Tagged {
            receiver(&c, &c.site(&nc), "slack", options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "email",
        ["options: Map"],
        "Alerts sent by e-mail. Options: `to`, `from`, `smarthost` (\"smtp.example.com:587\"),\n\
         `username`, `password` (sensitive: kept in a Secret that Alertmanager reads),\n\
         `send_resolved` (true by default).\n\n\
         ```rhai\nlet notify = email(#{ to: \"oncall@example.com\", from: \"alerts@example.com\", smarthost: \"smtp.example.com:587\", username: \"alerts\", password: sensitive(\"p\") });\n```",
        move |nc: NativeCallContext, options: Map| -> Tagged {
            receiver(&c, &c.site(&nc), "email", options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "webhook",
        ["options: Map"],
        "Alerts posted to a webhook. Options: `url` (plain or sensitive; a sensitive URL is kept in\n\
         a Secret that Alertmanager reads), `send_resolved` (true by default).\n\n\
         ```rhai\nlet notify = webhook(#{ url: sensitive(\"https://hooks.example.com/T0/B0/x\") });\n```",
        move |nc: NativeCallContext, options: Map| -> Tagged {
            receiver(&c, &c.site(&nc), "webhook", options)
        }
    );
}

/// Options of `slack`, `email` and `webhook` (#{ ... }) and the key each becomes in the
/// receiver's settings; the first is required (and a Slack `webhook`).
fn receiver_keys(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "slack" => &[
            ("channel", "slack_channel"),
            ("webhook", "slack_api_url"),
            ("send_resolved", "send_resolved"),
        ],
        "email" => &[
            ("to", "email"),
            ("from", "email_from"),
            ("smarthost", "email_smarthost"),
            ("username", "email_username"),
            ("password", "email_password"),
            ("send_resolved", "send_resolved"),
        ],
        _ => &[("url", "webhook_url"), ("send_resolved", "send_resolved")],
    }
}

pub(crate) const SLACK_KEYS: &[&str] = &["channel", "webhook", "send_resolved"];
pub(crate) const EMAIL_KEYS: &[&str] = &[
    "to",
    "from",
    "smarthost",
    "username",
    "password",
    "send_resolved",
];
pub(crate) const WEBHOOK_KEYS: &[&str] = &["url", "send_resolved"];

/// Binding of `slack(#{...})`, `email(#{...})` and `webhook(#{...})`: the receiver's settings,
/// secrets kept sensitive (the lowering puts them in a Secret).
fn receiver(c: &Ctx, site: &Site, kind: &str, options: Map) -> Tagged {
    let known = match kind {
        "slack" => SLACK_KEYS,
        "email" => EMAIL_KEYS,
        _ => WEBHOOK_KEYS,
    };
    let mut o = Opts::new(format!("{kind}(...)"), options, known, site);
    let mut value = Value::object();
    let secret_keys = ["webhook", "password", "url"];
    for (i, (option, key)) in receiver_keys(kind).iter().enumerate() {
        if *option == "send_resolved" {
            if let Some(b) = o.bool(option) {
                value.insert(*key, Value::Bool(b));
            }
            continue;
        }
        let given = if secret_keys.contains(option) {
            secret_or_text(&mut o, option)
        } else {
            o.str(option).map(Value::str)
        };
        match given {
            Some(v) => value.insert(*key, v),
            None if i == 0 || (kind == "slack" && *option == "webhook") => {
                o.req_str(option);
            }
            None => {}
        }
    }
    c.report(o.finish());
    Tagged {
        kind: "notify",
        value,
    }
}

/// A sensitive value (`secret_env(...)`, `sensitive(...)`) or plain text.
fn secret_or_text(o: &mut Opts, key: &str) -> Option<Value> {
    let v = o.get(key)?;
    if let Some(s) = v.clone().try_cast::<crate::types::SensitiveStr>() {
        return Some(Value::Sensitive(s.0));
    }
    o.str(key).map(Value::str)
}

fn alert(c: &Ctx, site: &Site, name: &str, options: Map) {
    let mut o = Opts::new(
        format!("env.alert(\"{name}\", ...)"),
        options,
        &[
            "expr",
            "for",
            "severity",
            "summary",
            "description",
            "labels",
        ],
        site,
    );
    let expr = o.req_str("expr").unwrap_or_default();
    if !expr.is_empty()
        && let Err(e) = promql_parser::parser::parse(&expr)
    {
        let first = e.lines().next().unwrap_or_default().to_owned();
        o.diagnostics.push(
            site.error(
                Code::InvalidPromql,
                &expr,
                format!("invalid PromQL in alert `{name}`: {first}"),
            )
            .label("not a PromQL expression"),
        );
    }
    let r#for = o.str("for").unwrap_or_else(|| "5m".to_owned());
    if let Err(e) = prom_duration(&r#for) {
        o.diagnostics
            .push(site.error(Code::InvalidDuration, &r#for, e.to_string()));
    }
    let severity = o.str("severity").unwrap_or_else(|| "warning".to_owned());
    let summary = o.str("summary").unwrap_or_else(|| name.to_owned());
    let description = o.str("description");
    c.report(o.finish());
    let mut b = builder::lock(&c.b);
    let spec = AlertSpec {
        name: name.to_owned(),
        environment: b.env_name(),
        expr,
        r#for,
        severity,
        summary,
        description,
    };
    add_all(&mut b, vec![lower::alert(&spec)], site.primary());
}

/// Metrics Prometheus records itself, whatever it scrapes.
const PROMETHEUS_OWN: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// The metric names a PromQL expression queries; none when it does not parse (that is
/// reported where the rule is declared).
pub(crate) fn queried_metrics(expr: &str) -> Vec<String> {
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::VectorSelector(vs) => out.extend(vs.name.clone()),
            Expr::MatrixSelector(ms) => out.extend(ms.vs.name.clone()),
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(e) = promql_parser::parser::parse(expr) {
        walk(&e, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a scrape target's `metrics` (names, or prefixes ending in `*`) include `metric`.
fn provides(metrics: &[Value], metric: &str) -> bool {
    metrics
        .iter()
        .filter_map(Value::as_str)
        .any(|m| match m.strip_suffix('*') {
            Some(prefix) => metric.starts_with(prefix),
            None => m == metric,
        })
}

/// Records the metrics the exporters of a plugin provide: the defaults of its functions'
/// `metric_names`.
pub(crate) fn learn_metrics(ctx: &Ctx, manifest: &crate::manifest::Manifest) {
    let mut b = builder::lock(&ctx.b);
    for f in manifest.functions.values() {
        if let Some(toml::Value::Array(names)) = f
            .params
            .get("metric_names")
            .and_then(|p| p.default.as_ref())
        {
            b.known_metrics
                .extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
        }
    }
}

/// Warns (`metric-not-scraped`) about each alert rule that queries a metric some exporter
/// provides (the imported plugins' `metric_names`, or a declared scrape target's) when no
/// scrape target of the script provides it: an exporter that is not run (`metrics: true`
/// missing) makes the rule never fire. Only when the script declares scrape targets (a
/// Prometheus of its own, `monitoring::stack`); otherwise what is scraped is decided outside
/// the script. Metrics no known exporter provides are not judged.
pub(crate) fn unscraped_metrics(b: &mut Builder) {
    let of = |b: &Builder, kind: &str| -> Vec<cairn_model::Resource> {
        b.resources
            .iter()
            .filter(|r| r.id.provider == Provider::Alerts && r.id.kind == kind)
            .cloned()
            .collect()
    };
    let targets = of(b, "ScrapeTarget");
    if targets.is_empty() {
        return;
    }
    let provided: Vec<Value> = targets
        .iter()
        .flat_map(|r| {
            r.body
                .get("metrics")
                .map(Value::as_array)
                .unwrap_or_default()
        })
        .cloned()
        .collect();
    let known: Vec<Value> = b
        .known_metrics
        .iter()
        .map(|m| Value::str(m.as_str()))
        .collect();
    for rule in of(b, "AlertRule") {
        let expr = rule.body.get("expr").and_then(Value::as_str).unwrap_or("");
        let missing: Vec<String> = queried_metrics(expr)
            .into_iter()
            .filter(|m| !PROMETHEUS_OWN.contains(&m.as_str()))
            .filter(|m| provides(&known, m) && !provides(&provided, m))
            .map(|m| format!("`{m}`"))
            .collect();
        if missing.is_empty() {
            continue;
        }
        b.report(
            Diagnostic::warning(
                Code::MetricNotScraped,
                format!(
                    "alert `{}` queries {}, which no scrape target of the environment provides",
                    rule.id.name,
                    missing.join(", ")
                ),
            )
            .at(rule.span.clone())
            .label("never fires")
            .help("run the exporter that provides it (`metrics: true` on a postgres, redis, rabbitmq or cockroachdb component) or declare it with `env.scrape(...)`"),
        );
    }
}
