//! EC2: the regions enabled for the account, the VPCs of a region and their flow logs.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, ResourceType, Tag, TagSpecification, TrafficType};

use super::{AccountClients, AwsError, check};
use crate::desired::regional::{DesiredFlowLogs, FlowLogTarget};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedFlowLog {
    pub id: String,
    pub resource_id: String,
    pub traffic_type: String,
    pub log_format: String,
    pub max_aggregation_interval: i32,
    pub destination: String,
    /// SUCCESS or FAILED, with AWS's message when it failed.
    pub deliver_logs_status: Option<String>,
    pub deliver_logs_error: Option<String>,
}

/// The regions enabled for the account (DescribeRegions without AllRegions answers only those:
/// the default regions and the opt-in regions the account opted in to).
pub async fn enabled_regions(clients: &AccountClients) -> Result<Vec<String>, AwsError> {
    let sent = clients.ec2.describe_regions().send().await;
    let out = check(sent, "EC2", "DescribeRegions", "the account's regions")?;
    Ok(out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect())
}

/// Every VPC id of the region (all pages).
pub async fn list_vpcs(clients: &AccountClients) -> Result<Vec<String>, AwsError> {
    let mut vpcs = Vec::new();
    let mut token = None;
    loop {
        let sent = clients
            .ec2
            .describe_vpcs()
            .set_next_token(token.take())
            .max_results(1000)
            .send()
            .await;
        let page = check(sent, "EC2", "DescribeVpcs", &format!("the VPCs of {}", clients.region))?;
        vpcs.extend(page.vpcs().iter().filter_map(|v| v.vpc_id().map(str::to_string)));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(vpcs),
        }
    }
}

/// Every VPC flow log of the region (all pages).
pub async fn list_flow_logs(clients: &AccountClients) -> Result<Vec<ObservedFlowLog>, AwsError> {
    let mut logs = Vec::new();
    let mut token = None;
    loop {
        let sent = clients
            .ec2
            .describe_flow_logs()
            .set_next_token(token.take())
            .max_results(1000)
            .send()
            .await;
        let page = check(
            sent,
            "EC2",
            "DescribeFlowLogs",
            &format!("the flow logs of {}", clients.region),
        )?;
        logs.extend(page.flow_logs().iter().map(|f| {
            ObservedFlowLog {
                id: f.flow_log_id().unwrap_or_default().to_string(),
                resource_id: f.resource_id().unwrap_or_default().to_string(),
                traffic_type: f.traffic_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                log_format: f.log_format().unwrap_or_default().to_string(),
                max_aggregation_interval: f.max_aggregation_interval().unwrap_or(600),
                destination: f
                    .log_destination()
                    .or(f.log_group_name())
                    .unwrap_or_default()
                    .to_string(),
                deliver_logs_status: f.deliver_logs_status().map(str::to_string),
                deliver_logs_error: f.deliver_logs_error_message().map(str::to_string),
            }
        }));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(logs),
        }
    }
}

/// One CreateFlowLogs call for all the given VPCs.
pub async fn create_flow_logs(
    clients: &AccountClients,
    vpcs: &[String],
    desired: &DesiredFlowLogs,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let tag_spec = TagSpecification::builder()
        .resource_type(ResourceType::VpcFlowLog)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    let mut request = clients
        .ec2
        .create_flow_logs()
        .set_resource_ids(Some(vpcs.to_vec()))
        .resource_type(FlowLogsResourceType::Vpc)
        .traffic_type(TrafficType::from(desired.traffic_type.as_str()))
        .log_format(desired.format())
        .max_aggregation_interval(desired.max_aggregation_interval)
        .tag_specifications(tag_spec);
    request = match &desired.target {
        FlowLogTarget::CloudWatchLogs { log_group, role_arn } => request
            .log_destination_type(LogDestinationType::CloudWatchLogs)
            .log_group_name(log_group)
            .deliver_logs_permission_arn(role_arn),
        FlowLogTarget::S3 { bucket_arn } => request
            .log_destination_type(LogDestinationType::S3)
            .log_destination(bucket_arn),
    };
    let out = check(
        request.send().await,
        "EC2",
        "CreateFlowLogs",
        &format!("VPCs {}", vpcs.join(", ")),
    )?;
    // CreateFlowLogs reports per-resource failures in the response, not as an error.
    if let Some(failure) = out.unsuccessful().first() {
        let error = failure.error();
        return Err(AwsError {
            kind: super::ErrorKind::Invalid,
            action: "ec2:CreateFlowLogs".into(),
            resource: failure.resource_id().unwrap_or_default().to_string(),
            code: error.and_then(|e| e.code()).unwrap_or("Unsuccessful").to_string(),
            message: error.and_then(|e| e.message()).unwrap_or_default().to_string(),
        });
    }
    Ok(())
}

pub async fn delete_flow_logs(clients: &AccountClients, ids: &[String]) -> Result<(), AwsError> {
    let sent = clients
        .ec2
        .delete_flow_logs()
        .set_flow_log_ids(Some(ids.to_vec()))
        .send()
        .await;
    check(sent, "EC2", "DeleteFlowLogs", &format!("flow logs {}", ids.join(", "))).map(|_| ())
}
