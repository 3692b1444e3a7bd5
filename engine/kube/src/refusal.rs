//! The server's refusals, read: each cause as one line naming the field and the rule, without
//! the Go structs a v1.26 server prints as the value (`Invalid value: core.PodTemplateSpec{…}`)
//! or the `cmp.Diff` it appends. The whole answer stays for machine output.

use kube::core::Status;

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `spec.template`, `spec` (a StatefulSet's or a claim's whole spec), or empty (a 403 from
    /// admission names no field).
    pub field: String,
    /// The rule: `field is immutable`, `may not change once set`, …
    pub rule: String,
}

/// A change the server refused (a dry run says exactly what the write would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 422 (validation) or 403 (admission).
    pub code: u16,
    pub causes: Vec<Cause>,
    /// The server's message, whole.
    pub message: String,
}

/// Whether a 403 is the authorizer's (`User "bob" cannot patch resource …`): a missing
/// permission, an error to report, never a refusal of the change that a replacement could get
/// past.
fn rbac_denial(message: &str) -> bool {
    message
        .split_once(" is forbidden: ")
        .map_or(message, |(_, r)| r)
        .starts_with("User \"")
        && message.contains(" cannot ")
}

/// Rules that say a field cannot change in place: a new object could still have the value.
const IMMUTABILITY: &[&str] = &[
    "field is immutable",
    "may not change once set",
    "cannot change roleRef",
    "is immutable after creation",
    "updates to statefulset spec for fields other than",
];

impl Refusal {
    /// The refusal a Status describes; `None` for answers that are not refusals of the change
    /// (not found, conflicts, server errors).
    pub fn from_status(s: &Status) -> Option<Refusal> {
        if (s.code != 422 && s.code != 403) || rbac_denial(&s.message) {
            return None;
        }
        let mut causes: Vec<Cause> = s
            .details
            .iter()
            .flat_map(|d| &d.causes)
            .map(|c| Cause {
                field: c.field.clone(),
                rule: rule_of(&c.message),
            })
            .collect();
        causes.dedup();
        if causes.is_empty() {
            let rule = s
                .message
                .split_once(" is forbidden: ")
                .map_or(s.message.as_str(), |(_, r)| r);
            causes.push(Cause {
                field: String::new(),
                rule: first_line(rule).to_owned(),
            });
        }
        Some(Refusal {
            code: s.code,
            causes,
            message: s.message.clone(),
        })
    }

    /// Whether every cause is a field that cannot change in place (so creating the object
    /// again would take the change).
    pub fn immutable(&self) -> bool {
        self.code == 422
            && self
                .causes
                .iter()
                .all(|c| IMMUTABILITY.iter().any(|r| c.rule.contains(r)))
    }

    /// Whether a cause names `field`.
    pub fn names(&self, field: &str) -> bool {
        self.causes.iter().any(|c| c.field == field)
    }

    /// One line: `spec.template is immutable`, `spec.clusterIPs[0] may not change once set`,
    /// `spec: updates to … are forbidden`, causes joined with `; `.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .causes
            .iter()
            .map(|c| match (c.field.as_str(), c.rule.as_str()) {
                ("", rule) => rule.to_owned(),
                (f, rule) if rule.starts_with(&format!("{f} ")) => rule.to_owned(),
                (f, "field is immutable") => format!("{f} is immutable"),
                (f, rule)
                    if rule == "may not change once set" || rule.starts_with("cannot change") =>
                {
                    format!("{f} {rule}")
                }
                (f, rule) => format!("{f}: {rule}"),
            })
            .collect();
        parts.join("; ")
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim_end()
}

/// The rule of one cause message: `Invalid value: <value>: <rule>` → `<rule>`,
/// `Forbidden: <rule>\n<diff>` → `<rule>`, `Required value[: <rule>]` → as it is.
fn rule_of(message: &str) -> String {
    let line = first_line(message);
    if let Some(rest) = line.strip_prefix("Invalid value: ") {
        let after = skip_value(rest);
        return after.strip_prefix(": ").unwrap_or(after).to_owned();
    }
    for prefix in ["Forbidden: ", "Unsupported value: "] {
        if let Some(rule) = line.strip_prefix(prefix) {
            return rule.to_owned();
        }
    }
    line.to_owned()
}

/// What follows a printed value: a quoted string, a Go composite literal (`T{…}`, quotes and
/// nesting respected) or a bare word (a number, `null`).
fn skip_value(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'(' | b'[' => depth += 1,
                b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                b':' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => return &s[i..],
                _ => {}
            }
        }
        i += 1;
    }
    ""
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status(file: &str) -> Status {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/testdata/kube-api/");
        let text = std::fs::read_to_string(format!("{dir}{file}")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(v["response"]["body"].clone()).unwrap()
    }

    #[test]
    fn recorded_refusals_read_as_one_line_each() {
        let cases = [
            (
                "903-apply-job-template-changed.json",
                "spec.template is immutable",
                true,
            ),
            (
                "906-dryrun-apply-pvc-unbound-resized.json",
                "spec is immutable after creation except resources.requests for bound claims",
                true,
            ),
            (
                "910-dryrun-apply-pvc-bound-resized.json",
                "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
                false,
            ),
            (
                "913-dryrun-apply-statefulset-vct-resized.json",
                "spec: updates to statefulset spec for fields other than 'replicas', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                true,
            ),
            (
                "916-dryrun-apply-deployment-selector-changed.json",
                "spec.selector is immutable",
                true,
            ),
            (
                "917-apply-deployment-recreate.json",
                "spec.strategy.rollingUpdate: may not be specified when strategy `type` is 'Recreate'",
                false,
            ),
        ];
        for (file, summary, immutable) in cases {
            let r = Refusal::from_status(&status(file)).unwrap();
            assert_eq!(r.summary(), summary, "{file}");
            assert_eq!(r.immutable(), immutable, "{file}");
            assert!(!r.summary().contains("core."), "{file}: a Go dump is left");
        }
        assert!(
            Refusal::from_status(&status("919-apply-deployment-conflict-with-scale.json"))
                .is_none()
        );
    }

    #[test]
    fn a_missing_permission_is_no_refusal() {
        // The authorizer's words (kube-apiserver's `forbiddenMessage`).
        let denied: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "persistentvolumeclaims \"data\" is forbidden: User \"bob\" cannot patch resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"shop\"",
            "details": {"name": "data", "kind": "persistentvolumeclaims"}
        }))
        .unwrap();
        assert!(Refusal::from_status(&denied).is_none());
        // Admission's 403 still is one.
        assert!(Refusal::from_status(&status("910-dryrun-apply-pvc-bound-resized.json")).is_some());
    }

    #[test]
    fn values_with_colons_and_quotes_are_skipped() {
        assert_eq!(rule_of("Invalid value: \"a: b\": must be x"), "must be x");
        assert_eq!(
            rule_of("Invalid value: 2: field is immutable"),
            "field is immutable"
        );
        assert_eq!(
            rule_of("Invalid value: []string{\"None\"}: may not change once set"),
            "may not change once set"
        );
        assert_eq!(
            rule_of(
                "Invalid value: rbac.RoleRef{APIGroup:\"g\", Kind:\"Role\", Name:\"w\"}: cannot change roleRef"
            ),
            "cannot change roleRef"
        );
    }
}
