//! The Kubernetes Secrets the provider produces: the TLS Secret and the account Secret.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::Issued;
use crate::cert::rfc3339;

/// The label every object cairn manages carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cairn");
/// Annotation: the certificate's names, comma-separated.
pub const ANNOTATION_NAMES: &str = "cairn.dev/certificate-names";
/// Annotation: the certificate's notAfter (RFC 3339).
pub const ANNOTATION_NOT_AFTER: &str = "cairn.dev/certificate-not-after";
/// Annotation: who issued it (directory URL, or the local sandbox CA).
pub const ANNOTATION_ISSUER: &str = "cairn.dev/certificate-issuer";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A `kubernetes.io/tls` Secret holding the chain (`tls.crt`) and key (`tls.key`), the keys
/// cert-manager and Ingress controllers use, labelled as managed by cairn and annotated with
/// the names and notAfter. The key is in the returned body only: never print it.
pub fn tls_secret_manifest(namespace: &str, secret_name: &str, issued: &Issued) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
            "annotations": {
                ANNOTATION_NAMES: issued.names.join(","),
                ANNOTATION_NOT_AFTER: rfc3339(issued.not_after),
                ANNOTATION_ISSUER: issued.issuer,
            },
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(&issued.cert_chain_pem),
            "tls.key": b64(&issued.private_key_pem),
        },
    })
}
