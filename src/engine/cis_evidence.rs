//! The account-wide reads of the CIS controls that judge the whole account (3.3 AWS Config, 3.6
//! KMS key rotation, 3.7 VPC flow logs), in every region judged: the enforced regions and
//! `spec.complianceRegions`, or every region enabled for the account when that is empty. Reads
//! only; what they find is judged in `judge::account_controls`.

use futures::StreamExt;

use crate::aws::{AccountClients, config, ec2, kms};
use crate::desired::AccountSpecs;
use crate::judge::evidence::{KeyEvidence, RecorderEvidence, RegionEvidence, VpcEvidence};

/// Regions read at once (each region makes five to a few dozen reads).
const REGION_CONCURRENCY: usize = 4;

/// The regions judged: the enforced ones and the listed ones, or those and every enabled region.
pub fn judged_regions(enforced: &[String], listed: &[String], enabled: Option<&[String]>) -> Vec<String> {
    let mut regions: Vec<String> = enforced
        .iter()
        .chain(listed)
        .chain(enabled.unwrap_or_default())
        .cloned()
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// Reads what 3.3, 3.6 and 3.7 judge, region by region. Err: the enabled regions could not be
/// listed (only read when `spec.complianceRegions` is empty).
pub async fn gather(clients: &AccountClients, specs: &AccountSpecs<'_>) -> Result<Vec<RegionEvidence>, String> {
    let enforced = crate::desired::regional::regions(specs);
    let listed = &specs.baseline.compliance_regions;
    let enabled = if listed.is_empty() {
        Some(ec2::enabled_regions(clients).await.map_err(|e| e.to_string())?)
    } else {
        None
    };
    let regions = judged_regions(&enforced, listed, enabled.as_deref());
    let reads = regions.into_iter().map(|region| {
        let clients = clients.for_region(&region);
        async move { read_region(&clients).await }
    });
    Ok(futures::stream::iter(reads)
        .buffered(REGION_CONCURRENCY)
        .collect()
        .await)
}

async fn read_region(clients: &AccountClients) -> RegionEvidence {
    let (recorders, vpcs, keys) = tokio::join!(
        Box::pin(config::observe_recorders(clients)),
        Box::pin(vpcs_with_flow_logs(clients)),
        Box::pin(kms::rotation_of_customer_keys(clients)),
    );
    RegionEvidence {
        region: clients.region.clone(),
        recorders: recorders.map_err(|e| e.to_string()).map(|found| {
            found
                .into_iter()
                .map(|r| RecorderEvidence {
                    name: r.name,
                    all_supported: r.all_supported,
                    include_global: r.include_global,
                    recording: r.recording,
                    last_status: r.last_status,
                })
                .collect()
        }),
        vpcs: vpcs.map_err(|e| e.to_string()),
        keys: keys.map_err(|e| e.to_string()).map(|found| {
            found
                .into_iter()
                .map(|(arn, rotation)| KeyEvidence { arn, rotation })
                .collect()
        }),
    }
}

/// Every VPC of the region with the traffic types of the flow logs on it.
async fn vpcs_with_flow_logs(clients: &AccountClients) -> Result<Vec<VpcEvidence>, crate::aws::AwsError> {
    let (vpcs, flows) = tokio::join!(
        Box::pin(ec2::list_vpcs(clients)),
        Box::pin(ec2::list_flow_logs(clients))
    );
    let (vpcs, flows) = (vpcs?, flows?);
    Ok(vpcs
        .into_iter()
        .map(|id| VpcEvidence {
            traffic_types: flows
                .iter()
                .filter(|f| f.resource_id == id)
                .map(|f| f.traffic_type.clone())
                .collect(),
            id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::judged_regions;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_regions_judged_are_not_only_the_enforced_ones() {
        let enforced = strings(&["us-east-1"]);
        assert_eq!(
            judged_regions(&enforced, &strings(&["eu-west-1", "us-east-1"]), None),
            strings(&["eu-west-1", "us-east-1"])
        );
        let enabled = strings(&["us-west-2", "us-east-1", "ap-south-1"]);
        assert_eq!(
            judged_regions(&enforced, &[], Some(&enabled)),
            strings(&["ap-south-1", "us-east-1", "us-west-2"])
        );
    }
}
