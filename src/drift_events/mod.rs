//! Drift events: the tampering events the accounts forward to the operator's SQS queue, read by
//! the queue loop (`queue`) and routed to reconciles (`router`); not Kubernetes Events, nor the
//! EventBridge adapter `aws::events`.

pub mod queue;
pub mod router;
