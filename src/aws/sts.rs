//! STS: who the credentials are, and assumed-role credentials.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};

use super::{AccountClients, AwsError, check};

/// The session name of every role trailkeeper assumes: its calls show in CloudTrail as
/// `assumed-role/{role}/trailkeeper`, which is how its own writes are told from tampering.
pub const SESSION_NAME: &str = "trailkeeper";

/// The caller's account id and ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

pub async fn caller_identity(clients: &AccountClients) -> Result<Identity, AwsError> {
    let out = check(
        clients.sts.get_caller_identity().send().await,
        "STS",
        "GetCallerIdentity",
        "the caller",
    )?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
    })
}

/// Credentials of a role assumed with STS; the SDK's identity cache calls it again before expiry.
#[derive(Clone, Debug)]
pub struct AssumedRole {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
}

impl AssumedRole {
    pub fn new(sts: aws_sdk_sts::Client, role_arn: String, external_id: Option<String>) -> Self {
        Self {
            sts,
            role_arn,
            external_id,
        }
    }

    async fn assume(&self) -> provider::Result {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(SESSION_NAME)
            .set_external_id(self.external_id.clone())
            .send()
            .await
            .map_err(|e| {
                let e = super::error::classify(&e, "sts:AssumeRole", &self.role_arn);
                CredentialsError::provider_error(e)
            })?;
        let c = out.credentials().ok_or_else(|| {
            CredentialsError::unhandled(format!("AssumeRole {} returned no credentials", self.role_arn))
        })?;
        let expiry = std::time::SystemTime::try_from(*c.expiration()).ok();
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "trailkeeper-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.assume())
    }
}
