//! Does everything the environment runs fit its namespace's ResourceQuota?
//!
//! Pods are counted the way the API server's quota admission counts them: each container's
//! requests and limits, defaulted from the namespace's LimitRange when absent; init containers
//! count as the largest of them. Deployments are counted at their rollout peak too (the default
//! `maxSurge` of 25 % adds pods while a new version rolls out), and Jobs and CronJobs while
//! they run — the "quota exceeded" failure that stops a rollout halfway. Every container of a
//! namespace with a LimitRange is held to its `max` and `min`, quota or not.

use cairn_model::Code;
use std::collections::BTreeMap;

use cairn_model::validate::Quantity;
use cairn_model::{DesiredState, Diagnostic, Resource, Value};

use crate::checks::{containers, pod_spec};

const COMPUTE: [(&str, &str, &str); 4] = [
    ("requests.cpu", "requests", "cpu"),
    ("requests.memory", "requests", "memory"),
    ("limits.cpu", "limits", "cpu"),
    ("limits.memory", "limits", "memory"),
];

#[derive(Default, Clone)]
struct LimitDefaults {
    request: BTreeMap<String, Quantity>,
    limit: BTreeMap<String, Quantity>,
    max: BTreeMap<String, Quantity>,
    min: BTreeMap<String, Quantity>,
}

fn quantities(v: Option<&Value>) -> BTreeMap<String, Quantity> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn limit_defaults(state: &DesiredState, ns: &str) -> LimitDefaults {
    let mut out = LimitDefaults::default();
    for r in state
        .kube_objects()
        .filter(|r| r.id.kind == "LimitRange" && r.id.scope.as_deref() == Some(ns))
    {
        for item in r
            .body
            .pointer(&["spec", "limits"])
            .map(Value::as_array)
            .unwrap_or_default()
        {
            if item.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            out.request.extend(quantities(item.get("defaultRequest")));
            out.limit.extend(quantities(item.get("default")));
            out.max.extend(quantities(item.get("max")));
            out.min.extend(quantities(item.get("min")));
        }
    }
    out
}

/// A container's requests and limits as admission defaults them.
fn defaulted_resources(
    c: &Value,
    defaults: &LimitDefaults,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let mut limits = quantities(c.pointer(&["resources", "limits"]));
    let mut requests = quantities(c.pointer(&["resources", "requests"]));
    for res in ["cpu", "memory"] {
        // Kubernetes defaults a missing request to the limit, then to the LimitRange's.
        if !requests.contains_key(res)
            && let Some(q) = limits
                .get(res)
                .or_else(|| defaults.request.get(res))
                .or_else(|| defaults.limit.get(res))
        {
            requests.insert(res.to_owned(), *q);
        }
    }
    for (res, q) in &defaults.limit {
        limits.entry(res.clone()).or_insert(*q);
    }
    (requests, limits)
}

/// Per-pod usage of one workload: (quota key → amount).
fn pod_usage(spec: &Value, defaults: &LimitDefaults) -> BTreeMap<&'static str, Quantity> {
    let mut regular: BTreeMap<&'static str, Quantity> = BTreeMap::new();
    let mut init_max: BTreeMap<&'static str, Quantity> = BTreeMap::new();
    for (list, c) in containers(spec) {
        let (requests, limits) = defaulted_resources(c, defaults);
        let target = if list == "initContainers" {
            &mut init_max
        } else {
            &mut regular
        };
        for (key, section, res) in COMPUTE {
            let q = if section == "requests" {
                requests.get(res)
            } else {
                limits.get(res)
            };
            if let Some(q) = q {
                if list == "initContainers" {
                    let e = target.entry(key).or_insert(*q);
                    if q > e {
                        *e = *q;
                    }
                } else {
                    add(target, key, *q);
                }
            }
        }
    }
    for (key, q) in init_max {
        let e = regular.entry(key).or_insert(q);
        if q > *e {
            *e = q;
        }
    }
    regular
}

struct Usage {
    steady: BTreeMap<&'static str, Quantity>,
    peak: BTreeMap<&'static str, Quantity>,
    lines: BTreeMap<&'static str, Vec<String>>,
    pods_peak: i64,
}

fn add(map: &mut BTreeMap<&'static str, Quantity>, key: &'static str, q: Quantity) {
    match map.get_mut(key) {
        Some(e) => *e = *e + q,
        None => {
            map.insert(key, q);
        }
    }
}

/// Checks every container of a namespace that has a LimitRange against its `max` and `min`,
/// with or without a quota: admission rejects such a pod, and its workload never becomes ready.
/// An autoscaler aims at a percentage of its pods' CPU requests: each container of the
/// workload it scales needs one (its own, its limit's, or the LimitRange's default), or the
/// autoscaler never knows the utilization and never scales.
pub fn check_autoscalers(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for hpa in state
        .kube_objects()
        .filter(|r| r.id.kind == "HorizontalPodAutoscaler")
    {
        let Some(ns) = hpa.id.scope.as_deref() else {
            continue;
        };
        let target = |k: &str| {
            hpa.body
                .pointer(&["spec", "scaleTargetRef", k])
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let id = cairn_model::ResourceId::kube(target("kind"), Some(ns), target("name"));
        let Some(workload) = state.get(&id) else {
            continue;
        };
        let Some(spec) = pod_spec(workload) else {
            continue;
        };
        let defaults = limit_defaults(state, ns);
        let missing: Vec<&str> = containers(spec)
            .filter(|(_, c)| {
                c.pointer(&["resources", "requests", "cpu"]).is_none()
                    && c.pointer(&["resources", "limits", "cpu"]).is_none()
                    && !defaults.request.contains_key("cpu")
                    && !defaults.limit.contains_key("cpu")
            })
            .filter_map(|(_, c)| c.get("name").and_then(Value::as_str))
            .collect();
        if !missing.is_empty() {
            out.push(
                Diagnostic::error(
                    Code::AutoscaleWithoutCpuRequest,
                    format!(
                        "{} `{}` is autoscaled on CPU, but its container(s) {} request no CPU: the autoscaler could never compute their utilization",
                        id.kind,
                        id.name,
                        missing.join(", ")
                    ),
                )
                .at(workload.span.clone())
                .help("set `resources: #{ cpu: \"250m\" }` (or `request_cpu`), or a namespace `container_defaults` request_cpu"),
            );
        }
    }
}

pub fn check_limit_ranges(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    let mut namespaces: Vec<&str> = state
        .kube_objects()
        .filter(|r| r.id.kind == "LimitRange")
        .filter_map(|r| r.id.scope.as_deref())
        .collect();
    namespaces.dedup();
    for ns in namespaces {
        let defaults = limit_defaults(state, ns);
        for r in state
            .kube_objects()
            .filter(|r| r.id.scope.as_deref() == Some(ns))
        {
            let Some(spec) = pod_spec(r) else { continue };
            for (_, c) in containers(spec) {
                outside_limit_range(r, c, ns, &defaults, out);
            }
        }
    }
}

/// A container's limits above the LimitRange's `max`, its requests below its `min`.
fn outside_limit_range(
    r: &Resource,
    c: &Value,
    ns: &str,
    defaults: &LimitDefaults,
    out: &mut Vec<Diagnostic>,
) {
    let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
    let (requests, limits) = defaulted_resources(c, defaults);
    let found = [
        ("limit", "above", &limits, &defaults.max, "max"),
        ("request", "below", &requests, &defaults.min, "min"),
    ];
    for (what, side, values, bounds, key) in found {
        for (res, bound) in bounds {
            let Some(v) = values.get(res) else { continue };
            let outside = if key == "max" { v > bound } else { v < bound };
            if outside {
                out.push(Diagnostic::error(Code::ExceedsLimitRange, format!(
                    "container `{cname}` of {} `{}` has a {res} {what} of {v}, {side} the {bound} namespace `{ns}` allows (LimitRange {key}): its pods would be rejected",
                    r.id.kind, r.id.name))
                    .at(r.span.clone())
                    .label(format!("{res} {what} {v}"))
                    .help(format!("set the container's {res} {what} within the namespace's container_defaults {key}_{res} ({bound}), or change that bound")));
            }
        }
    }
}

/// Checks every namespace that has a ResourceQuota.
pub fn check_quota(state: &DesiredState, out: &mut Vec<Diagnostic>) {
    for quota in state
        .kube_objects()
        .filter(|r| r.id.kind == "ResourceQuota")
    {
        let Some(ns) = quota.id.scope.as_deref() else {
            continue;
        };
        check_namespace(state, quota, ns, out);
    }
}

/// What the objects of a namespace need of its quota.
struct Needs {
    usage: Usage,
    pvcs: i64,
    storage: Option<Quantity>,
    load_balancers: i64,
}

/// Checks one quota against everything its namespace runs: per object as it is read (its
/// pods' usage, the resources the quota requires it to set), then the totals.
fn check_namespace(state: &DesiredState, quota: &Resource, ns: &str, out: &mut Vec<Diagnostic>) {
    let hard = quantities(quota.body.pointer(&["spec", "hard"]));
    let defaults = limit_defaults(state, ns);
    let mut needs = Needs {
        usage: Usage {
            steady: BTreeMap::new(),
            peak: BTreeMap::new(),
            lines: BTreeMap::new(),
            pods_peak: 0,
        },
        pvcs: 0,
        storage: None,
        load_balancers: 0,
    };
    let autoscaled = autoscaled(state, ns);
    for r in state
        .kube_objects()
        .filter(|r| r.id.scope.as_deref() == Some(ns))
    {
        needs.count_claims_and_balancers(r);
        let Some(spec) = pod_spec(r) else { continue };
        if r.id.kind == "CronJob"
            && r.body.pointer(&["spec", "suspend"]) == Some(&Value::Bool(true))
        {
            continue;
        }
        let max = autoscaled
            .get(&(r.id.kind.as_str(), r.id.name.as_str()))
            .copied();
        needs.add_workload(r, spec, &defaults, max);
        require_resources(quota, &hard, &defaults, r, spec, out);
    }
    report_compute(quota, ns, &hard, &needs.usage, out);
    report_counts(quota, ns, &hard, &needs, out);
}

/// The workloads of `ns` a HorizontalPodAutoscaler of the state scales: (kind, name) → its
/// `maxReplicas`, the most pods the quota must hold.
fn autoscaled<'a>(state: &'a DesiredState, ns: &str) -> BTreeMap<(&'a str, &'a str), i64> {
    state
        .kube_objects()
        .filter(|r| r.id.kind == "HorizontalPodAutoscaler" && r.id.scope.as_deref() == Some(ns))
        .filter_map(|r| {
            let target = r.body.pointer(&["spec", "scaleTargetRef"])?;
            let kind = target.get("kind").and_then(Value::as_str)?;
            let name = target.get("name").and_then(Value::as_str)?;
            let max = r
                .body
                .pointer(&["spec", "maxReplicas"])
                .and_then(Value::as_int)?;
            Some(((kind, name), max))
        })
        .collect()
}

impl Needs {
    fn count_claims_and_balancers(&mut self, r: &Resource) {
        match r.id.kind.as_str() {
            "PersistentVolumeClaim" => {
                self.pvcs += 1;
                if let Some(q) = r
                    .body
                    .pointer(&["spec", "resources", "requests", "storage"])
                    .and_then(Value::as_str)
                    .and_then(|s| Quantity::parse(s).ok())
                {
                    self.storage = Some(self.storage.map_or(q, |s| s + q));
                }
            }
            "Service"
                if r.body.pointer(&["spec", "type"]).and_then(Value::as_str)
                    == Some("LoadBalancer") =>
            {
                self.load_balancers += 1
            }
            _ => {}
        }
    }

    /// Adds a workload's pods: their replicas in steady state (an autoscaled one's at its
    /// autoscaler's `max`), plus a Deployment's surge at the rollout peak, and a StatefulSet's
    /// claims.
    fn add_workload(
        &mut self,
        r: &Resource,
        spec: &Value,
        defaults: &LimitDefaults,
        autoscaled_to: Option<i64>,
    ) {
        let int = |path: &[&str]| r.body.pointer(path).and_then(Value::as_int);
        let replicas = match (r.id.kind.as_str(), autoscaled_to) {
            ("Deployment" | "StatefulSet", Some(max)) => max,
            ("Deployment" | "StatefulSet", None) => int(&["spec", "replicas"]).unwrap_or(1),
            ("Job", _) => int(&["spec", "parallelism"]).unwrap_or(1),
            _ => 1,
        };
        let surge = if r.id.kind == "Deployment" && replicas > 0 {
            (replicas + 3) / 4
        } else {
            0
        };
        if r.id.kind == "StatefulSet"
            && let Some(templates) = r.body.pointer(&["spec", "volumeClaimTemplates"])
        {
            self.pvcs += replicas * i64::try_from(templates.as_array().len()).unwrap_or(0);
        }
        let per_pod = pod_usage(spec, defaults);
        let usage = &mut self.usage;
        usage.pods_peak += replicas + surge;
        for (key, q) in per_pod {
            add(&mut usage.steady, key, q.scale(replicas));
            add(&mut usage.peak, key, q.scale(replicas + surge));
            usage
                .lines
                .entry(key)
                .or_default()
                .push(format!("{} {}: {replicas} × {q}", r.id.kind, r.id.name));
        }
    }
}

/// Quota on limits makes a container without a limit (and no default) unschedulable.
fn require_resources(
    quota: &Resource,
    hard: &BTreeMap<String, Quantity>,
    defaults: &LimitDefaults,
    r: &Resource,
    spec: &Value,
    out: &mut Vec<Diagnostic>,
) {
    for (key, section, res) in COMPUTE {
        if !hard.contains_key(key) {
            continue;
        }
        for (_, c) in containers(spec) {
            let has = c.pointer(&["resources", section, res]).is_some()
                || (section == "requests"
                    && (c.pointer(&["resources", "limits", res]).is_some()
                        || defaults.request.contains_key(res)
                        || defaults.limit.contains_key(res)))
                || (section == "limits" && defaults.limit.contains_key(res));
            if !has {
                out.push(Diagnostic::error(Code::QuotaRequiresResources, format!(
                    "{} `{}` sets no {section}.{res}, but quota `{}` limits {key}: its pods would be rejected",
                    r.id.kind, r.id.name, quota.id.name)).at(r.span.clone())
                    .help(format!("set resources for it, or a LimitRange default for {res}")));
            }
        }
    }
}

/// CPU and memory over the quota, in steady state or at the rollout peak.
fn report_compute(
    quota: &Resource,
    ns: &str,
    hard: &BTreeMap<String, Quantity>,
    usage: &Usage,
    out: &mut Vec<Diagnostic>,
) {
    for (key, total) in &usage.steady {
        let Some(limit) = hard.get(*key) else {
            continue;
        };
        let peak = usage.peak.get(key).copied().unwrap_or(*total);
        let breakdown = usage
            .lines
            .get(key)
            .map(|l| l.join(", "))
            .unwrap_or_default();
        if total > limit {
            out.push(Diagnostic::error(Code::QuotaExceeded, format!(
                "pods of namespace `{ns}` need {key} = {total}, above the {limit} allowed by quota `{}`",
                quota.id.name))
                .at(quota.span.clone())
                .label(format!("{key}: {limit}"))
                .help(format!("{breakdown}; raise the quota or lower requests/replicas")));
        } else if peak > *limit {
            out.push(Diagnostic::error(Code::QuotaExceeded, format!(
                "during a rolling update pods of namespace `{ns}` need {key} = {peak} (steady state {total}), above the {limit} allowed by quota `{}`: the rollout would stall",
                quota.id.name))
                .at(quota.span.clone())
                .label(format!("{key}: {limit}"))
                .help(format!("{breakdown}; Deployments surge by 25 % while rolling out")));
        }
    }
}

/// Pods, claims, load balancers and storage over the quota.
fn report_counts(
    quota: &Resource,
    ns: &str,
    hard: &BTreeMap<String, Quantity>,
    needs: &Needs,
    out: &mut Vec<Diagnostic>,
) {
    let counts = [
        ("pods", needs.usage.pods_peak),
        ("persistentvolumeclaims", needs.pvcs),
        ("services.loadbalancers", needs.load_balancers),
    ];
    for (key, n) in counts {
        let Some(limit) = hard.get(key) else { continue };
        if Quantity::parse(&n.to_string()).is_ok_and(|q| q > *limit) {
            out.push(Diagnostic::error(Code::QuotaExceeded, format!(
                "namespace `{ns}` needs {key} = {n}, above the {limit} allowed by quota `{}`",
                quota.id.name)).at(quota.span.clone()).label(format!("{key}: {limit}")));
        }
    }
    if let (Some(total), Some(limit)) = (needs.storage, hard.get("requests.storage"))
        && total > *limit
    {
        out.push(Diagnostic::error(Code::QuotaExceeded, format!(
                "volume claims of namespace `{ns}` request {total} of storage, above the {limit} allowed by quota `{}`",
                quota.id.name)).at(quota.span.clone()).label(format!("requests.storage: {limit}")));
    }
}
