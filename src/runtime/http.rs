//! The operator's HTTP endpoint: `/healthz` (the process serves), `/readyz` (it can reach the API
//! server and, when it runs the controller, its cache has synced; a replica standing by for the
//! lease is ready, so that rolling updates proceed) and `/metrics` (Prometheus text format).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct Health {
    /// The API server answered and the CRDs are installed.
    pub api_reachable: AtomicBool,
    /// This replica runs the controller (it leads, or runs without leader election).
    pub leading: AtomicBool,
    /// The controller's cache of LoggingBaselines has synced.
    pub synced: AtomicBool,
    /// With sharding: the shards, to say which this replica holds.
    pub shards: std::sync::OnceLock<Arc<crate::runtime::leader::shards::Shards>>,
}

impl Health {
    /// Whether the replica is ready, and in what role. With sharding every replica runs the
    /// controllers (each reconciles the shards it holds): ready once its cache has synced, whether
    /// it holds shards now or stands by for some.
    pub fn readiness(&self) -> (bool, std::borrow::Cow<'static, str>) {
        let flag = |f: &AtomicBool| f.load(Ordering::Relaxed);
        if let Some(shards) = self.shards.get() {
            return match (flag(&self.api_reachable), flag(&self.synced)) {
                (false, _) => (false, "not ready: the API server has not answered".into()),
                (true, false) => (false, "not ready: the cache is filling".into()),
                (true, true) => {
                    let held: Vec<String> = shards.held().iter().map(u32::to_string).collect();
                    let holding = match held.is_empty() {
                        true => "no shard (standing by)".to_string(),
                        false => format!("shards {}", held.join(", ")),
                    };
                    (
                        true,
                        format!("ready: cache synced, holding {holding} of {}", shards.count()).into(),
                    )
                }
            };
        }
        let (ready, what) = match (flag(&self.api_reachable), flag(&self.leading), flag(&self.synced)) {
            (false, _, _) => (false, "not ready: the API server has not answered"),
            (true, true, false) => (false, "not ready: leading, the cache is filling"),
            (true, true, true) => (true, "ready: leading, cache synced"),
            (true, false, _) => (true, "ready: standing by for the lease"),
        };
        (ready, what.into())
    }
}

/// What a request line asks for: (status line, content type, body).
pub fn respond(request_line: &str, health: &Health) -> (&'static str, &'static str, String) {
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" => match health.readiness() {
            (true, what) => ("200 OK", "text/plain", format!("{what}\n")),
            (false, what) => ("503 Service Unavailable", "text/plain", format!("{what}\n")),
        },
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", crate::runtime::metrics::render()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// Serves until the process ends. Each connection answers one request.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin on the error.
                tracing::warn!(error = %e, "cannot accept a connection on the HTTP endpoint");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let health = health.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buffer[..n]);
            let (status, content_type, body) = respond(request.lines().next().unwrap_or_default(), &health);
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_metrics_answer_on_their_paths() {
        let health = Health::default();
        assert_eq!(respond("GET /healthz HTTP/1.1", &health).0, "200 OK");
        assert_eq!(respond("GET /readyz HTTP/1.1", &health).0, "503 Service Unavailable");
        health.api_reachable.store(true, Ordering::Relaxed);
        let (status, _, body) = respond("GET /readyz HTTP/1.1", &health);
        assert_eq!(
            (status, body.as_str()),
            ("200 OK", "ready: standing by for the lease\n")
        );
        health.leading.store(true, Ordering::Relaxed);
        assert_eq!(
            respond("GET /readyz HTTP/1.1", &health).0,
            "503 Service Unavailable",
            "leading with an empty cache"
        );
        health.synced.store(true, Ordering::Relaxed);
        assert_eq!(respond("GET /readyz HTTP/1.1", &health).0, "200 OK");
        let (status, _, body) = respond("GET /metrics HTTP/1.1", &health);
        assert_eq!(status, "200 OK");
        assert!(body.contains("# TYPE trailkeeper_reconciles_total counter"));
        assert_eq!(respond("GET /nope HTTP/1.1", &health).0, "404 Not Found");
    }

    #[test]
    fn with_shards_a_synced_replica_is_ready_and_says_which_shards_it_holds() {
        let health = Health::default();
        let shards = crate::runtime::leader::shards::Shards::sharded("a", 12);
        let _ = health.shards.set(shards);
        health.api_reachable.store(true, Ordering::Relaxed);
        assert_eq!(
            respond("GET /readyz HTTP/1.1", &health).0,
            "503 Service Unavailable",
            "cache filling"
        );
        health.synced.store(true, Ordering::Relaxed);
        let (status, _, body) = respond("GET /readyz HTTP/1.1", &health);
        assert_eq!(
            (status, body.as_str()),
            ("200 OK", "ready: cache synced, holding no shard (standing by) of 12\n")
        );
    }
}
