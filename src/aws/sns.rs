//! SNS: the topic the monitoring controls' alarms notify, and its subscriptions.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;

use super::{AccountClients, AwsError, check, optional};

/// A topic, as GetTopicAttributes reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTopic {
    pub kms_key: Option<String>,
    /// (protocol, endpoint) of each subscription, confirmed or not.
    pub subscriptions: Vec<(String, String)>,
    /// Subscriptions confirmed (their ARN is not `PendingConfirmation`).
    pub confirmed: usize,
}

/// The topic and its subscriptions; None when it does not exist.
pub async fn observe_topic(clients: &AccountClients, arn: &str) -> Result<Option<ObservedTopic>, AwsError> {
    let resource = format!("topic {arn}");
    let sent = clients.sns.get_topic_attributes().topic_arn(arn).send().await;
    let Some(attributes) = optional(sent, "SNS", "GetTopicAttributes", &resource)? else {
        return Ok(None);
    };
    let kms_key = attributes
        .attributes()
        .and_then(|a| a.get("KmsMasterKeyId"))
        .filter(|k| !k.is_empty())
        .cloned();
    let mut subscriptions = Vec::new();
    let mut confirmed = 0;
    let mut token = None;
    loop {
        let sent = clients
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(sent, "SNS", "ListSubscriptionsByTopic", &resource)?;
        for s in page.subscriptions() {
            subscriptions.push((
                s.protocol().unwrap_or_default().to_string(),
                s.endpoint().unwrap_or_default().to_string(),
            ));
            if s.subscription_arn().is_some_and(|a| a.starts_with("arn:")) {
                confirmed += 1;
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    subscriptions.sort();
    Ok(Some(ObservedTopic {
        kms_key,
        subscriptions,
        confirmed,
    }))
}

/// Creates the topic, encrypted with `kms_key` (CreateTopic of an existing name with the same
/// attributes returns it: idempotent).
pub async fn create_topic(
    clients: &AccountClients,
    name: &str,
    kms_key: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let sent = clients
        .sns
        .create_topic()
        .name(name)
        .attributes("KmsMasterKeyId", kms_key)
        .set_tags(Some(
            tags.iter()
                .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                .collect(),
        ))
        .send()
        .await;
    check(sent, "SNS", "CreateTopic", &format!("topic {name}")).map(|_| ())
}

pub async fn set_topic_key(clients: &AccountClients, arn: &str, kms_key: &str) -> Result<(), AwsError> {
    let sent = clients
        .sns
        .set_topic_attributes()
        .topic_arn(arn)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(kms_key)
        .send()
        .await;
    check(sent, "SNS", "SetTopicAttributes", &format!("topic {arn}")).map(|_| ())
}

/// Subscribes `endpoint` (an email or https subscription waits for its owner's confirmation;
/// subscribing again the same endpoint returns the same subscription: idempotent).
pub async fn subscribe(clients: &AccountClients, arn: &str, protocol: &str, endpoint: &str) -> Result<(), AwsError> {
    let sent = clients
        .sns
        .subscribe()
        .topic_arn(arn)
        .protocol(protocol)
        .endpoint(endpoint)
        .send()
        .await;
    check(sent, "SNS", "Subscribe", &format!("topic {arn}")).map(|_| ())
}
