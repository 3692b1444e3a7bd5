//! NetworkPolicies, read from the `Value` tree of a rendered manifest.
//!
//! The reading follows the API's rules: `policyTypes` defaults to `Ingress`, plus `Egress`
//! when `spec.egress` has rules; rules of a type the policy does not list are ignored; an
//! empty or missing `from`/`to` means every peer, empty or missing `ports` every port; a
//! policy type with no rule denies. What the API server would reject is a [`ReachError`].

use std::collections::BTreeSet;

use cairn_model::Value;

use super::model::{Cidr, Labels, Operator, Peer, Protocol, Requirement, Selector};
use super::ports::{PORT_MAX, PORT_MIN, PortSet};

/// A malformed NetworkPolicy (or workload port): the object, the field, the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {problem}")]
pub struct ReachError {
    /// `NetworkPolicy ns/name`, `Deployment ns/name`.
    pub object: String,
    /// The field, as a path: `spec.ingress[0].ports[1].port`.
    pub field: String,
    /// What is wrong with it (part of the message, not a cause).
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The value has the wrong shape.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A policy type other than `Ingress` and `Egress`.
    #[error("unknown policy type {0:?} (Ingress or Egress)")]
    PolicyType(String),
    /// A protocol other than TCP, UDP and SCTP.
    #[error("unknown protocol {0:?} (TCP, UDP or SCTP)")]
    Protocol(String),
    /// A selector operator the API does not know.
    #[error("unknown operator {0:?} (In, NotIn, Exists or DoesNotExist)")]
    Operator(String),
    /// `In`/`NotIn` without values, or `Exists`/`DoesNotExist` with some.
    #[error("operator {0} {1}")]
    Values(&'static str, &'static str),
    /// Not an address block.
    #[error("invalid CIDR {0:?}")]
    Cidr(String),
    /// A port number outside 1-65535.
    #[error("port {0} is outside 1-65535")]
    PortRange(i64),
    /// `endPort` below `port`.
    #[error("endPort {end} is below port {port}")]
    EndBelowPort {
        /// The port.
        port: u16,
        /// The end port.
        end: u16,
    },
    /// `endPort` with a named port or none.
    #[error("endPort needs a numeric port")]
    EndPortWithoutNumber,
    /// A peer that sets both `ipBlock` and a selector, or nothing.
    #[error("a peer sets either ipBlock or podSelector/namespaceSelector")]
    Peer,
}

/// One NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The pods (of its namespace) it applies to.
    pub pod_selector: Selector,
    /// The ingress rules, when the policy isolates ingress (an empty list denies all).
    pub ingress: Option<Vec<Rule>>,
    /// The egress rules, when the policy isolates egress.
    pub egress: Option<Vec<Rule>>,
}

/// An ingress or egress rule: traffic with one of the peers on one of the ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The peers (`from` or `to`); empty means every peer.
    pub peers: Vec<PolicyPeer>,
    /// The ports; empty means every port.
    pub ports: Vec<PolicyPort>,
}

/// A peer of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPeer {
    /// Pods: those the pod selector picks (all when absent) in the namespaces the namespace
    /// selector picks (the policy's own when absent).
    Pods {
        /// `podSelector`.
        pods: Option<Selector>,
        /// `namespaceSelector`.
        namespaces: Option<Selector>,
    },
    /// Addresses: in `cidr`, outside every `except`.
    IpBlock {
        /// The block.
        cidr: Cidr,
        /// The blocks left out.
        except: Vec<Cidr>,
    },
}

/// A port of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPort {
    /// The protocol (TCP when not given).
    pub protocol: Protocol,
    /// The port: every port of the protocol when `None`.
    pub port: Option<PortRef>,
    /// The end of a port range.
    pub end_port: Option<u16>,
}

/// A port given by number or by the name of a destination's container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// A number.
    Number(u16),
    /// A container port's name.
    Name(String),
}

impl PolicyPeer {
    /// Whether this peer of a policy in `policy_ns` matches `peer`, whose namespace has
    /// `ns_labels`.
    pub fn matches(&self, policy_ns: &str, peer: &Peer, ns_labels: Option<&Labels>) -> bool {
        match self {
            PolicyPeer::Pods { pods, namespaces } => {
                let Some(peer_ns) = &peer.namespace else {
                    return false;
                };
                let ns_ok = match (namespaces, ns_labels) {
                    (None, _) => peer_ns == policy_ns,
                    (Some(sel), Some(labels)) => sel.matches(labels),
                    (Some(sel), None) => sel.matches(&Labels::new()),
                };
                ns_ok && pods.as_ref().is_none_or(|s| s.matches(&peer.labels))
            }
            PolicyPeer::IpBlock { cidr, except } => peer
                .address
                .is_some_and(|a| cidr.contains(&a) && !except.iter().any(|e| e.overlaps(&a))),
        }
    }
}

impl Rule {
    /// The ports this rule opens towards `dest` (named ports resolved against its container
    /// ports).
    pub fn ports_to(&self, dest: &Peer) -> PortSet {
        if self.ports.is_empty() {
            return PortSet::all();
        }
        let mut set = PortSet::none();
        for p in &self.ports {
            match &p.port {
                None => set.add(p.protocol, PORT_MIN, PORT_MAX),
                Some(PortRef::Number(n)) => set.add(p.protocol, *n, p.end_port.unwrap_or(*n)),
                Some(PortRef::Name(name)) => {
                    for c in &dest.ports {
                        if c.name.as_deref() == Some(name) && c.protocol == p.protocol {
                            set.add(p.protocol, c.number, c.number);
                        }
                    }
                }
            }
        }
        set
    }
}

/// Where a field is, for errors.
struct Ctx<'a> {
    object: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, problem: Problem) -> ReachError {
        ReachError {
            object: self.object.to_owned(),
            field: field.into(),
            problem,
        }
    }
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !matches!(v, Value::Null))
}

fn array<'a>(
    ctx: &Ctx,
    v: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a [Value]>, ReachError> {
    match present(v) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(ctx.err(field, Problem::Expected("a list"))),
    }
}

fn string<'a>(ctx: &Ctx, v: &'a Value, field: &str) -> Result<&'a str, ReachError> {
    v.as_str()
        .ok_or_else(|| ctx.err(field, Problem::Expected("a string")))
}

fn labels(ctx: &Ctx, v: Option<&Value>, field: &str) -> Result<Labels, ReachError> {
    let Some(v) = present(v) else {
        return Ok(Labels::new());
    };
    let map = v
        .as_object()
        .ok_or_else(|| ctx.err(field, Problem::Expected("a map of strings")))?;
    map.iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                string(ctx, v, &format!("{field}.{k}"))?.to_owned(),
            ))
        })
        .collect()
}

fn selector(ctx: &Ctx, v: &Value, field: &str) -> Result<Selector, ReachError> {
    if matches!(v, Value::Null) {
        return Ok(Selector::all());
    }
    if v.as_object().is_none() {
        return Err(ctx.err(field, Problem::Expected("a label selector")));
    }
    let match_labels = labels(ctx, v.get("matchLabels"), &format!("{field}.matchLabels"))?;
    let mut match_expressions = Vec::new();
    let exprs_field = format!("{field}.matchExpressions");
    for (i, e) in array(ctx, v.get("matchExpressions"), &exprs_field)?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match_expressions.push(requirement(ctx, e, &format!("{exprs_field}[{i}]"))?);
    }
    Ok(Selector {
        match_labels,
        match_expressions,
    })
}

fn requirement(ctx: &Ctx, v: &Value, field: &str) -> Result<Requirement, ReachError> {
    let get = |k: &str| {
        present(v.get(k))
            .ok_or_else(|| ctx.err(format!("{field}.{k}"), Problem::Expected("a string")))
    };
    let key = string(ctx, get("key")?, &format!("{field}.key"))?.to_owned();
    let op_field = format!("{field}.operator");
    let op = string(ctx, get("operator")?, &op_field)?;
    let operator = match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(ctx.err(op_field, Problem::Operator(other.to_owned()))),
    };
    let values_field = format!("{field}.values");
    let values = array(ctx, v.get("values"), &values_field)?
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, s)| Ok(string(ctx, s, &format!("{values_field}[{i}]"))?.to_owned()))
        .collect::<Result<BTreeSet<_>, ReachError>>()?;
    let needs_values = matches!(operator, Operator::In | Operator::NotIn);
    if needs_values && values.is_empty() {
        return Err(ctx.err(
            values_field,
            Problem::Values(op_name(operator), "needs values"),
        ));
    }
    if !needs_values && !values.is_empty() {
        return Err(ctx.err(
            values_field,
            Problem::Values(op_name(operator), "takes no values"),
        ));
    }
    Ok(Requirement {
        key,
        operator,
        values,
    })
}

fn op_name(op: Operator) -> &'static str {
    match op {
        Operator::In => "In",
        Operator::NotIn => "NotIn",
        Operator::Exists => "Exists",
        Operator::DoesNotExist => "DoesNotExist",
    }
}

fn cidr(ctx: &Ctx, v: &Value, field: &str) -> Result<Cidr, ReachError> {
    let s = string(ctx, v, field)?;
    Cidr::parse(s, false).ok_or_else(|| ctx.err(field, Problem::Cidr(s.to_owned())))
}

fn peer(ctx: &Ctx, v: &Value, field: &str) -> Result<PolicyPeer, ReachError> {
    if v.as_object().is_none() {
        return Err(ctx.err(field, Problem::Expected("a peer")));
    }
    let pods = present(v.get("podSelector"));
    let namespaces = present(v.get("namespaceSelector"));
    if let Some(block) = present(v.get("ipBlock")) {
        if pods.is_some() || namespaces.is_some() {
            return Err(ctx.err(field, Problem::Peer));
        }
        let bf = format!("{field}.ipBlock");
        let c = present(block.get("cidr"))
            .ok_or_else(|| ctx.err(format!("{bf}.cidr"), Problem::Expected("a CIDR")))?;
        let block_cidr = cidr(ctx, c, &format!("{bf}.cidr"))?;
        let ef = format!("{bf}.except");
        let except = array(ctx, block.get("except"), &ef)?
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, e)| cidr(ctx, e, &format!("{ef}[{i}]")))
            .collect::<Result<_, _>>()?;
        return Ok(PolicyPeer::IpBlock {
            cidr: block_cidr,
            except,
        });
    }
    if pods.is_none() && namespaces.is_none() {
        return Err(ctx.err(field, Problem::Peer));
    }
    Ok(PolicyPeer::Pods {
        pods: pods
            .map(|p| selector(ctx, p, &format!("{field}.podSelector")))
            .transpose()?,
        namespaces: namespaces
            .map(|n| selector(ctx, n, &format!("{field}.namespaceSelector")))
            .transpose()?,
    })
}

fn port_number(ctx: &Ctx, n: i64, field: &str) -> Result<u16, ReachError> {
    u16::try_from(n)
        .ok()
        .filter(|p| *p >= PORT_MIN)
        .ok_or_else(|| ctx.err(field, Problem::PortRange(n)))
}

fn port(ctx: &Ctx, v: &Value, field: &str) -> Result<PolicyPort, ReachError> {
    if v.as_object().is_none() {
        return Err(ctx.err(field, Problem::Expected("a port")));
    }
    let protocol = match present(v.get("protocol")) {
        None => Protocol::Tcp,
        Some(p) => {
            let pf = format!("{field}.protocol");
            let s = string(ctx, p, &pf)?;
            Protocol::parse(s).ok_or_else(|| ctx.err(pf, Problem::Protocol(s.to_owned())))?
        }
    };
    let pf = format!("{field}.port");
    let port = match present(v.get("port")) {
        None => None,
        Some(Value::Int(n)) => Some(PortRef::Number(port_number(ctx, *n, &pf)?)),
        Some(Value::String(s)) => Some(PortRef::Name(s.clone())),
        Some(_) => return Err(ctx.err(pf, Problem::Expected("a port number or name"))),
    };
    let ef = format!("{field}.endPort");
    let end_port = match present(v.get("endPort")) {
        None => None,
        Some(Value::Int(n)) => Some(port_number(ctx, *n, &ef)?),
        Some(_) => return Err(ctx.err(ef, Problem::Expected("a port number"))),
    };
    match (&port, end_port) {
        (Some(PortRef::Number(p)), Some(e)) if e < *p => {
            Err(ctx.err(ef, Problem::EndBelowPort { port: *p, end: e }))
        }
        (Some(PortRef::Number(_)), _) | (_, None) => Ok(PolicyPort {
            protocol,
            port,
            end_port,
        }),
        _ => Err(ctx.err(ef, Problem::EndPortWithoutNumber)),
    }
}

fn rules(
    ctx: &Ctx,
    v: Option<&Value>,
    field: &str,
    peers_key: &str,
) -> Result<Vec<Rule>, ReachError> {
    let mut out = Vec::new();
    for (i, r) in array(ctx, v, field)?.unwrap_or_default().iter().enumerate() {
        let rf = format!("{field}[{i}]");
        if r.as_object().is_none() {
            return Err(ctx.err(rf, Problem::Expected("a rule")));
        }
        let pk = format!("{rf}.{peers_key}");
        let peers = array(ctx, r.get(peers_key), &pk)?
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, p)| peer(ctx, p, &format!("{pk}[{j}]")))
            .collect::<Result<_, _>>()?;
        let portf = format!("{rf}.ports");
        let ports = array(ctx, r.get("ports"), &portf)?
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, p)| port(ctx, p, &format!("{portf}[{j}]")))
            .collect::<Result<_, _>>()?;
        out.push(Rule { peers, ports });
    }
    Ok(out)
}

impl Policy {
    /// Reads a NetworkPolicy manifest; `namespace` is used when the manifest names none.
    pub fn from_value(body: &Value, namespace: Option<&str>) -> Result<Policy, ReachError> {
        let name = body
            .pointer(&["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or("?");
        let ns = body
            .pointer(&["metadata", "namespace"])
            .and_then(Value::as_str)
            .or(namespace)
            .unwrap_or("default");
        let object = format!("NetworkPolicy {ns}/{name}");
        let ctx = Ctx { object: &object };
        if name == "?" {
            return Err(ctx.err("metadata.name", Problem::Expected("a name")));
        }
        let spec = present(body.get("spec")).unwrap_or(&Value::Null);
        if !matches!(spec, Value::Null) && spec.as_object().is_none() {
            return Err(ctx.err("spec", Problem::Expected("an object")));
        }
        let pod_selector = selector(
            &ctx,
            spec.get("podSelector").unwrap_or(&Value::Null),
            "spec.podSelector",
        )?;
        let ingress = rules(&ctx, spec.get("ingress"), "spec.ingress", "from")?;
        let egress = rules(&ctx, spec.get("egress"), "spec.egress", "to")?;
        let (isolate_in, isolate_out) = policy_types(&ctx, spec, !egress.is_empty())?;
        Ok(Policy {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            pod_selector,
            ingress: isolate_in.then_some(ingress),
            egress: isolate_out.then_some(egress),
        })
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the policy applies to a peer's pods.
    pub fn selects(&self, peer: &Peer) -> bool {
        peer.namespace.as_deref() == Some(self.namespace.as_str())
            && self.pod_selector.matches(&peer.labels)
    }
}

/// (isolates ingress, isolates egress), defaulted as the API server does when not given.
fn policy_types(ctx: &Ctx, spec: &Value, has_egress: bool) -> Result<(bool, bool), ReachError> {
    let types = array(ctx, spec.get("policyTypes"), "spec.policyTypes")?.unwrap_or_default();
    if types.is_empty() {
        return Ok((true, has_egress));
    }
    let (mut ingress, mut egress) = (false, false);
    for (i, t) in types.iter().enumerate() {
        let f = format!("spec.policyTypes[{i}]");
        match string(ctx, t, &f)? {
            "Ingress" => ingress = true,
            "Egress" => egress = true,
            other => return Err(ctx.err(f, Problem::PolicyType(other.to_owned()))),
        }
    }
    Ok((ingress, egress))
}
