//! The sandboxed engine and the functions scripts call.
//!
//! Every function records what it declares into the evaluation's [`Builder`] and reports
//! problems as diagnostics at the script span of the call, so one run finds every problem.

use cairn_model::Code;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cairn_model::spec::workloads::BucketSpec;
use cairn_model::validate::{self, Quantity};
use cairn_model::{Diagnostic, EnvironmentMeta, Sensitive, SensitivePart, Value};
use rhai::packages::{
    BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, ParseError, Position};

use crate::builder::{self, Builder, Shared};
use crate::convert;
use crate::docs::Docs;
use crate::export;
use crate::opts::{Opts, Site};
use crate::params::Manifests;
use crate::project::PluginSearch;
use crate::resolver::PluginResolver;
use crate::sources::Sources;
use crate::types::{
    CertHandle, Component, ConfigHandle, EnvHandle, EnvSet, EnvValue, KeyRef, SecretHandle,
    SensitiveStr, Tagged, VolumeHandle, Workload,
};
use crate::{Limits, workloads};

/// What every registered function shares: the builder and the sources.
#[derive(Clone)]
pub struct Ctx {
    pub b: Shared,
    pub sources: Sources,
    /// The display name of the script being evaluated (not of a plugin).
    pub main: String,
}

/// The result type of script-facing functions.
pub type R<T> = Result<T, Box<EvalAltResult>>;

impl Ctx {
    /// A context not tied to an evaluation (for listing docs).
    pub fn detached() -> Self {
        let sources = Sources::default();
        Self {
            b: Arc::new(Mutex::new(Builder::new(BTreeMap::new()))),
            sources,
            main: String::new(),
        }
    }

    /// Where the current call is, and, when it is made inside a plugin, the call in the
    /// script that led there.
    pub fn site(&self, nc: &NativeCallContext) -> Site {
        let global = nc.global_runtime_state();
        let source = global.source().unwrap_or_default();
        let caller = if source == self.main || self.main.is_empty() {
            None
        } else {
            // A frame's source is the called function's; its position is in the caller's
            // code: the script's call is the last frame called from the script's code.
            let stack = global.debugger().call_stack();
            let main = Some(self.main.as_str());
            let called_from_main =
                |i: usize| i == 0 || stack.get(i - 1).and_then(|f| f.source.as_deref()) == main;
            (0..stack.len())
                .rev()
                .find(|i| called_from_main(*i))
                .and_then(|i| self.sources.span(&self.main, stack[i].pos))
        };
        Site {
            span: self.sources.span(source, nc.call_position()),
            caller,
            sources: self.sources.clone(),
        }
    }

    /// Records diagnostics.
    pub fn report(&self, diagnostics: Vec<Diagnostic>) {
        builder::lock(&self.b).diagnostics.extend(diagnostics);
    }

    /// Records one diagnostic.
    pub fn report1(&self, diagnostic: Diagnostic) {
        builder::lock(&self.b).diagnostics.push(diagnostic);
    }
}

/// A runtime error at the current call.
pub fn fail<T>(message: impl Into<String>) -> R<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        Position::NONE,
    )))
}

/// Builds the sandboxed engine of one evaluation.
pub fn engine(
    shared: &Shared,
    sources: &Sources,
    main: &str,
    plugins: &PluginSearch,
    limits: &Limits,
) -> Engine {
    let mut engine = Engine::new_raw();
    for package in [
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(package);
    }
    rhai::packages::ArithmeticPackage::new().register_into_engine(&mut engine);
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_modules(64);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.set_fail_on_invalid_map_property(false);
    let ctx = Ctx {
        b: shared.clone(),
        sources: sources.clone(),
        main: main.to_owned(),
    };
    // The debugger interface keeps the call stack, so that a resource declared inside a plugin
    // is attributed to the script line that called the plugin. It never stops the script.
    #[allow(deprecated)]
    engine.register_debugger(
        |_, debugger| debugger,
        |_, _, _, _, _| Ok(rhai::debugger::DebuggerCommand::Continue),
    );
    {
        // `print` and `debug` never reach the terminal: they become notes in the log.
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
    }
    let manifests = Manifests::default();
    engine.set_module_resolver(PluginResolver::new(plugins.clone(), &ctx, &manifests));
    crate::params::register(&mut engine, &ctx, &manifests);
    let mut docs = Docs::default();
    register_all(&mut engine, &mut docs, &ctx);
    engine
}

/// Registers every stdlib function and type.
pub fn register_all(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    engine
        .register_type_with_name::<EnvHandle>("Environment")
        .register_type_with_name::<SecretHandle>("Secret")
        .register_type_with_name::<ConfigHandle>("ConfigMap")
        .register_type_with_name::<KeyRef>("KeyRef")
        .register_type_with_name::<SensitiveStr>("Sensitive")
        .register_type_with_name::<Workload>("Workload")
        .register_type_with_name::<VolumeHandle>("Volume")
        .register_type_with_name::<CertHandle>("Certificate")
        .register_type_with_name::<EnvSet>("EnvSet")
        .register_type_with_name::<Component>("Component")
        .register_type_with_name::<Tagged>("Setting");
    register_values(engine, docs, ctx);
    register_generated_values(engine, docs, ctx);
    register_cluster_settings(engine, docs);
    register_dns_settings(engine, docs, ctx);
    register_acme_settings(engine, docs, ctx);
    register_bucket_settings(engine, docs, ctx);
    register_notify_settings(engine, docs);
    register_probes(engine, docs);
    register_environment(engine, docs, ctx);
    register_getters(engine);
    register_key_refs(engine, docs);
    register_service_env(engine, docs);
    register_endpoints(engine, docs);
    workloads::register(engine, docs, ctx);
    crate::network::register(engine, docs, ctx);
    crate::smoke::register(engine, docs, ctx);
    crate::custom::register(engine, docs, ctx);
    crate::paths::register(engine, docs, ctx);
}

fn register_values(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "env_var",
        ["name: &str"],
        "The value of an environment variable of the process running cairn (the CI's), as plain text.\n\
         A variable that is not set is an error at this call.\n\n\
         ```rhai\nlet sha = env_var(\"GIT_SHA\");\nlet image = \"ghcr.io/acme/app:\" + sha;\n```",
        move |nc: NativeCallContext, name: &str| -> String {
            let site = c.site(&nc);
            env_var(&c, &site, name)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "env_var",
        ["name: &str", "default: &str"],
        "The value of an environment variable, or `default` when it is not set.\n\n\
         ```rhai\nlet tag = env_var(\"IMAGE_TAG\", \"latest-known-good\");\n```",
        move |name: &str, default: &str| -> String {
            builder::lock(&c.b)
                .vars
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.to_owned())
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "secret_env",
        ["name: &str"],
        "A sensitive value read from an environment variable (a CI secret). It is never printed:\n\
         plans and renders show `<sensitive: $NAME>`. A variable that is not set is an error.\n\n\
         ```rhai\nlet key = secret_env(\"BINANCE_API_KEY\");\n```",
        move |nc: NativeCallContext, name: &str| -> SensitiveStr {
            let site = c.site(&nc);
            secret_env(&c, &site, name)
        }
    );
    export!(
        engine,
        docs,
        "sensitive",
        ["text: &str"],
        "Marks a literal as sensitive, so that it is never printed.\n\n\
         ```rhai\nlet token = sensitive(\"not-for-logs\");\n```",
        |text: &str| -> SensitiveStr {
            SensitiveStr(Sensitive::from_part(SensitivePart::Literal(
                text.to_owned(),
            )))
        }
    );
}

fn register_generated_values(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "generate_password",
        ["length: i64"],
        "A random password of `length` letters and digits, generated on the first apply and kept\n\
         afterwards (read back from the Secret that holds it). Store it alone in a secret key;\n\
         it can then also be used inside other values, such as a connection URL.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet pw = generate_password(32);\nenv.secret(\"db\", #{ PASSWORD: pw, URL: \"postgres://app:\" + pw + \"@db:5432/app\" });\n```",
        move |nc: NativeCallContext, length: i64| -> SensitiveStr {
            let site = c.site(&nc);
            generate_password(&c, &site, length)
        }
    );
    // Sensitive strings concatenate with plain ones and stay sensitive.
    engine.register_fn("+", |a: SensitiveStr, b: SensitiveStr| {
        SensitiveStr(convert::concat(&a.0, &b.0))
    });
    engine.register_fn("+", |a: SensitiveStr, b: &str| {
        SensitiveStr(convert::concat(&a.0, &convert::plain(b)))
    });
    engine.register_fn("+", |a: &str, b: SensitiveStr| {
        SensitiveStr(convert::concat(&convert::plain(a), &b.0))
    });
    engine.register_fn("to_string", |s: &mut SensitiveStr| s.0.placeholder());
    engine.register_fn("to_debug", |s: &mut SensitiveStr| s.0.placeholder());
    export!(
        engine,
        docs,
        "assert",
        ["condition: bool", "message: &str"],
        "Stops the evaluation with `message` when `condition` is false: an invariant of the script.\n\n\
         ```rhai\nlet replicas = 2;\nassert(replicas >= 1, \"at least one replica\");\n```",
        |condition: bool, message: &str| -> R<()> {
            if condition {
                Ok(())
            } else {
                fail(format!("assertion failed: {message}"))
            }
        }
    );
}

/// Binding of `env_var(name)`: a variable that is not set is an error at the call.
fn env_var(c: &Ctx, site: &Site, name: &str) -> String {
    let mut b = builder::lock(&c.b);
    match b.vars.get(name) {
        Some(v) => v.clone(),
        None => {
            b.report(Diagnostic::error(Code::MissingEnvVar, format!("environment variable `{name}` is not set"))
                .at(site.at(name))
                .help(format!("set {name} in the environment running cairn, or use env_var(\"{name}\", \"default\")")));
            String::new()
        }
    }
}

/// Binding of `secret_env`.
fn secret_env(c: &Ctx, site: &Site, name: &str) -> SensitiveStr {
    let mut b = builder::lock(&c.b);
    let value = match b.vars.get(name) {
        Some(v) => v.clone(),
        None => {
            b.report(
                Diagnostic::error(
                    Code::MissingEnvVar,
                    format!("environment variable `{name}` is not set"),
                )
                .at(site.at(name))
                .help(format!("export {name} in the CI job's secrets")),
            );
            String::new()
        }
    };
    SensitiveStr(Sensitive::from_part(SensitivePart::Env {
        var: name.to_owned(),
        value,
    }))
}

/// Binding of `generate_password`.
fn generate_password(c: &Ctx, site: &Site, length: i64) -> SensitiveStr {
    let mut b = builder::lock(&c.b);
    let len = match u32::try_from(length) {
        Ok(l) if (8..=256).contains(&l) => l,
        _ => {
            b.report(
                Diagnostic::error(
                    Code::InvalidOption,
                    format!("password length {length} is out of range 8-256"),
                )
                .at(site.span.clone()),
            );
            32
        }
    };
    let id = b.new_generated(len, site.span.clone());
    SensitiveStr(Sensitive::from_part(SensitivePart::Generated {
        id,
        length: len,
    }))
}
fn tagged(kind: &'static str, value: Value) -> Tagged {
    Tagged { kind, value }
}

/// Converts an option map to a model value, reporting what cannot be converted.
fn map_value(ctx: &Ctx, site: &Site, map: &Map) -> Value {
    match convert::to_value(&Dynamic::from_map(map.clone())) {
        Ok(v) => v,
        Err(e) => {
            ctx.report1(Diagnostic::error(Code::InvalidOption, e).at(site.span.clone()));
            Value::Null
        }
    }
}

fn register_cluster_settings(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "kube_context",
        ["name: &str"],
        "The kubeconfig context of the cluster an environment lives in (like `kubectl --context`).\n\n\
         ```rhai\nlet env = environment(\"staging\", #{ cluster: kube_context(\"k3s\") });\n```",
        |name: &str| tagged("kube_context", Value::str(name))
    );
}

fn register_dns_settings(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "rfc2136",
        ["options: Map"],
        concat!(
            "A DNS zone updated with RFC 2136 dynamic updates signed with a TSIG key.\n\
         Options: `server` (host:port), `zone`, `key_name`, `key` (sensitive), `algorithm`\n\
         (`hmac-sha256` or `hmac-sha512`), `ttl`.\n\n",
            "```rhai\nlet dns = rfc2136(#{ server: \"ns1.example.com:53\", zone: \"example.com\", key_name: \"cairn\", key: sensitive(\"c2VjcmV0\") });\n```"
        ),
        move |nc: NativeCallContext, options: Map| -> Tagged {
            let site = c.site(&nc);
            rfc2136(&c, &site, options)
        }
    );
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "manual_dns",
        ["options: Map"],
        concat!(
            "A DNS zone with no update API (a registrar's web form): `plan` reads the live records and\n\
         `apply` prints the records to create, then waits until the authoritative servers answer them.\n\
         Options: `zone`, `nameservers` (list of host:port).\n\n",
            "```rhai\nlet dns = manual_dns(#{ zone: \"example.com.br\" });\n```"
        ),
        move |nc: NativeCallContext, options: Map| -> Tagged {
            let site = c.site(&nc);
            manual_dns(&c, &site, options)
        }
    );
}

fn register_acme_settings(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    for (name, directory, doc) in [
        (
            "letsencrypt",
            "https://acme-v02.api.letsencrypt.org/directory",
            concat!(
                "Certificates from Let's Encrypt (production), validated with DNS-01. Options: `email`.\n\n",
                "```rhai\nlet acme = letsencrypt(#{ email: \"ops@example.com\" });\n```"
            ),
        ),
        (
            "letsencrypt_staging",
            "https://acme-staging-v02.api.letsencrypt.org/directory",
            concat!(
                "Certificates from Let's Encrypt's staging directory (untrusted, generous rate limits). Options: `email`.\n\n",
                "```rhai\nlet acme = letsencrypt_staging(#{ email: \"ops@example.com\" });\n```"
            ),
        ),
    ] {
        let c = ctx.clone();
        rhai::FuncRegistration::new(name)
            .with_params_info(["options: Map"])
            .with_comments([doc])
            .register_into_engine(
                engine,
                move |nc: NativeCallContext, options: Map| -> Tagged {
                    let site = c.site(&nc);
                    letsencrypt(&c, &site, name, directory, options)
                },
            );
        docs.0.push(crate::docs::FunctionDoc {
            name,
            params: &["options: Map"],
            doc,
        });
    }
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "acme",
        ["options: Map"],
        concat!(
            "Certificates from any ACME directory. Options: `directory` (URL), `email`, `ca_file`\n\
         (PEM of a private CA to trust), `renew_before_days`.\n\n",
            "```rhai\nlet ca = acme(#{ directory: \"https://localhost:14000/dir\", email: \"ops@example.com\" });\n```"
        ),
        move |nc: NativeCallContext, options: Map| -> Tagged {
            let site = c.site(&nc);
            acme(&c, &site, options)
        }
    );
}

fn register_bucket_settings(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "s3",
        ["options: Map"],
        concat!(
            "The S3 bucket that receives the environment's backups. Options: `bucket`, `region`,\n\
         `endpoint`, `path_style`, `access_key_id` and `secret_access_key` (sensitive; otherwise the\n\
         standard AWS credential chain), `tags`.\n\n",
            "```rhai\nlet backups = s3(#{ bucket: \"acme-backup-staging\", region: \"eu-central-1\" });\n```"
        ),
        move |nc: NativeCallContext, options: Map| -> Tagged {
            let site = c.site(&nc);
            s3(&c, &site, options)
        }
    );
}

fn register_notify_settings(engine: &mut Engine, docs: &mut Docs) {
    for (name, key, doc) in [
        (
            "slack",
            "slack_channel",
            "Alerts routed to a Slack channel.\n\n```rhai\nlet notify = slack(\"#staging-alerts\");\n```",
        ),
        (
            "email",
            "email",
            "Alerts routed to an e-mail address.\n\n```rhai\nlet notify = email(\"oncall@example.com\");\n```",
        ),
        (
            "webhook",
            "webhook_url",
            "Alerts posted to a webhook URL.\n\n```rhai\nlet notify = webhook(\"https://hooks.example.com/alerts\");\n```",
        ),
    ] {
        rhai::FuncRegistration::new(name)
            .with_params_info(["target: &str"])
            .with_comments([doc])
            .register_into_engine(engine, move |target: &str| -> Tagged {
                tagged("notify", Value::obj([(key, Value::str(target))]))
            });
        docs.0.push(crate::docs::FunctionDoc {
            name,
            params: &["target: &str"],
            doc,
        });
    }
}

fn register_probes(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "http_get",
        ["path: &str", "port: i64"],
        "A readiness or liveness probe: HTTP GET `path` on `port` must answer 2xx or 3xx.\n\n\
         ```rhai\nlet ready = http_get(\"/health\", 8000);\n```",
        |path: &str, port: i64| tagged(
            "probe",
            Value::obj([
                (
                    "httpGet",
                    Value::obj([("path", Value::str(path)), ("port", Value::Int(port))])
                ),
                ("periodSeconds", Value::Int(10)),
            ])
        )
    );
    export!(
        engine,
        docs,
        "tcp_socket",
        ["port: i64"],
        "A probe that succeeds when a TCP connection to `port` opens.\n\n\
         ```rhai\nlet ready = tcp_socket(6379);\n```",
        |port: i64| tagged(
            "probe",
            Value::obj([
                ("tcpSocket", Value::obj([("port", Value::Int(port))])),
                ("periodSeconds", Value::Int(10)),
            ])
        )
    );
    export!(
        engine,
        docs,
        "exec",
        ["command: Array"],
        "A probe that runs a command in the container; exit code 0 means ready.\n\n\
         ```rhai\nlet ready = exec([\"pg_isready\", \"-U\", \"app\"]);\n```",
        |command: rhai::Array| tagged(
            "probe",
            Value::obj([
                (
                    "exec",
                    Value::obj([(
                        "command",
                        Value::Array(command.iter().map(|c| Value::str(c.to_string())).collect())
                    )])
                ),
                ("periodSeconds", Value::Int(10)),
            ])
        )
    );
    register_named_probes(engine, docs);
}

/// `http_get(path, "name")` and `tcp_socket("name")`: probes on a named port of the container.
fn register_named_probes(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "http_get",
        ["path: &str", "port: &str"],
        "A readiness or liveness probe on a named port of the container (`ports: #{ http: 80 }`).\n\n\
         ```rhai\nlet ready = http_get(\"/health\", \"http\");\n```",
        |path: &str, port: &str| tagged(
            "probe",
            Value::obj([
                (
                    "httpGet",
                    Value::obj([("path", Value::str(path)), ("port", Value::str(port))])
                ),
                ("periodSeconds", Value::Int(10)),
            ])
        )
    );
    export!(
        engine,
        docs,
        "tcp_socket",
        ["port: &str"],
        "A probe that succeeds when a TCP connection to the container's named port opens.\n\n\
         ```rhai\nlet ready = tcp_socket(\"redis\");\n```",
        |port: &str| tagged(
            "probe",
            Value::obj([
                ("tcpSocket", Value::obj([("port", Value::str(port))])),
                ("periodSeconds", Value::Int(10)),
            ])
        )
    );
}

fn register_environment(engine: &mut Engine, docs: &mut Docs, ctx: &Ctx) {
    let c = ctx.clone();
    export!(
        engine,
        docs,
        "environment",
        ["name: &str", "options: Map"],
        "Declares the environment the script describes; call it once, first. Options: `cluster`\n\
         (`kube_context(...)`), `domain`, `dns` (`rfc2136(...)` or `manual_dns(...)`), `acme`\n\
         (`letsencrypt(...)`…), `backups` (`s3(...)`), `ingress_class`, `ingress_namespace`,\n\
         `expires` (a preview's lifetime after its last apply, `\"7d\"`: `cairn status` shows it,\n\
         `cairn destroy --expired` acts on it) and `ephemeral` (`true`: its data may go with it,\n\
         `cairn destroy --delete-data` asks for no confirmation), `leave_to` (field managers whose\n\
         fields cairn never takes back, as it never takes a controller's: `[\"argocd\"]`).\n\n\
         ```rhai\nlet env = environment(\"staging\", #{ domain: \"staging.example.com\" });\nlet host = \"api.\" + env.domain;\n```",
        move |nc: NativeCallContext, name: &str, options: Map| -> EnvHandle {
            let site = c.site(&nc);
            environment(&c, &site, name, options)
        }
    );
    engine.register_get("name", |e: &mut EnvHandle| e.name.clone());
    engine.register_get("domain", |e: &mut EnvHandle| e.domain.clone());
    let c = ctx.clone();
    engine.register_get("namespace", move |_: &mut EnvHandle| {
        builder::lock(&c.b).namespace()
    });
}

/// Binding of `rfc2136`: checks the options, keeps them as the `dns` setting.
fn rfc2136(c: &Ctx, site: &Site, options: Map) -> Tagged {
    let mut o = Opts::new(
        "rfc2136(...)",
        options.clone(),
        &["server", "zone", "key_name", "key", "algorithm", "ttl"],
        site,
    );
    o.req_str("server");
    let zone = o.req_str("zone");
    o.req_str("key_name");
    if o.get("key").is_none() {
        o.req_str("key");
    }
    if let Some(alg) = o.str("algorithm")
        && !matches!(alg.as_str(), "hmac-sha256" | "hmac-sha512")
    {
        o.diagnostics.push(site.error(
            Code::InvalidOption,
            &alg,
            format!("unsupported TSIG algorithm `{alg}`; use hmac-sha256 or hmac-sha512"),
        ));
    }
    if let Some(zone) = &zone
        && let Err(e) = validate::dns_name(zone, false, false)
    {
        o.diagnostics
            .push(site.error(Code::InvalidDnsName, zone, e.0));
    }
    let mut value = map_value(c, site, &options);
    value.insert("provider", Value::str("rfc2136"));
    c.report(o.finish());
    tagged("dns", value)
}

/// Binding of `manual_dns`.
fn manual_dns(c: &Ctx, site: &Site, options: Map) -> Tagged {
    let mut o = Opts::new(
        "manual_dns(...)",
        options.clone(),
        &["zone", "nameservers", "ttl"],
        site,
    );
    if let Some(zone) = o.req_str("zone")
        && let Err(e) = validate::dns_name(&zone, false, false)
    {
        o.diagnostics
            .push(site.error(Code::InvalidDnsName, &zone, e.0));
    }
    o.str_list("nameservers");
    let mut value = map_value(c, site, &options);
    value.insert("provider", Value::str("manual"));
    c.report(o.finish());
    tagged("dns", value)
}

/// Binding of `acme`.
fn acme(c: &Ctx, site: &Site, options: Map) -> Tagged {
    let mut o = Opts::new(
        "acme(...)",
        options.clone(),
        &["directory", "email", "ca_file", "renew_before_days"],
        site,
    );
    o.req_str("directory");
    o.req_str("email");
    o.str("ca_file");
    o.int("renew_before_days");
    let value = map_value(c, site, &options);
    c.report(o.finish());
    tagged("acme", value)
}

/// Binding of `s3`: the bucket name is checked with the rule S3 applies.
fn s3(c: &Ctx, site: &Site, options: Map) -> Tagged {
    let mut o = Opts::new(
        "s3(...)",
        options.clone(),
        &[
            "bucket",
            "region",
            "endpoint",
            "path_style",
            "access_key_id",
            "secret_access_key",
            "tags",
        ],
        site,
    );
    if let Some(bucket) = o.req_str("bucket")
        && let Err(e) = bucket_name(&bucket)
    {
        o.diagnostics
            .push(site.error(Code::InvalidBucketName, &bucket, e.to_string()));
    }
    o.str("region");
    o.str("endpoint");
    o.bool("path_style");
    o.map("tags");
    let value = map_value(c, site, &options);
    c.report(o.finish());
    tagged("s3", value)
}

/// Binding of `environment`: parses the options into the [`EnvironmentMeta`] of the evaluation.
fn environment(c: &Ctx, site: &Site, name: &str, options: Map) -> EnvHandle {
    let mut o = Opts::new(
        "environment(...)",
        options,
        &[
            "cluster",
            "domain",
            "dns",
            "acme",
            "backups",
            "ingress_class",
            "ingress_namespace",
            "expires",
            "ephemeral",
            "leave_to",
        ],
        site,
    );
    let mut meta = parse_environment(&mut o, site, name);
    if let Some(ttl) = o.str("expires") {
        match validate::ttl_seconds(&ttl) {
            Ok(seconds) => meta.expires = Some(seconds),
            Err(e) => o
                .diagnostics
                .push(site.error(Code::InvalidOption, &ttl, e.0)),
        }
    }
    meta.ephemeral = o.bool("ephemeral").unwrap_or(false);
    meta.leave_to = o.str_list("leave_to");
    let class = o.str("ingress_class");
    let ingress_ns = o.str("ingress_namespace");
    let diagnostics = o.finish();
    let mut b = builder::lock(&c.b);
    b.diagnostics.extend(diagnostics);
    if b.env.is_some() {
        b.report(
            Diagnostic::error(
                Code::DuplicateEnvironment,
                "environment(...) is called more than once",
            )
            .at(site.span.clone()),
        );
    }
    if let Some(class) = class {
        meta.providers
            .insert("ingress_class".to_owned(), Value::str(class));
    }
    if let Some(ns) = ingress_ns {
        b.ingress_namespace = ns;
    }
    let handle = EnvHandle {
        name: name.to_owned(),
        domain: meta.domain.clone().unwrap_or_default(),
    };
    b.env = Some(meta);
    handle
}

/// The environment's name, cluster, domain and provider settings, checked.
fn parse_environment(o: &mut Opts, site: &Site, name: &str) -> EnvironmentMeta {
    let mut meta = EnvironmentMeta {
        name: name.to_owned(),
        ..EnvironmentMeta::default()
    };
    if let Err(e) = validate::dns1123_label(name) {
        o.diagnostics.push(site.error(
            Code::InvalidName,
            name,
            format!("invalid environment name \"{name}\": {}", e.0),
        ));
    }
    if let Some(cluster) = o.custom::<Tagged>("cluster", "kube_context(...)") {
        meta.kube_context = cluster.value.as_str().map(str::to_owned);
        meta.kube_context_at = site.at("cluster");
    }
    if let Some(domain) = o.str("domain") {
        if let Err(e) = validate::dns_name(&domain, false, false) {
            o.diagnostics
                .push(site.error(Code::InvalidDnsName, &domain, e.0));
        }
        meta.domain = Some(domain.trim_end_matches('.').to_owned());
    }
    for (key, kind) in [("dns", "dns"), ("acme", "acme"), ("backups", "s3")] {
        if let Some(t) = o.custom::<Tagged>(key, &format!("a {kind} setting")) {
            if t.kind == kind {
                meta.providers.insert(key.to_owned(), t.value);
            } else {
                o.diagnostics.push(Diagnostic::error(Code::InvalidOption, format!("option `{key}` of environment(...) must be a {kind} setting, found a {} setting", t.kind)).at(site.at(key)));
            }
        }
    }
    meta
}

/// Binding of `letsencrypt` and `letsencrypt_staging`: the `acme` setting of `directory`.
fn letsencrypt(c: &Ctx, site: &Site, name: &str, directory: &str, options: Map) -> Tagged {
    let mut o = Opts::new(
        format!("{name}(...)"),
        options.clone(),
        &["email", "renew_before_days"],
        site,
    );
    o.req_str("email");
    o.int("renew_before_days");
    let mut value = map_value(c, site, &options);
    value.insert("directory", Value::str(directory));
    c.report(o.finish());
    tagged("acme", value)
}

pub use cairn_model::validate::bucket_name;

/// The workload behind a backing service, reached on the service's own port only.
fn peer_of(service: &Component) -> Workload {
    let mut w = service.workload.clone();
    w.ports.retain(|(_, p)| *p == service.port);
    if w.ports.is_empty() {
        w.ports.push(("service".to_owned(), service.port));
    }
    w
}

/// The name of the Secret holding a component's credentials: its URL's, else the first
/// variable read from a Secret; empty when it has none.
fn component_secret(c: &Component) -> String {
    let from_vars = c.vars.iter().find_map(|(_, v)| match v {
        cairn_model::spec::workloads::EnvValue::Ref(r) if r.kind == "Secret" => {
            Some(r.name.clone())
        }
        _ => None,
    });
    c.url
        .as_ref()
        .filter(|u| u.kind == "Secret")
        .map(|u| u.name.clone())
        .or(from_vars)
        .unwrap_or_default()
}

/// Getters of the handles scripts hold.
fn register_getters(engine: &mut Engine) {
    engine.register_get("name", |s: &mut SecretHandle| s.name.clone());
    engine.register_get("name", |s: &mut ConfigHandle| s.name.clone());
    engine.register_get("name", |w: &mut Workload| w.name.clone());
    engine.register_get("host", |w: &mut Workload| {
        w.service.clone().unwrap_or_else(|| w.name.clone())
    });
    engine.register_get("name", |v: &mut VolumeHandle| v.name.clone());
    engine.register_get("name", |c: &mut CertHandle| c.name.clone());
    engine.register_get("secret_name", |c: &mut CertHandle| c.secret_name.clone());
    engine.register_get("name", |c: &mut Component| c.name.clone());
    engine.register_get("host", |c: &mut Component| c.host.clone());
    engine.register_get("port", |c: &mut Component| c.port);
    engine.register_get("workload", |c: &mut Component| c.workload.clone());
    engine.register_get("service", |c: &mut Component| c.host.clone());
    engine.register_get("secret", |c: &mut Component| component_secret(c));
    engine.register_get("jobs", |c: &mut Component| {
        c.jobs
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<rhai::Array>()
    });
    engine.register_get("info", |c: &mut Component| c.extra.clone());
}

fn register_key_refs(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "key",
        ["secret: Secret", "key: &str"],
        "A reference to one key of a declared Secret, for an environment variable. `check` reports a\n\
         key the Secret does not have (the crash loop of an unset variable, caught before deploy).\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nlet app = env.secret(\"app\", #{ SECRET_KEY: generate_password(50) });\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", env: [#{ DJANGO_SECRET_KEY: app.key(\"SECRET_KEY\") }] });\n```",
        |nc: NativeCallContext, secret: &mut SecretHandle, key: &str| -> KeyRef {
            let _ = nc;
            KeyRef {
                kind: "Secret",
                name: secret.name.clone(),
                key: key.to_owned(),
            }
        }
    );
    engine.register_fn("key", |config: &mut ConfigHandle, key: &str| KeyRef {
        kind: "ConfigMap",
        name: config.name.clone(),
        key: key.to_owned(),
    });
    export!(
        engine,
        docs,
        "secret_ref",
        ["name: &str", "key: &str"],
        "A reference to a key of a Secret the script does not declare (made by an operator or by\n\
         hand). `check` reports it when no declared Secret provides the key.\n\n\
         ```rhai\nlet token = secret_ref(\"registry-token\", \"TOKEN\");\n```",
        |name: &str, key: &str| KeyRef {
            kind: "Secret",
            name: name.to_owned(),
            key: key.to_owned()
        }
    );
}

fn register_service_env(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "env",
        ["service: Component", "prefix: &str"],
        "The connection settings of a backing service as environment variables named with `prefix`:\n\
         `<prefix>HOST`, `<prefix>PORT`, and the user, password and database the plugin provides.\n\
         Using them also lets the workload reach the service through the network policies.\n\n\
         ```rhai\nimport \"postgres\" as postgres;\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet db = postgres::instance(env, \"pg\", #{ storage: \"1Gi\" });\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", env: [db.env(\"DB_\")] });\n```",
        |service: &mut Component, prefix: &str| EnvSet {
            vars: service
                .vars
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                .collect(),
            peer: Some(peer_of(service)),
        }
    );
    engine.register_fn("env", |service: &mut Component| EnvSet {
        vars: service.vars.clone(),
        peer: Some(peer_of(service)),
    });
    export!(
        engine,
        docs,
        "url_env",
        ["service: Component", "name: &str"],
        "The connection URL of a backing service (password included, from its Secret) as one\n\
         environment variable called `name`.\n\n\
         ```rhai\nimport \"redis\" as redis;\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet cache = redis::instance(env, \"cache\", #{ storage: \"1Gi\" });\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", env: [cache.url_env(\"REDIS_URL\")] });\n```",
        |service: &mut Component, name: &str| -> R<EnvSet> {
            match &service.url {
                Some(url) => Ok(EnvSet {
                    vars: vec![(name.to_owned(), EnvValue::Ref(url.clone()))],
                    peer: Some(peer_of(service)),
                }),
                None => fail(format!("service `{}` has no connection URL", service.name)),
            }
        }
    );
}

fn register_endpoints(engine: &mut Engine, docs: &mut Docs) {
    export!(
        engine,
        docs,
        "endpoint",
        ["service: Component", "name: &str"],
        "A named endpoint of a backing service (such as RabbitMQ's `management` UI), to route to.\n\n\
         ```rhai\nimport \"rabbitmq\" as rabbitmq;\nlet env = environment(\"demo\", #{ domain: \"demo.example.com\" });\nenv.namespace(\"demo\", #{});\nlet queue = rabbitmq::instance(env, \"mq\", #{ storage: \"1Gi\" });\nenv.route(\"mq.demo.example.com\", queue.endpoint(\"management\"), #{});\n```",
        |service: &mut Component, name: &str| -> R<Workload> { endpoint(service, name) }
    );
    engine.register_fn("management", |service: &mut Component| -> R<Workload> {
        match service.endpoints.get("management") {
            Some(port) => Ok(Workload {
                route_port: Some(*port),
                ..service.workload.clone()
            }),
            None => fail(format!(
                "service `{}` has no management endpoint",
                service.name
            )),
        }
    });
    export!(
        engine,
        docs,
        "port",
        ["workload: Workload", "name: &str"],
        "The same workload, routed to its port `name` instead of its first port.\n\n\
         ```rhai\nlet env = environment(\"demo\", #{});\nenv.namespace(\"demo\", #{});\nlet web = env.deployment(\"web\", #{ image: \"nginx:1.27\", ports: #{ http: 80, metrics: 9090 }, ready: http_get(\"/\", 80) });\nlet metrics = web.port(\"metrics\");\n```",
        |workload: &mut Workload, name: &str| -> R<Workload> { port(workload, name) }
    );
}

/// Binding of `service.endpoint(name)`: the service's workload, routed to that endpoint.
fn endpoint(service: &Component, name: &str) -> R<Workload> {
    match service.endpoints.get(name) {
        Some(port) => Ok(Workload {
            route_port: Some(*port),
            ..service.workload.clone()
        }),
        None => fail(format!(
            "service `{}` has no endpoint `{name}`; it has: {}",
            service.name,
            service
                .endpoints
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Binding of `workload.port(name)`: the workload, routed to that port.
fn port(workload: &Workload, name: &str) -> R<Workload> {
    match workload.ports.iter().find(|(n, _)| n == name) {
        Some((_, port)) => Ok(Workload {
            route_port: Some(*port),
            ..workload.clone()
        }),
        None => fail(format!("workload `{}` has no port `{name}`", workload.name)),
    }
}

/// Parses a quantity option, reporting a diagnostic at its literal; returns its canonical form.
pub fn quantity(o: &mut Opts, site: &Site, key: &str, what: &str) -> Option<String> {
    let text = o.str(key)?;
    match Quantity::parse_non_negative(&text) {
        Ok(q) => Some(q.canonical()),
        Err(e) => {
            o.diagnostics.push(
                site.error(Code::InvalidQuantity, &text, format!("{what}: {}", e.0))
                    .label("not a Kubernetes quantity")
                    .help("quantities look like 500m, 2, 512Mi, 10Gi"),
            );
            None
        }
    }
}

/// Reports an invalid Kubernetes object name; returns whether the name is valid.
pub fn check_name(ctx: &Ctx, site: &Site, kind: &str, name: &str, label: bool) -> bool {
    let result = if label {
        validate::dns1123_label(name)
    } else {
        validate::dns1123_subdomain(name)
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            ctx.report1(
                site.error(Code::InvalidName, name, format!("invalid {kind} name \"{name}\": {}", e.0))
                    .label("not a valid Kubernetes name")
                    .help("names are lowercase letters, digits and '-', starting and ending with a letter or digit"),
            );
            false
        }
    }
}

/// Turns an evaluation error into a diagnostic at the innermost script position.
pub fn runtime_diagnostic(sources: &Sources, main: &str, err: &EvalAltResult) -> Diagnostic {
    // The call in the main script that led into a plugin, if any.
    let caller = match err {
        EvalAltResult::ErrorInFunctionCall(_, _, _, pos)
        | EvalAltResult::ErrorInModule(_, _, pos) => sources.span(main, *pos),
        _ => None,
    };
    let (source, current, pos) = innermost(main, err);
    let mut span = sources.span(&source, pos);
    let mut thrown_at = None;
    if let (EvalAltResult::ErrorRuntime(..), Some(caller)) = (current, &caller) {
        // A plugin refusing its arguments (`throw`) is the caller's problem: point there.
        if source != main {
            thrown_at = span
                .take()
                .map(|s| format!("raised at {}:{}:{}", s.file, s.line, s.col));
            span = Some(caller.clone());
        }
    }
    let (code, message, help) = describe(current);
    let mut d = Diagnostic::error(code, message).at(span).label("here");
    match (help, thrown_at) {
        (Some(help), _) => d = d.help(help),
        (None, Some(at)) => d = d.help(at),
        (None, None) => {}
    }
    d
}

/// The innermost error of a chain of calls, the source it happened in, and its position (that
/// of the innermost call when the error itself has none).
fn innermost<'a>(main: &str, err: &'a EvalAltResult) -> (String, &'a EvalAltResult, Position) {
    let mut source = main.to_owned();
    let mut current = err;
    let mut outer_pos = err.position();
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(_, src, inner, pos) => {
                if !src.is_empty() {
                    source = src.clone();
                }
                outer_pos = *pos;
                current = inner;
            }
            EvalAltResult::ErrorInModule(src, inner, pos) => {
                if !src.is_empty() {
                    source = src.clone();
                }
                outer_pos = *pos;
                current = inner;
            }
            _ => break,
        }
    }
    let pos = if current.position().is_none() {
        outer_pos
    } else {
        current.position()
    };
    (source, current, pos)
}

/// The code, message and help of an evaluation error.
fn describe(current: &EvalAltResult) -> (Code, String, Option<&'static str>) {
    match current {
        EvalAltResult::ErrorTooManyOperations(_) => (
            Code::ScriptLimit,
            "the script ran too many operations and was stopped".to_owned(),
            Some("look for a loop that never ends; environment scripts only declare resources"),
        ),
        EvalAltResult::ErrorStackOverflow(_) => (
            Code::ScriptLimit,
            "the script nested function calls too deeply and was stopped".to_owned(),
            Some("look for a recursion without a base case"),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            Code::ScriptLimit,
            format!(
                "{} grew past the sandbox's limit and was stopped",
                what.to_lowercase()
            ),
            None,
        ),
        EvalAltResult::ErrorTooManyModules(_) => (
            Code::ScriptLimit,
            "too many plugin imports".to_owned(),
            None,
        ),
        EvalAltResult::ErrorModuleNotFound(name, _) => (
            Code::PluginNotFound,
            format!("plugin `{name}` not found"),
            Some(
                "plugins are folders under the project's plugins/ (or CAIRN_PLUGIN_PATH) holding a main.rhai",
            ),
        ),
        EvalAltResult::ErrorRuntime(value, _) => (Code::ScriptError, value.to_string(), None),
        EvalAltResult::ErrorParsing(kind, _) => {
            (Code::SyntaxError, lower_first(&kind.to_string()), None)
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => (
            Code::ScriptError,
            format!("variable `{name}` is not defined"),
            None,
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => (
            Code::ScriptError,
            format!(
                "no function `{}`",
                sig.replace("&str | ImmutableString | String", "string")
            ),
            Some("see `cairn docs` for the functions scripts can call"),
        ),
        other => {
            let text = other.to_string();
            let text = text.split(" (line ").next().unwrap_or(&text).to_owned();
            (Code::ScriptError, lower_first(&text), None)
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c)
            if !s.starts_with(|c: char| {
                c.is_uppercase() && s.chars().nth(1).is_some_and(char::is_uppercase)
            }) =>
        {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_owned(),
    }
}

/// Turns a parse error into a diagnostic.
pub fn parse_diagnostic(sources: &Sources, name: &str, err: &ParseError) -> Diagnostic {
    let text = err.err_type().to_string();
    Diagnostic::error(Code::SyntaxError, lower_first(&text))
        .at(sources.span(name, err.position()))
        .label("syntax error")
}

/// Declares the buckets that backups write to.
pub fn derive_buckets(b: &mut Builder) {
    let Some(settings) = b
        .env
        .as_ref()
        .and_then(|e| e.providers.get("backups"))
        .cloned()
    else {
        return;
    };
    let Some(bucket) = settings
        .get("bucket")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let rules = b.bucket_rules.get(&bucket).cloned().unwrap_or_default();
    let spec = BucketSpec {
        bucket,
        environment: b.env_name(),
        settings,
        rules: rules.into_iter().collect(),
    };
    let (id, body) = crate::lower::workloads::bucket(&spec);
    b.add(id, body, Vec::new(), true, None);
}

#[cfg(test)]
mod tests {
    use cairn_model::Code;

    use crate::{EvalOptions, evaluate};

    /// The messages of the invalid-bucket-name diagnostics of `s3(#{ bucket })`.
    fn bucket_errors(bucket: &str) -> Vec<String> {
        let script = format!("let backups = s3(#{{ bucket: \"{bucket}\" }});");
        evaluate("main.rhai", &script, &[], &EvalOptions::default())
            .diagnostics
            .into_iter()
            .filter(|d| d.code == Code::InvalidBucketName)
            .map(|d| d.message)
            .collect()
    }

    /// The stdlib's own rule accepted these names and S3 refused them only at apply time.
    #[test]
    fn s3_bucket_names_s3_refuses_are_refused_at_plan_time() {
        assert_eq!(
            bucket_errors("192.168.1.1"),
            ["invalid bucket name \"192.168.1.1\": a bucket name cannot look like an IP address"]
        );
        assert_eq!(
            bucket_errors("backups.-staging"),
            [
                "invalid bucket name \"backups.-staging\": no two adjacent dots, nor a dot next to \
                 a hyphen"
            ]
        );
        assert_eq!(
            bucket_errors("xn--backups"),
            ["invalid bucket name \"xn--backups\": the prefix xn-- is reserved"]
        );
        assert!(bucket_errors("acme-backup-staging").is_empty());
    }
}
