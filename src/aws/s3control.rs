//! S3 Control: the S3 Batch Replication jobs of a log archive (create, observe).
//! https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-batch.html

use super::{AccountClients, AwsError, check, optional};

/// A Batch Replication job as DescribeJob reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedJob {
    pub id: String,
    /// New, Preparing, Ready, Active, Complete, Failed, Cancelled, Suspended, ...
    pub status: String,
    /// When it ended (Complete, Failed, Cancelled), RFC 3339.
    pub terminated_at: Option<String>,
    pub tasks_succeeded: i64,
    pub tasks_failed: i64,
    /// `{code}: {reason}` of each failure S3 reports for the job.
    pub failures: Vec<String>,
}

impl ObservedJob {
    /// The job will not change any more.
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "Complete" | "Failed" | "Cancelled")
    }
}

/// CreateJob: replicates, by the source bucket's replication configuration, its objects whose
/// replication status is NONE (they predate the rule) or FAILED, from a manifest S3 generates (not
/// stored), with no completion report, run as `role_arn`. `token` makes the call idempotent: the
/// same need sent twice is one job.
pub async fn create_batch_replication(
    clients: &AccountClients,
    account_id: &str,
    source_bucket_arn: &str,
    role_arn: &str,
    token: &str,
    description: &str,
) -> Result<String, AwsError> {
    use aws_sdk_s3control::types::{
        JobManifestGenerator, JobManifestGeneratorFilter, JobOperation, JobReport, ReplicationStatus,
        S3JobManifestGenerator, S3ReplicateObjectOperation,
    };
    let resource = format!("batch replication of {source_bucket_arn}");
    let generator = S3JobManifestGenerator::builder()
        .expected_bucket_owner(account_id)
        .source_bucket(source_bucket_arn)
        .enable_manifest_output(false)
        .filter(
            JobManifestGeneratorFilter::builder()
                .eligible_for_replication(true)
                .object_replication_statuses(ReplicationStatus::None)
                .object_replication_statuses(ReplicationStatus::Failed)
                .build(),
        )
        .build()
        .map_err(|e| AwsError::invalid("s3:CreateJob", &resource, e))?;
    let sent = clients
        .s3control
        .create_job()
        .account_id(account_id)
        .confirmation_required(false)
        .operation(
            JobOperation::builder()
                .s3_replicate_object(S3ReplicateObjectOperation::builder().build())
                .build(),
        )
        .report(JobReport::builder().enabled(false).build())
        .client_request_token(token)
        .description(description)
        .priority(10)
        .role_arn(role_arn)
        .manifest_generator(JobManifestGenerator::S3JobManifestGenerator(generator))
        .send()
        .await;
    let out = check(sent, "S3 Control", "CreateJob", &resource)?;
    out.job_id
        .ok_or_else(|| AwsError::invalid("s3:CreateJob", &resource, "S3 answered without a job id"))
}

/// DescribeJob: None when the job is unknown (expired from S3's job history).
pub async fn describe_job(
    clients: &AccountClients,
    account_id: &str,
    job_id: &str,
) -> Result<Option<ObservedJob>, AwsError> {
    let resource = format!("batch job {job_id}");
    let got = optional(
        clients
            .s3control
            .describe_job()
            .account_id(account_id)
            .job_id(job_id)
            .send()
            .await,
        "S3 Control",
        "DescribeJob",
        &resource,
    )?;
    let Some(job) = got.and_then(|g| g.job) else {
        return Ok(None);
    };
    let progress = job.progress_summary();
    Ok(Some(ObservedJob {
        id: job.job_id().unwrap_or(job_id).to_string(),
        status: job.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        terminated_at: job
            .termination_date()
            .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        tasks_succeeded: progress.and_then(|p| p.number_of_tasks_succeeded()).unwrap_or(0),
        tasks_failed: progress.and_then(|p| p.number_of_tasks_failed()).unwrap_or(0),
        failures: job
            .failure_reasons()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.failure_code().unwrap_or_default(),
                    f.failure_reason().unwrap_or_default()
                )
            })
            .collect(),
    }))
}
