//! Names from a small, fixed vocabulary (IAM actions, CIS control ids), kept once for the
//! process instead of once per account.
//!
//! Why: every baseline keeps its call counts by IAM action and every account its CIS controls'
//! series; as a `String` each, that was about 6 KiB a baseline at 1,000 baselines (docs/
//! performance.md, "Memory, issue 28"). Only for vocabularies bounded by the program (SDK
//! operations, the controls trailkeeper judges), never for names read from input: what is
//! interned is never freed.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The one copy of `name` for the process.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(found) = names.get(name) {
        return found;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_is_one_copy() {
        let a = intern(&format!("s3:{}", "GetBucketPolicy"));
        let b = intern("s3:GetBucketPolicy");
        assert_eq!(a, "s3:GetBucketPolicy");
        assert!(std::ptr::eq(a, b), "one allocation for both");
    }
}
