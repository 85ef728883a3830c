//! What the controller keeps per baseline, and what a reconcile builds, in bytes allocated (a
//! counting allocator): the identity kept between reconciles (`Origin`: credentials provider and
//! identity cache), a region's SDK clients (built per reconcile, dropped after), a LoggingBaseline
//! object without status. `cargo bench --bench heap_probe` (no AWS, no cluster).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;
fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_types::region::Region::new("us-east-1"))
            .http_client(trailkeeper::aws::shared_http_client()).load().await;
        let sts = aws_sdk_sts::Client::new(&base);
        let n = 200;
        let before = LIVE.load(Ordering::Relaxed);
        let mut keep = Vec::new();
        for i in 0..n {
            let c = trailkeeper::api::Credentials { assume_role_arn: format!("arn:aws:iam::{:012}:role/trailkeeper", i), external_id: None };
            keep.push(trailkeeper::aws::Origin::with_sts(&base, "us-east-1", Some(&c), &sts));
        }
        let after = LIVE.load(Ordering::Relaxed);
        println!("Origin: {} bytes each", (after - before) / n);
        let before = LIVE.load(Ordering::Relaxed);
        let mut clients = Vec::new();
        for o in keep.iter().take(20) {
            clients.push(trailkeeper::aws::AccountClients::from_origin(o.clone(), "us-east-1", Default::default()));
        }
        let after = LIVE.load(Ordering::Relaxed);
        println!("AccountClients (12 SDK clients): {} bytes each", (after - before) / 20);
        let b: trailkeeper::api::LoggingBaseline = serde_yaml::from_str("apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {name: a, namespace: b}\nspec: {accountId: '111122223333', primaryRegion: us-east-1}\n").unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        let mut objs = Vec::new();
        for _ in 0..100 { objs.push(std::sync::Arc::new(b.clone())); }
        let after = LIVE.load(Ordering::Relaxed);
        println!("LoggingBaseline without status: {} bytes each", (after - before) / 100);
    });
}
