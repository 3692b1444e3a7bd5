//! Conflicts with other field managers, told apart by who they are. Fields people last wrote
//! with their tools (`kubectl scale`, `kubectl edit`, `kubectl patch`…) are drift: cairn takes
//! them back, saying so, without `--force-conflicts`. Fields a controller owns (an HPA's
//! replicas through the scale subresource, anything `kube-controller-manager` writes, or a
//! manager the script lists in `leave_to`) are never taken: cairn leaves them out of what it
//! applies. Any other manager (Helm, Argo CD, an operator) is a conflict the plan shows, taken
//! over only with `--force-conflicts`.

use serde_json::Value as J;

/// One field another manager owns, from a 409's causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// The manager (`kubectl`, `kubectl-edit`, `kube-controller-manager`).
    pub manager: String,
    /// The subresource it wrote through (`scale`), if any.
    pub subresource: Option<String>,
    /// The field, as the server writes it (`.spec.replicas`, `.data.LEVEL`).
    pub field: String,
}

/// Who owns a field cairn wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A person, through a tool: drift to take back.
    Person,
    /// A controller: never taken.
    Controller,
    /// Another tool: taken only with `--force-conflicts`.
    Other,
}

/// Field managers of people's tools: `kubectl` and its subcommands, client-go's default.
const PEOPLE: &[&str] = &[
    "kubectl",
    "kubectl-edit",
    "kubectl-patch",
    "kubectl-client-side-apply",
    "kubectl-scale",
    "kubectl-set",
    "kubectl-label",
    "kubectl-annotate",
    "kubectl-rollout",
    "Go-http-client",
];

/// Field managers of controllers, besides [`crate::plan::CONTROLLER_MANAGERS`].
const CONTROLLERS: &[&str] = &["horizontal-pod-autoscaler", "cluster-autoscaler"];

/// The fields of a 409, from its causes (the message names the same, for people).
pub(crate) fn causes(status: &kube::core::Status) -> Vec<Cause> {
    let Some(details) = &status.details else {
        return Vec::new();
    };
    details
        .causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .filter_map(|c| {
            let (manager, rest) = quoted(&c.message)?;
            let subresource = rest
                .strip_prefix(" with subresource ")
                .and_then(quoted)
                .map(|(s, _)| s);
            Some(Cause {
                manager,
                subresource,
                field: c.field.clone(),
            })
        })
        .collect()
}

/// The first `"…"` of `text` and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some((
        text[start..start + len].to_owned(),
        &text[start + len + 1..],
    ))
}

/// Who `cause`'s manager is, given the managers the script leaves fields to.
pub(crate) fn owner(cause: &Cause, leave_to: &[String]) -> Owner {
    let m = cause.manager.as_str();
    if leave_to.iter().any(|l| l == m)
        || crate::plan::CONTROLLER_MANAGERS.contains(&m)
        || CONTROLLERS.contains(&m)
    {
        Owner::Controller
    } else if PEOPLE.contains(&m) {
        Owner::Person
    } else {
        Owner::Other
    }
}

/// A field as people read it: `spec.replicas`, `spec.template.spec.containers[name="web"].image`.
pub(crate) fn shown(field: &str) -> &str {
    field.strip_prefix('.').unwrap_or(field)
}

/// `kubectl (scale)`.
fn who(cause: &Cause) -> String {
    match &cause.subresource {
        Some(s) => format!("{} ({s})", cause.manager),
        None => cause.manager.clone(),
    }
}

/// `takes back spec.replicas from kubectl (scale)`.
pub(crate) fn taken_back(causes: &[&Cause]) -> String {
    let fields: Vec<String> = causes
        .iter()
        .map(|c| format!("{} from {}", shown(&c.field), who(c)))
        .collect();
    format!("takes back {}", fields.join(", "))
}

/// `leaves spec.replicas to kube-controller-manager (scale)`.
pub(crate) fn left(causes: &[&Cause]) -> String {
    let fields: Vec<String> = causes
        .iter()
        .map(|c| format!("{} to {}", shown(&c.field), who(c)))
        .collect();
    format!("leaves {}", fields.join(", "))
}

/// Removes `field` (the server's notation: `.a.b`, `.list[name="x"].c`, `.list[="v"]`) from an
/// apply body; whether it was there.
pub(crate) fn strip(body: &mut J, field: &str) -> bool {
    let steps = parse(field);
    remove(body, &steps)
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    /// A list item by its key field's value (`[name="web"]`), or a set item (`[="v"]`).
    Item {
        key: String,
        value: String,
    },
}

fn parse(field: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            let (key, value) = r[..end].split_once('=').unwrap_or(("", &r[..end]));
            steps.push(Step::Item {
                key: key.to_owned(),
                value: value.trim_matches('"').to_owned(),
            });
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            break;
        }
    }
    steps
}

fn remove(node: &mut J, steps: &[Step]) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return false;
    };
    match (first, node) {
        (Step::Key(k), J::Object(map)) if rest.is_empty() => map.remove(k).is_some(),
        (Step::Key(k), J::Object(map)) => map.get_mut(k).is_some_and(|n| remove(n, rest)),
        (Step::Item { key, value }, J::Array(items)) => {
            let matches = |item: &J| {
                let v = if key.is_empty() {
                    Some(item)
                } else {
                    item.get(key)
                };
                v.is_some_and(|v| v.as_str() == Some(value.as_str()) || &v.to_string() == value)
            };
            let Some(i) = items.iter().position(matches) else {
                return false;
            };
            if rest.is_empty() {
                items.remove(i);
                true
            } else {
                remove(&mut items[i], rest)
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_causes_of_a_recorded_conflict_name_the_manager_and_its_subresource() {
        let text = include_str!(
            "../../sandbox/testdata/kube-api/919-apply-deployment-conflict-with-scale.json"
        );
        let exchange: J = serde_json::from_str(text).expect("recorded exchange");
        let status: kube::core::Status =
            serde_json::from_value(exchange["response"]["body"].clone()).expect("a Status");
        let found = causes(&status);
        assert_eq!(
            found,
            vec![Cause {
                manager: "kubectl".into(),
                subresource: Some("scale".into()),
                field: ".spec.replicas".into(),
            }]
        );
        assert_eq!(owner(&found[0], &[]), Owner::Person);
        assert_eq!(owner(&found[0], &["kubectl".into()]), Owner::Controller);
        assert_eq!(
            taken_back(&[&found[0]]),
            "takes back spec.replicas from kubectl (scale)"
        );
    }

    #[test]
    fn fields_are_stripped_by_the_servers_path_notation() {
        let mut body = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "a"}, {"name": "side", "image": "b"}]}}}});
        assert!(strip(&mut body, ".spec.replicas"));
        assert!(strip(
            &mut body,
            ".spec.template.spec.containers[name=\"side\"].image"
        ));
        assert!(!strip(&mut body, ".spec.nothing"));
        assert_eq!(
            body,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "a"}, {"name": "side"}]}}}})
        );
    }
}
