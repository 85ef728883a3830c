//! The controls of section 3 that judge the whole account, not trailkeeper's own resources: 3.3
//! (AWS Config), 3.6 (KMS key rotation) and 3.7 (VPC flow logs), in every region judged, whoever
//! created what they read. A region whose read failed fails the control (it cannot be shown to
//! pass), with the error in the evidence. Pure functions.
//!
//! The benchmark is the CIS Amazon Web Services Foundations Benchmark v3.0.0, section 3; each
//! function says where its verdict follows Prowler's and Steampipe's (`cis_v300`) checks of it.

use super::evidence::{Control, ControlResult, Evidence, RecorderEvidence, RegionEvidence, VpcEvidence, control, pass};

/// Items named in one control's evidence; the rest are counted.
const LISTED: usize = 10;

/// The regions judged, or why there are none to judge.
fn judged(e: &Evidence) -> Result<&[RegionEvidence], String> {
    match &e.regions {
        None => Err("not read: the reconcile stopped before the account-wide reads".into()),
        Some(Err(error)) => Err(format!("the account's regions could not be listed: {error}")),
        Some(Ok(regions)) => Ok(regions),
    }
}

/// `a, b, c and 4 more`.
fn listing(items: &[String]) -> String {
    let mut out = items.iter().take(LISTED).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > LISTED {
        out.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    out
}

/// `us-east-1, eu-west-1` (the regions judged, for the evidence of a pass).
fn region_names(regions: &[RegionEvidence]) -> String {
    listing(&regions.iter().map(|r| r.region.clone()).collect::<Vec<_>>())
}

/// A recorder that records every supported resource type, is on, and last succeeded.
fn records_everything(r: &RecorderEvidence) -> bool {
    r.all_supported && r.recording && r.last_status.as_deref() == Some("SUCCESS")
}

fn describe_recorder(r: &RecorderEvidence) -> String {
    format!(
        "recorder {}: allSupported={}, includeGlobalResourceTypes={}, recording={}, lastStatus={}",
        r.name,
        r.all_supported,
        r.include_global,
        r.recording,
        r.last_status.as_deref().unwrap_or("(none)")
    )
}

/// 3.3: in every region, a recorder of all supported resource types that records and last
/// succeeded (DescribeConfigurationRecorders and DescribeConfigurationRecorderStatus); global
/// resource types (IAM) recorded in at least one region, as the benchmark's audit says (recording
/// them in every region only duplicates their items). Judged whether or not trailkeeper manages
/// Config rules: the benchmark judges the account. Steampipe's cis_v300_3_3
/// (config_enabled_all_regions) asks the same of each region's recorder, and global types in every
/// region (stricter than the benchmark's text, which this follows); Prowler's
/// config_recorder_all_regions_enabled checks only that each region's recorder records without a
/// failed last status, so a recorder of one resource type passes there and fails here.
pub fn config_all_regions(e: &Evidence) -> Control {
    const ID: &str = "3.3";
    const TITLE: &str = "Ensure AWS Config is enabled in all regions";
    let regions = match judged(e) {
        Ok(regions) => regions,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let mut failing = Vec::new();
    let mut global = Vec::new();
    for region in regions {
        match &region.recorders {
            Err(error) => failing.push(format!("{}: not read ({error})", region.region)),
            Ok(recorders) => {
                let good: Vec<&RecorderEvidence> = recorders.iter().filter(|r| records_everything(r)).collect();
                if good.iter().any(|r| r.include_global) {
                    global.push(region.region.clone());
                }
                if recorders.is_empty() {
                    failing.push(format!("{}: no configuration recorder", region.region));
                } else if good.is_empty() {
                    let described: Vec<String> = recorders.iter().map(describe_recorder).collect();
                    failing.push(format!("{}: {}", region.region, described.join("; ")));
                }
            }
        }
    }
    let mut evidence = Vec::new();
    if !failing.is_empty() {
        evidence.push(format!(
            "{} of {} regions without a recorder of all supported resource types that records with lastStatus SUCCESS: {}",
            failing.len(),
            regions.len(),
            listing(&failing)
        ));
    } else {
        evidence.push(format!(
            "{} regions ({}) each with a recorder of all supported resource types that records with lastStatus SUCCESS",
            regions.len(),
            region_names(regions)
        ));
    }
    if global.is_empty() {
        evidence.push("global resource types recorded in no region".into());
    } else {
        evidence.push(format!("global resource types recorded in {}", listing(&global)));
    }
    control(
        ID,
        TITLE,
        pass(!regions.is_empty() && failing.is_empty() && !global.is_empty()),
        evidence.join("; "),
    )
}

/// 3.6: rotation on every customer-managed symmetric encryption key that is enabled, in every
/// region judged (ListKeys, DescribeKey: KeyManager CUSTOMER, KeySpec SYMMETRIC_DEFAULT, KeyState
/// Enabled; GetKeyRotationStatus), trailkeeper's own keys among them. AWS-managed keys rotate on
/// their own, and asymmetric, HMAC and imported-material keys cannot rotate automatically: the
/// benchmark excludes them, as Prowler's kms_cmk_rotation_enabled and Steampipe's cis_v300_3_6
/// (kms_cmk_rotation_enabled) do. An account without such a key has nothing to fail: Pass, and the
/// evidence says so.
pub fn key_rotation(e: &Evidence) -> Control {
    const ID: &str = "3.6";
    const TITLE: &str = "Ensure rotation for customer-created symmetric CMKs is enabled";
    let regions = match judged(e) {
        Ok(regions) => regions,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let mut failing = Vec::new();
    let mut judged_keys = 0;
    for region in regions {
        match &region.keys {
            Err(error) => failing.push(format!("{}: not read ({error})", region.region)),
            Ok(keys) => {
                judged_keys += keys.len();
                failing.extend(
                    keys.iter()
                        .filter(|k| !k.rotation)
                        .map(|k| format!("{}: KeyRotationEnabled=false", k.arn)),
                );
            }
        }
    }
    let evidence = if failing.is_empty() {
        let rotating: Vec<String> = regions
            .iter()
            .flat_map(|r| r.keys.iter().flatten().map(|k| k.arn.clone()))
            .collect();
        if rotating.is_empty() {
            format!(
                "no customer-managed symmetric key enabled in the {} regions judged ({})",
                regions.len(),
                region_names(regions)
            )
        } else {
            format!(
                "{judged_keys} customer-managed symmetric keys, all with KeyRotationEnabled=true: {}",
                listing(&rotating)
            )
        }
    } else {
        format!(
            "{judged_keys} customer-managed symmetric keys in {} regions; without rotation: {}",
            regions.len(),
            listing(&failing)
        )
    };
    control(ID, TITLE, pass(failing.is_empty()), evidence)
}

/// Whether a VPC's flow logs capture rejected traffic (a REJECT or an ALL log).
fn captures_rejects(vpc: &VpcEvidence) -> bool {
    vpc.traffic_types.iter().any(|t| t == "REJECT" || t == "ALL")
}

/// 3.7: every VPC of every region judged has a flow log that captures at least rejected traffic
/// (REJECT or ALL), whoever created it and whatever its format and interval (those are the
/// baseline's business: drift, not this control). The benchmark's remediation creates a REJECT
/// log; Prowler's vpc_flow_logs_enabled and Steampipe's cis_v300_3_7 (vpc_flow_logs_enabled) pass
/// any flow log, so an ACCEPT-only log passes there and fails here, as the benchmark's "at least
/// REJECT" reads.
pub fn vpc_flow_logs(e: &Evidence) -> Control {
    const ID: &str = "3.7";
    const TITLE: &str = "Ensure VPC flow logging is enabled in all VPCs";
    let regions = match judged(e) {
        Ok(regions) => regions,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let mut failing = Vec::new();
    let mut vpcs = 0;
    for region in regions {
        match &region.vpcs {
            Err(error) => failing.push(format!("{}: not read ({error})", region.region)),
            Ok(found) => {
                vpcs += found.len();
                failing.extend(found.iter().filter(|v| !captures_rejects(v)).map(|v| {
                    let logs = if v.traffic_types.is_empty() {
                        "no flow log".to_string()
                    } else {
                        format!("flow logs of {} traffic only", v.traffic_types.join(", "))
                    };
                    format!("{}:{} ({logs})", region.region, v.id)
                }));
            }
        }
    }
    let evidence = if failing.is_empty() {
        format!(
            "{vpcs} VPCs in {} regions ({}), each with a flow log of REJECT or ALL traffic",
            regions.len(),
            region_names(regions)
        )
    } else {
        format!(
            "{vpcs} VPCs in {} regions; without a flow log of REJECT or ALL traffic: {}",
            regions.len(),
            listing(&failing)
        )
    };
    control(ID, TITLE, pass(failing.is_empty()), evidence)
}
