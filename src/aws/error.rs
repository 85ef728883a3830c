//! SDK errors classified once, here, into what the reconciler acts on.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The code of work cut off by its overall bound (`AwsError::timeout`), not by AWS.
const BOUND_REACHED: &str = "BoundReached";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    /// Rate exceeded even after the SDK's retries with backoff.
    Throttled,
    /// The identity lacks the IAM action.
    AccessDenied,
    /// AWS rejected the request as invalid (a spec value AWS does not accept).
    Invalid,
    /// The resource exists but belongs to someone else, or is in a conflicting state.
    Conflict,
    /// AWS refuses the call until something outside the request is fixed (a bucket or key
    /// policy, a quota, Organizations access): retrying soon cannot succeed.
    Precondition,
    /// Network, timeout, 5xx: worth retrying later.
    Transient,
}

/// A failed AWS call: which action, on which resource, and why, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub kind: ErrorKind,
    /// The IAM action, e.g. `s3:PutBucketPolicy`.
    pub action: String,
    pub resource: String,
    pub code: String,
    pub message: String,
}

impl AwsError {
    /// A request trailkeeper could not even build from the desired state (a required field missing).
    pub fn invalid(action: &str, resource: &str, message: impl ToString) -> Self {
        AwsError {
            kind: ErrorKind::Invalid,
            action: action.to_string(),
            resource: resource.to_string(),
            code: "InvalidInput".into(),
            message: message.to_string(),
        }
    }

    /// Work on `resource` cut off by its overall bound (each call has its own timeout as well).
    pub fn timeout(action: &str, resource: &str, bound: std::time::Duration) -> Self {
        AwsError {
            kind: ErrorKind::Transient,
            action: action.to_string(),
            resource: resource.to_string(),
            code: BOUND_REACHED.into(),
            message: format!(
                "did not finish within {} s: AWS did not answer in time",
                bound.as_secs()
            ),
        }
    }

    /// A refusal AWS reports in a successful answer (PutTargets' failed entries), classified as
    /// the same code would be as an error.
    pub fn refused(action: &str, resource: &str, code: &str, message: &str) -> Self {
        AwsError {
            kind: kind_of_code(code, message),
            action: action.to_string(),
            resource: resource.to_string(),
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// A refusal of `policy` (a bucket or key policy) because a principal it names does not
    /// exist, said so that a person can act on it: which IAM roles and users the policy names (AWS
    /// does not say which one is missing), that each must exist, and that trailkeeper tries again
    /// once it does. S3 answers MalformedPolicy "Invalid principal in policy"
    /// (https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error); KMS
    /// MalformedPolicyDocumentException, "The principals in the key policy must exist and be
    /// visible to KMS" (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html).
    /// Any other error is returned as it is.
    pub fn naming_principals_of(mut self, policy: &serde_json::Value) -> Self {
        let invalid_principal = matches!(
            self.code.as_str(),
            "MalformedPolicy" | "MalformedPolicyDocumentException"
        ) && self.message.to_ascii_lowercase().contains("invalid principal");
        if !invalid_principal {
            return self;
        }
        let named = aws_principals(policy);
        let identities: Vec<&String> = named.iter().filter(|p| is_iam_identity(p)).collect();
        let listed = if identities.is_empty() {
            named.iter().collect::<Vec<_>>()
        } else {
            identities
        };
        let listed: Vec<&str> = listed.iter().map(|p| p.as_str()).collect();
        self.kind = ErrorKind::Precondition;
        self.message = format!(
            "{} (AWS refuses a policy naming an IAM role or user that does not exist; this one names {}: \
             create the one missing, or take it out of the spec)",
            self.message.trim_end_matches('.'),
            listed.join(", ")
        );
        self
    }

    /// The reason used in conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Throttled => "Throttled",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::Invalid => "InvalidRequest",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Precondition => "PreconditionFailed",
            // The bound of the whole work, as a reconcile's (reason Timeout); an SDK call's own
            // timeout is AwsUnavailable.
            ErrorKind::Transient if self.code == BOUND_REACHED => "Timeout",
            ErrorKind::Transient => "AwsUnavailable",
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = if self.message.is_empty() {
            self.code.clone()
        } else {
            self.message.clone()
        };
        match self.kind {
            ErrorKind::AccessDenied => write!(
                f,
                "{} denied on {}: grant {} to the identity trailkeeper uses in this account ({detail})",
                self.action, self.resource, self.action
            ),
            ErrorKind::Throttled => write!(
                f,
                "{} on {} was throttled after retries with backoff ({detail}): worth trying again later",
                self.action, self.resource
            ),
            ErrorKind::NotFound => write!(f, "{} on {}: not found ({detail})", self.action, self.resource),
            ErrorKind::Invalid => write!(f, "{} on {} was rejected: {detail}", self.action, self.resource),
            ErrorKind::Conflict => write!(f, "{} on {} conflicts: {detail}", self.action, self.resource),
            ErrorKind::Precondition => write!(
                f,
                "{} on {} is refused until a precondition is met ({}): {detail}; trailkeeper tries again at the next resync",
                self.action, self.resource, self.code
            ),
            // Who tries again says so (the controller's backoff, `apply`'s retries in its run).
            ErrorKind::Transient => {
                write!(
                    f,
                    "{} on {} failed ({detail}): a network or AWS error that may pass",
                    self.action, self.resource
                )
            }
        }
    }
}

impl std::error::Error for AwsError {}

const NOT_FOUND_CODES: [&str; 20] = [
    "NotFound",
    "ReplicationConfigurationNotFoundError",
    "NoSuchKey",
    "OwnershipControlsNotFoundError",
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "NoSuchTagSet",
    "NoSuchTagSetError",
    "NoSuchLifecycleConfiguration",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ObjectLockConfigurationNotFoundError",
    "TrailNotFoundException",
    "NotFoundException",
    "ResourceNotFoundException",
    "InsightNotEnabledException",
    "NoSuchEntity",
    "InvalidVpcID.NotFound",
    "ParameterNotFound",
    "EntityNotFoundException",
];

const THROTTLING_CODES: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

/// Errors no retry can fix: CloudTrail checks the bucket and key policies at CreateTrail and
/// UpdateTrail, an Organization trail needs trusted access and the service-linked role, and a
/// resource quota (LimitExceeded in KMS, CloudWatch Logs and IAM, the trail count) stays exceeded.
const PRECONDITION_CODES: [&str; 13] = [
    "NotOrganizationMasterAccountException",
    "OrganizationNotInAllFeaturesModeException",
    "AWSOrganizationsNotInUseException",
    "InsufficientS3BucketPolicyException",
    "InsufficientEncryptionPolicyException",
    "InsufficientSnsTopicPolicyException",
    "CloudTrailARNInvalidException",
    "NoManagementAccountSLRExistsException",
    "CloudTrailAccessNotEnabledException",
    "OrganizationsNotInUseException",
    "MaximumNumberOfTrailsExceededException",
    "LimitExceededException",
    "LimitExceeded",
];

const ACCESS_DENIED_CODES: [&str; 7] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InsufficientDependencyServiceAccessPermissionException",
];

const CONFLICT_CODES: [&str; 6] = [
    "BucketAlreadyExists",
    "OperationAborted",
    "ConflictException",
    "KMSInvalidStateException",
    "TrailAlreadyExistsException",
    "AlreadyExistsException",
];

/// The AWS principals (ARNs, account ids) named by a policy's Principal and NotPrincipal
/// elements, sorted, without duplicates and without "*".
fn aws_principals(policy: &serde_json::Value) -> Vec<String> {
    let statements = match &policy["Statement"] {
        serde_json::Value::Array(list) => list.iter().collect::<Vec<_>>(),
        one => vec![one],
    };
    let mut out = std::collections::BTreeSet::new();
    for statement in statements {
        for element in ["Principal", "NotPrincipal"] {
            match &statement[element]["AWS"] {
                serde_json::Value::String(p) => {
                    out.insert(p.clone());
                }
                serde_json::Value::Array(list) => {
                    out.extend(list.iter().filter_map(|p| p.as_str().map(str::to_string)));
                }
                _ => {}
            }
        }
    }
    out.remove("*");
    out.into_iter().collect()
}

/// An IAM role or user ARN (`arn:aws:iam::111122223333:role/name`), what must exist.
fn is_iam_identity(principal: &str) -> bool {
    principal.starts_with("arn:") && (principal.contains(":role/") || principal.contains(":user/"))
}

/// Classify a failed call. `action` is the IAM action and `resource` what it was called on.
pub fn classify<E, R>(err: &SdkError<E, R>, action: &str, resource: &str) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let (kind, code, message) = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or_default().to_string();
            (kind_of_code(&code, &message), code, message)
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, "Timeout".into(), "request timed out".into()),
        SdkError::DispatchFailure(d) => {
            let message = format!("{}", aws_smithy_types::error::display::DisplayErrorContext(err));
            let kind = if d.is_user() {
                ErrorKind::Invalid
            } else {
                ErrorKind::Transient
            };
            (kind, "DispatchFailure".into(), message)
        }
        other => {
            let code = other.code().unwrap_or("Unknown").to_string();
            let message = format!("{}", aws_smithy_types::error::display::DisplayErrorContext(other));
            (kind_of_code(&code, &message), code, message)
        }
    };
    AwsError {
        kind,
        action: action.to_string(),
        resource: resource.to_string(),
        code,
        message,
    }
}

fn kind_of_code(code: &str, message: &str) -> ErrorKind {
    if NOT_FOUND_CODES.contains(&code) || code.ends_with(".NotFound") {
        ErrorKind::NotFound
    } else if THROTTLING_CODES.contains(&code) || message.contains("Rate exceeded") {
        ErrorKind::Throttled
    } else if PRECONDITION_CODES.contains(&code) {
        ErrorKind::Precondition
    } else if ACCESS_DENIED_CODES.contains(&code) {
        ErrorKind::AccessDenied
    } else if CONFLICT_CODES.contains(&code) {
        ErrorKind::Conflict
    } else if code.starts_with("Invalid")
        || code.contains("Validation")
        || code.starts_with("Malformed")
        || code == "PolicyTooLarge"
    {
        ErrorKind::Invalid
    } else {
        ErrorKind::Transient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_into_actionable_kinds() {
        assert_eq!(kind_of_code("NoSuchBucketPolicy", ""), ErrorKind::NotFound);
        assert_eq!(kind_of_code("InvalidVpcID.NotFound", ""), ErrorKind::NotFound);
        assert_eq!(kind_of_code("ThrottlingException", ""), ErrorKind::Throttled);
        assert_eq!(kind_of_code("AccessDenied", ""), ErrorKind::AccessDenied);
        assert_eq!(kind_of_code("InvalidParameterValue", ""), ErrorKind::Invalid);
        assert_eq!(kind_of_code("InternalError", ""), ErrorKind::Transient);
        for code in [
            "InsufficientS3BucketPolicyException",
            "InsufficientEncryptionPolicyException",
            "CloudTrailARNInvalidException",
            "NoManagementAccountSLRExistsException",
            "LimitExceededException",
            "LimitExceeded",
        ] {
            assert_eq!(kind_of_code(code, ""), ErrorKind::Precondition, "{code}");
        }
        // A rate limit that calls itself LimitExceeded is still throttling.
        assert_eq!(
            kind_of_code("LimitExceededException", "Rate exceeded"),
            ErrorKind::Throttled
        );
    }

    #[test]
    fn an_oversized_bucket_policy_is_a_refused_request_not_one_to_retry() {
        assert_eq!(kind_of_code("PolicyTooLarge", ""), ErrorKind::Invalid);
        assert_eq!(kind_of_code("MalformedPolicy", ""), ErrorKind::Invalid);
    }

    #[test]
    fn a_policy_refused_for_a_principal_that_does_not_exist_names_the_principals_to_create() {
        let policy = serde_json::json!({"Statement": [
            {"Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*"},
            {"Principal": {"AWS": ["arn:aws:iam::111122223333:role/operator", "arn:aws:iam::111122223333:role/admin"]}},
            {"Principal": {"Service": "cloudtrail.amazonaws.com"}},
            {"Principal": "*"}
        ]});
        for (action, code, message) in [
            (
                "kms:PutKeyPolicy",
                "MalformedPolicyDocumentException",
                "Policy contains a statement with one or more invalid principals.",
            ),
            ("s3:PutBucketPolicy", "MalformedPolicy", "Invalid principal in policy"),
        ] {
            let e = AwsError {
                kind: kind_of_code(code, message),
                action: action.into(),
                resource: "key k".into(),
                code: code.into(),
                message: message.into(),
            }
            .naming_principals_of(&policy);
            assert_eq!(e.kind, ErrorKind::Precondition, "{e}");
            let text = e.to_string();
            assert!(
                text.contains("names arn:aws:iam::111122223333:role/admin, arn:aws:iam::111122223333:role/operator: create the one missing"),
                "{text}"
            );
            assert!(!text.contains(":root"), "an account root always exists: {text}");
        }
        // Another refusal of a policy is left as AWS said it.
        let syntax = AwsError {
            kind: ErrorKind::Invalid,
            action: "s3:PutBucketPolicy".into(),
            resource: "bucket b".into(),
            code: "MalformedPolicy".into(),
            message: "Policy has invalid resource".into(),
        };
        assert_eq!(syntax.clone().naming_principals_of(&policy), syntax);
    }

    #[test]
    fn access_denied_names_the_action_and_what_to_do() {
        let e = AwsError {
            kind: ErrorKind::AccessDenied,
            action: "s3:PutBucketPolicy".into(),
            resource: "bucket b".into(),
            code: "AccessDenied".into(),
            message: "Access Denied".into(),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("s3:PutBucketPolicy denied on bucket b: grant s3:PutBucketPolicy"),
            "{text}"
        );
    }
}
