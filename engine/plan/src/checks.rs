use cairn_model::Code;
use std::collections::{BTreeMap, BTreeSet};

use cairn_model::validate::name_covers;
use cairn_model::{DesiredState, Diagnostic, Provider, Resource, ResourceId, Value};

/// Runs every plan-time check and returns all problems found, in a stable order.
pub fn check(state: &DesiredState) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    duplicates(state, &mut out);
    secret_references(state, &mut out);
    crate::quota::check_quota(state, &mut out);
    crate::quota::check_limit_ranges(state, &mut out);
    crate::quota::check_autoscalers(state, &mut out);
    certificates(state, &mut out);
    tls_secret_collisions(state, &mut out);
    generated_homes(state, &mut out);
    sensitive_outside_secrets(state, &mut out);
    crate::isolation::check(state, &mut out);
    out
}

fn duplicates(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&ResourceId, &Resource> = BTreeMap::new();
    for r in &state.resources {
        if let Some(prev) = first.get(&r.id) {
            out.push(
                Diagnostic::error(
                    Code::DuplicateResource,
                    format!("{} is declared twice", r.id),
                )
                .at(r.span.clone())
                .label("declared again here")
                .related(prev.span.clone(), "first declared here")
                .help("give one of them another name, or declare it once and reuse the handle"),
            );
        } else {
            first.insert(&r.id, r);
        }
    }
}

/// The containers (and init containers) of a workload's pod template.
pub(crate) fn pod_spec(r: &Resource) -> Option<&Value> {
    let path: &[&str] = match r.id.kind.as_str() {
        "Deployment" | "StatefulSet" | "Job" | "DaemonSet" | "ReplicaSet" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "Pod" => &["spec"],
        _ => return None,
    };
    r.body.pointer(path)
}

pub(crate) fn containers(spec: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    spec.get("initContainers")
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .map(|c| ("initContainers", c))
        .chain(
            spec.get("containers")
                .map(Value::as_array)
                .unwrap_or_default()
                .iter()
                .map(|c| ("containers", c)),
        )
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

fn secret_references(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let provided = provided_keys(state);
    for r in state.kube_objects() {
        let Some(spec) = pod_spec(r) else { continue };
        for (_, container) in containers(spec) {
            for env in container
                .get("env")
                .map(Value::as_array)
                .unwrap_or_default()
            {
                env_references(r, &provided, container, env, out);
            }
        }
        pull_secrets(r, spec, &provided, out);
    }
}

/// Keys each declared Secret / ConfigMap provides, by (kind, namespace, name).
type Provided<'a> = BTreeMap<(&'a str, Option<&'a str>, &'a str), BTreeSet<String>>;

/// The keys of the declared Secrets and ConfigMaps, and of the external secrets.
fn provided_keys(state: &DesiredState) -> Provided<'_> {
    let mut provided = Provided::new();
    for r in state.kube_objects() {
        let field = match r.id.kind.as_str() {
            "Secret" => ["stringData", "data"].as_slice(),
            "ConfigMap" => ["data", "binaryData"].as_slice(),
            _ => continue,
        };
        let keys = provided
            .entry((
                r.id.kind.as_str(),
                r.id.scope.as_deref(),
                r.id.name.as_str(),
            ))
            .or_default();
        for f in field {
            if let Some(map) = r.body.get(f).and_then(Value::as_object) {
                keys.extend(map.keys().cloned());
            }
        }
    }
    for (key, keys) in &state.environment.external_secrets {
        if let Some((ns, name)) = key.split_once('/') {
            provided
                .entry(("Secret", Some(ns), name))
                .or_default()
                .extend(keys.iter().cloned());
        }
    }
    provided
}

/// The secret and config map keys one environment variable reads, unless optional.
fn env_references(
    r: &Resource,
    provided: &Provided,
    container: &Value,
    env: &Value,
    out: &mut Vec<Diagnostic>,
) {
    let ns = r.id.scope.as_deref();
    let cname = str_at(container, &["name"]).unwrap_or("?");
    let var = str_at(env, &["name"]).unwrap_or("?");
    for (source, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
        let Some(sel) = env.pointer(&["valueFrom", source]) else {
            continue;
        };
        if sel.get("optional") == Some(&Value::Bool(true)) {
            continue;
        }
        let (Some(name), Some(key)) = (str_at(sel, &["name"]), str_at(sel, &["key"])) else {
            continue;
        };
        let span = r
            .field_spans
            .get(&format!("env/{var}"))
            .cloned()
            .or_else(|| r.span.clone());
        let what = if kind == "Secret" {
            "secret"
        } else {
            "config map"
        };
        match provided.get(&(kind, ns, name)) {
            None => out.push(
                Diagnostic::error(Code::MissingSecret, format!(
                    "environment variable `{var}` of {} `{}` (container `{cname}`) reads {what} `{name}`, which the environment does not declare",
                    r.id.kind, r.id.name))
                    .at(span)
                    .label(format!("{what} `{name}` is not declared"))
                    .help(format!("declare the {what} with env.{}(\"{name}\", ...), or mark the reference optional", if kind == "Secret" { "secret" } else { "config_map" })),
            ),
            Some(keys) if !keys.contains(key) => {
                let mut d = Diagnostic::error(Code::MissingSecretKey, format!(
                    "environment variable `{var}` of {} `{}` reads key `{key}` of {what} `{name}`, which has no such key: the container would fail to start",
                    r.id.kind, r.id.name))
                    .at(span)
                    .label(format!("no key `{key}` in {what} `{name}`"));
                let known: Vec<&str> = keys.iter().map(String::as_str).collect();
                d = match closest(key, &known) {
                    Some(best) => d.help(format!("did you mean `{best}`? {what} `{name}` has: {}", known.join(", "))),
                    None => d.help(format!("{what} `{name}` has: {}", known.join(", "))),
                };
                out.push(d);
            }
            Some(_) => {}
        }
    }
}

/// The image pull secrets of a pod spec, which must be declared.
fn pull_secrets(r: &Resource, spec: &Value, provided: &Provided, out: &mut Vec<Diagnostic>) {
    let ns = r.id.scope.as_deref();
    let Some(pulls) = spec.get("imagePullSecrets") else {
        return;
    };
    for p in pulls.as_array() {
        if let Some(name) = str_at(p, &["name"])
            && !provided.contains_key(&("Secret", ns, name))
        {
            out.push(
                Diagnostic::error(Code::MissingSecret, format!(
                    "{} `{}` pulls its image with secret `{name}`, which the environment does not declare",
                    r.id.kind, r.id.name))
                    .at(r.span.clone())
                    .help("declare it with env.registry_secret(...)"),
            );
        }
    }
}

fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn certificates(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let records: Vec<String> = state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Dns)
        .filter(|r| matches!(str_at(&r.body, &["type"]), Some("A" | "AAAA" | "CNAME")))
        .filter_map(|r| {
            str_at(&r.body, &["name"]).map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        })
        .collect();
    let zone = state
        .environment
        .providers
        .get("dns")
        .and_then(|d| d.get("zone"))
        .and_then(Value::as_str)
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase());
    for r in state
        .resources
        .iter()
        .filter(|r| r.id.kind == "Certificate")
    {
        for name in r.body.get("names").map(Value::as_array).unwrap_or_default() {
            let Some(name) = name.as_str() else { continue };
            let lower = name.to_ascii_lowercase();
            let covered = if let Some(base) = lower.strip_prefix("*.") {
                records
                    .iter()
                    .any(|rec| rec == &lower || name_covers(&lower, rec) || rec == base)
            } else {
                records
                    .iter()
                    .any(|rec| rec == &lower || name_covers(rec, &lower))
            };
            if !covered {
                out.push(
                    Diagnostic::error(Code::CertificateNameNotCovered, format!(
                        "certificate `{}` is for `{name}`, but the environment has no DNS record for it",
                        r.id.name))
                        .at(r.span.clone())
                        .label(format!("`{name}` has no DNS record"))
                        .help("declare the name with env.dns_a(...) (or a CNAME), or remove it from the certificate"),
                );
            }
            if let Some(zone) = &zone {
                let bare = lower.trim_start_matches("*.");
                if bare != zone && !bare.ends_with(&format!(".{zone}")) {
                    out.push(
                        Diagnostic::error(Code::CertificateOutsideZone, format!(
                            "certificate `{}` is for `{name}`, outside the DNS zone `{zone}` cairn can write DNS-01 challenges to",
                            r.id.name))
                            .at(r.span.clone()),
                    );
                }
            }
        }
    }
}

/// A declared Secret named as a certificate's TLS Secret (`<certificate>-tls`): each apply
/// would write it as the one and then as the other, flipping its type, and the plan would
/// never converge. Reported at the later of the two declarations, naming the other.
fn tls_secret_collisions(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for cert in state
        .resources
        .iter()
        .filter(|r| r.id.provider == Provider::Acme && r.id.kind == "Certificate")
    {
        let Some(secret_name) = str_at(&cert.body, &["secret_name"]) else {
            continue;
        };
        let id = ResourceId::kube("Secret", cert.id.scope.as_deref(), secret_name);
        let Some(secret) = state.resources.iter().find(|r| r.id == id) else {
            continue;
        };
        let secret_later = match (&secret.span, &cert.span) {
            (Some(s), Some(c)) if s.file == c.file => s.offset > c.offset,
            _ => true,
        };
        let cert_name = &cert.id.name;
        let (at, other, label, other_label) = if secret_later {
            (
                secret,
                cert,
                format!("secret `{secret_name}` declared here"),
                format!("certificate `{cert_name}` keeps its TLS Secret `{secret_name}`"),
            )
        } else {
            (
                cert,
                secret,
                format!("certificate `{cert_name}` declared here"),
                format!("secret `{secret_name}` declared here"),
            )
        };
        let message = if secret_later {
            format!(
                "secret `{secret_name}` has the name of the TLS Secret of certificate `{cert_name}`, declared before it: each apply would overwrite the other"
            )
        } else {
            format!(
                "certificate `{cert_name}` keeps its TLS Secret as `{secret_name}`, the name of a secret declared before it: each apply would overwrite the other"
            )
        };
        out.push(
            Diagnostic::error(Code::TlsSecretCollision, message)
                .at(at.span.clone())
                .label(label)
                .related(other.span.clone(), other_label)
                .help(format!("certificate `{cert_name}` stores its key and chain in the Secret `{cert_name}-tls`: rename the secret or the certificate")),
        );
    }
}

fn generated_homes(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let mut used = BTreeSet::new();
    fn walk(v: &Value, used: &mut BTreeSet<u32>) {
        match v {
            Value::Sensitive(s) => used.extend(s.generated_ids()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, used)),
            Value::Object(map) => map.values().for_each(|i| walk(i, used)),
            _ => {}
        }
    }
    for r in &state.resources {
        walk(&r.body, &mut used);
    }
    for (id, g) in &state.generated {
        if g.home.is_none() && used.contains(id) {
            out.push(
                Diagnostic::error(Code::GeneratedWithoutHome, "a generated password is used only inside other values, so it could not be kept across runs")
                    .at(g.span.clone())
                    .help("store it alone under a key of a secret too, e.g. env.secret(\"db\", #{ PASSWORD: pw, URL: \"...\" + pw })"),
            );
        }
    }
}

fn sensitive_outside_secrets(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for r in state.kube_objects() {
        if r.id.kind != "Secret" && r.body.contains_sensitive() {
            out.push(
                Diagnostic::error(
                    Code::SensitiveOutsideSecret,
                    format!("{} holds a sensitive value; only Secrets may", r.id),
                )
                .at(r.span.clone())
                .help("put the value in env.secret(...) and reference its key"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers(
            "*.staging.example.com",
            "api.staging.example.com"
        ));
        assert!(!name_covers("*.staging.example.com", "staging.example.com"));
        assert!(!name_covers(
            "*.staging.example.com",
            "a.b.staging.example.com"
        ));
        assert!(name_covers("api.example.com", "API.example.com"));
    }

    #[test]
    fn closest_key_suggests_typos() {
        assert_eq!(
            closest("SECRET_KY", &["SECRET_KEY", "DEBUG"]),
            Some("SECRET_KEY")
        );
        assert_eq!(closest("ZZZ", &["SECRET_KEY"]), None);
    }
}
