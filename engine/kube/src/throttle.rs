//! The requests cairn sends, bounded and polite: at most `limit` in flight at once (watches
//! excepted: they stay open for the whole apply and cost the server no seat while idle), and a
//! request the server turns away with `429 Too Many Requests` (priority and fairness, or a
//! rate-limiting proxy) is sent again after the `Retry-After` it names, as client-go does. A
//! 429 means the server did not act on the request, so resending a write is safe.
//!
//! The limit is what `--parallelism` sets. Its default, 32, stays below the seats a real
//! kube-apiserver gives an ordinary user's flow in its `global-default` priority level (about
//! 49 of the default 600, by the level's 20 of 245 nominal shares) while keeping the server
//! busy: beyond it requests only queue in the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use kube::client::Body;
use tokio::sync::{Mutex, Semaphore};
use tower::{Layer, Service, ServiceExt};

/// Requests in flight when nothing else is said.
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 32;

/// How many times a request refused with 429 is sent again.
const RETRIES: u32 = 8;

/// The longest wait a `Retry-After` may impose; the wait when it names none.
const MAX_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// The bound on requests in flight, shared by every clone of a client.
#[derive(Clone)]
pub(crate) struct Limit {
    permits: Arc<Semaphore>,
    total: Arc<AtomicUsize>,
    /// How many 429s were answered by waiting (for tests and benchmarks).
    throttled: Arc<AtomicUsize>,
}

impl Limit {
    pub(crate) fn new(n: usize) -> Limit {
        let n = n.max(1);
        Limit {
            permits: Arc::new(Semaphore::new(n)),
            total: Arc::new(AtomicUsize::new(n)),
            throttled: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Changes the bound: more permits at once, fewer as requests in flight finish.
    pub(crate) fn set(&self, n: usize) {
        let n = n.max(1);
        let old = self.total.swap(n, Ordering::SeqCst);
        if n > old {
            self.permits.add_permits(n - old);
        } else {
            let mut left = old - n;
            left -= self.permits.forget_permits(left);
            if left > 0 {
                // Taken back as the requests holding them finish.
                let permits = self.permits.clone();
                tokio::spawn(async move {
                    if let Ok(p) = permits.acquire_many_owned(left as u32).await {
                        p.forget();
                    }
                });
            }
        }
    }

    /// The bound.
    pub(crate) fn get(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// How many requests were refused with 429 and sent again.
    pub(crate) fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }
}

/// The layer that puts a [`Limit`] in front of a client's service.
pub(crate) struct ThrottleLayer(pub(crate) Limit);

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttled<S>;

    fn layer(&self, inner: S) -> Throttled<S> {
        Throttled {
            inner: Arc::new(Mutex::new(inner)),
            limit: self.0.clone(),
        }
    }
}

/// A service whose requests wait for a permit and are resent after a 429.
pub(crate) struct Throttled<S> {
    inner: Arc<Mutex<S>>,
    limit: Limit,
}

impl<S, B> Service<Request<Body>> for Throttled<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // The inner service is made ready under its lock, when the request goes out.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (inner, limit) = (self.inner.clone(), self.limit.clone());
        Box::pin(send(inner, limit, req))
    }
}

async fn send<S, B>(
    inner: Arc<Mutex<S>>,
    limit: Limit,
    mut req: Request<Body>,
) -> Result<Response<B>, S::Error>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    let watch = is_watch(&req);
    let mut attempt = 0;
    loop {
        let again = (attempt < RETRIES).then(|| copy(&req)).flatten();
        let permit = if watch {
            None
        } else {
            limit.permits.clone().acquire_owned().await.ok()
        };
        let future = {
            let mut service = inner.lock().await;
            service.ready().await?;
            service.call(req)
        };
        let response = future.await?;
        drop(permit);
        let Some(next) = again.filter(|_| response.status() == StatusCode::TOO_MANY_REQUESTS)
        else {
            return Ok(response);
        };
        limit.throttled.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(retry_after(&response)).await;
        req = next;
        attempt += 1;
    }
}

/// Whether a request is a watch (`?watch=true` or `?watch=1`).
fn is_watch<T>(req: &Request<T>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// The same request again, when its body can be read twice (every body cairn sends can).
fn copy(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// The wait a 429 asks for: its `Retry-After` in seconds (an HTTP date is not used by
/// kube-apiserver), at most [`MAX_WAIT`].
fn retry_after<B>(response: &Response<B>) -> Duration {
    response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_WAIT, |s| Duration::from_secs(s).min(MAX_WAIT))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_told_apart() {
        let req = |uri: &str| Request::get(uri).body(()).unwrap();
        assert!(is_watch(&req(
            "/api/v1/namespaces/a/pods?labelSelector=x&watch=true&timeoutSeconds=290"
        )));
        assert!(!is_watch(&req("/api/v1/namespaces/a/pods?labelSelector=x")));
        assert!(!is_watch(&req("/api/v1/namespaces/watch=true/pods")));
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        let with = |v: &str| {
            Response::builder()
                .status(429)
                .header("Retry-After", v)
                .body(())
                .unwrap()
        };
        assert_eq!(retry_after(&with("2")), Duration::from_secs(2));
        assert_eq!(retry_after(&with("3600")), MAX_WAIT);
        assert_eq!(retry_after(&with("soon")), DEFAULT_WAIT);
    }

    /// A server that answers 429 (`Retry-After: 0`) to the first `refusals` requests, counts
    /// the requests it serves at once, and takes 10 ms for each.
    type Answer = BoxFuture<'static, Result<Response<String>, std::convert::Infallible>>;
    type Counter = Arc<AtomicUsize>;

    fn server(
        refusals: usize,
    ) -> (
        impl Service<
            Request<Body>,
            Response = Response<String>,
            Error = std::convert::Infallible,
            Future = Answer,
        > + Send
        + 'static,
        Counter,
        Counter,
    ) {
        let (served, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let now = Arc::new(AtomicUsize::new(0));
        let (s, p) = (served.clone(), peak.clone());
        let service = tower::service_fn(move |req: Request<Body>| {
            let (s, p, now) = (s.clone(), p.clone(), now.clone());
            let fut: BoxFuture<'static, _> = Box::pin(async move {
                let n = s.fetch_add(1, Ordering::SeqCst);
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(at_once, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let body = req.into_body().collect_bytes().await.unwrap_or_default();
                let status = if n < refusals { 429 } else { 200 };
                Ok(Response::builder()
                    .status(status)
                    .header("Retry-After", "0")
                    .body(String::from_utf8_lossy(&body).into_owned())
                    .unwrap())
            });
            fut
        });
        (service, served, peak)
    }

    #[tokio::test]
    async fn a_429_is_waited_out_and_the_same_request_sent_again() {
        let (inner, served, _) = server(2);
        let limit = Limit::new(4);
        let mut svc = ThrottleLayer(limit.clone()).layer(inner);
        let req = Request::patch("/api/v1/namespaces/a/configmaps/x")
            .body(Body::from(b"{\"data\":{}}".to_vec()))
            .unwrap();
        let response = svc.call(req).await.unwrap();
        assert_eq!(response.status(), 200);
        // The body went out again, whole, each time.
        assert_eq!(response.body(), "{\"data\":{}}");
        assert_eq!(served.load(Ordering::SeqCst), 3);
        assert_eq!(limit.throttled(), 2);
    }

    /// Sends GETs of `uris` all at once through a throttled `server(0)` bounded at `bound`;
    /// gives how many the server served and the most it served at once.
    async fn all_at_once(bound: usize, uris: Vec<String>) -> (usize, usize) {
        let (inner, served, peak) = server(0);
        let svc = Arc::new(Mutex::new(ThrottleLayer(Limit::new(bound)).layer(inner)));
        let tasks: Vec<_> = uris
            .into_iter()
            .map(|uri| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let req = Request::get(uri).body(Body::empty()).unwrap();
                    let fut = svc.lock().await.call(req);
                    fut.await.unwrap().status()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        (served.load(Ordering::SeqCst), peak.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn requests_in_flight_stay_within_the_bound_and_watches_are_not_counted() {
        let gets = (0..20)
            .map(|i| format!("/api/v1/namespaces/a/configmaps/c{i}"))
            .collect();
        assert_eq!(all_at_once(3, gets).await, (20, 3));
        // Five watches go out at once on top of a bound of one.
        let watches = vec!["/api/v1/namespaces/a/pods?watch=true".to_owned(); 5];
        assert_eq!(all_at_once(1, watches).await, (5, 5));
    }

    #[tokio::test]
    async fn the_bound_can_be_lowered_and_raised() {
        let limit = Limit::new(4);
        limit.set(2);
        assert_eq!(limit.permits.available_permits(), 2);
        limit.set(10);
        assert_eq!(limit.permits.available_permits(), 10);
        assert_eq!(limit.get(), 10);
    }
}
