//! Conversions between cairn's normalized record text and hickory's wire types. Nothing here
//! is public: hickory types stay inside the crate.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, MX, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType as HType};

use crate::DnsError;
use crate::record::{RecordType, normalize_name, txt_chunks};

pub(crate) fn name(s: &str) -> Result<Name, DnsError> {
    let fq = if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&fq).map_err(|e| DnsError::InvalidRecord {
        what: format!("name \"{s}\""),
        reason: e.to_string(),
    })
}

pub(crate) fn htype(t: &RecordType) -> HType {
    match t {
        RecordType::A => HType::A,
        RecordType::Aaaa => HType::AAAA,
        RecordType::Cname => HType::CNAME,
        RecordType::Txt => HType::TXT,
        RecordType::Mx => HType::MX,
        RecordType::Srv => HType::SRV,
        RecordType::Caa => HType::CAA,
        RecordType::Other(s) => s.parse().unwrap_or(HType::Unknown(0)),
    }
}

pub(crate) fn rtype(t: HType) -> RecordType {
    match t {
        HType::A => RecordType::A,
        HType::AAAA => RecordType::Aaaa,
        HType::CNAME => RecordType::Cname,
        HType::TXT => RecordType::Txt,
        HType::MX => RecordType::Mx,
        HType::SRV => RecordType::Srv,
        HType::CAA => RecordType::Caa,
        other => RecordType::Other(other.to_string()),
    }
}

fn bad(t: &RecordType, v: &str, why: &str) -> DnsError {
    DnsError::InvalidRecord {
        what: format!("{t} value \"{v}\""),
        reason: why.to_owned(),
    }
}

/// The record data for one normalized value.
pub(crate) fn to_rdata(t: &RecordType, v: &str) -> Result<RData, DnsError> {
    let fields: Vec<&str> = v.split_whitespace().collect();
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad(t, v, "not a number"));
    Ok(match t {
        RecordType::A => RData::A(A(v
            .parse::<Ipv4Addr>()
            .map_err(|_| bad(t, v, "not IPv4"))?)),
        RecordType::Aaaa => RData::AAAA(AAAA(
            v.parse::<Ipv6Addr>().map_err(|_| bad(t, v, "not IPv6"))?,
        )),
        RecordType::Cname => RData::CNAME(CNAME(name(v)?)),
        RecordType::Mx => match fields[..] {
            [p, target] => RData::MX(MX::new(num(p)?, name(target)?)),
            _ => return Err(bad(t, v, "expected `PREFERENCE TARGET`")),
        },
        RecordType::Srv => match fields[..] {
            [p, w, port, target] => {
                RData::SRV(SRV::new(num(p)?, num(w)?, num(port)?, name(target)?))
            }
            _ => return Err(bad(t, v, "expected `PRIORITY WEIGHT PORT TARGET`")),
        },
        RecordType::Txt => RData::TXT(TXT::from_bytes(txt_chunks(v.as_bytes()))),
        RecordType::Caa => {
            // normalized: `FLAGS tag "value"` with `\"` and `\\` escaped
            let mut parts = v.splitn(3, ' ');
            let (Some(flags), Some(tag), Some(quoted)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(t, v, "expected `FLAGS TAG \"VALUE\"`"));
            };
            let flags: u8 = flags.parse().map_err(|_| bad(t, v, "bad flags"))?;
            let inner = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .ok_or_else(|| bad(t, v, "value not quoted"))?;
            let mut value = Vec::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                let c = if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                };
                let mut buf = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            let mut caa = CAA::new_issue(false, None, Vec::new());
            caa.issuer_critical = flags & 0x80 != 0;
            caa.reserved_flags = flags & 0x7f;
            caa.tag = tag.to_owned();
            caa.value = value;
            RData::CAA(caa)
        }
        RecordType::Other(_) => return Err(bad(t, v, "cairn does not write records of this type")),
    })
}

/// A record as (owner name, type, ttl, normalized value); `None` for records of no interest
/// (TSIG, OPT, DNSSEC…).
pub(crate) fn from_record(r: &Record) -> Option<(String, RecordType, u32, String)> {
    let owner = normalize_name(&r.name.to_ascii()).ok()?;
    let target = |n: &Name| {
        let s = n.to_ascii().to_ascii_lowercase();
        if s.ends_with('.') { s } else { format!("{s}.") }
    };
    let (t, v) = match &r.data {
        RData::A(a) => (RecordType::A, a.0.to_string()),
        RData::AAAA(a) => (RecordType::Aaaa, a.0.to_string()),
        RData::CNAME(c) => (RecordType::Cname, target(&c.0)),
        RData::MX(mx) => (
            RecordType::Mx,
            format!("{} {}", mx.preference, target(&mx.exchange)),
        ),
        RData::SRV(s) => (
            RecordType::Srv,
            format!(
                "{} {} {} {}",
                s.priority,
                s.weight,
                s.port,
                target(&s.target)
            ),
        ),
        RData::TXT(txt) => {
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            (
                RecordType::Txt,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
        RData::CAA(caa) => {
            let value = String::from_utf8_lossy(&caa.value);
            let mut q = String::from("\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            (
                RecordType::Caa,
                format!("{} {} {q}", caa.flags(), caa.tag.to_ascii_lowercase()),
            )
        }
        RData::Update0(_) | RData::OPT(_) | RData::TSIG(_) => return None,
        other => {
            let t = other.record_type();
            if t.is_dnssec() {
                return None;
            }
            (rtype(t), other.to_string())
        }
    };
    Some((owner, t, r.ttl, v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::normalize_value;

    fn round_trip(t: RecordType, v: &str) {
        let n = normalize_value(&t, v).unwrap();
        let rdata = to_rdata(&t, &n).unwrap();
        let rec = Record::from_rdata(name("x.example.com").unwrap(), 60, rdata);
        let (owner, t2, ttl, v2) = from_record(&rec).unwrap();
        assert_eq!((owner.as_str(), ttl), ("x.example.com", 60));
        assert_eq!(t2, t);
        assert_eq!(v2, n, "{t} {v}");
    }

    #[test]
    fn values_survive_the_wire() {
        round_trip(RecordType::A, "192.0.2.1");
        round_trip(RecordType::Aaaa, "2001:DB8::0:1");
        round_trip(RecordType::Cname, "Target.Example.com.");
        round_trip(RecordType::Mx, "10 mail.example.com");
        round_trip(RecordType::Srv, "10 5 5060 sip.example.com.");
        round_trip(RecordType::Txt, "v=spf1 -all");
        round_trip(RecordType::Txt, &"long text ".repeat(70));
        round_trip(RecordType::Txt, "say \"hi\"");
        round_trip(RecordType::Caa, "0 issue \"letsencrypt.org\"");
        round_trip(RecordType::Caa, "128 iodef \"mailto:ops@example.com\"");
    }

    #[test]
    fn long_txt_goes_out_in_255_byte_strings() {
        let RData::TXT(txt) = to_rdata(&RecordType::Txt, &"y".repeat(300)).unwrap() else {
            panic!("not TXT")
        };
        assert_eq!(
            txt.txt_data.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 45]
        );
    }
}
