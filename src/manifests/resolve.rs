//! Each LoggingBaseline resolved to the policies it uses.

use super::{ManifestSet, name_of, namespace_of};
use crate::api::{
    DEFAULT_POLICY_NAME, LogArchive, LoggingBaseline, PolicyRef, RetentionPolicy, RetentionPolicySpec, TrailPolicy,
    TrailPolicySpec,
};
use crate::desired::AccountSpecs;

/// The policies a baseline uses: the referenced one, else `default` in its namespace, else the
/// built-in baseline. A reference to a missing policy is an error.
pub fn resolve<'a>(
    baseline: &'a LoggingBaseline,
    trail_policies: impl IntoIterator<Item = &'a TrailPolicy>,
    retention_policies: impl IntoIterator<Item = &'a RetentionPolicy>,
) -> Result<(TrailPolicySpec, RetentionPolicySpec, String), String> {
    let ns = namespace_of(&baseline.metadata);
    let trail = pick(&ns, baseline.spec.trail.policy_ref.as_ref(), trail_policies, |p| {
        &p.metadata
    })
    .map(|p| p.map(|p| p.spec.clone()).unwrap_or_default())
    .map_err(|name| {
        format!("TrailPolicy {name:?} referenced by spec.trail.policyRef does not exist in namespace {ns:?}")
    })?;
    let retention = pick(
        &ns,
        baseline.spec.retention_policy_ref.as_ref(),
        retention_policies,
        |p| &p.metadata,
    )
    .map_err(|name| {
        format!("RetentionPolicy {name:?} referenced by spec.retentionPolicyRef does not exist in namespace {ns:?}")
    })?;
    let retention_name = retention.map_or_else(|| "built-in".to_string(), |p| name_of(&p.metadata));
    Ok((
        trail,
        retention.map(|p| p.spec.clone()).unwrap_or_default(),
        retention_name,
    ))
}

fn pick<'a, T>(
    ns: &str,
    reference: Option<&PolicyRef>,
    candidates: impl IntoIterator<Item = &'a T>,
    meta: impl Fn(&T) -> &kube::core::ObjectMeta,
) -> Result<Option<&'a T>, String>
where
    T: 'a,
{
    let wanted = reference.map_or(DEFAULT_POLICY_NAME, |r| r.name.as_str());
    let found = candidates
        .into_iter()
        .find(|c| namespace_of(meta(c)) == ns && name_of(meta(c)) == wanted);
    match (found, reference) {
        (Some(p), _) => Ok(Some(p)),
        (None, Some(r)) => Err(r.name.clone()),
        (None, None) => Ok(None),
    }
}

/// A baseline with the policies it resolves to, ready for the engine.
#[derive(Clone, Debug)]
pub struct ResolvedBaseline {
    pub id: String,
    pub baseline: LoggingBaseline,
    pub trail_policy: TrailPolicySpec,
    pub retention: RetentionPolicySpec,
    pub retention_policy_name: String,
    /// The LogArchive the baseline delivers into (`storage.archiveRef`).
    pub archive: Option<LogArchive>,
}

impl ResolvedBaseline {
    pub fn specs(&self) -> AccountSpecs<'_> {
        AccountSpecs {
            baseline: &self.baseline.spec,
            trail_policy: &self.trail_policy,
            retention: &self.retention,
        }
    }
}

impl ManifestSet {
    pub fn resolve_all(&self) -> Result<Vec<ResolvedBaseline>, Vec<String>> {
        let mut resolved = Vec::new();
        let mut errors = Vec::new();
        for (_, b) in &self.baselines {
            let id = format!("{}/{}", namespace_of(&b.metadata), name_of(&b.metadata));
            match resolve(
                b,
                self.trail_policies.iter().map(|(_, p)| p),
                self.retention_policies.iter().map(|(_, p)| p),
            ) {
                Ok((trail_policy, retention, retention_policy_name)) => {
                    let archive = match &b.spec.storage.archive_ref {
                        None => None,
                        Some(r) => {
                            let found = self.archives.iter().map(|(_, a)| a).find(|a| {
                                namespace_of(&a.metadata) == namespace_of(&b.metadata) && name_of(&a.metadata) == r.name
                            });
                            if found.is_none() {
                                errors.push(format!(
                                    "LoggingBaseline/{id}: LogArchive {:?} referenced by spec.storage.archiveRef does not exist",
                                    r.name
                                ));
                                continue;
                            }
                            found.cloned()
                        }
                    };
                    resolved.push(ResolvedBaseline {
                        id,
                        baseline: b.clone(),
                        trail_policy,
                        retention,
                        retention_policy_name,
                        archive,
                    })
                }
                Err(e) => errors.push(format!("LoggingBaseline/{id}: {e}")),
            }
        }
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }
}

/// A LogArchive with the RetentionPolicy it uses and its members (the baselines that name it).
#[derive(Clone, Debug)]
pub struct ResolvedArchive {
    pub id: String,
    pub archive: LogArchive,
    pub retention: RetentionPolicySpec,
    pub retention_policy_name: String,
    /// Each member: its baseline's id (`namespace/name`) and what the archive admits of it.
    pub members: Vec<(String, crate::desired::archive::Member)>,
}

impl ManifestSet {
    /// The archives, each with its members among `baselines` (from `resolve_all`).
    pub fn resolve_archives(&self, baselines: &[ResolvedBaseline]) -> Result<Vec<ResolvedArchive>, Vec<String>> {
        let mut resolved = Vec::new();
        let mut errors = Vec::new();
        for (_, a) in &self.archives {
            let (ns, name) = (namespace_of(&a.metadata), name_of(&a.metadata));
            let id = format!("{ns}/{name}");
            let (retention, retention_policy_name) = match pick(
                &ns,
                a.spec.retention_policy_ref.as_ref(),
                self.retention_policies.iter().map(|(_, p)| p),
                |p| &p.metadata,
            ) {
                Ok(found) => (
                    found.map(|p| p.spec.clone()).unwrap_or_default(),
                    found.map_or_else(|| "built-in".to_string(), |p| name_of(&p.metadata)),
                ),
                Err(missing) => {
                    errors.push(format!(
                        "LogArchive/{id}: RetentionPolicy {missing:?} referenced by spec.retentionPolicyRef does not exist in namespace {ns:?}"
                    ));
                    continue;
                }
            };
            let members = baselines
                .iter()
                .filter(|b| {
                    b.archive
                        .as_ref()
                        .is_some_and(|x| namespace_of(&x.metadata) == ns && name_of(&x.metadata) == name)
                })
                .map(|b| {
                    (
                        b.id.clone(),
                        crate::desired::archive::member_of(&b.baseline.spec, &b.trail_policy),
                    )
                })
                .collect();
            resolved.push(ResolvedArchive {
                id,
                archive: a.clone(),
                retention,
                retention_policy_name,
                members,
            });
        }
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }
}

impl ResolvedArchive {
    /// The archive as the baseline of its own account that has storage only: what a retention
    /// review compares (`diff`), under the id `LogArchive/{namespace}/{name}`.
    pub fn as_resolved_baseline(&self) -> ResolvedBaseline {
        let mut baseline = LoggingBaseline::new(
            &name_of(&self.archive.metadata),
            crate::desired::archive::as_baseline(&self.archive.spec),
        );
        baseline.metadata.namespace = self.archive.metadata.namespace.clone();
        ResolvedBaseline {
            id: format!("LogArchive/{}", self.id),
            baseline,
            trail_policy: TrailPolicySpec::default(),
            retention: self.retention.clone(),
            retention_policy_name: self.retention_policy_name.clone(),
            archive: None,
        }
    }
}
