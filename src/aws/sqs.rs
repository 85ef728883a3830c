//! SQS: the queue the operator long-polls for tampering events, and its policy.

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    QueueAttributeName,
};

use super::{AwsError, CallRecorder, WriteFence, check};
use crate::fence::WriteGate;

/// An SQS client of the operator's own identity (the SDK's client stays in this adapter).
#[derive(Clone, Debug)]
pub struct SqsClient(aws_sdk_sqs::Client);

impl SqsClient {
    /// With each attempt's timeout at `attempt_timeout` (above a long poll's wait); its writes
    /// (DeleteMessageBatch, SetQueueAttributes...) go out only while `gate` is open.
    pub fn new(base: &aws_types::SdkConfig, gate: &WriteGate, attempt_timeout: std::time::Duration) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_millis(3100))
            .operation_attempt_timeout(attempt_timeout)
            .operation_timeout(std::time::Duration::from_secs(90))
            .build();
        Self(aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(base)
                .timeout_config(timeouts)
                .interceptor(CallRecorder::new())
                .interceptor(WriteFence::new(gate.clone()))
                .build(),
        ))
    }
}

/// A client built otherwise (tests: a mocked one).
impl From<aws_sdk_sqs::Client> for SqsClient {
    fn from(client: aws_sdk_sqs::Client) -> Self {
        Self(client)
    }
}

/// A message as received: its receipt (to delete it), body, and how many times it was received
/// (this time included; 1 when SQS does not say).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
}

/// The queue's ARN and policy.
pub async fn queue_arn_and_policy(sqs: &SqsClient, url: &str) -> Result<(String, Option<String>), AwsError> {
    let sent = sqs
        .0
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::Policy)
        .send()
        .await;
    let out = check(sent, "SQS", "GetQueueAttributes", &format!("queue {url}"))?;
    let attributes = out.attributes();
    let arn = attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    let policy = attributes.and_then(|a| a.get(&QueueAttributeName::Policy)).cloned();
    Ok((arn, policy))
}

pub async fn set_queue_policy(sqs: &SqsClient, url: &str, policy: &serde_json::Value) -> Result<(), AwsError> {
    let sent = sqs
        .0
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await;
    check(sent, "SQS", "SetQueueAttributes", &format!("queue {url}")).map(|_| ())
}

/// Up to 10 messages, waiting up to `wait_seconds` for the first (long polling: an idle queue
/// costs one request per wait, not a loop of empty answers).
pub async fn receive(sqs: &SqsClient, url: &str, wait_seconds: i32) -> Result<Vec<Message>, AwsError> {
    let sent = sqs
        .0
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await;
    let out = check(sent, "SQS", "ReceiveMessage", &format!("queue {url}"))?;
    Ok(out
        .messages()
        .iter()
        .filter_map(|m| {
            Some(Message {
                receipt: m.receipt_handle()?.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
        })
        .collect())
}

/// Deletes handled messages (at most 10, as received).
pub async fn delete(sqs: &SqsClient, url: &str, receipts: &[String]) -> Result<(), AwsError> {
    if receipts.is_empty() {
        return Ok(());
    }
    let entries = receipts
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .build()
                .ok()
        })
        .collect();
    let sent = sqs
        .0
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await;
    check(sent, "SQS", "DeleteMessageBatch", &format!("queue {url}")).map(|_| ())
}

/// Makes received messages visible again after `seconds` (0: at once), for another consumer:
/// ChangeMessageVisibilityBatch, at most 10 (as received). AWS: the timeout is 0 to 43,200 s and
/// the message must be in flight (received, not deleted, its visibility timeout not passed):
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>.
/// An entry refused (its message visible again already, or deleted) needs nothing more: it is
/// in the queue for the next receive, or gone.
pub async fn release(sqs: &SqsClient, url: &str, messages: &[(String, i32)]) -> Result<(), AwsError> {
    if messages.is_empty() {
        return Ok(());
    }
    let entries = messages
        .iter()
        .enumerate()
        .filter_map(|(i, (receipt, seconds))| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(receipt)
                .visibility_timeout((*seconds).clamp(0, 43_200))
                .build()
                .ok()
        })
        .collect();
    let sent = sqs
        .0
        .change_message_visibility_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await;
    check(sent, "SQS", "ChangeMessageVisibilityBatch", &format!("queue {url}")).map(|_| ())
}
