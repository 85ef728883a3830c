//! Drift events: the tampering events the accounts forward to the operator's SQS queue, read and
//! routed to reconciles (not Kubernetes Events, nor the EventBridge adapter `aws::events`).

pub mod queue;
