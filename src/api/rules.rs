//! CEL rules of the CRDs that are built from parts (the retention transition rules). Each rule here
//! is also evaluated client-side by `trailkeeper validate` and tested both ways.

use kube::core::{Message, Rule};

use super::{CLOUDWATCH_RETENTION_DAYS, DEFAULT_NAME_PREFIX};

/// `self` is a CloudWatch Logs retention in days: only the values CloudWatch accepts.
pub fn cloudwatch_retention_days() -> Rule {
    let allowed = CLOUDWATCH_RETENTION_DAYS.map(|d| d.to_string()).join(", ");
    Rule::new(format!("self in [{allowed}]")).message(Message::Message(format!(
        "must be one of CloudWatch Logs' retention values: {allowed}"
    )))
}

/// True when the change carries an approval whose reference is new in this change.
const NEW_APPROVAL: &str =
    "has(self.approval) && (!has(oldSelf.approval) || self.approval.reference != oldSelf.approval.reference)";

/// A retention in days at `path` (absent = kept forever) may only be shortened with a new approval.
/// Forever to N days counts as shortening.
pub fn not_shortened_without_approval(path: &str) -> Rule {
    let (parent, field) = path.rsplit_once('.').unwrap_or(("", path));
    let new = format!("self.{parent}");
    let old = format!("oldSelf.{parent}");
    let not_shortened = format!("!has({new}.{field}) || (has({old}.{field}) && {new}.{field} >= {old}.{field})");
    Rule::new(format!("({not_shortened}) || ({NEW_APPROVAL})")).message(Message::Message(format!(
        "{path} shortens how long logs are kept: this needs spec.approval with a reference that is new in this change"
    )))
}

/// The Object Lock of the trail bucket may only be weakened (lower mode, or fewer default days)
/// with a new approval.
pub fn lock_not_weakened_without_approval() -> Rule {
    let rank =
        |side: &str| format!("{{'Disabled': 0, 'Governance': 1, 'Compliance': 2}}[{side}.trailLogs.objectLock.mode]");
    let (new_rank, old_rank) = (rank("self"), rank("oldSelf"));
    let weakened = format!(
        "{new_rank} < {old_rank} || ({new_rank} > 0 && self.trailLogs.objectLock.defaultRetentionDays < oldSelf.trailLogs.objectLock.defaultRetentionDays)"
    );
    Rule::new(format!("!({weakened}) || ({NEW_APPROVAL})")).message(Message::Message(
        "trailLogs.objectLock is weakened (mode lowered or fewer retention days): this needs spec.approval with a reference that is new in this change"
            .to_string(),
    ))
}

/// On a LogArchive: admitting the Organization admits the trails of `organizationId`.
pub fn organization_admission_names_the_organization() -> Rule {
    Rule::new("!has(self.admission) || self.admission != 'Organization' || has(self.organizationId)").message(
        Message::Message("admission: Organization admits the trails of spec.organizationId: set it".to_string()),
    )
}

/// On a LogArchive: admitting the Organization widens who may write into the locked archive, so
/// it carries an approval (checked on create; the change that asks for it needs a new reference).
pub fn organization_admission_has_an_approval() -> Rule {
    Rule::new("!has(self.admission) || self.admission != 'Organization' || has(self.approval)").message(
        Message::Message(
            "admission: Organization widens who may write into the locked archive (any trail of the Organization bearing a member's trail name): it needs spec.approval"
                .to_string(),
        ),
    )
}

/// On a LogArchive: a change to `admission: Organization` needs an approval new in that change.
pub fn organization_admission_approved_in_its_change() -> Rule {
    Rule::new(format!(
        "!has(self.admission) || self.admission != 'Organization' || (has(oldSelf.admission) && oldSelf.admission == 'Organization') || ({NEW_APPROVAL})"
    ))
    .message(Message::Message(
        "admission: Organization widens who may write into the locked archive: this needs spec.approval with a reference that is new in this change"
            .to_string(),
    ))
}

/// On `trailLogs`: current log files may not expire before their Object Lock ends. S3 would keep the
/// locked versions, but the expiration puts delete markers over them: the logs vanish from Athena
/// and from digest validation while they still exist.
pub fn expiry_not_before_lock_ends() -> Rule {
    Rule::new(
        "!has(self.expireAfterDays) || self.objectLock.mode == 'Disabled' || self.expireAfterDays >= self.objectLock.defaultRetentionDays",
    )
    .message(Message::Message(
        "trailLogs.expireAfterDays is shorter than objectLock.defaultRetentionDays: log files would expire while locked (delete markers would hide them from queries and digest validation); expire them no earlier than the lock ends"
            .to_string(),
    ))
}

/// On a LoggingBaseline: a member of a LogArchive (`storage.archiveRef`) has a trail of
/// trailkeeper's delivering into the archive with the archive's key; it has no bucket or key of
/// its own to name, nor a trail bucket for flow logs.
pub fn archive_member_keeps_nothing_of_its_own() -> Rule {
    Rule::new(
        "!has(self.storage) || !has(self.storage.archiveRef) || ((!has(self.trail) || !has(self.trail.source) || self.trail.source == 'Managed') && (!has(self.encryption) || !has(self.encryption.kmsKeyArn)) && !has(self.storage.bucketName) && (!has(self.flowLogs) || !has(self.flowLogs.destination) || self.flowLogs.destination != 'S3'))",
    )
    .message(Message::Message(
        "storage.archiveRef: the trail is trailkeeper's (trail.source Managed) and delivers into the archive's bucket with the archive's key: remove encryption.kmsKeyArn and storage.bucketName, and send flow logs to CloudWatchLogs (a member has no trail bucket)"
            .to_string(),
    ))
}

/// The `{prefix}` of generated names in a CEL expression over the spec.
fn name_prefix() -> String {
    format!("(has(self.storage) && has(self.storage.namePrefix) ? self.storage.namePrefix : '{DEFAULT_NAME_PREFIX}')")
}

/// The longest generated bucket name, `{prefix}-{accountId}-cloudtrail-access-{primaryRegion}`,
/// has 32 characters besides the prefix and the region; S3 allows 63.
pub fn generated_bucket_names_fit() -> Rule {
    Rule::new(format!("size({}) + size(self.primaryRegion) <= 31", name_prefix())).message(Message::Message(
        "storage.namePrefix and primaryRegion together make generated bucket names longer than S3's 63 characters: shorten namePrefix (prefix and region at most 31 characters)"
            .to_string(),
    ))
}

/// The audit queries' results bucket expires what it holds: it may not be the trail bucket nor the
/// access-log bucket (named, or by the default pattern).
pub fn results_bucket_is_its_own() -> Rule {
    let prefix = name_prefix();
    let generated = |kind: &str| format!("{prefix} + '-' + self.accountId + '-{kind}-' + self.primaryRegion");
    let trail = format!(
        "(has(self.storage) && has(self.storage.bucketName) ? self.storage.bucketName : {})",
        generated("cloudtrail")
    );
    let access = format!(
        "(has(self.storage) && has(self.storage.accessLogBucketName) ? self.storage.accessLogBucketName : {})",
        generated("cloudtrail-access")
    );
    Rule::new(format!(
        "!has(self.auditQueries) || !has(self.auditQueries.resultsBucketName) || !(self.auditQueries.resultsBucketName in [{trail}, {access}])"
    ))
    .message(Message::Message(
        "auditQueries.resultsBucketName names the trail or access-log bucket: query results expire, so they need a bucket of their own"
            .to_string(),
    ))
}

/// On a map of AWS tags: keys of 1 to 128 characters that do not start with `aws:`, the prefix AWS
/// reserves for its own tags (every service refuses it at the first tagging call).
pub fn tag_keys_aws_accepts() -> Rule {
    Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128 && !k.startsWith('aws:'))").message(Message::Message(
        "tag keys must have 1 to 128 characters and may not start with aws: (AWS reserves that prefix)".to_string(),
    ))
}

/// A recorder trailkeeper keeps delivers into the baseline's access-log bucket: a baseline with an
/// Existing trail or a LogArchive has none.
pub fn recorder_has_a_bucket() -> Rule {
    Rule::new(
        "!has(self.configRules) || !has(self.configRules.createRecorder) || !self.configRules.createRecorder || ((!has(self.trail) || !has(self.trail.source) || self.trail.source == 'Managed') && (!has(self.storage) || !has(self.storage.archiveRef)))",
    )
    .message(Message::Message(
        "configRules.createRecorder: the recorders trailkeeper keeps deliver into its access-log bucket, which a baseline with an Existing trail or a storage.archiveRef does not have: set up AWS Config in the account (or its Organization) instead"
            .to_string(),
    ))
}
