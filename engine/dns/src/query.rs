//! Reading record sets with plain queries through hickory-resolver (no cache), for zones that
//! refuse transfers and for the manual provider.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::{DnsError as HDnsError, NetError};
use hickory_proto::rr::RecordType as HType;
use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};

use crate::DnsError;
use crate::plan::ownership_name;
use crate::record::{RecordKey, RecordSet, RecordType};
use crate::wire;

/// A resolver that asks exactly `servers`, caches nothing and does not recurse.
pub(crate) struct Querier {
    resolver: Resolver<TokioRuntimeProvider>,
    servers: String,
}

impl Querier {
    pub(crate) fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Querier, DnsError> {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ndots = 0;
        opts.edns0 = true;
        opts.try_tcp_on_error = true;
        opts.recursion_desired = false;
        opts.preserve_intermediates = true;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::Internal(format!("resolver: {e}")))?;
        Ok(Querier {
            resolver,
            servers: servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    pub(crate) fn servers(&self) -> &str {
        &self.servers
    }

    /// The record set `key` as the servers answer it; `None` when they have none.
    pub(crate) async fn record_set(&self, key: &RecordKey) -> Result<Option<RecordSet>, DnsError> {
        let name = wire::name(&key.name)?;
        let lookup = match self.resolver.lookup(name, wire::htype(&key.rtype)).await {
            Ok(l) => l,
            Err(NetError::Dns(HDnsError::NoRecordsFound(_))) => return Ok(None),
            Err(NetError::Timeout) => {
                return Err(DnsError::Unreachable {
                    server: self.servers.clone(),
                    detail: format!("no answer to a query for {key}"),
                });
            }
            Err(NetError::Dns(HDnsError::ResponseCode(code))) => {
                return Err(DnsError::ServerError {
                    server: self.servers.clone(),
                    what: format!("a query for {key}"),
                    rcode: code.to_string(),
                });
            }
            Err(e) => {
                return Err(DnsError::Unreachable {
                    server: self.servers.clone(),
                    detail: format!("query for {key}: {e}"),
                });
            }
        };
        let mut ttl = u32::MAX;
        let mut values = Vec::new();
        for r in lookup.answers() {
            if let Some((owner, t, rttl, v)) = wire::from_record(r)
                && owner == key.name
                && t == key.rtype
            {
                ttl = ttl.min(rttl);
                values.push(v);
            }
        }
        if values.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecordSet::from_normalized(
            key.name.clone(),
            key.rtype.clone(),
            ttl,
            values,
        )))
    }

    /// The SOA serial of `zone` (0 when there is none).
    pub(crate) async fn serial(&self, zone: &str) -> Result<u32, DnsError> {
        let name = wire::name(zone)?;
        match self.resolver.lookup(name, HType::SOA).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .find_map(|r| match &r.data {
                    hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                })
                .unwrap_or(0)),
            Err(NetError::Dns(HDnsError::NoRecordsFound(_))) => Ok(0),
            Err(e) => Err(DnsError::Unreachable {
                server: self.servers.clone(),
                detail: format!("SOA query for {zone}: {e}"),
            }),
        }
    }

    /// Reads each record set of `interest` and, when `ownership`, their ownership records.
    pub(crate) async fn read(
        &self,
        interest: &[RecordKey],
        ownership: bool,
    ) -> Result<Vec<RecordSet>, DnsError> {
        let mut keys: Vec<RecordKey> = interest.to_vec();
        if ownership {
            keys.extend(interest.iter().map(|k| RecordKey {
                name: ownership_name(k),
                rtype: RecordType::Txt,
            }));
        }
        keys.sort();
        keys.dedup();
        let results: Vec<Result<Option<RecordSet>, DnsError>> = stream::iter(keys)
            .map(|k| async move { self.record_set(&k).await })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut out = BTreeMap::new();
        for r in results {
            if let Some(rs) = r? {
                out.insert(rs.key(), rs);
            }
        }
        Ok(out.into_values().collect())
    }
}
