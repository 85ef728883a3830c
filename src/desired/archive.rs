//! The log-archive account: its bucket, access-log bucket and key, whose policies admit exactly the
//! member accounts' trails; and where a member's trail delivers.
//!
//! How the policies admit the members is `spec.admission`:
//! - `Trails` (the default): each member's trail by its ARN, under its own account's path only.
//!   One PutObject statement per member binds its `aws:SourceArn` to its paths, and one key
//!   statement per member role binds its `kms:Decrypt` to its own trail's encryption context, so
//!   that no member's trail writes under another member's path and no member's role decrypts
//!   another's logs. Policy size is then the limit: S3 holds a bucket policy of 20 KB and KMS a
//!   key policy of 32 KB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/BucketRestrictions.html,
//!   https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html), readers
//!   included: 43 members fit (`tests::members_named_one_by_one_fit_within_the_limits`). Past it
//!   the archive is refused, before any call, with how many fit.
//! - `Organization`, asked for in the spec with an approval (it widens who may write into the
//!   locked archive): the Organization's trails (`aws:SourceOrgID`,
//!   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourceorgid)
//!   that bear one of the members' trail names (an `aws:SourceArn` pattern and the same pattern
//!   in the encryption context), each under its own account's path (`${aws:SourceAccount}`); the
//!   roles of the Organization with a member role's path and name may Decrypt for a trail so
//!   named of their own account. Its size does not grow with the members; it is checked against
//!   the limits all the same (readers still grow it).

use serde_json::{Value, json};

use super::{AccountSpecs, DesiredAccount, KeySource, deny_insecure_transport, key_policy_base, partition, sorted};
use crate::api::{
    Admission, LogArchiveSpec, LogArchiveStatus, LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec,
};

/// The alias of the archive's key.
pub const ARCHIVE_KEY_ALIAS: &str = "alias/trailkeeper/log-archive";
/// S3's limit on a bucket policy, in bytes.
pub const BUCKET_POLICY_LIMIT: usize = 20 * 1024;
/// KMS's limit on a key policy, in bytes.
pub const KEY_POLICY_LIMIT: usize = 32 * 1024;

/// A member account's trail, as the archive admits it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub account_id: String,
    /// The trail's ARN. An Organization trail's names the management account, whoever created it
    /// (see `owned_by`).
    pub trail_arn: String,
    /// An Organization trail: it writes under `AWSLogs/{o-id}/` as well.
    pub organization: bool,
    /// The role trailkeeper creates the member's trail with (`credentials.assumeRoleArn`).
    pub role_arn: Option<String>,
}

impl Member {
    /// The account the trail belongs to, from its ARN: the member's own, or the management
    /// account's for an Organization trail.
    pub fn trail_owner(&self) -> &str {
        self.trail_arn.split(':').nth(4).unwrap_or(&self.account_id)
    }

    pub fn trail_name(&self) -> &str {
        self.trail_arn.rsplit_once(":trail/").map_or("", |(_, name)| name)
    }

    /// Whether this is the member of `account_id` whose trail is `trail_arn`, whichever account
    /// either ARN names (a member names its Organization trail before it knows its management
    /// account; the archive after).
    pub fn is(&self, account_id: &str, trail_arn: &str) -> bool {
        self.account_id == account_id && same_trail(&self.trail_arn, trail_arn)
    }

    /// The member with its Organization trail named by the Organization's management account:
    /// "The organization's management account remains the owner of any CloudTrail organization
    /// resources the delegated administrator creates", so the trail's ARN (and CloudTrail's
    /// `aws:SourceArn`) names it whoever created the trail.
    /// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-delegated-administrator.html
    pub fn owned_by(mut self, management_account: &str) -> Self {
        if self.organization {
            self.trail_arn = super::with_account(&self.trail_arn, management_account);
        }
        self
    }
}

/// Whether two trail ARNs name the same trail, the account aside.
pub fn same_trail(a: &str, b: &str) -> bool {
    super::with_account(a, "") == super::with_account(b, "")
}

/// The member a baseline makes of its account (its Organization trail named by its own account
/// until the management account is known: `Member::owned_by`).
pub fn member_of(baseline: &LoggingBaselineSpec, trail_policy: &TrailPolicySpec) -> Member {
    Member {
        account_id: baseline.account_id.clone(),
        trail_arn: super::trail_arn(baseline),
        organization: trail_policy.organization_trail,
        role_arn: baseline.credentials.as_ref().map(|c| c.assume_role_arn.clone()),
    }
}

/// `{prefix}-{accountId}-log-archive-{region}` unless the archive names its bucket.
pub fn bucket_name(spec: &LogArchiveSpec) -> String {
    spec.bucket_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-log-archive-{}", spec.name_prefix, spec.account_id, spec.region))
}

/// `{prefix}-{accountId}-log-archive-access-{region}` unless the archive names it.
pub fn access_log_bucket_name(spec: &LogArchiveSpec) -> String {
    spec.access_log_bucket_name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-log-archive-access-{}",
            spec.name_prefix, spec.account_id, spec.region
        )
    })
}

/// The archive as a baseline of its own account with storage and a key only: the engine's key and
/// storage parts reconcile it as they do an account's, with the archive's policies.
pub fn as_baseline(spec: &LogArchiveSpec) -> LoggingBaselineSpec {
    use crate::api::{
        ConfigRulesSpec, DeletionPolicy, EncryptionSpec, FlowLogsSpec, InstanceLogsSpec, StorageSpec, TrailSpec,
        VerifyIntegritySpec,
    };
    LoggingBaselineSpec {
        account_id: spec.account_id.clone(),
        primary_region: spec.region.clone(),
        regions: Vec::new(),
        compliance_regions: Vec::new(),
        credentials: spec.credentials.clone(),
        mode: spec.mode,
        // An archive is always retained: its key never scheduled for deletion by trailkeeper.
        deletion_policy: DeletionPolicy::Retain,
        trail: TrailSpec::default(),
        storage: StorageSpec {
            name_prefix: spec.name_prefix.clone(),
            bucket_name: Some(bucket_name(spec)),
            key_prefix: spec.key_prefix.clone(),
            access_log_bucket_name: Some(access_log_bucket_name(spec)),
            archive_ref: None,
            lock_existing_bucket: None,
        },
        encryption: EncryptionSpec {
            kms_key_arn: None,
            administrators: spec.administrators.clone(),
            operators: spec.auditors.clone(),
            log_groups: false,
        },
        retention_policy_ref: spec.retention_policy_ref.clone(),
        flow_logs: FlowLogsSpec {
            enabled: false,
            ..FlowLogsSpec::default()
        },
        instance_logs: InstanceLogsSpec {
            enabled: false,
            ..InstanceLogsSpec::default()
        },
        config_rules: ConfigRulesSpec {
            enabled: false,
            ..ConfigRulesSpec::default()
        },
        audit_queries: spec.audit_queries.clone(),
        verify_integrity: VerifyIntegritySpec::default(),
        security_hub: Default::default(),
        tags: spec.tags.clone(),
    }
}

/// The archive's resources, with how its policies admit the members and their sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredArchive {
    /// The key and the two buckets (no trail: `trail` is unused).
    pub account: DesiredAccount,
    pub admission: Admission,
    /// Exactly what the policies admit, in a sentence (`status.admits`).
    pub admits: String,
    pub bucket_policy_bytes: usize,
    pub key_policy_bytes: usize,
}

/// The archive's desired state for `members` (sorted and deduplicated here), or why the policies
/// cannot admit them (a person must act: the message says how).
pub fn archive(
    spec: &LogArchiveSpec,
    retention: &RetentionPolicySpec,
    members: &[Member],
) -> Result<DesiredArchive, String> {
    let baseline = as_baseline(spec);
    let trail_policy = TrailPolicySpec::default();
    let specs = AccountSpecs {
        baseline: &baseline,
        trail_policy: &trail_policy,
        retention,
    };
    let mut members = members.to_vec();
    members.sort();
    members.dedup();
    if members.iter().any(|m| m.organization) && spec.organization_id.is_none() {
        return Err(
            "a member's trail is an Organization trail, which writes under AWSLogs/{organizationId}/: set spec.organizationId of the LogArchive"
                .into(),
        );
    }
    let admission = spec.admission;
    if admission == Admission::Organization && spec.organization_id.is_none() {
        return Err("admission: Organization admits the trails of spec.organizationId: set it".into());
    }
    let (bucket_policy, key_policy) = policies(spec, &baseline, &members, admission);
    let (bucket_bytes, key_bytes) = (size(&bucket_policy), size(&key_policy));
    if !fits(bucket_bytes, key_bytes) {
        return Err(match admission {
            Admission::Trails => too_many_members(spec, &members, bucket_bytes, key_bytes),
            Admission::Organization => format!(
                "admitting the Organization, the bucket policy needs {bucket_bytes} bytes and the key policy {key_bytes} bytes, more than S3 ({BUCKET_POLICY_LIMIT}) or KMS ({KEY_POLICY_LIMIT}) holds{}: name fewer accounts per reader, or fewer readers",
                readers_counted(spec)
            ),
        });
    }
    let mut account = super::account(&specs);
    account.key.source = KeySource::Create {
        alias: ARCHIVE_KEY_ALIAS.to_string(),
        description: format!(
            "trailkeeper: encrypts the CloudTrail logs of the members of the log archive in account {}",
            spec.account_id
        ),
    };
    account.key.policy = key_policy;
    if let Some(storage) = account.storage.as_mut() {
        storage.trail_bucket.policy = bucket_policy;
    }
    Ok(DesiredArchive {
        account,
        admission,
        admits: admits(spec, &members, admission),
        bucket_policy_bytes: bucket_bytes,
        key_policy_bytes: key_bytes,
    })
}

/// Whether the archive may write the admission its spec asks for, given the admission in force
/// (`in_force`, None for an archive never reconciled) and the approval that allowed it
/// (`approved_by`): admitting the Organization where it is not yet admitted widens who may
/// write into the locked archive, which needs `spec.approval` with a reference new in that
/// change (as a shorter retention does). The approval in force after the write, or why not.
pub fn admission_approval(
    spec: &LogArchiveSpec,
    in_force: Option<Admission>,
    approved_by: Option<&str>,
) -> Result<Option<String>, String> {
    if spec.admission == Admission::Trails {
        return Ok(None);
    }
    let reference = spec.approval.as_ref().map(|a| a.reference.clone());
    if in_force == Some(Admission::Organization) {
        return Ok(approved_by.map(str::to_string).or(reference));
    }
    match reference {
        Some(reference) if Some(reference.as_str()) != approved_by => Ok(Some(reference)),
        _ => Err(format!(
            "spec.admission: Organization widens who may write into the locked archive from the members' trails to any trail of Organization {} bearing a member's trail name: \
             nothing is written until spec.approval carries a reference that is new in this change",
            spec.organization_id.as_deref().unwrap_or("(spec.organizationId unset)")
        )),
    }
}

fn policies(
    spec: &LogArchiveSpec,
    baseline: &LoggingBaselineSpec,
    members: &[Member],
    admission: Admission,
) -> (Value, Value) {
    (
        bucket_policy(spec, members, admission),
        key_policy(spec, baseline, members, admission),
    )
}

fn fits(bucket_bytes: usize, key_bytes: usize) -> bool {
    bucket_bytes <= BUCKET_POLICY_LIMIT && key_bytes <= KEY_POLICY_LIMIT
}

/// ` (with N readers of M accounts)`, or nothing without readers.
fn readers_counted(spec: &LogArchiveSpec) -> String {
    if spec.readers.is_empty() {
        return String::new();
    }
    let accounts: usize = spec.readers.iter().map(|r| r.accounts.len()).sum();
    format!(" (with {} readers of {accounts} accounts)", spec.readers.len())
}

/// How many of `members` (sorted, in that order) the policies can name one by one, readers
/// counted: the largest number whose policies fit both limits.
pub fn members_that_fit(spec: &LogArchiveSpec, members: &[Member]) -> usize {
    let baseline = as_baseline(spec);
    let fit = |n: usize| {
        let (bucket, key) = policies(spec, &baseline, &members[..n], Admission::Trails);
        fits(size(&bucket), size(&key))
    };
    if fit(members.len()) {
        return members.len();
    }
    if !fit(0) {
        return 0;
    }
    // Each member only adds statements: fit(n) is true up to some n and false after.
    let (mut low, mut high) = (0, members.len());
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fit(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }
    low
}

fn too_many_members(spec: &LogArchiveSpec, members: &[Member], bucket_bytes: usize, key_bytes: usize) -> String {
    format!(
        "{} members named one by one need a bucket policy of {bucket_bytes} bytes and a key policy of {key_bytes} bytes{}, more than S3 ({BUCKET_POLICY_LIMIT}) or KMS ({KEY_POLICY_LIMIT}) holds: {} of them fit. \
         Remove members or readers (or split the members over two LogArchives), or admit the Organization's trails instead: \
         spec.admission: Organization, with spec.organizationId and spec.approval (it widens who may write into the archive to any trail of the Organization bearing a member's trail name)",
        members.len(),
        readers_counted(spec),
        members_that_fit(spec, members)
    )
}

/// The size AWS counts: the document as sent (compact JSON).
fn size(policy: &Value) -> usize {
    serde_json::to_string(policy).map(|s| s.len()).unwrap_or(usize::MAX)
}

fn trail_arns(members: &[Member]) -> Vec<String> {
    sorted(&members.iter().map(|m| m.trail_arn.clone()).collect::<Vec<_>>())
}

/// The members with the suffix of their statements' Sids: the account, and its rank among the
/// members of the same account after the first.
fn with_sids(members: &[Member]) -> Vec<(String, &Member)> {
    let mut out: Vec<(String, &Member)> = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let before = members[..i]
            .iter()
            .filter(|m| m.account_id == member.account_id)
            .count();
        let sid = match before {
            0 => member.account_id.clone(),
            n => format!("{}{n}", member.account_id),
        };
        out.push((sid, member));
    }
    out
}

/// The paths a member's trail writes under: `{prefix}/AWSLogs/{account}/` (its trail's account)
/// and, for an Organization trail, `{prefix}/AWSLogs/{o-id}/` (where it writes every account's
/// logs). https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html
fn member_paths(spec: &LogArchiveSpec, bucket_arn: &str, member: &Member) -> Value {
    let prefix = spec.key_prefix.trim_end_matches('/');
    let own = format!("{bucket_arn}/{prefix}/AWSLogs/{}/*", member.trail_owner());
    match spec.organization_id.as_deref() {
        Some(organization) if member.organization => {
            json!([own, format!("{bucket_arn}/{prefix}/AWSLogs/{organization}/*")])
        }
        _ => json!(own),
    }
}

/// `arn:{partition}:cloudtrail:*:*:trail/{name}` for each of the members' trail names.
fn trail_name_patterns(part: &str, members: &[Member]) -> Vec<String> {
    sorted(
        &members
            .iter()
            .map(|m| format!("arn:{part}:cloudtrail:*:*:trail/{}", m.trail_name()))
            .collect::<Vec<_>>(),
    )
}

/// `arn:{partition}:iam::*:role/{path}{name}` for each of the members' roles: any account's role
/// of that path and name (a path kept: `role/ops/trailkeeper` is not `role/trailkeeper`).
fn role_patterns(part: &str, members: &[Member]) -> Vec<String> {
    sorted(
        &members
            .iter()
            .filter_map(|m| m.role_arn.as_deref()?.split_once(":role/"))
            .map(|(_, path_and_name)| format!("arn:{part}:iam::*:role/{path_and_name}"))
            .collect::<Vec<_>>(),
    )
}

/// CloudTrail's requests on behalf of a trail of `organization` bearing a member's trail name.
fn organization_source(part: &str, organization: &str, members: &[Member]) -> Value {
    json!({
        "StringEquals": {"aws:SourceOrgID": organization},
        "ArnLike": {"aws:SourceArn": trail_name_patterns(part, members)}
    })
}

/// The archive bucket's policy: CloudTrail may check the ACL for the members' trails, and write,
/// with the bucket owner's full control, only on behalf of each member's trail under its own paths
/// (admitting the Organization: of its trails bearing the members' trail names, under
/// `AWSLogs/`); the readers may read their accounts' paths; nobody may use plain HTTP.
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-set-bucket-policy-for-multiple-accounts.html
pub fn bucket_policy(spec: &LogArchiveSpec, members: &[Member], admission: Admission) -> Value {
    let part = partition(&spec.region);
    let bucket_arn = format!("arn:{part}:s3:::{}", bucket_name(spec));
    let prefix = spec.key_prefix.trim_end_matches('/');
    let mut statements = Vec::new();
    let acl_check = |condition: Value| {
        json!({
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": condition
        })
    };
    match (admission, spec.organization_id.as_deref()) {
        _ if members.is_empty() => {}
        (Admission::Organization, Some(organization)) => {
            let source = organization_source(part, organization, members);
            statements.push(acl_check(source.clone()));
            let mut write = source;
            write["StringEquals"]["s3:x-amz-acl"] = json!("bucket-owner-full-control");
            // Each trail under its own account's path: `aws:SourceAccount` is the trail's owner
            // ("the account ID of the trail owner, or for organization trails, the management
            // account ID"), a global condition key, which a policy variable may name.
            // https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
            // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
            statements.push(json!({
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/${{aws:SourceAccount}}/*"),
                "Condition": write
            }));
            // The Organization's path, for the members' Organization trails only (by ARN).
            let organization_trails = organization_trails(members);
            if !organization_trails.is_empty() {
                statements.push(json!({
                    "Sid": "CloudTrailWriteOrganizationTrails",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/{organization}/*"),
                    "Condition": {"StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceArn": organization_trails
                    }}
                }));
            }
        }
        _ => {
            statements.push(acl_check(
                json!({"StringEquals": {"aws:SourceArn": trail_arns(members)}}),
            ));
            for (sid, member) in with_sids(members) {
                statements.push(json!({
                    "Sid": format!("CloudTrailWrite{sid}"),
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": member_paths(spec, &bucket_arn, member),
                    "Condition": {"StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceArn": member.trail_arn
                    }}
                }));
            }
        }
    }
    for (i, reader) in spec.readers.iter().enumerate() {
        // Reading by account prefix: the objects under each account's path (its own, and under
        // the Organization's id), and listing only there.
        let paths = reader_paths(spec, &reader.accounts);
        statements.push(json!({
            "Sid": format!("Reader{i}GetObjects"),
            "Effect": "Allow",
            "Principal": {"AWS": reader.principal},
            "Action": "s3:GetObject",
            "Resource": paths.iter().map(|p| format!("{bucket_arn}/{p}*")).collect::<Vec<_>>()
        }));
        statements.push(json!({
            "Sid": format!("Reader{i}ListPrefixes"),
            "Effect": "Allow",
            "Principal": {"AWS": reader.principal},
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": paths.iter().map(|p| format!("{p}*")).collect::<Vec<_>>()}}
        }));
    }
    statements.push(deny_insecure_transport(&bucket_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The key prefixes of `accounts` in the archive: `{keyPrefix}/AWSLogs/{account}/` and, with an
/// Organization, `{keyPrefix}/AWSLogs/{o-id}/{account}/`.
fn reader_paths(spec: &LogArchiveSpec, accounts: &[String]) -> Vec<String> {
    let prefix = spec.key_prefix.trim_end_matches('/');
    let mut paths = Vec::new();
    for account in sorted(accounts) {
        paths.push(format!("{prefix}/AWSLogs/{account}/"));
        if let Some(organization) = &spec.organization_id {
            paths.push(format!("{prefix}/AWSLogs/{organization}/{account}/"));
        }
    }
    paths
}

/// The archive key's policy: the archive account's root and administrators, trailkeeper's
/// maintenance, CloudTrail for the members' trails only (their ARN as source and encryption
/// context, or the Organization's trails bearing their names), each member's role's Decrypt for
/// its own trail only (CloudTrail checks it at CreateTrail into a bucket with a Bucket Key), the
/// auditors' Decrypt of CloudTrail logs and the readers' of their accounts' logs.
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
pub fn key_policy(
    spec: &LogArchiveSpec,
    baseline: &LoggingBaselineSpec,
    members: &[Member],
    admission: Admission,
) -> Value {
    let part = partition(&spec.region);
    let any_trail = format!("arn:{part}:cloudtrail:*:*:trail/*");
    let mut statements = key_policy_base(baseline)["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The members' roles are named by condition (a principal named outright must exist when the
    // policy is put, and one missing role would refuse the whole policy); each may Decrypt only
    // in its own trail's encryption context.
    match (admission, spec.organization_id.as_deref()) {
        _ if members.is_empty() => {}
        (Admission::Organization, Some(organization)) => {
            let names = trail_name_patterns(part, members);
            statements.extend(super::cloudtrail_key_statements(
                organization_source(part, organization, members),
                json!(names),
            ));
            // Each role of the Organization by the members' roles' path and name, for a trail of its
            // own account bearing a member's trail name (`aws:PrincipalAccount` as a variable); an
            // Organization trail's roles below, by ARN (its trail is the management account's).
            let roles = role_patterns(part, members);
            let own_trails: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "arn:{part}:cloudtrail:*:${{aws:PrincipalAccount}}:trail/{}",
                        m.trail_name()
                    )
                })
                .collect();
            if !roles.is_empty() {
                statements.push(json!({
                    "Sid": "MembersCreateTrailsWithBucketKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:PrincipalOrgID": organization},
                        "ArnLike": {"aws:PrincipalArn": roles},
                        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": sorted(&own_trails)}
                    }
                }));
            }
            let organization_members: Vec<Member> = members.iter().filter(|m| m.organization).cloned().collect();
            statements.extend(members_decrypt_each_for_its_trail(&organization_members));
        }
        _ => {
            let arns = trail_arns(members);
            statements.extend(super::cloudtrail_key_statements(
                json!({"StringEquals": {"aws:SourceArn": arns}}),
                json!(arns),
            ));
            statements.extend(members_decrypt_each_for_its_trail(members));
        }
    }
    if !spec.auditors.is_empty() && spec.audit_queries.enabled {
        statements.push(super::audit_results_statement(
            "AuditorsUseAuditQueryResults",
            &spec.auditors,
            baseline,
        ));
    }
    if !spec.auditors.is_empty() {
        statements.push(json!({
            "Sid": "AuditorsDecryptLogs",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.auditors)},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": spec.account_id},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": any_trail}
            }
        }));
    }
    // An Organization trail encrypts every account's logs with its own ARN as the context (the
    // management account's trail): a reader of an account under it decrypts with that ARN, only
    // through S3, whose policy confines the reader to its accounts' paths.
    // https://docs.aws.amazon.com/kms/latest/developerguide/services-cloudtrail.html
    let organization_trails = organization_trails(members);
    for (i, reader) in spec.readers.iter().enumerate() {
        let mut trails: Vec<String> = sorted(&reader.accounts)
            .iter()
            .map(|a| format!("arn:{part}:cloudtrail:*:{a}:trail/*"))
            .collect();
        trails.extend(organization_trails.iter().cloned());
        statements.push(json!({
            "Sid": format!("Reader{i}DecryptLogs"),
            "Effect": "Allow",
            "Principal": {"AWS": reader.principal},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": format!("s3.{}.amazonaws.com", spec.region)},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails}
            }
        }));
    }
    json!({"Version": "2012-10-17", "Id": "trailkeeper-log-archive-key", "Statement": statements})
}

/// Each member's role may Decrypt for its own trail only (its encryption context).
fn members_decrypt_each_for_its_trail(members: &[Member]) -> Vec<Value> {
    with_sids(members)
        .into_iter()
        .filter_map(|(sid, member)| {
            let role = member.role_arn.as_ref()?;
            Some(json!({
                "Sid": format!("Member{sid}CreatesTrail"),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"aws:PrincipalArn": role},
                    "StringEquals": {"kms:EncryptionContext:aws:cloudtrail:arn": member.trail_arn}
                }
            }))
        })
        .collect()
}

/// The ARNs of the members' Organization trails.
fn organization_trails(members: &[Member]) -> Vec<String> {
    sorted(
        &members
            .iter()
            .filter(|m| m.organization)
            .map(|m| m.trail_arn.clone())
            .collect::<Vec<_>>(),
    )
}

/// Exactly what the policies of `admission` admit, for `status.admits`.
fn admits(spec: &LogArchiveSpec, members: &[Member], admission: Admission) -> String {
    let part = partition(&spec.region);
    let prefix = spec.key_prefix.trim_end_matches('/');
    let roles = members.iter().filter(|m| m.role_arn.is_some()).count();
    match (admission, spec.organization_id.as_deref()) {
        _ if members.is_empty() => "no trail: the archive has no member".to_string(),
        (Admission::Organization, Some(organization)) => format!(
            "any trail of Organization {organization} named {} (CloudTrail's aws:SourceOrgID and aws:SourceArn), each under its own account's path ({prefix}/AWSLogs/{{its account}}/*; the members' Organization trails also {prefix}/AWSLogs/{organization}/*); \
             kms:Decrypt to create a trail for the roles {} of any account of the Organization, each for its own account's trail so named",
            trail_name_patterns(part, members).join(", "),
            role_patterns(part, members).join(", ")
        ),
        _ => format!(
            "the {} members' trails, each by its ARN and under its own account's path only ({prefix}/AWSLogs/{{account}}/*; an Organization trail also {prefix}/AWSLogs/{{organizationId}}/*); \
             kms:Decrypt to create a trail for {roles} member roles, each for its own trail only",
            members.len()
        ),
    }
}

pub const REPLICA_KEY_ALIAS: &str = "alias/trailkeeper/log-archive-replica";
/// The role S3 replicates the archive with, and its inline policy.
pub const REPLICATION_ROLE: &str = "trailkeeper-log-archive-replication";
pub const REPLICATION_ROLE_POLICY: &str = "trailkeeper-replication";
/// The id of trailkeeper's replication rule.
pub const REPLICATION_RULE_ID: &str = "trailkeeper-log-archive";

/// The archive's replica in another region: bucket, key and the role S3 replicates with.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredReplication {
    pub region: String,
    pub bucket: super::DesiredBucket,
    pub key: super::DesiredKey,
    pub role_arn: String,
}

/// `{prefix}-{accountId}-log-archive-replica-{region}` unless the spec names it.
pub fn replica_bucket_name(spec: &LogArchiveSpec) -> Option<String> {
    let replication = spec.replication.as_ref()?;
    Some(replication.bucket_name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-log-archive-replica-{}",
            spec.name_prefix, spec.account_id, replication.region
        )
    }))
}

pub fn replication_role_arn(spec: &LogArchiveSpec) -> String {
    format!(
        "arn:{}:iam::{}:role/{REPLICATION_ROLE}",
        partition(&spec.region),
        spec.account_id
    )
}

/// The replica: Object Lock with the archive's default retention and expiration (a replica that
/// kept less would be the weak copy), SSE-KMS with its own key, TLS only; no access logging (S3
/// writes it, not people).
pub fn replication(spec: &LogArchiveSpec, retention: &RetentionPolicySpec) -> Option<DesiredReplication> {
    let replication = spec.replication.as_ref()?;
    let name = replica_bucket_name(spec)?;
    let baseline = as_baseline(spec);
    let part = partition(&replication.region);
    let mut key_statements = key_policy_base(&baseline)["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !spec.auditors.is_empty() {
        // Replicas are encrypted by S3 with this key: auditors read them through S3.
        let bucket_arn = format!("arn:{part}:s3:::{name}");
        key_statements.push(json!({
            "Sid": "AuditorsReadReplicas",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.auditors)},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": spec.account_id,
                    "kms:ViaService": format!("s3.{}.amazonaws.com", replication.region)
                },
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn.clone(), format!("{bucket_arn}/*")]}
            }
        }));
    }
    let tags = super::resource_tags(&baseline);
    Some(DesiredReplication {
        region: replication.region.clone(),
        bucket: super::DesiredBucket {
            policy: json!({"Version": "2012-10-17", "Statement": [deny_insecure_transport(&format!("arn:{part}:s3:::{name}"))]}),
            name,
            object_lock: true,
            lock_retention: super::lock_retention(retention),
            encryption: super::BucketEncryption::KmsTrailKey,
            access_logging: None,
            lifecycle: super::Lifecycle {
                expire_current_after_days: retention.trail_logs.expire_after_days,
                expire_noncurrent_after_days: retention.trail_logs.noncurrent_versions_expire_after_days,
                abort_incomplete_uploads_after_days: super::ABORT_INCOMPLETE_UPLOADS_DAYS,
            },
            tags: tags.clone(),
        },
        key: super::DesiredKey {
            source: KeySource::Create {
                alias: REPLICA_KEY_ALIAS.to_string(),
                description: format!(
                    "trailkeeper: encrypts the replica of the log archive of account {}",
                    spec.account_id
                ),
            },
            policy: json!({"Version": "2012-10-17", "Id": "trailkeeper-log-archive-replica-key", "Statement": key_statements}),
            rotation: true,
            tags,
        },
        role_arn: replication_role_arn(spec),
    })
}

/// Only S3 may assume it, and, when S3 says on whose behalf (`aws:SourceAccount`,
/// `aws:SourceArn` in the request), only for this archive bucket. AWS's documented trust policy
/// has no condition and no page says S3 sets those keys when it assumes a replication role: with
/// the plain operators a missing key would refuse every AssumeRole (each object FAILED,
/// AssumeRoleNotPermitted), so the ...IfExists forms hold whichever way S3 sends the request
/// (docs/log-archive.md, "The replication role's trust").
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists
pub fn replication_role_trust(spec: &LogArchiveSpec) -> Value {
    let source = format!("arn:{}:s3:::{}", partition(&spec.region), bucket_name(spec));
    service_trust(S3_SERVICE, &spec.account_id, &source)
}

/// `service` may assume the role; when the request names a source account or resource, only
/// `account`'s and `source` (an ARN pattern).
fn service_trust(service: &str, account: &str, source: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEqualsIfExists": {"aws:SourceAccount": account},
                "ArnLikeIfExists": {"aws:SourceArn": source}
            }
        }]
    })
}

/// The service principal of S3, which assumes the replication role.
pub const S3_SERVICE: &str = "s3.amazonaws.com";
/// The service principal of S3 Batch Operations, which assumes the Batch Replication role.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html
pub const BATCH_OPERATIONS_SERVICE: &str = "batchoperations.s3.amazonaws.com";

/// What S3 needs to replicate the archive's objects, with their retention, and no more: read the
/// source's configuration and object versions, write replicas (no ReplicateDelete: delete markers
/// are not replicated), decrypt with the archive's key and encrypt with the replica's (and decrypt
/// with it: the replica's S3 Bucket Key), each only through S3 for its bucket.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html
pub fn replication_role_policy(spec: &LogArchiveSpec, source_key: &str, replica_key: &str) -> Value {
    let part = partition(&spec.region);
    let source = format!("arn:{part}:s3:::{}", bucket_name(spec));
    let replica_region = spec.replication.as_ref().map(|r| r.region.clone()).unwrap_or_default();
    let replica = format!("arn:{part}:s3:::{}", replica_bucket_name(spec).unwrap_or_default());
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadSourceConfiguration", "Effect": "Allow",
             "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": source},
            {"Sid": "ReadSourceVersions", "Effect": "Allow",
             "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
                        "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
             "Resource": format!("{source}/*")},
            {"Sid": "WriteReplicas", "Effect": "Allow",
             "Action": ["s3:ReplicateObject", "s3:ReplicateTags"], "Resource": format!("{replica}/*")},
            {"Sid": "DecryptSource", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": source_key,
             "Condition": {
                 "StringEquals": {"kms:ViaService": format!("s3.{}.amazonaws.com", spec.region)},
                 "StringLike": {"kms:EncryptionContext:aws:s3:arn": [source.clone(), format!("{source}/*")]}
             }},
            // Decrypt too: the replica has an S3 Bucket Key, whose integrity S3 checks with
            // kms:Decrypt as the role before using it (replication-config-for-kms-objects).
            {"Sid": "EncryptReplicas", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"], "Resource": replica_key,
             "Condition": {
                 "StringEquals": {"kms:ViaService": format!("s3.{replica_region}.amazonaws.com")},
                 "StringLike": {"kms:EncryptionContext:aws:s3:arn": [replica.clone(), format!("{replica}/*")]}
             }}
        ]
    })
}

/// The role S3 Batch Operations runs the archive's Batch Replication jobs with, and its policy.
pub const BATCH_REPLICATION_ROLE: &str = "trailkeeper-log-archive-batch-replication";
pub const BATCH_REPLICATION_ROLE_POLICY: &str = "trailkeeper-batch-replication";

pub fn batch_replication_role_arn(spec: &LogArchiveSpec) -> String {
    format!(
        "arn:{}:iam::{}:role/{BATCH_REPLICATION_ROLE}",
        partition(&spec.region),
        spec.account_id
    )
}

/// Only S3 Batch Operations may assume it, for the archive account's jobs in its region.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html
pub fn batch_replication_role_trust(spec: &LogArchiveSpec) -> Value {
    let jobs = format!(
        "arn:{}:s3:{}:{}:job/*",
        partition(&spec.region),
        spec.region,
        spec.account_id
    );
    service_trust(BATCH_OPERATIONS_SERVICE, &spec.account_id, &jobs)
}

/// What a Batch Replication job with a manifest S3 generates from the replication configuration
/// needs, and no more: read that configuration, generate the manifest (an inventory of the
/// source), and initiate the replication of the archive's objects. No manifest is stored and no
/// completion report written (trailkeeper reads the job's progress with DescribeJob), so no
/// PutObject anywhere; the replication itself runs as the replication role.
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-policies.html
pub fn batch_replication_role_policy(spec: &LogArchiveSpec) -> Value {
    let source = format!("arn:{}:s3:::{}", partition(&spec.region), bucket_name(spec));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "GenerateManifest", "Effect": "Allow",
             "Action": ["s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"], "Resource": source},
            {"Sid": "InitiateReplication", "Effect": "Allow",
             "Action": "s3:InitiateReplication", "Resource": format!("{source}/*")}
        ]
    })
}

/// Where a member's trail delivers, from the archive's status: known once the archive has its
/// key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveTarget {
    /// The LogArchive, `namespace/name`, for the reasons a member reports.
    pub name: String,
    pub bucket: String,
    pub key_prefix: String,
    pub key_arn: String,
    /// The archive's policies in force admit this member's trail.
    pub admitted: bool,
    /// Since when (seconds since the epoch), when known: CloudTrail may refuse the trail for a
    /// short while after (policy changes propagate).
    pub admitted_at: Option<i64>,
    /// Why the archive finds this member's logs late, if it does.
    pub late: Option<String>,
}

/// Where `member` delivers, from its archive's status (`name` is `namespace/name`): None until the
/// archive has its bucket and key.
pub fn target_of(name: &str, status: &LogArchiveStatus, member: &LoggingBaselineSpec) -> Option<ArchiveTarget> {
    let trail = super::trail_arn(member);
    let entry = status
        .members
        .iter()
        .find(|m| m.account_id == member.account_id && same_trail(&m.trail_arn, &trail));
    Some(ArchiveTarget {
        name: name.to_string(),
        bucket: status.bucket_name.clone()?,
        key_prefix: status.key_prefix.clone()?,
        key_arn: status.kms_key_arn.clone()?,
        admitted: entry.is_some_and(|m| m.admitted),
        admitted_at: entry
            .and_then(|m| m.admitted_at.as_deref())
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .map(|at| at.as_second()),
        late: entry.and_then(|m| m.late.clone()),
    })
}

/// A member's account: no bucket or key of its own; its trail delivers into the archive.
pub fn with_archive(account: &mut DesiredAccount, target: &ArchiveTarget) {
    account.storage = None;
    account.key.source = KeySource::None;
    if let super::DesiredTrail::Managed(settings) = &mut account.trail {
        settings.bucket = Some(target.bucket.clone());
        settings.key_prefix = Some(target.key_prefix.trim_end_matches('/').to_string());
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod replication_tests;
