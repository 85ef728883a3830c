//! An HTTP proxy in front of moto, one request per connection, that sees what a trailkeeper
//! process sends to AWS: it can stall the requests that name an account (read, and never
//! answered, the way a hung endpoint behaves) or hold every answer back a while (a slow AWS), and
//! it records each operation it forwards, so a test counts a process's AWS writes through its own
//! endpoint.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL.
    pub endpoint: String,
    /// Each forwarded operation (`StartLogging`, `S3 PUT`, ...) with whether it writes.
    forwarded: Arc<Mutex<Vec<(String, bool)>>>,
    /// Each forwarded write with its signing service (`cloudtrail`) and when it was forwarded.
    timed_writes: Arc<Mutex<Vec<(String, String, std::time::Instant)>>>,
    /// How long each answer is held back once received (None: passed on at once).
    delay: Arc<Mutex<Option<std::time::Duration>>>,
    /// Answers being held back now.
    held: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests in flight per signing region (from the SigV4 credential scope).
    regions: Arc<Mutex<InFlight>>,
    /// Requests in flight, each by its own name.
    requests: Arc<Mutex<InFlight>>,
    /// Requests in flight per access key (an account's session: the operator assumes a role per
    /// account), STS's own calls left out.
    keys: Arc<Mutex<InFlight>>,
    /// The account of each access key the proxy saw issued by AssumeRole (the role's account).
    key_accounts: Arc<Mutex<std::collections::HashMap<String, String>>>,
    /// Each forwarded write with the account its access key acts in (the key when unknown).
    account_writes: Arc<Mutex<Vec<(String, String, std::time::Instant)>>>,
}

/// Requests in flight now per name, and the most names seen in flight at once.
#[derive(Default)]
struct InFlight {
    now: std::collections::BTreeMap<String, usize>,
    most: usize,
}

impl InFlight {
    fn start(&mut self, name: &str) {
        *self.now.entry(name.to_string()).or_default() += 1;
        self.most = self.most.max(self.now.len());
    }

    fn end(&mut self, name: &str) {
        if let Some(n) = self.now.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.now.remove(name);
            }
        }
    }
}

impl Proxy {
    /// Starts the proxy on the current runtime. Requests whose text contains `stall` (an account
    /// id, say) are read and never answered.
    pub async fn start(stall: Option<String>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = super::moto().endpoint.trim_start_matches("http://").to_string();
        let proxy = Proxy {
            endpoint,
            forwarded: Arc::default(),
            timed_writes: Arc::default(),
            delay: Arc::default(),
            held: Arc::default(),
            regions: Arc::default(),
            requests: Arc::default(),
            keys: Arc::default(),
            key_accounts: Arc::default(),
            account_writes: Arc::default(),
        };
        let shared = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, stall, proxy) = (upstream.clone(), stall.clone(), shared.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, stall.as_deref(), &proxy).await;
                });
            }
        });
        proxy
    }

    /// The SDK configuration of `super::base_config` with this proxy as the endpoint.
    pub async fn base_config(&self) -> aws_types::SdkConfig {
        super::base_config()
            .await
            .to_builder()
            .endpoint_url(&self.endpoint)
            .build()
    }

    /// Holds each answer back for `delay` (the request itself is forwarded at once), from now on.
    pub fn delay_answers(&self, delay: Option<std::time::Duration>) {
        *self.delay.lock().unwrap() = delay;
    }

    /// How many answers are being held back now.
    pub fn answers_held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most signing regions that had a request in flight at the same time, so far.
    pub fn most_regions_at_once(&self) -> usize {
        self.regions.lock().unwrap().most
    }

    /// The most requests in flight at once, so far.
    pub fn most_requests_at_once(&self) -> usize {
        self.requests.lock().unwrap().most
    }

    /// The most access keys (accounts' sessions) that had a request in flight at once, so far.
    pub fn most_sessions_at_once(&self) -> usize {
        self.keys.lock().unwrap().most
    }

    /// Every operation forwarded so far, reads and writes.
    pub fn operations(&self) -> Vec<String> {
        let forwarded = self.forwarded.lock().unwrap();
        forwarded.iter().map(|(op, _)| op.clone()).collect()
    }

    /// The writes to `service` (its SigV4 name: `cloudtrail`) forwarded so far, with when.
    pub fn writes_to(&self, service: &str) -> Vec<(String, std::time::Instant)> {
        let timed = self.timed_writes.lock().unwrap();
        timed
            .iter()
            .filter(|(s, _, _)| s == service)
            .map(|(_, op, at)| (op.clone(), *at))
            .collect()
    }

    /// The writes forwarded so far, each with the account it acts in (as AssumeRole issued its
    /// access key) and when.
    pub fn account_writes(&self) -> Vec<(String, String, std::time::Instant)> {
        self.account_writes.lock().unwrap().clone()
    }

    /// The writes forwarded so far.
    pub fn writes(&self) -> Vec<String> {
        let forwarded = self.forwarded.lock().unwrap();
        forwarded.iter().filter(|(_, w)| *w).map(|(op, _)| op.clone()).collect()
    }
}

/// The operation of a request and whether it writes: the JSON protocols name it in X-Amz-Target,
/// the query protocols in the body's Action; S3 says it with the method.
fn operation(head: &str, body: &[u8]) -> (String, bool) {
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.trim().to_string())
    };
    let reads = ["Get", "Describe", "List", "Head", "Lookup", "BatchGet", "AssumeRole"];
    let named = header("x-amz-target")
        .and_then(|t| t.rsplit('.').next().map(str::to_string))
        .or_else(|| {
            String::from_utf8_lossy(body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action=").map(str::to_string))
        });
    match named {
        Some(op) => {
            let write = !reads.iter().any(|r| op.starts_with(r));
            (op, write)
        }
        None => {
            let method = head.split_whitespace().next().unwrap_or("GET").to_string();
            let write = matches!(method.as_str(), "PUT" | "POST" | "DELETE");
            (format!("S3 {method}"), write)
        }
    }
}

/// The account of the role an AssumeRole request (query protocol) names in `RoleArn`.
fn role_account(body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let arn = body.split('&').find_map(|kv| kv.strip_prefix("RoleArn="))?;
    let arn = arn.replace("%3A", ":").replace("%3a", ":");
    arn.split(':').nth(4).map(str::to_string)
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

/// The access key, region and service a request is signed for:
/// `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
fn signing_scope(head: &str) -> Option<(String, String, String)> {
    let scope = head.split("Credential=").nth(1)?;
    let mut parts = scope.split('/');
    let key = parts.next()?.to_string();
    let (_, region, service) = (parts.next()?, parts.next()?, parts.next()?);
    Some((key, region.to_string(), service.to_string()))
}

async fn serve(client: TcpStream, upstream: &str, stall: Option<&str>, proxy: &Proxy) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_string();
    proxy.requests.lock().unwrap().start(&id);
    let mut scope = None;
    let served = serve_one(client, upstream, stall, proxy, &mut scope).await;
    proxy.requests.lock().unwrap().end(&id);
    if let Some((key, region, service)) = scope {
        proxy.regions.lock().unwrap().end(&region);
        if service != "sts" {
            proxy.keys.lock().unwrap().end(&key);
        }
    }
    served
}

async fn serve_one(
    mut client: TcpStream,
    upstream: &str,
    stall: Option<&str>,
    proxy: &Proxy,
    scope: &mut Option<(String, String, String)>,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 16384];
    let head_end = loop {
        let n = client.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        })
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = client.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    let body = request[head_end..].to_vec();
    if let Some(needle) = stall
        && (head.contains(needle) || String::from_utf8_lossy(&body).contains(needle))
    {
        // Hold the connection open and never answer.
        std::future::pending::<()>().await;
    }
    let (op, write) = operation(&head, &body);
    let signed = signing_scope(&head);
    if write && let Some((_, _, service)) = &signed {
        let at = std::time::Instant::now();
        proxy
            .timed_writes
            .lock()
            .unwrap()
            .push((service.clone(), op.clone(), at));
    }
    if write && let Some((key, _, _)) = &signed {
        let account = proxy
            .key_accounts
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or(key.clone());
        let at = std::time::Instant::now();
        proxy.account_writes.lock().unwrap().push((account, op.clone(), at));
    }
    let assumed_account = (op == "AssumeRole").then(|| role_account(&body)).flatten();
    proxy.forwarded.lock().unwrap().push((op, write));
    if let Some((key, region, service)) = signed {
        proxy.regions.lock().unwrap().start(&region);
        if service != "sts" {
            proxy.keys.lock().unwrap().start(&key);
        }
        *scope = Some((key, region, service));
    }
    // One request per connection: later requests, for other accounts, come on new connections.
    let mut head_lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head_lines.push("Connection: close");
    let mut forward = head_lines.join("\r\n").into_bytes();
    forward.extend_from_slice(b"\r\n\r\n");
    forward.extend_from_slice(&body);
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&forward).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    if let Some(account) = assumed_account
        && let Some(key) = between(&String::from_utf8_lossy(&response), "<AccessKeyId>", "</AccessKeyId>")
    {
        proxy.key_accounts.lock().unwrap().insert(key, account);
    }
    let delay = *proxy.delay.lock().unwrap();
    if let Some(delay) = delay {
        proxy.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        proxy.held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
    client.write_all(&response).await?;
    client.shutdown().await
}
