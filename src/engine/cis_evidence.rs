//! The account-wide reads of the CIS controls that judge the whole account (3.3 AWS Config, 3.6
//! KMS key rotation, 3.7 VPC flow logs), region by region. A reconcile reads them in the regions
//! it keeps, reusing what its parts read there already (`Known`); `report` and the controller's
//! sweep (`engine::sweep`) read the other regions. Reads only; what they find is judged in
//! `judge::account_controls`.

use std::collections::BTreeMap;

use futures::StreamExt;

use crate::aws::{AccountClients, config, ec2, kms};
use crate::desired::AccountSpecs;
use crate::judge::evidence::{KeyEvidence, RecorderEvidence, RegionEvidence, VpcEvidence};

/// Regions read at once (each region makes four to a few dozen reads).
const REGION_CONCURRENCY: usize = 4;

/// What a reconcile's parts read in one region that the account-wide controls judge too, as read
/// (a part that wrote leaves it unknown: read again after the writes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// Every VPC of the region with its flow logs' traffic types (the flow logs part).
    pub vpcs: Option<Vec<VpcEvidence>>,
    /// Every recorder of the region with its status (the Config part).
    pub recorders: Option<Vec<RecorderEvidence>>,
    /// trailkeeper's own keys there (customer-managed, symmetric, enabled), with their rotation.
    pub keys: Vec<KeyEvidence>,
}

impl Known {
    /// Everything both know.
    pub fn merge(&mut self, other: Known) {
        self.vpcs = self.vpcs.take().or(other.vpcs);
        self.recorders = self.recorders.take().or(other.recorders);
        self.keys.extend(other.keys);
    }
}

/// The regions judged for `report` (which reads every region fresh) and by the sweep: the kept
/// ones and the listed ones (spec.complianceRegions), or those and every enabled region.
pub fn judged_regions(kept: &[String], listed: &[String], enabled: Option<&[String]>) -> Vec<String> {
    let mut regions: Vec<String> = kept
        .iter()
        .chain(listed)
        .chain(enabled.unwrap_or_default())
        .cloned()
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// Whether the regions a baseline keeps are every region its controls judge: it keeps every
/// region, or it lists the regions judged (spec.complianceRegions) and keeps them all. Otherwise
/// the other regions are the sweep's.
pub fn kept_covers_judged(specs: &AccountSpecs<'_>, kept: &[String]) -> bool {
    let spec = specs.baseline;
    crate::desired::regional::keeps_every_region(spec)
        || (!spec.compliance_regions.is_empty() && spec.compliance_regions.iter().all(|r| kept.contains(r)))
}

/// The regions enabled for the account (ec2:DescribeRegions).
pub async fn enabled_regions(clients: &AccountClients) -> Result<Vec<String>, String> {
    ec2::enabled_regions(clients).await.map_err(|e| e.to_string())
}

/// Reads what 3.3, 3.6 and 3.7 judge in `regions`, taking what `known` holds of a region instead
/// of reading it again.
pub async fn gather(
    clients: &AccountClients,
    regions: &[String],
    known: &BTreeMap<String, Known>,
) -> Vec<RegionEvidence> {
    // Owned and boxed: a future borrowing from the closure's argument is not `Send` for every
    // lifetime, which the controller's reconcile future must be.
    let reads: Vec<futures::future::BoxFuture<'_, RegionEvidence>> = regions
        .iter()
        .map(|region| {
            let clients = clients.for_region(region);
            let known = known.get(region).cloned().unwrap_or_default();
            Box::pin(async move { read_region(&clients, &known).await }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    futures::stream::iter(reads)
        .buffered(REGION_CONCURRENCY)
        .collect()
        .await
}

async fn read_region(clients: &AccountClients, known: &Known) -> RegionEvidence {
    let known_keys: BTreeMap<String, bool> = known.keys.iter().map(|k| (k.arn.clone(), k.rotation)).collect();
    let (recorders, vpcs, keys) = tokio::join!(
        Box::pin(async {
            match &known.recorders {
                Some(found) => Ok(found.clone()),
                None => config::observe_recorders(clients)
                    .await
                    .map(|found| found.into_iter().map(recorder_evidence).collect())
                    .map_err(|e| e.to_string()),
            }
        }),
        Box::pin(async {
            match &known.vpcs {
                Some(found) => Ok(found.clone()),
                None => vpcs_with_flow_logs(clients).await.map_err(|e| e.to_string()),
            }
        }),
        Box::pin(kms::rotation_of_customer_keys(clients, &known_keys)),
    );
    RegionEvidence {
        region: clients.region.clone(),
        recorders,
        vpcs,
        keys: keys.map_err(|e| e.to_string()).map(|found| {
            found
                .into_iter()
                .map(|(arn, rotation)| KeyEvidence { arn, rotation })
                .collect()
        }),
    }
}

/// A recorder as 3.3 judges it.
pub fn recorder_evidence(r: config::ObservedRecorder) -> RecorderEvidence {
    RecorderEvidence {
        name: r.name,
        all_supported: r.all_supported,
        include_global: r.include_global,
        recording: r.recording,
        last_status: r.last_status,
    }
}

/// Every VPC of the region with the traffic types of the flow logs on it.
pub fn vpc_evidence(vpcs: &[String], flows: &[ec2::ObservedFlowLog]) -> Vec<VpcEvidence> {
    vpcs.iter()
        .map(|id| VpcEvidence {
            traffic_types: flows
                .iter()
                .filter(|f| &f.resource_id == id)
                .map(|f| f.traffic_type.clone())
                .collect(),
            id: id.clone(),
        })
        .collect()
}

async fn vpcs_with_flow_logs(clients: &AccountClients) -> Result<Vec<VpcEvidence>, crate::aws::AwsError> {
    let (vpcs, flows) = tokio::join!(
        Box::pin(ec2::list_vpcs(clients)),
        Box::pin(ec2::list_flow_logs(clients))
    );
    Ok(vpc_evidence(&vpcs?, &flows?))
}

#[cfg(test)]
mod tests {
    use super::judged_regions;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_regions_judged_are_not_only_the_kept_ones() {
        let kept = strings(&["us-east-1"]);
        assert_eq!(
            judged_regions(&kept, &strings(&["eu-west-1", "us-east-1"]), None),
            strings(&["eu-west-1", "us-east-1"])
        );
        let enabled = strings(&["us-west-2", "us-east-1", "ap-south-1"]);
        assert_eq!(
            judged_regions(&kept, &[], Some(&enabled)),
            strings(&["ap-south-1", "us-east-1", "us-west-2"])
        );
    }
}
