//! The registry of diagnostic codes: every code a script problem or plan-time check can carry,
//! each with what it means. Codes are stable (people filter on them, docs link them): add new
//! ones here, never reuse or rename one. `cairn docs --codes`-style listings and the docs read
//! [`Code::ALL`].

use serde::Serialize;

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $code:literal,)+) => {
        /// A diagnostic's stable, kebab-case code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// The code as printed: `invalid-option`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)+
                }
            }

            /// What the code means: its documentation, in one line.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

codes! {
    // Script evaluation.
    /// The script does not parse.
    SyntaxError = "syntax-error",
    /// The script raised an error while it ran (a type mismatch, an unknown function, a throw).
    ScriptError = "script-error",
    /// The script exceeded a sandbox limit (operations, call depth, sizes).
    ScriptLimit = "script-limit",
    /// The script file cannot be read.
    UnreadableScript = "unreadable-script",
    /// The script declares no `environment(...)`.
    MissingEnvironment = "missing-environment",
    /// The script declares two environments.
    DuplicateEnvironment = "duplicate-environment",
    /// A stdlib function was given an option it does not know.
    UnknownOption = "unknown-option",
    /// A required option is missing.
    MissingOption = "missing-option",
    /// An option has the wrong type or an invalid value.
    InvalidOption = "invalid-option",
    /// The script declares an environment and nothing in it.
    NothingDeclared = "nothing-declared",
    /// A setting an environment needs for what it declares is missing (a DNS zone, a bucket).
    MissingSetting = "missing-setting",
    /// An environment variable the script reads (`env_var`, `secret_env`) is not set.
    MissingEnvVar = "missing-env-var",
    /// A line of the `--env-file` is not `KEY=VALUE` (nor a comment or a blank line).
    InvalidEnvFile = "invalid-env-file",
    // Names and values.
    /// A Kubernetes object name is not a valid DNS-1123 name.
    InvalidName = "invalid-name",
    /// A label key or value is invalid.
    InvalidLabel = "invalid-label",
    /// A DNS name is invalid.
    InvalidDnsName = "invalid-dns-name",
    /// A DNS record value is invalid for its type.
    InvalidRecord = "invalid-record",
    /// A DNS name lies outside the environment's zone.
    OutsideZone = "outside-zone",
    /// A quantity (CPU, memory, storage) is invalid.
    InvalidQuantity = "invalid-quantity",
    /// A container's resources are invalid (a limit below its request).
    InvalidResources = "invalid-resources",
    /// A cron schedule is invalid.
    InvalidSchedule = "invalid-schedule",
    /// A duration is invalid.
    InvalidDuration = "invalid-duration",
    /// A container image reference is invalid.
    InvalidImage = "invalid-image",
    /// An image uses the `latest` tag (or none), so what runs is not what was planned.
    LatestTag = "latest-tag",
    /// An environment variable of a container is invalid.
    InvalidEnv = "invalid-env",
    /// An environment variable name is invalid.
    InvalidEnvName = "invalid-env-name",
    /// A container sets the same environment variable twice.
    DuplicateEnvVar = "duplicate-env-var",
    /// An address (host:port) is invalid.
    InvalidAddress = "invalid-address",
    /// A URL is invalid.
    InvalidUrl = "invalid-url",
    /// A bucket name breaks S3's naming rules.
    InvalidBucketName = "invalid-bucket-name",
    /// A PromQL expression of an alert rule is invalid.
    InvalidPromql = "invalid-promql",
    /// A smoke check is invalid.
    InvalidSmokeCheck = "invalid-smoke-check",
    /// A custom resource's apiVersion is invalid.
    InvalidApiVersion = "invalid-api-version",
    /// A custom resource's kind is invalid.
    InvalidKind = "invalid-kind",
    /// A Deployment serves traffic without a readiness probe.
    NoReadinessProbe = "no-readiness-probe",
    /// A probe checks a port (by number or name) that its container does not expose.
    ProbePortNotExposed = "probe-port-not-exposed",
    /// A sensitive value is put in a ConfigMap.
    SensitiveInConfigMap = "sensitive-in-config-map",
    /// A sensitive value is put somewhere other than a Secret.
    SensitiveOutsideSecret = "sensitive-outside-secret",
    /// A route's TLS certificate does not cover its host.
    TlsHostNotCovered = "tls-host-not-covered",
    // Whole-state checks.
    /// A connection the script implies (a workload to a backing service it uses, the ingress
    /// controller to a routed workload, a cluster's members to each other) is blocked by the
    /// namespace's NetworkPolicies.
    PathBlocked = "path-blocked",
    /// A connection to or from a namespace the environment must not talk to
    /// (`deny_namespaces`) is open.
    IsolationBreach = "isolation-breach",
    /// A NetworkPolicy or a workload's pod template cannot be analyzed (the API server would
    /// refuse it).
    MalformedNetworkPolicy = "malformed-network-policy",
    /// A scrape target or data source names an in-cluster host (`api`, `api.ns.svc`, a
    /// StatefulSet pod's name) that no workload of the environment serves: a typo, or a
    /// component not declared.
    UnknownHost = "unknown-host",
    /// A connection to a name outside the cluster cannot be proven open: the source's egress
    /// policies do not let it reach every public address on that port.
    PathUnproven = "path-unproven",
    /// Two declarations of the same namespace.
    DuplicateNamespace = "duplicate-namespace",
    /// Two declarations of the same resource.
    DuplicateResource = "duplicate-resource",
    /// A Secret a workload reads is not declared.
    MissingSecret = "missing-secret",
    /// A Secret key a workload reads is not declared.
    MissingSecretKey = "missing-secret-key",
    /// A generated password has no Secret key that holds it alone.
    GeneratedWithoutHome = "generated-without-home",
    /// The namespace's ResourceQuota is too small for what it runs (rollout surge included).
    QuotaExceeded = "quota-exceeded",
    /// A ResourceQuota on CPU or memory needs every container to declare them.
    QuotaRequiresResources = "quota-requires-resources",
    /// A container exceeds the namespace's LimitRange.
    ExceedsLimitRange = "exceeds-limit-range",
    /// A declared Secret has the name of a certificate's TLS Secret (`<certificate>-tls`).
    TlsSecretCollision = "tls-secret-collision",
    /// A certificate's name lies outside the DNS zone.
    CertificateOutsideZone = "certificate-outside-zone",
    /// A route's host is not among its certificate's names.
    CertificateNameNotCovered = "certificate-name-not-covered",
    // Projects and plugins.
    /// There is no `cairn.toml` where one is needed.
    NoProject = "no-project",
    /// `cairn.toml` is invalid.
    InvalidProjectConfig = "invalid-project-config",
    /// `cairn.lock` is invalid.
    InvalidLock = "invalid-lock",
    /// `cairn.lock` cannot be written.
    LockUnwritable = "lock-unwritable",
    /// A plugin's `plugin.toml` is invalid.
    InvalidPluginManifest = "invalid-plugin-manifest",
    /// An imported plugin is not found.
    PluginNotFound = "plugin-not-found",
    /// A plugin's files cannot be read.
    PluginUnreadable = "plugin-unreadable",
    /// A plugin is used but not in `cairn.lock`.
    PluginNotLocked = "plugin-not-locked",
    /// A plugin's content no longer matches `cairn.lock`.
    PluginChanged = "plugin-changed",
    /// A plugin's git source could not be fetched.
    PluginFetchFailed = "plugin-fetch-failed",
    /// A plugin needs a newer cairn (`min_cairn`).
    PluginNeedsNewerCairn = "plugin-needs-newer-cairn",
    /// Plugins import each other in a cycle.
    PluginImportCycle = "plugin-import-cycle",
    /// An alert rule queries a metric that no scrape target the script declares provides
    /// (`env.scrape(...)`, an exporter's `metrics: true`, `monitoring::stack`'s targets).
    MetricNotScraped = "metric-not-scraped",
    /// A workload autoscaled on CPU whose containers request no CPU: the autoscaler cannot
    /// compute their utilization.
    AutoscaleWithoutCpuRequest = "autoscale-without-cpu-request",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.split('-').all(|w| !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{s} is not kebab-case"
            );
            assert!(!code.meaning().is_empty(), "{s} has no meaning");
        }
    }
}
