//! The emulator's own endpoints (moto's `/moto-api/`), for what AWS reports outside the API a
//! test calls: the reason S3 gives in its replication failure events.

use serde_json::Value;

/// A GET of the emulator's `path`, its JSON body (Null when not JSON).
pub async fn get(path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = super::moto().endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// `key`'s replication status once S3 has acted on it (not PENDING), with the failure reason S3
/// sends in its replication events (scripts/emulator/trailkeeper_replication.py).
pub async fn replication_outcome(bucket: &str, key: &str) -> (String, Option<String>) {
    for _ in 0..50 {
        let answer = get(&format!("/moto-api/trailkeeper/replication?bucket={bucket}&key={key}")).await;
        let status = answer["status"].as_str().unwrap_or_default().to_string();
        if status != "PENDING" {
            return (status, answer["failure"].as_str().map(str::to_string));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{key} still PENDING after 5 s");
}
