//! The emulator's S3 replication (scripts/emulator/trailkeeper_replication.py) as strict as S3,
//! each rule both ways through the SDK: what PutBucketReplication accepts, and what replicating an
//! object needs (the role's trust and permissions, both keys, the replica's Object Lock), with
//! the source's retention on the replica and PENDING before COMPLETED.

mod common;

use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, DefaultRetention, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetentionMode, ObjectLockRule, ReplicationConfiguration,
    ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, SourceSelectionCriteria, SseKmsEncryptedObjects,
    SseKmsEncryptedObjectsStatus,
};
use common::{Inspector, REGION, inspector_in, new_account};
use serde_json::{Value, json};

const REPLICA_REGION: &str = "eu-west-1";

/// A locked, SSE-KMS (Bucket Key) source in us-east-1 and a destination in eu-west-1, each with
/// its own key, and a replication role that may do what S3 needs: the parts a test changes.
struct Setup {
    account: String,
    source: String,
    destination: String,
    source_key: String,
    replica_key: String,
    role_arn: String,
    us: Inspector,
    eu: Inspector,
}

fn trust(conditions: Option<Value>) -> Value {
    let mut statement =
        json!({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"});
    if let Some(c) = conditions {
        statement["Condition"] = c;
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

impl Setup {
    /// The role's permissions, all of them, less `without` (actions).
    fn permissions(&self, without: &[&str]) -> Value {
        let (source, destination) = (
            format!("arn:aws:s3:::{}", self.source),
            format!("arn:aws:s3:::{}", self.destination),
        );
        let keep = |actions: &[&str]| -> Vec<String> {
            actions
                .iter()
                .filter(|a| !without.contains(a))
                .map(|a| a.to_string())
                .collect()
        };
        let statements: Vec<Value> = [
            (
                keep(&[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                    "s3:GetObjectRetention",
                    "s3:GetObjectLegalHold",
                ]),
                json!(format!("{source}/*")),
            ),
            (
                keep(&["s3:GetReplicationConfiguration", "s3:ListBucket"]),
                json!(source),
            ),
            (
                keep(&["s3:ReplicateObject", "s3:ReplicateTags"]),
                json!(format!("{destination}/*")),
            ),
            (keep(&["kms:Decrypt"]), json!(self.source_key)),
            (
                keep(&["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"])
                    .into_iter()
                    .filter(|a| !without.contains(&format!("replica {a}").as_str()))
                    .collect(),
                json!(self.replica_key),
            ),
        ]
        .into_iter()
        .filter(|(actions, _)| !actions.is_empty())
        .map(|(actions, resource)| json!({"Effect": "Allow", "Action": actions, "Resource": resource}))
        .collect();
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    async fn set_role(&self, trust: Value, permissions: Value) {
        self.us
            .iam
            .update_assume_role_policy()
            .role_name("replication")
            .policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        self.us
            .iam
            .put_role_policy()
            .role_name("replication")
            .policy_name("replication")
            .policy_document(permissions.to_string())
            .send()
            .await
            .unwrap();
    }

    fn configuration(&self, role: &str, replica_key: &str) -> ReplicationConfiguration {
        ReplicationConfiguration::builder()
            .role(role)
            .rules(
                ReplicationRule::builder()
                    .id("all")
                    .priority(1)
                    .status(ReplicationRuleStatus::Enabled)
                    .filter(ReplicationRuleFilter::builder().prefix("").build())
                    .delete_marker_replication(
                        DeleteMarkerReplication::builder()
                            .status(DeleteMarkerReplicationStatus::Disabled)
                            .build(),
                    )
                    .source_selection_criteria(
                        SourceSelectionCriteria::builder()
                            .sse_kms_encrypted_objects(
                                SseKmsEncryptedObjects::builder()
                                    .status(SseKmsEncryptedObjectsStatus::Enabled)
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    )
                    .destination(
                        Destination::builder()
                            .bucket(format!("arn:aws:s3:::{}", self.destination))
                            .encryption_configuration(
                                EncryptionConfiguration::builder()
                                    .replica_kms_key_id(replica_key)
                                    .build(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    async fn replicate_with(&self, replica_key: &str) {
        self.us
            .s3
            .put_bucket_replication()
            .bucket(&self.source)
            .replication_configuration(self.configuration(&self.role_arn, replica_key))
            .send()
            .await
            .unwrap();
    }

    /// Puts `key` into the source and returns (its replication status once S3 has acted, the
    /// failure reason).
    async fn put_and_settle(&self, key: &str) -> (String, Option<String>) {
        self.us
            .s3
            .put_object()
            .bucket(&self.source)
            .key(key)
            .body(b"{}".to_vec().into())
            .send()
            .await
            .unwrap();
        common::moto_api::replication_outcome(&self.source, key).await
    }

    async fn replica_exists(&self, key: &str) -> bool {
        self.eu
            .s3
            .head_object()
            .bucket(&self.destination)
            .key(key)
            .send()
            .await
            .is_ok()
    }
}

/// A key whose policy allows the account (and so IAM policies); `extra` statements besides.
async fn key_in(aws: &Inspector, account: &str, extra: Vec<Value>) -> String {
    let mut statements = vec![json!({"Sid": "Account", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"})];
    statements.extend(extra);
    aws.kms
        .create_key()
        .policy(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap()
}

async fn locked_bucket(aws: &Inspector, name: &str, region: Option<&str>, key: &str, days: i32) {
    let mut create = aws.s3.create_bucket().bucket(name).object_lock_enabled_for_bucket(true);
    if let Some(r) = region {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(r))
                .build(),
        );
    }
    create.send().await.unwrap();
    aws.s3
        .put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(days)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    encrypt(aws, name, key).await;
}

async fn encrypt(aws: &Inspector, bucket: &str, key: &str) {
    aws.s3
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id(key)
                                .build()
                                .unwrap(),
                        )
                        .bucket_key_enabled(true)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// Everything S3 needs, in place (the replication configuration not yet put).
async fn setup(locked_destination: bool) -> Setup {
    let account = new_account();
    let us = inspector_in(&account, REGION).await;
    let eu = inspector_in(&account, REPLICA_REGION).await;
    let source = format!("source-{account}");
    let destination = format!("replica-{account}");
    let source_key = key_in(&us, &account, vec![]).await;
    let replica_key = key_in(&eu, &account, vec![]).await;
    locked_bucket(&us, &source, None, &source_key, 365).await;
    if locked_destination {
        locked_bucket(&eu, &destination, Some(REPLICA_REGION), &replica_key, 1).await;
    } else {
        eu.s3
            .create_bucket()
            .bucket(&destination)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        eu.s3
            .put_bucket_versioning()
            .bucket(&destination)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        encrypt(&eu, &destination, &replica_key).await;
    }
    us.iam
        .create_role()
        .role_name("replication")
        .assume_role_policy_document(trust(None).to_string())
        .send()
        .await
        .unwrap();
    let setup = Setup {
        role_arn: format!("arn:aws:iam::{account}:role/replication"),
        account,
        source,
        destination,
        source_key,
        replica_key,
        us,
        eu,
    };
    setup.set_role(trust(None), setup.permissions(&[])).await;
    setup
}

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> Option<String> {
    e.code().map(str::to_string)
}

#[tokio::test]
async fn a_rule_from_a_locked_bucket_into_an_unlocked_one_is_accepted_and_each_object_fails_until_it_is_locked() {
    let s = setup(false).await;
    // Accepted: AWS documents setting up replication first and locking the destination after.
    s.replicate_with(&s.replica_key).await;
    assert_eq!(
        s.put_and_settle("unlocked").await,
        ("FAILED".into(), Some("DstBucketObjectLockConfigMissing".into()))
    );
    assert!(!s.replica_exists("unlocked").await);

    // Into a locked destination the same object replicates.
    let locked = setup(true).await;
    locked.replicate_with(&locked.replica_key).await;
    assert_eq!(locked.put_and_settle("locked").await, ("COMPLETED".into(), None));
    assert!(locked.replica_exists("locked").await);
}

#[tokio::test]
async fn a_new_object_reads_pending_then_completed_and_its_replica_reads_replica() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    s.us.s3
        .put_object()
        .bucket(&s.source)
        .key("log")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .unwrap();
    let head = s.us.s3.head_object().bucket(&s.source).key("log").send().await.unwrap();
    assert_eq!(
        head.replication_status.map(|r| r.as_str().to_string()).as_deref(),
        Some("PENDING")
    );
    // Nothing in the replica yet: S3 replicates asynchronously.
    assert!(!s.replica_exists("log").await);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let head = s.us.s3.head_object().bucket(&s.source).key("log").send().await.unwrap();
    assert_eq!(
        head.replication_status.map(|r| r.as_str().to_string()).as_deref(),
        Some("COMPLETED")
    );
    let replica =
        s.eu.s3
            .head_object()
            .bucket(&s.destination)
            .key("log")
            .send()
            .await
            .unwrap();
    assert_eq!(
        replica.replication_status.map(|r| r.as_str().to_string()).as_deref(),
        Some("REPLICA")
    );
    // The replica is encrypted with the replica's key.
    assert_eq!(replica.ssekms_key_id.as_deref(), Some(s.replica_key.as_str()));
}

#[tokio::test]
async fn a_replica_gets_the_source_objects_retention_and_legal_hold_not_the_replicas_default() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    let until = aws_smithy_types::DateTime::from_secs(common::now_secs() + 400 * 86_400);
    s.us.s3
        .put_object()
        .bucket(&s.source)
        .key("held")
        .body(b"{}".to_vec().into())
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::moto_api::replication_outcome(&s.source, "held").await,
        ("COMPLETED".into(), None)
    );
    let replica =
        s.eu.s3
            .head_object()
            .bucket(&s.destination)
            .key("held")
            .send()
            .await
            .unwrap();
    // The destination's default is GOVERNANCE for 1 day; the replica keeps the source's lock.
    assert_eq!(replica.object_lock_mode, Some(ObjectLockMode::Compliance));
    assert_eq!(
        replica.object_lock_retain_until_date.map(|d| d.secs()),
        Some(until.secs())
    );
    assert_eq!(
        replica.object_lock_legal_hold_status,
        Some(ObjectLockLegalHoldStatus::On)
    );
    // An object under the source's default retention: its replica has the source's 365 days.
    assert_eq!(s.put_and_settle("default").await, ("COMPLETED".into(), None));
    let source =
        s.us.s3
            .head_object()
            .bucket(&s.source)
            .key("default")
            .send()
            .await
            .unwrap();
    let replica =
        s.eu.s3
            .head_object()
            .bucket(&s.destination)
            .key("default")
            .send()
            .await
            .unwrap();
    assert_eq!(replica.object_lock_mode, Some(ObjectLockMode::Governance));
    assert_eq!(
        replica.object_lock_retain_until_date,
        source.object_lock_retain_until_date
    );
    let days = (replica.object_lock_retain_until_date.unwrap().secs() - common::now_secs()) / 86_400;
    assert!(days >= 364, "{days} days");
}

#[tokio::test]
async fn put_bucket_replication_needs_a_role_that_exists_and_the_callers_pass_role() {
    let s = setup(true).await;
    let missing = format!("arn:aws:iam::{}:role/missing", s.account);
    let refused =
        s.us.s3
            .put_bucket_replication()
            .bucket(&s.source)
            .replication_configuration(s.configuration(&missing, &s.replica_key))
            .send()
            .await
            .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("InvalidArgument"), "{refused:?}");

    // A caller whose role may not pass the replication role is refused; with PassRole, accepted.
    for (pass_role, accepted) in [(false, false), (true, true)] {
        let name = format!("deployer-{pass_role}");
        let mut actions = vec!["s3:PutReplicationConfiguration"];
        if pass_role {
            actions.push("iam:PassRole");
        }
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"iam:PassedToService": "s3.amazonaws.com"}}}]});
        s.us.iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": format!("arn:aws:iam::{}:root", s.account)}, "Action": "sts:AssumeRole"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        s.us.iam
            .put_role_policy()
            .role_name(&name)
            .policy_name("deploy")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let caller = as_role(&format!("arn:aws:iam::{}:role/{name}", s.account)).await;
        let sent = caller
            .put_bucket_replication()
            .bucket(&s.source)
            .replication_configuration(s.configuration(&s.role_arn, &s.replica_key))
            .send()
            .await;
        match sent {
            Ok(_) => assert!(accepted, "accepted without iam:PassRole"),
            Err(e) => {
                assert!(!accepted, "{e:?}");
                assert_eq!(code(&e).as_deref(), Some("AccessDenied"), "{e:?}");
            }
        }
    }
}

/// An S3 client acting as a session of `role_arn`.
async fn as_role(role_arn: &str) -> aws_sdk_s3::Client {
    let config = common::base_config().await;
    let sts = aws_sdk_sts::Client::new(&config);
    let session = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("test")
        .send()
        .await
        .unwrap();
    let c = session.credentials.unwrap();
    let credentials = aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "session",
    );
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .credentials_provider(credentials)
            .force_path_style(true)
            .build(),
    )
}

#[tokio::test]
async fn replication_assumes_the_role_as_s3_whichever_source_context_s3_sends() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    let source_arn = format!("arn:aws:s3:::{}", s.source);
    let cases = [
        // Another service's role: S3 cannot assume it.
        (
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            false,
        ),
        // Conditions that need the source keys in the request: refused when S3 sends none.
        (
            trust(Some(
                json!({"StringEquals": {"aws:SourceAccount": s.account}, "ArnLike": {"aws:SourceArn": source_arn}}),
            )),
            false,
        ),
        // The ...IfExists forms: assumed either way, for this bucket.
        (
            trust(Some(
                json!({"StringEqualsIfExists": {"aws:SourceAccount": s.account}, "ArnLikeIfExists": {"aws:SourceArn": source_arn}}),
            )),
            true,
        ),
        // ...but not when the bucket named is another.
        (
            trust(Some(
                json!({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::another"}}),
            )),
            false,
        ),
        (trust(None), true),
    ];
    for (i, (trust, replicates)) in cases.into_iter().enumerate() {
        s.set_role(trust, s.permissions(&[])).await;
        let key = format!("trust-{i}");
        let expected = if replicates {
            ("COMPLETED".to_string(), None)
        } else {
            ("FAILED".to_string(), Some("AssumeRoleNotPermitted".to_string()))
        };
        assert_eq!(s.put_and_settle(&key).await, expected, "case {i}");
        assert_eq!(s.replica_exists(&key).await, replicates, "case {i}");
    }
}

#[tokio::test]
async fn replication_needs_the_roles_permissions_on_the_source_object_and_the_replica() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    let cases = [
        ("s3:GetObjectVersionForReplication", "SrcGetObjectNotPermitted"),
        ("s3:GetObjectVersionAcl", "SrcGetAclNotPermitted"),
        // The source has Object Lock: its retention and legal hold are read.
        ("s3:GetObjectRetention", "SrcGetRetentionNotPermitted"),
        ("s3:GetObjectLegalHold", "SrcGetLegalHoldNotPermitted"),
        ("s3:ReplicateObject", "DstPutObjectNotPermitted"),
    ];
    for (i, (missing, reason)) in cases.into_iter().enumerate() {
        s.set_role(trust(None), s.permissions(&[missing])).await;
        let key = format!("perm-{i}");
        assert_eq!(
            s.put_and_settle(&key).await,
            ("FAILED".into(), Some(reason.into())),
            "without {missing}"
        );
        assert!(!s.replica_exists(&key).await, "without {missing}");
    }
    s.set_role(trust(None), s.permissions(&[])).await;
    assert_eq!(s.put_and_settle("all").await, ("COMPLETED".into(), None));
}

#[tokio::test]
async fn replication_of_sse_kms_objects_needs_both_keys_and_decrypt_of_the_replicas_bucket_key() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    // The source key's Decrypt (the role's policy; the key policy admits IAM).
    s.set_role(trust(None), s.permissions(&["kms:Decrypt"])).await;
    assert_eq!(
        s.put_and_settle("no-source-decrypt").await,
        ("FAILED".into(), Some("SrcGetObjectNotPermitted".into()))
    );
    // The replica key's Decrypt, which its S3 Bucket Key needs (F1), and its GenerateDataKey.
    for (i, missing) in ["replica kms:Decrypt", "replica kms:GenerateDataKey"]
        .into_iter()
        .enumerate()
    {
        s.set_role(trust(None), s.permissions(&[missing])).await;
        let key = format!("replica-key-{i}");
        assert_eq!(
            s.put_and_settle(&key).await,
            ("FAILED".into(), Some("DstPutObjectNotPermitted".into())),
            "without {missing}"
        );
        assert!(!s.replica_exists(&key).await);
    }
    s.set_role(trust(None), s.permissions(&[])).await;
    assert_eq!(s.put_and_settle("both-keys").await, ("COMPLETED".into(), None));

    // A key policy that does not admit the account's IAM policies, nor the role: refused; one that
    // names the role (through S3 only), admitted without IAM's grant.
    let role = s.role_arn.clone();
    let direct = json!({"Sid": "Replication", "Effect": "Allow", "Principal": {"AWS": role},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{REPLICA_REGION}.amazonaws.com")}}});
    for (i, (statements, replicates)) in [(vec![], false), (vec![direct], true)].into_iter().enumerate() {
        let admin = json!({"Sid": "Describe", "Effect": "Allow",
            "Principal": {"AWS": s.role_arn.clone()}, "Action": "kms:DescribeKey", "Resource": "*"});
        let statements: Vec<Value> = [admin].into_iter().chain(statements).collect();
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        s.eu.kms
            .put_key_policy()
            .key_id(&s.replica_key)
            .policy_name("default")
            .policy(policy.to_string())
            .bypass_policy_lockout_safety_check(true)
            .send()
            .await
            .unwrap();
        s.set_role(
            trust(None),
            s.permissions(&["replica kms:Decrypt", "replica kms:GenerateDataKey"]),
        )
        .await;
        let key = format!("key-policy-{i}");
        let (status, _) = s.put_and_settle(&key).await;
        assert_eq!(status == "COMPLETED", replicates, "case {i}");
    }
}

#[tokio::test]
async fn the_replica_key_must_be_in_the_replicas_region() {
    let s = setup(true).await;
    // A key of the source's region named as the replica key: S3 accepts the rule, and fails each
    // object ("The AWS KMS key must have been created in the same AWS Region as the destination
    // buckets").
    let elsewhere = key_in(&s.us, &s.account, vec![]).await;
    s.replicate_with(&elsewhere).await;
    assert_eq!(
        s.put_and_settle("wrong-region").await,
        ("FAILED".into(), Some("DstKmsKeyNotFound".into()))
    );
    s.replicate_with(&s.replica_key).await;
    assert_eq!(s.put_and_settle("right-region").await, ("COMPLETED".into(), None));
}

/// An S3 Control client acting in `account` (its account header), or as `credentials`' session.
async fn s3control(account: &str) -> aws_sdk_s3control::Client {
    let config = common::base_config().await;
    aws_sdk_s3control::Client::from_conf(
        aws_sdk_s3control::config::Builder::from(&config)
            .interceptor(common::MotoAccount(account.to_string()))
            .build(),
    )
}

const BATCH: &str = "batch";

impl Setup {
    /// The Batch Replication role: S3 Batch Operations may assume it (`trust_service`), with the
    /// permissions AWS lists for a generated manifest, less `without`.
    async fn batch_role(&self, trust_service: &str, without: &[&str]) -> String {
        let source = format!("arn:aws:s3:::{}", self.source);
        let keep = |actions: &[&'static str]| -> Vec<&'static str> {
            actions.iter().copied().filter(|a| !without.contains(a)).collect()
        };
        let statements: Vec<Value> = [
            (
                keep(&["s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"]),
                source.clone(),
            ),
            (keep(&["s3:InitiateReplication"]), format!("{source}/*")),
        ]
        .into_iter()
        .filter(|(a, _)| !a.is_empty())
        .map(|(a, r)| json!({"Effect": "Allow", "Action": a, "Resource": r}))
        .collect();
        let name = format!("{BATCH}-{}", self.us.iam.list_roles().send().await.unwrap().roles.len());
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": trust_service}, "Action": "sts:AssumeRole"}]});
        self.us
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
        self.us
            .iam
            .put_role_policy()
            .role_name(&name)
            .policy_name("batch")
            .policy_document(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
            .send()
            .await
            .unwrap();
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    async fn create_job(&self, client: &aws_sdk_s3control::Client, role: &str, token: &str) -> Result<String, String> {
        use aws_sdk_s3control::types::{
            JobManifestGenerator, JobManifestGeneratorFilter, JobOperation, JobReport, ReplicationStatus,
            S3JobManifestGenerator, S3ReplicateObjectOperation,
        };
        let generator = S3JobManifestGenerator::builder()
            .source_bucket(format!("arn:aws:s3:::{}", self.source))
            .enable_manifest_output(false)
            .filter(
                JobManifestGeneratorFilter::builder()
                    .eligible_for_replication(true)
                    .object_replication_statuses(ReplicationStatus::None)
                    .object_replication_statuses(ReplicationStatus::Failed)
                    .build(),
            )
            .build()
            .unwrap();
        client
            .create_job()
            .account_id(&self.account)
            .confirmation_required(false)
            .operation(
                JobOperation::builder()
                    .s3_replicate_object(S3ReplicateObjectOperation::builder().build())
                    .build(),
            )
            .report(JobReport::builder().enabled(false).build())
            .client_request_token(token)
            .priority(10)
            .role_arn(role)
            .manifest_generator(JobManifestGenerator::S3JobManifestGenerator(generator))
            .send()
            .await
            .map(|o| o.job_id.unwrap_or_default())
            .map_err(|e| code(&e).unwrap_or_default())
    }

    /// The job once it ended: (status, tasks succeeded, tasks failed, failure codes).
    async fn job_outcome(&self, client: &aws_sdk_s3control::Client, id: &str) -> (String, i64, i64, Vec<String>) {
        for _ in 0..40 {
            let job = client
                .describe_job()
                .account_id(&self.account)
                .job_id(id)
                .send()
                .await
                .unwrap()
                .job
                .unwrap();
            let status = job.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            if ["Complete", "Failed", "Cancelled"].contains(&status.as_str()) {
                let progress = job.progress_summary().cloned().unwrap();
                let failures = job
                    .failure_reasons()
                    .iter()
                    .filter_map(|f| f.failure_code().map(str::to_string))
                    .collect();
                return (
                    status,
                    progress.number_of_tasks_succeeded().unwrap_or(0),
                    progress.number_of_tasks_failed().unwrap_or(0),
                    failures,
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("job {id} did not end");
    }

    async fn put_before_the_rule(&self, keys: &[&str]) {
        for key in keys {
            self.us
                .s3
                .put_object()
                .bucket(&self.source)
                .key(*key)
                .body(b"{}".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn batch_replication_brings_over_the_objects_older_than_the_rule_as_its_role_and_the_rules_role() {
    let s = setup(true).await;
    s.put_before_the_rule(&["old-1", "old-2"]).await;
    s.replicate_with(&s.replica_key).await;
    // Live replication does not replicate them retroactively.
    let head =
        s.us.s3
            .head_object()
            .bucket(&s.source)
            .key("old-1")
            .send()
            .await
            .unwrap();
    assert_eq!(head.replication_status, None);
    let client = s3control(&s.account).await;
    let role = s.batch_role("batchoperations.s3.amazonaws.com", &[]).await;
    let id = s.create_job(&client, &role, "first").await.unwrap();
    // The same token is the same job.
    assert_eq!(s.create_job(&client, &role, "first").await.unwrap(), id);
    assert_eq!(s.job_outcome(&client, &id).await, ("Complete".into(), 2, 0, vec![]));
    for key in ["old-1", "old-2"] {
        assert_eq!(
            common::moto_api::replication_outcome(&s.source, key).await,
            ("COMPLETED".into(), None)
        );
        assert!(s.replica_exists(key).await);
    }
    // COMPLETED objects are not in the next job's manifest.
    let again = s.create_job(&client, &role, "second").await.unwrap();
    assert_eq!(s.job_outcome(&client, &again).await, ("Complete".into(), 0, 0, vec![]));
}

#[tokio::test]
async fn a_batch_replication_job_needs_its_roles_trust_and_permissions_and_the_replication_roles() {
    let s = setup(true).await;
    s.put_before_the_rule(&["old"]).await;
    s.replicate_with(&s.replica_key).await;
    let client = s3control(&s.account).await;
    // S3 itself (not Batch Operations) trusted: the job fails.
    let role = s.batch_role("s3.amazonaws.com", &[]).await;
    let id = s.create_job(&client, &role, "trust").await.unwrap();
    assert_eq!(
        s.job_outcome(&client, &id).await,
        ("Failed".into(), 0, 0, vec!["AssumeRoleNotPermitted".into()])
    );
    // No PutInventoryConfiguration: the manifest cannot be generated.
    let role = s
        .batch_role("batchoperations.s3.amazonaws.com", &["s3:PutInventoryConfiguration"])
        .await;
    let id = s.create_job(&client, &role, "inventory").await.unwrap();
    assert_eq!(s.job_outcome(&client, &id).await.0, "Failed");
    // No InitiateReplication: each object's task fails, nothing is written.
    let role = s
        .batch_role("batchoperations.s3.amazonaws.com", &["s3:InitiateReplication"])
        .await;
    let id = s.create_job(&client, &role, "initiate").await.unwrap();
    assert_eq!(s.job_outcome(&client, &id).await, ("Complete".into(), 0, 1, vec![]));
    assert!(!s.replica_exists("old").await);
    // The replication itself runs as the rule's role: without its kms:Decrypt of the replica's
    // Bucket Key, the object FAILs; with it, it is replicated.
    s.set_role(trust(None), s.permissions(&["replica kms:Decrypt"])).await;
    let role = s.batch_role("batchoperations.s3.amazonaws.com", &[]).await;
    let id = s.create_job(&client, &role, "replication-role").await.unwrap();
    assert_eq!(s.job_outcome(&client, &id).await, ("Complete".into(), 0, 1, vec![]));
    assert_eq!(
        common::moto_api::replication_outcome(&s.source, "old").await,
        ("FAILED".into(), Some("DstPutObjectNotPermitted".into()))
    );
    s.set_role(trust(None), s.permissions(&[])).await;
    let id = s.create_job(&client, &role, "repaired").await.unwrap();
    assert_eq!(s.job_outcome(&client, &id).await, ("Complete".into(), 1, 0, vec![]));
    assert!(s.replica_exists("old").await);
}

#[tokio::test]
async fn create_job_needs_the_callers_pass_role_of_the_jobs_role() {
    let s = setup(true).await;
    s.replicate_with(&s.replica_key).await;
    let role = s.batch_role("batchoperations.s3.amazonaws.com", &[]).await;
    for (pass_role, accepted) in [(false, false), (true, true)] {
        let name = format!("operator-{pass_role}");
        let mut actions = vec!["s3:CreateJob", "s3:DescribeJob"];
        if pass_role {
            actions.push("iam:PassRole");
        }
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}}}]});
        s.us.iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": format!("arn:aws:iam::{}:root", s.account)}, "Action": "sts:AssumeRole"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        s.us.iam
            .put_role_policy()
            .role_name(&name)
            .policy_name("operate")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let config = session_config(&format!("arn:aws:iam::{}:role/{name}", s.account)).await;
        let caller = aws_sdk_s3control::Client::new(&config);
        let created = s.create_job(&caller, &role, &name).await;
        assert_eq!(created.is_ok(), accepted, "{created:?}");
        if !accepted {
            assert_eq!(created.unwrap_err(), "AccessDenied");
        }
    }
}

/// The SDK configuration of a session of `role_arn`.
async fn session_config(role_arn: &str) -> aws_types::SdkConfig {
    let config = common::base_config().await;
    let sts = aws_sdk_sts::Client::new(&config);
    let c = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("test")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    config
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "session",
            ),
        ))
        .build()
}
