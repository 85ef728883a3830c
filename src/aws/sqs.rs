//! SQS: the queue the operator long-polls for tampering events, and its policy.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};

use super::{AwsError, check};

/// A message as received: its receipt (to delete it) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub receipt: String,
    pub body: String,
}

/// The queue's ARN and policy.
pub async fn queue_arn_and_policy(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(String, Option<String>), AwsError> {
    let sent = sqs
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

pub async fn set_queue_policy(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    policy: &serde_json::Value,
) -> Result<(), AwsError> {
    let sent = sqs
        .set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await;
    check(sent, "SQS", "SetQueueAttributes", &format!("queue {url}")).map(|_| ())
}

/// Up to 10 messages, waiting up to `wait_seconds` for the first (long polling: an idle queue
/// costs one request per wait, not a loop of empty answers).
pub async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, wait_seconds: i32) -> Result<Vec<Message>, AwsError> {
    let sent = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
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
            })
        })
        .collect())
}

/// Deletes handled messages (at most 10, as received).
pub async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, receipts: &[String]) -> Result<(), AwsError> {
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
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await;
    check(sent, "SQS", "DeleteMessageBatch", &format!("queue {url}")).map(|_| ())
}
