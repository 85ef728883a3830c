//! The operator's HTTP endpoint: `/healthz` (the process serves), `/readyz` (it can reach the API
//! server and, when leading, its caches are filled) and `/metrics` (Prometheus text format).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct Health {
    pub ready: AtomicBool,
}

/// What a request line asks for: (status line, content type, body).
pub fn respond(request_line: &str, health: &Health) -> (&'static str, &'static str, String) {
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" if health.ready.load(Ordering::Relaxed) => ("200 OK", "text/plain", "ready\n".into()),
        "/readyz" => ("503 Service Unavailable", "text/plain", "not ready\n".into()),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", crate::metrics::render()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// Serves until the process ends. Each connection answers one request.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
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
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(respond("GET /readyz HTTP/1.1", &health).0, "200 OK");
        let (status, _, body) = respond("GET /metrics HTTP/1.1", &health);
        assert_eq!(status, "200 OK");
        assert!(body.contains("# TYPE trailkeeper_reconciles_total counter"));
        assert_eq!(respond("GET /nope HTTP/1.1", &health).0, "404 Not Found");
    }
}
