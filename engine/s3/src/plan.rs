//! Pure planning: the desired configuration against the live one, field by field.

use cairn_plan::plan::Action;
use std::collections::BTreeSet;

use cairn_plan::diff::FieldChange;
use serde::Serialize;
use serde_json::{Value as J, json};

use crate::config::{BucketConfig, LifecycleRule};
use crate::error::S3Error;
use crate::live::{LiveBucket, LiveRule, PublicAccessBlock, Versioning};

/// The plan of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketPlan {
    /// The bucket.
    pub bucket: String,
    /// What happens to it: [`Action::Create`] (created, then configured), [`Action::Update`]
    /// (the fields that differ are put again), [`Action::NoOp`] (the live bucket matches),
    /// [`Action::Delete`] (no longer declared, allowed to be deleted, and empty) or
    /// [`Action::Keep`] (no longer declared but protected: kept).
    pub action: Action,
    /// The fields that change (`versioning`, `encryption`, `block_public_access`,
    /// `lifecycle[PREFIX]`, `lifecycle[PREFIX].expiration_days`, `tags[KEY]`, `region`).
    pub fields: Vec<FieldChange>,
    /// Why (kept buckets, deletions, conflicts).
    pub reason: Option<String>,
    /// Something apply cannot do (the bucket lives in another region); apply refuses.
    pub conflict: Option<String>,
}

impl BucketPlan {
    /// Whether the plan changes anything.
    pub fn has_changes(&self) -> bool {
        !matches!(self.action, Action::NoOp | Action::Keep)
    }

    /// Whether a field under `group` (`lifecycle`, `tags`…) changes.
    pub fn touches(&self, group: &str) -> bool {
        self.fields.iter().any(|f| {
            f.path == group
                || f.path
                    .strip_prefix(group)
                    .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
        })
    }
}

fn change(out: &mut Vec<FieldChange>, path: String, before: Option<J>, after: Option<J>) {
    if before != after {
        out.push(FieldChange {
            path,
            before,
            after,
        });
    }
}

/// The region S3 means by a location constraint (`""` and `US` are us-east-1, `EU` eu-west-1).
pub fn normalize_region(region: &str) -> &str {
    match region {
        "" | "US" => "us-east-1",
        "EU" => "eu-west-1",
        r => r,
    }
}

fn pab_json(p: Option<&PublicAccessBlock>) -> Option<J> {
    match p {
        None => None,
        Some(p) if *p == PublicAccessBlock::all(true) => Some(J::Bool(true)),
        Some(p) if *p == PublicAccessBlock::all(false) => Some(J::Bool(false)),
        Some(p) => Some(json!({
            "block_public_acls": p.block_public_acls,
            "ignore_public_acls": p.ignore_public_acls,
            "block_public_policy": p.block_public_policy,
            "restrict_public_buckets": p.restrict_public_buckets,
        })),
    }
}

fn rule_json(r: &LifecycleRule) -> J {
    let mut o = serde_json::Map::new();
    if let Some(d) = r.expiration_days {
        o.insert("expiration_days".into(), d.into());
    }
    if let Some(d) = r.noncurrent_expiration_days {
        o.insert("noncurrent_expiration_days".into(), d.into());
    }
    J::Object(o)
}

fn live_rule_json(r: &LiveRule) -> J {
    let mut o = serde_json::Map::new();
    if let Some(d) = r.expiration_days {
        o.insert("expiration_days".into(), d.into());
    }
    if let Some(d) = r.noncurrent_expiration_days {
        o.insert("noncurrent_expiration_days".into(), d.into());
    }
    if !r.enabled {
        o.insert("enabled".into(), false.into());
    }
    if r.other {
        o.insert("other_conditions".into(), true.into());
    }
    J::Object(o)
}

fn lifecycle_changes(desired: &[LifecycleRule], live: &[LiveRule], out: &mut Vec<FieldChange>) {
    let mut used = vec![false; live.len()];
    for d in desired {
        let at = format!("lifecycle[{}]", d.prefix);
        let found = live
            .iter()
            .enumerate()
            .find(|(i, l)| !used[*i] && l.prefix == d.prefix);
        let Some((i, l)) = found else {
            change(out, at, None, Some(rule_json(d)));
            continue;
        };
        used[i] = true;
        if !l.enabled {
            change(
                out,
                format!("{at}.enabled"),
                Some(false.into()),
                Some(true.into()),
            );
        }
        if l.other {
            change(
                out,
                format!("{at}.other_conditions"),
                Some(true.into()),
                None,
            );
        }
        change(
            out,
            format!("{at}.expiration_days"),
            l.expiration_days.map(J::from),
            d.expiration_days.map(J::from),
        );
        change(
            out,
            format!("{at}.noncurrent_expiration_days"),
            l.noncurrent_expiration_days.map(J::from),
            d.noncurrent_expiration_days.map(J::from),
        );
    }
    for (l, used) in live.iter().zip(used) {
        if !used {
            change(
                out,
                format!("lifecycle[{}]", l.prefix),
                Some(live_rule_json(l)),
                None,
            );
        }
    }
}

/// Compares the desired bucket with the live one (`None`: it does not exist).
pub fn plan_bucket(desired: &BucketConfig, live: Option<&LiveBucket>) -> BucketPlan {
    let empty;
    let (action, live) = match live {
        Some(l) => (Action::Update, l),
        None => {
            empty = LiveBucket::empty(&desired.name, desired.region.as_deref());
            (Action::Create, &empty)
        }
    };
    let mut fields = Vec::new();
    let mut conflict = None;
    if let (Some(want), Some(have)) = (&desired.region, &live.region)
        && normalize_region(want) != normalize_region(have)
    {
        change(
            &mut fields,
            "region".into(),
            Some(normalize_region(have).into()),
            Some(want.as_str().into()),
        );
        conflict = Some(format!(
            "bucket {} exists in {}, not {want}: S3 cannot move a bucket",
            desired.name,
            normalize_region(have)
        ));
    }
    let versioning_after = match (desired.versioning, live.versioning) {
        (true, _) => Versioning::Enabled,
        (false, Versioning::Off) => Versioning::Off,
        (false, _) => Versioning::Suspended,
    };
    change(
        &mut fields,
        "versioning".into(),
        live.versioning.as_str().map(J::from),
        versioning_after.as_str().map(J::from),
    );
    change(
        &mut fields,
        "encryption".into(),
        live.encryption.clone().map(J::from),
        Some(desired.encryption.as_str().into()),
    );
    let pab_before = pab_json(live.public_access_block.as_ref());
    let pab_same = matches!(
        (desired.block_public_access, &pab_before),
        (true, Some(J::Bool(true))) | (false, None | Some(J::Bool(false)))
    );
    if !pab_same {
        change(
            &mut fields,
            "block_public_access".into(),
            pab_before,
            Some(desired.block_public_access.into()),
        );
    }
    lifecycle_changes(&desired.lifecycle, &live.lifecycle, &mut fields);
    let keys: BTreeSet<&String> = desired.tags.keys().chain(live.tags.keys()).collect();
    for k in keys {
        change(
            &mut fields,
            format!("tags[{k}]"),
            live.tags.get(k).cloned().map(J::from),
            desired.tags.get(k).cloned().map(J::from),
        );
    }
    let action = if action == Action::Update && fields.is_empty() {
        Action::NoOp
    } else {
        action
    };
    BucketPlan {
        bucket: desired.name.clone(),
        action,
        fields,
        reason: conflict.clone(),
        conflict,
    }
}

/// The plan for a bucket the script no longer declares. Without `allowed` (the script's
/// `env.allow_delete("Bucket", NAME)`) it is kept; a bucket holding objects (versions and
/// delete markers included) is never deleted: that is an error naming the count.
pub fn plan_delete(
    live: &LiveBucket,
    allowed: bool,
    object_count: u64,
) -> Result<BucketPlan, S3Error> {
    if !allowed {
        return Ok(BucketPlan {
            bucket: live.name.clone(),
            action: Action::Keep,
            fields: Vec::new(),
            reason: Some(format!(
                "holds data: cairn never deletes a bucket unless the script says env.allow_delete(\"Bucket\", \"{}\")",
                live.name
            )),
            conflict: None,
        });
    }
    if object_count > 0 {
        return Err(S3Error::NotEmpty {
            bucket: live.name.clone(),
            count: object_count,
        });
    }
    Ok(BucketPlan {
        bucket: live.name.clone(),
        action: Action::Delete,
        fields: Vec::new(),
        reason: Some("no longer declared; allowed by the script and empty".to_owned()),
        conflict: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Encryption;

    fn desired(days: u32) -> BucketConfig {
        BucketConfig {
            name: "acme-backups".into(),
            versioning: true,
            encryption: Encryption::Aes256,
            block_public_access: true,
            lifecycle: vec![LifecycleRule {
                prefix: "postgres/".into(),
                expiration_days: Some(days),
                noncurrent_expiration_days: Some(days),
            }],
            tags: BTreeMap::from([("team".to_owned(), "ops".to_owned())]),
            region: None,
        }
    }

    fn live_of(d: &BucketConfig) -> LiveBucket {
        LiveBucket {
            name: d.name.clone(),
            region: Some("us-east-1".into()),
            versioning: Versioning::Enabled,
            lifecycle: d
                .lifecycle
                .iter()
                .map(|r| LiveRule {
                    id: Some(r.rule_id()),
                    prefix: r.prefix.clone(),
                    enabled: true,
                    expiration_days: r.expiration_days,
                    noncurrent_expiration_days: r.noncurrent_expiration_days,
                    other: false,
                })
                .collect(),
            encryption: Some("AES256".into()),
            public_access_block: Some(PublicAccessBlock::all(true)),
            tags: d.tags.clone(),
        }
    }

    fn paths(p: &BucketPlan) -> Vec<&str> {
        p.fields.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn create_lists_every_field() {
        let p = plan_bucket(&desired(7), None);
        assert_eq!(p.action, Action::Create);
        assert_eq!(
            paths(&p),
            [
                "versioning",
                "encryption",
                "block_public_access",
                "lifecycle[postgres/]",
                "tags[team]"
            ]
        );
    }

    #[test]
    fn matching_bucket_is_no_change() {
        let d = desired(7);
        let p = plan_bucket(&d, Some(&live_of(&d)));
        assert_eq!(p.action, Action::NoOp);
        assert!(p.fields.is_empty());
        assert!(!p.has_changes());
    }

    #[test]
    fn retention_change_is_exactly_that_field() {
        let p = plan_bucket(&desired(30), Some(&live_of(&desired(7))));
        assert_eq!(p.action, Action::Update);
        assert_eq!(
            p.fields,
            [
                FieldChange {
                    path: "lifecycle[postgres/].expiration_days".into(),
                    before: Some(7.into()),
                    after: Some(30.into())
                },
                FieldChange {
                    path: "lifecycle[postgres/].noncurrent_expiration_days".into(),
                    before: Some(7.into()),
                    after: Some(30.into())
                }
            ]
        );
        assert!(p.touches("lifecycle") && !p.touches("tags") && !p.touches("versioning"));
    }

    #[test]
    fn versioning_false_never_unversions() {
        let mut d = desired(7);
        d.versioning = false;
        let mut live = live_of(&d);
        live.versioning = Versioning::Off;
        assert_eq!(plan_bucket(&d, Some(&live)).action, Action::NoOp);
        live.versioning = Versioning::Enabled;
        let p = plan_bucket(&d, Some(&live));
        assert_eq!(p.fields[0].after, Some("Suspended".into()));
    }

    #[test]
    fn unmanaged_rules_and_tags_are_removed() {
        let d = desired(7);
        let mut live = live_of(&d);
        live.lifecycle.push(LiveRule {
            id: Some("manual".into()),
            prefix: "tmp/".into(),
            enabled: true,
            expiration_days: Some(1),
            noncurrent_expiration_days: None,
            other: false,
        });
        live.tags.insert("owner".into(), "bob".into());
        live.public_access_block = Some(PublicAccessBlock {
            block_public_acls: true,
            ..PublicAccessBlock::default()
        });
        let p = plan_bucket(&d, Some(&live));
        assert_eq!(
            paths(&p),
            ["block_public_access", "lifecycle[tmp/]", "tags[owner]"]
        );
        assert_eq!(p.fields[2].after, None);
    }

    #[test]
    fn region_mismatch_is_a_conflict() {
        let mut d = desired(7);
        d.region = Some("eu-central-1".into());
        let p = plan_bucket(&d, Some(&live_of(&d)));
        assert!(p.conflict.is_some());
        assert_eq!(paths(&p), ["region"]);
        d.region = Some("us-east-1".into());
        let mut live = live_of(&d);
        live.region = Some(String::new());
        assert!(plan_bucket(&d, Some(&live)).conflict.is_none());
    }

    #[test]
    fn deletion_needs_permission_and_an_empty_bucket() {
        let live = live_of(&desired(7));
        assert_eq!(plan_delete(&live, false, 0).unwrap().action, Action::Keep);
        let err = plan_delete(&live, true, 3).unwrap_err();
        assert!(err.to_string().contains("holds 3 object"), "{err}");
        assert_eq!(plan_delete(&live, true, 0).unwrap().action, Action::Delete);
    }
}
