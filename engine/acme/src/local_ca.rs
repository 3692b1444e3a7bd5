//! The local CA of `--sandbox`: issues certificates itself, without any network.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::cert::read_leaf;
use crate::{AcmeError, Issued};

/// How the sandbox plan names this issuer.
pub const LOCAL_CA_DESCRIPTION: &str = "the local sandbox CA";

/// A self-signed CA kept in memory (or restored from its PEM data) that signs certificates for
/// any names.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn cert_err(what: &str) -> impl Fn(rcgen::Error) -> AcmeError + '_ {
    move |e| AcmeError::Certificate(format!("{what}: {e}"))
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

impl LocalCa {
    /// A new CA (ECDSA P-256), valid ten years from now.
    pub fn generate(common_name: &str) -> Result<LocalCa, AcmeError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(cert_err("the local CA's key"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "cairn sandbox");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = offset(now - Duration::from_secs(3600));
        params.not_after = offset(now + Duration::from_secs(10 * 365 * 86_400));
        let cert = params
            .self_signed(&key)
            .map_err(cert_err("the local CA's certificate"))?;
        Ok(LocalCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA restored from its certificate and PKCS#8 key (PEM), as kept by the sandbox.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<LocalCa, AcmeError> {
        let key = KeyPair::from_pem(key_pem).map_err(cert_err("the local CA's key"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(cert_err("the local CA's certificate"))?;
        Ok(LocalCa {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate (PEM), to trust it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (PKCS#8 PEM), to keep the CA.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a certificate for `names` (wildcards allowed) valid `validity` from `now`, with
    /// a new ECDSA P-256 key; the chain is the leaf then the CA.
    pub fn issue(
        &self,
        names: &[String],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Issued, AcmeError> {
        let names = crate::settings::normalize_names(names)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(cert_err("the certificate's key"))?;
        let mut params =
            CertificateParams::new(names.clone()).map_err(cert_err("the certificate's names"))?;
        params.distinguished_name = DistinguishedName::new();
        params.not_before = offset(now - Duration::from_secs(60));
        params.not_after = offset(now + validity);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_err("signing the certificate"))?;
        let cert_chain_pem = format!("{}{}", cert.pem(), self.cert_pem);
        let leaf = read_leaf(cert_chain_pem.as_bytes())?;
        Ok(Issued {
            cert_chain_pem,
            private_key_pem: key.serialize_pem(),
            not_after: leaf.not_after,
            names,
            issuer: LOCAL_CA_DESCRIPTION.to_owned(),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cert::{days_until, pem_certificates};

    #[test]
    fn local_ca_issues_for_names_and_wildcards() {
        let ca = LocalCa::generate("cairn sandbox CA").unwrap();
        let now = SystemTime::now();
        let names = vec!["Example.com.".to_owned(), "*.example.com".to_owned()];
        let issued = ca
            .issue(&names, now, Duration::from_secs(90 * 86_400))
            .unwrap();
        assert_eq!(issued.names, ["*.example.com", "example.com"]);
        assert_eq!(issued.issuer, LOCAL_CA_DESCRIPTION);
        assert_eq!(days_until(issued.not_after, now), 89);
        assert!(
            issued
                .private_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
        // leaf then CA, and the leaf is signed by the CA (issuer name = CA subject)
        let ders = pem_certificates(issued.cert_chain_pem.as_bytes()).unwrap();
        assert_eq!(ders.len(), 2);
        let leaf = read_leaf(issued.cert_chain_pem.as_bytes()).unwrap();
        let ca_info = read_leaf(ca.cert_pem().as_bytes()).unwrap();
        assert_eq!(leaf.names, ["*.example.com", "example.com"]);
        assert!(leaf.issuer.contains("cairn sandbox CA"), "{}", leaf.issuer);
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ders[1]).unwrap();
        let (_, leaf_cert) = x509_parser::parse_x509_certificate(&ders[0]).unwrap();
        assert!(ca_cert.is_ca());
        leaf_cert
            .verify_signature(Some(ca_cert.public_key()))
            .unwrap();
        assert!(ca_info.not_after > leaf.not_after);
    }

    #[test]
    fn local_ca_survives_a_round_trip_through_pem() {
        let ca = LocalCa::generate("cairn sandbox CA").unwrap();
        let again = LocalCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let issued = again
            .issue(
                &["api.example.com".to_owned()],
                SystemTime::now(),
                Duration::from_secs(86_400),
            )
            .unwrap();
        let ders = pem_certificates(issued.cert_chain_pem.as_bytes()).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&ders[0]).unwrap();
        let ca_ders = pem_certificates(ca.cert_pem().as_bytes()).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_ders[0]).unwrap();
        leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert!(LocalCa::from_pem("junk", "junk").is_err());
        assert!(
            again
                .issue(
                    &["not a name".to_owned()],
                    SystemTime::now(),
                    Duration::from_secs(1)
                )
                .is_err()
        );
    }
}
