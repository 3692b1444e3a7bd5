//! Routes, DNS records, certificates, backups and alerts.

use cairn_model::Code;
use cairn_model::validate::{self, name_covers};
use cairn_model::{Diagnostic, Provider, ResourceId, Value};
use rhai::{Array, Dynamic, Engine, Map, NativeCallContext};

use crate::api::{Ctx, R, fail};
use crate::builder;
use crate::docs::Docs;
use crate::export;
use crate::k8s::{self, Container};
use crate::opts::{Opts, Site};
use crate::types::{CertHandle, Component, EnvHandle, EnvValue, KeyRef, Tagged, Workload};

pub fn register(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    register_dns(engine, docs, ctx);
    register_routes(engine, docs, ctx);
    register_backups(engine, docs, ctx);
    register_alerts(engine, docs, ctx);
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

fn add_record(ctx: &Ctx, site: &Site, name: &str, rtype: &str, values: Vec<Value>, ttl: i64) {
    let Some((zone, fqdn)) = record_name(ctx, site, name) else {
        return;
    };
    let id = ResourceId::other(
        Provider::Dns,
        "DnsRecord",
        Some(&zone),
        &format!("{fqdn} {rtype}"),
    );
    let body = Value::obj([
        ("zone", Value::str(zone.as_str())),
        ("name", Value::str(fqdn.as_str())),
        ("type", Value::str(rtype)),
        ("ttl", Value::Int(ttl)),
        ("values", Value::Array(values)),
    ]);
    builder::lock(&ctx.b).add(id, body, Vec::new(), false, site.at(name));
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
                    let site = c.site(&nc);
                    let valid = match rtype {
                        "A" => validate::ipv4(value).map(|_| ()),
                        "AAAA" => validate::ipv6(value).map(|_| ()),
                        "CNAME" => validate::dns_name(value, false, true),
                        _ => Ok(()),
                    };
                    if let Err(e) = valid {
                        c.report1(site.error(
                            if rtype == "CNAME" {
                                Code::InvalidDnsName
                            } else {
                                Code::InvalidAddress
                            },
                            value,
                            e.0,
                        ));
                        return;
                    }
                    for name in names_of(&names) {
                        add_record(&c, &site, &name, rtype, vec![Value::str(value)], 300);
                    }
                },
            );
        docs.0.push(crate::docs::FunctionDoc {
            name: fname,
            params: &["env: Environment", "names: Array | &str", "value: &str"],
            doc,
        });
    }
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
            let site = c.site(&nc);
            let mut o = Opts::new(
                "env.dns_record(...)",
                options,
                &["name", "type", "values", "ttl"],
                &site,
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
                        o.diagnostics.push(site.error(Code::InvalidRecord, v, e));
                    }
                }
            }
            c.report(o.finish());
            if let (Some(name), Some(rtype)) = (name, rtype) {
                add_record(
                    &c,
                    &site,
                    &name,
                    &rtype,
                    values.into_iter().map(Value::str).collect(),
                    ttl,
                );
            }
        }
    );
}

/// Validates the text of one record value of type `rtype`.
pub fn record_value(rtype: &str, v: &str) -> Result<(), String> {
    let fields: Vec<&str> = v.split_whitespace().collect();
    let num = |s: &str, max: u32| s.parse::<u32>().ok().filter(|n| *n <= max).is_some();
    let ok = match rtype {
        "A" => validate::ipv4(v).is_ok(),
        "AAAA" => validate::ipv6(v).is_ok(),
        "CNAME" => validate::dns_name(v, false, true).is_ok(),
        "MX" => {
            fields.len() == 2
                && num(fields[0], 65535)
                && validate::dns_name(fields[1], false, false).is_ok()
        }
        "SRV" => {
            fields.len() == 4
                && fields[..3].iter().all(|f| num(f, 65535))
                && validate::dns_name(fields[3], false, false).is_ok()
        }
        "CAA" => {
            fields.len() >= 3
                && num(fields[0], 255)
                && matches!(fields[1], "issue" | "issuewild" | "iodef")
        }
        _ => !v.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {rtype} record value \"{v}\""))
    }
}

fn register_routes(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
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
              -> CertHandle {
            let site = c.site(&nc);
            crate::api::check_name(&c, &site, "certificate", name, false);
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
            let ns = b.namespace();
            let acme = b
                .env
                .as_ref()
                .and_then(|m| m.providers.get("acme"))
                .cloned();
            if acme.is_none() {
                b.report(Diagnostic::error(Code::MissingSetting, format!("certificate `{name}` needs an ACME issuer: set `acme: letsencrypt(...)` in environment(...)")).at(site.span.clone()));
            }
            let secret_name = format!("{name}-tls");
            let mut body = Value::obj([
                ("names", Value::from(names.clone())),
                ("namespace", Value::str(ns.as_str())),
                ("secret_name", Value::str(secret_name.as_str())),
                ("renew_before_days", Value::Int(30)),
                ("key_algorithm", Value::str("ecdsa-p256")),
            ]);
            if let Some(acme) = acme {
                body.insert("issuer", acme);
            }
            let id = ResourceId::other(Provider::Acme, "Certificate", Some(&ns), name);
            // Issuance needs the names' DNS records in place (A records → challenge → certificate).
            let deps: Vec<ResourceId> = b
                .resources
                .iter()
                .filter(|r| r.id.provider == Provider::Dns)
                .filter(|r| {
                    r.body
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|rn| {
                            names
                                .iter()
                                .any(|n| n.eq_ignore_ascii_case(rn) || name_covers(n, rn))
                        })
                })
                .map(|r| r.id.clone())
                .collect();
            let mut deps = deps;
            deps.push(ResourceId::kube("Namespace", None, &ns));
            b.add(id.clone(), body, deps, false, site.primary());
            CertHandle {
                name: name.to_owned(),
                secret_name,
                names,
                id,
            }
        }
    );
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
              -> R<()> {
            let site = c.site(&nc);
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
                &site,
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
            let mut b = builder::lock(&c.b);
            let ns = b.namespace();
            let class = b
                .env
                .as_ref()
                .and_then(|m| m.providers.get("ingress_class"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut spec = Value::obj([(
                "rules",
                Value::Array(vec![Value::obj([
                    ("host", Value::str(host)),
                    (
                        "http",
                        Value::obj([(
                            "paths",
                            Value::Array(vec![Value::obj([
                                ("path", Value::str(path.as_str())),
                                ("pathType", Value::str("Prefix")),
                                (
                                    "backend",
                                    Value::obj([(
                                        "service",
                                        Value::obj([
                                            ("name", Value::str(service.as_str())),
                                            ("port", Value::obj([("number", Value::Int(port))])),
                                        ]),
                                    )]),
                                ),
                            ])]),
                        )]),
                    ),
                ])]),
            )]);
            if let Some(class) = class {
                spec.insert("ingressClassName", Value::str(class));
            }
            let mut deps = vec![
                ResourceId::kube("Service", Some(&ns), &service),
                target.id.clone(),
            ];
            if let Some(cert) = &tls {
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
                spec.insert(
                    "tls",
                    Value::Array(vec![Value::obj([
                        ("hosts", Value::from(vec![host])),
                        ("secretName", Value::str(cert.secret_name.as_str())),
                    ])]),
                );
                deps.push(cert.id.clone());
            }
            let mut body = k8s::object("networking.k8s.io/v1", "Ingress", host, Some(&ns));
            body.insert("spec", spec);
            b.add(
                ResourceId::kube("Ingress", Some(&ns), host),
                body,
                deps,
                false,
                site.primary(),
            );
            b.exposed
                .insert(target.name.clone(), (target.clone(), port));
            Ok(())
        }
    );
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
            let site = c.site(&nc);
            let mut o = Opts::new(
                "env.backup(...)",
                options,
                &["schedule", "keep_days", "prefix", "image", "upload_image"],
                &site,
            );
            let schedule = o.str("schedule").unwrap_or_else(|| "0 2 * * *".to_owned());
            if let Err(e) = validate::cron_schedule(&schedule) {
                o.diagnostics.push(
                    site.error(Code::InvalidSchedule, &schedule, e.0)
                        .label("not a cron schedule"),
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
            let mut b = builder::lock(&c.b);
            let ns = b.namespace();
            let Some(settings) = b
                .env
                .as_ref()
                .and_then(|m| m.providers.get("backups"))
                .cloned()
            else {
                b.report(
                    Diagnostic::error(
                        Code::MissingSetting,
                        "backups need a bucket: set `backups: s3(...)` in environment(...)",
                    )
                    .at(site.span.clone()),
                );
                return;
            };
            let bucket = settings
                .get("bucket")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            b.bucket_rules
                .entry(bucket.clone())
                .or_default()
                .insert(prefix.clone(), keep_days);
            let mut env: Vec<(String, EnvValue)> = Vec::new();
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
            env.push(("S3_BUCKET".to_owned(), EnvValue::Plain(bucket.clone())));
            env.push(("S3_PREFIX".to_owned(), EnvValue::Plain(prefix.clone())));
            if let Some(region) = settings.get("region").and_then(Value::as_str) {
                env.push((
                    "AWS_DEFAULT_REGION".to_owned(),
                    EnvValue::Plain(region.to_owned()),
                ));
            }
            if let Some(endpoint) = settings.get("endpoint").and_then(Value::as_str) {
                env.push((
                    "S3_ENDPOINT".to_owned(),
                    EnvValue::Plain(endpoint.to_owned()),
                ));
            }
            let mut deps = vec![
                ResourceId::kube("Namespace", None, &ns),
                database.workload.id.clone(),
                ResourceId::other(Provider::S3, "Bucket", None, &bucket),
            ];
            if settings.get("access_key_id").is_some() {
                let secret = format!("{}-backup-s3", b.env_name());
                let sid = ResourceId::kube("Secret", Some(&ns), &secret);
                if b.resources.iter().all(|r| r.id != sid) {
                    let mut body = k8s::object("v1", "Secret", &secret, Some(&ns));
                    body.insert("type", Value::str("Opaque"));
                    body.insert(
                        "stringData",
                        Value::obj([
                            (
                                "AWS_ACCESS_KEY_ID",
                                settings.get("access_key_id").cloned().unwrap_or_default(),
                            ),
                            (
                                "AWS_SECRET_ACCESS_KEY",
                                settings
                                    .get("secret_access_key")
                                    .cloned()
                                    .unwrap_or_default(),
                            ),
                        ]),
                    );
                    b.add(
                        sid.clone(),
                        body,
                        vec![ResourceId::kube("Namespace", None, &ns)],
                        false,
                        site.primary(),
                    );
                }
                for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                    env.push((
                        key.to_owned(),
                        EnvValue::Ref(KeyRef {
                            kind: "Secret",
                            name: secret.clone(),
                            key: key.to_owned(),
                        }),
                    ));
                }
                deps.push(sid);
            }
            for (_, v) in &env {
                if let EnvValue::Ref(r) = v {
                    deps.push(ResourceId::kube(r.kind, Some(&ns), &r.name));
                }
            }
            deps.sort();
            deps.dedup();
            let mount = vec![("backup".to_owned(), "/backup".to_owned())];
            let dump = Container {
                name: "dump".to_owned(),
                image,
                command: vec!["sh".into(), "-c".into(), DUMP_SCRIPT.into()],
                env: env.clone(),
                mounts: mount.clone(),
                ..Container::default()
            };
            let upload = Container {
                name: "upload".to_owned(),
                image: upload_image,
                command: vec!["sh".into(), "-c".into(), UPLOAD_SCRIPT.into()],
                env,
                mounts: mount,
                ..Container::default()
            };
            let name = format!("{}-backup", database.name);
            let mut template = k8s::pod_template(
                &name,
                vec![k8s::container(&upload)],
                vec![Value::obj([
                    ("name", Value::str("backup")),
                    ("emptyDir", Value::object()),
                ])],
                &[],
                Some("Never"),
            );
            if let Some(Value::Object(spec)) = template.get("spec").cloned() {
                let mut spec = Value::Object(spec);
                spec.insert("initContainers", Value::Array(vec![k8s::container(&dump)]));
                template.insert("spec", spec);
            }
            let mut body = k8s::object("batch/v1", "CronJob", &name, Some(&ns));
            body.insert(
                "spec",
                Value::obj([
                    ("schedule", Value::str(schedule)),
                    ("concurrencyPolicy", Value::str("Forbid")),
                    ("successfulJobsHistoryLimit", Value::Int(3)),
                    ("failedJobsHistoryLimit", Value::Int(3)),
                    (
                        "jobTemplate",
                        Value::obj([(
                            "spec",
                            Value::obj([("backoffLimit", Value::Int(2)), ("template", template)]),
                        )]),
                    ),
                ]),
            );
            let mut annotations = Value::obj([
                ("cairn.dev/backup-bucket", Value::str(bucket)),
                ("cairn.dev/backup-prefix", Value::str(prefix)),
                (
                    "cairn.dev/backup-keep-days",
                    Value::str(keep_days.to_string()),
                ),
            ]);
            if let Some(Value::Object(meta)) = body.get("metadata").cloned() {
                let mut meta = Value::Object(meta);
                meta.insert("annotations", std::mem::take(&mut annotations));
                body.insert("metadata", meta);
            }
            b.add(
                ResourceId::kube("CronJob", Some(&ns), &name),
                body,
                deps.clone(),
                false,
                site.primary(),
            );
            // The restore template: a suspended CronJob to start by hand
            // (`kubectl create job restore-1 --from=cronjob/<db>-restore`); which backup and
            // which database come from its ConfigMap (`latest` = the newest under the prefix).
            let restore = format!("{}-restore", database.name);
            let database_name = database
                .extra
                .get("database")
                .map(ToString::to_string)
                .unwrap_or_else(|| database.name.clone());
            let mut choice = k8s::object("v1", "ConfigMap", &restore, Some(&ns));
            choice.insert(
                "data",
                Value::obj([
                    ("BACKUP_KEY", Value::str("latest")),
                    ("TARGET_DATABASE", Value::str(database_name)),
                ]),
            );
            b.add(
                ResourceId::kube("ConfigMap", Some(&ns), &restore),
                choice,
                vec![ResourceId::kube("Namespace", None, &ns)],
                false,
                site.primary(),
            );
            let mut restore_env = upload.env.clone();
            for key in ["BACKUP_KEY", "TARGET_DATABASE"] {
                restore_env.push((
                    key.to_owned(),
                    EnvValue::Ref(KeyRef {
                        kind: "ConfigMap",
                        name: restore.clone(),
                        key: key.to_owned(),
                    }),
                ));
            }
            let restore_mount = vec![("restore".to_owned(), "/restore".to_owned())];
            let download = Container {
                name: "download".to_owned(),
                image: upload.image.clone(),
                command: vec!["sh".into(), "-c".into(), DOWNLOAD_SCRIPT.into()],
                // The download step needs the bucket, not the database's credentials.
                env: restore_env
                    .iter()
                    .filter(|(k, _)| !k.starts_with("PG") && k != "TARGET_DATABASE")
                    .cloned()
                    .collect(),
                mounts: restore_mount.clone(),
                ..Container::default()
            };
            let load = Container {
                name: "restore".to_owned(),
                image: dump.image.clone(),
                command: vec!["sh".into(), "-c".into(), RESTORE_SCRIPT.into()],
                env: restore_env,
                mounts: restore_mount,
                ..Container::default()
            };
            let mut template = k8s::pod_template(
                &restore,
                vec![k8s::container(&load)],
                vec![Value::obj([
                    ("name", Value::str("restore")),
                    ("emptyDir", Value::object()),
                ])],
                &[],
                Some("Never"),
            );
            if let Some(Value::Object(spec)) = template.get("spec").cloned() {
                let mut spec = Value::Object(spec);
                spec.insert(
                    "initContainers",
                    Value::Array(vec![k8s::container(&download)]),
                );
                template.insert("spec", spec);
            }
            let mut body = k8s::object("batch/v1", "CronJob", &restore, Some(&ns));
            body.insert(
                "spec",
                Value::obj([
                    // Never scheduled: February 31st. Started by hand from this template.
                    ("schedule", Value::str("0 0 31 2 *")),
                    ("suspend", Value::Bool(true)),
                    ("concurrencyPolicy", Value::str("Forbid")),
                    (
                        "jobTemplate",
                        Value::obj([(
                            "spec",
                            Value::obj([("backoffLimit", Value::Int(0)), ("template", template)]),
                        )]),
                    ),
                ]),
            );
            let mut restore_deps = deps;
            restore_deps.push(ResourceId::kube("ConfigMap", Some(&ns), &restore));
            b.add(
                ResourceId::kube("CronJob", Some(&ns), &restore),
                body,
                restore_deps,
                false,
                site.primary(),
            );
        }
    );
}

/// The dump step of a backup: writes the compressed dump and the object key it goes to.
const DUMP_SCRIPT: &str = include_str!("scripts/backup-dump.sh");
/// The upload step of a backup.
const UPLOAD_SCRIPT: &str = include_str!("scripts/backup-upload.sh");

/// The download step of a restore: the chosen backup (`latest`: the newest under the prefix).
const DOWNLOAD_SCRIPT: &str = include_str!("scripts/restore-download.sh");
/// The load step of a restore, into the target database.
const RESTORE_SCRIPT: &str = include_str!("scripts/restore-load.sh");

/// Validates a Prometheus duration such as `5m` or `1h30m`.
pub fn prom_duration(s: &str) -> Result<(), String> {
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration \"{s}\": expected a number"));
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => {
                return Err(format!(
                    "invalid duration \"{s}\": units are ms, s, m, h, d, w, y"
                ));
            }
        }
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("empty duration".to_owned())
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
            let site = c.site(&nc);
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
                &site,
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
                    .push(site.error(Code::InvalidDuration, &r#for, e));
            }
            let severity = o.str("severity").unwrap_or_else(|| "warning".to_owned());
            let summary = o.str("summary").unwrap_or_else(|| name.to_owned());
            let description = o.str("description");
            c.report(o.finish());
            let mut b = builder::lock(&c.b);
            let env = b.env_name();
            let mut annotations = Value::obj([("summary", Value::str(summary))]);
            if let Some(d) = description {
                annotations.insert("description", Value::str(d));
            }
            let body = Value::obj([
                ("alert", Value::str(name)),
                ("expr", Value::str(expr)),
                ("for", Value::str(r#for)),
                (
                    "labels",
                    Value::obj([
                        ("severity", Value::str(severity)),
                        ("environment", Value::str(env.as_str())),
                    ]),
                ),
                ("annotations", annotations),
            ]);
            b.add(
                ResourceId::other(Provider::Alerts, "AlertRule", Some(&env), name),
                body,
                Vec::new(),
                false,
                site.primary(),
            );
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "alert_route",
        ["env: Environment", "notify: Setting"],
        "Routes the environment's alerts (and only them: they match on its `environment` label) to\n\
         a receiver: `slack(...)`, `email(...)` or `webhook(...)`.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.alert_route(slack(\"#demo-alerts\"));\n```",
        move |nc: NativeCallContext, _env: &mut EnvHandle, notify: Tagged| -> R<()> {
            let site = c.site(&nc);
            if notify.kind != "notify" {
                return fail("alert_route(...) takes slack(...), email(...) or webhook(...)");
            }
            let mut b = builder::lock(&c.b);
            let env = b.env_name();
            let body = Value::obj([
                ("receiver", notify.value),
                (
                    "matchers",
                    Value::obj([("environment", Value::str(env.as_str()))]),
                ),
            ]);
            b.add(
                ResourceId::other(Provider::Alerts, "AlertRoute", Some(&env), "default"),
                body,
                Vec::new(),
                false,
                site.primary(),
            );
            Ok(())
        }
    );
}
