//! What the controllers' watch predicates hash: an object passes the filter when the hash of
//! what its controller watches in it changed.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The hash of `watched` (a tuple of what a predicate watches), as `predicate_filter` wants it.
pub(super) fn hash_of(watched: impl Hash) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    watched.hash(&mut hasher);
    Some(hasher.finish())
}
