//! The controls of section 3 that judge the whole account, not trailkeeper's own resources: 3.3
//! (AWS Config), 3.6 (KMS key rotation) and 3.7 (VPC flow logs), in every region judged, whoever
//! created what they read. A region whose read failed fails the control (it cannot be shown to
//! pass), with the error in the evidence. Pure functions.
//!
//! Each region is first reduced to its verdict (`verdict`: what fails there), the form the
//! controller's account-wide sweep keeps in status for the regions a reconcile does not read; a
//! control then folds the verdicts of the regions read fresh and, for the others, the sweep's.
//!
//! The benchmark is the CIS Amazon Web Services Foundations Benchmark v3.0.0, section 3; each
//! function says where its verdict follows Prowler's and Steampipe's (`cis_v300`) checks of it.

use super::evidence::{
    Control, ControlResult, Evidence, OtherRegions, RecorderEvidence, RegionEvidence, VpcEvidence, control, pass,
};
use crate::api::RegionVerdict;

/// Items named in one control's evidence; the rest are counted.
const LISTED: usize = 10;

/// A recorder that records every supported resource type, is on, and last succeeded (lastStatus
/// `Success`: "Valid Values: Pending | Success | Failure", API_ConfigurationRecorderStatus).
fn records_everything(r: &RecorderEvidence) -> bool {
    r.all_supported && r.recording && r.last_status.as_deref() == Some("Success")
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

/// Whether a VPC's flow logs capture rejected traffic (a REJECT or an ALL log).
fn captures_rejects(vpc: &VpcEvidence) -> bool {
    vpc.traffic_types.iter().any(|t| t == "REJECT" || t == "ALL")
}

/// What one region holds of 3.3, 3.6 and 3.7: what fails there, and what passes that the
/// evidence names (the global resource types' recorder, the rotating keys).
pub fn verdict(region: &RegionEvidence) -> RegionVerdict {
    let (config, global_types) = match &region.recorders {
        Err(error) => (Some(format!("not read ({error})")), false),
        Ok(recorders) if recorders.is_empty() => (Some("no configuration recorder".into()), false),
        Ok(recorders) => {
            let good: Vec<&RecorderEvidence> = recorders.iter().filter(|r| records_everything(r)).collect();
            let described: Vec<String> = recorders.iter().map(describe_recorder).collect();
            (
                good.is_empty().then(|| described.join("; ")),
                good.iter().any(|r| r.include_global),
            )
        }
    };
    let (rotating_keys, keys_without_rotation, key_error) = match &region.keys {
        Err(error) => (Vec::new(), Vec::new(), Some(error.clone())),
        Ok(keys) => (
            keys.iter().filter(|k| k.rotation).map(|k| k.arn.clone()).collect(),
            keys.iter().filter(|k| !k.rotation).map(|k| k.arn.clone()).collect(),
            None,
        ),
    };
    let (vpcs, vpcs_without_flow_logs, vpc_error) = match &region.vpcs {
        Err(error) => (0, Vec::new(), Some(error.clone())),
        Ok(found) => (
            found.len() as u32,
            found
                .iter()
                .filter(|v| !captures_rejects(v))
                .map(|v| {
                    let logs = if v.traffic_types.is_empty() {
                        "no flow log".to_string()
                    } else {
                        format!("flow logs of {} traffic only", v.traffic_types.join(", "))
                    };
                    format!("{} ({logs})", v.id)
                })
                .collect(),
            None,
        ),
    };
    RegionVerdict {
        region: region.region.clone(),
        config,
        global_types,
        rotating_keys,
        keys_without_rotation,
        key_error,
        vpcs,
        vpcs_without_flow_logs,
        vpc_error,
    }
}

/// The regions judged and, when some were not read by this reconcile, where their verdicts come
/// from (`; other regions as swept at ...`); or why the controls cannot be judged.
fn judged(e: &Evidence) -> Result<(Vec<RegionVerdict>, String), String> {
    let fresh: Vec<RegionVerdict> = match &e.regions {
        None => return Err("not read: the reconcile stopped before the account-wide reads".into()),
        Some(Err(error)) => return Err(format!("the account's regions could not be listed: {error}")),
        Some(Ok(regions)) => regions.iter().map(verdict).collect(),
    };
    match &e.other_regions {
        OtherRegions::None => Ok((fresh, String::new())),
        OtherRegions::NotSwept => Err(format!(
            "{} regions kept by this baseline read; the account's other regions are read by the controller's \
             account-wide sweep, which has not run yet for this account (plan and apply read the regions a baseline \
             keeps; `trailkeeper report` reads every region)",
            fresh.len()
        )),
        OtherRegions::Swept(sweep) => {
            if let Some(error) = &sweep.error {
                return Err(format!(
                    "the account's regions could not be listed at the sweep of {}: {error}",
                    sweep.time
                ));
            }
            let mut all = fresh;
            let others: Vec<RegionVerdict> = sweep
                .regions
                .iter()
                .filter(|s| !all.iter().any(|f| f.region == s.region))
                .cloned()
                .collect();
            let note = if others.is_empty() {
                String::new()
            } else {
                let when = sweep.refreshed.as_deref().filter(|r| *r > sweep.time.as_str());
                format!(
                    " ({} of them as the account-wide sweep of {} read them{})",
                    others.len(),
                    sweep.time,
                    when.map(|r| format!(", one again at {r}")).unwrap_or_default()
                )
            };
            all.extend(others);
            all.sort_by(|a, b| a.region.cmp(&b.region));
            Ok((all, note))
        }
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
fn region_names(regions: &[RegionVerdict]) -> String {
    listing(&regions.iter().map(|r| r.region.clone()).collect::<Vec<_>>())
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
    let (regions, note) = match judged(e) {
        Ok(judged) => judged,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let failing: Vec<String> = regions
        .iter()
        .filter_map(|r| r.config.as_ref().map(|why| format!("{}: {why}", r.region)))
        .collect();
    let global: Vec<String> = regions
        .iter()
        .filter(|r| r.global_types)
        .map(|r| r.region.clone())
        .collect();
    let mut evidence = Vec::new();
    if !failing.is_empty() {
        evidence.push(format!(
            "{} of {} regions{note} without a recorder of all supported resource types that records with lastStatus Success: {}",
            failing.len(),
            regions.len(),
            listing(&failing)
        ));
    } else {
        evidence.push(format!(
            "{} regions ({}){note} each with a recorder of all supported resource types that records with lastStatus Success",
            regions.len(),
            region_names(&regions)
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
    let (regions, note) = match judged(e) {
        Ok(judged) => judged,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let mut failing = Vec::new();
    let mut judged_keys = 0;
    for region in &regions {
        if let Some(error) = &region.key_error {
            failing.push(format!("{}: not read ({error})", region.region));
        }
        judged_keys += region.rotating_keys.len() + region.keys_without_rotation.len();
        failing.extend(
            region
                .keys_without_rotation
                .iter()
                .map(|arn| format!("{arn}: KeyRotationEnabled=false")),
        );
    }
    let evidence = if failing.is_empty() {
        let rotating: Vec<String> = regions.iter().flat_map(|r| r.rotating_keys.clone()).collect();
        if rotating.is_empty() {
            format!(
                "no customer-managed symmetric key enabled in the {} regions judged ({}){note}",
                regions.len(),
                region_names(&regions)
            )
        } else {
            format!(
                "{judged_keys} customer-managed symmetric keys{note}, all with KeyRotationEnabled=true: {}",
                listing(&rotating)
            )
        }
    } else {
        format!(
            "{judged_keys} customer-managed symmetric keys in {} regions{note}; without rotation: {}",
            regions.len(),
            listing(&failing)
        )
    };
    control(ID, TITLE, pass(failing.is_empty()), evidence)
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
    let (regions, note) = match judged(e) {
        Ok(judged) => judged,
        Err(why) => return control(ID, TITLE, ControlResult::Fail, why),
    };
    let mut failing = Vec::new();
    let mut vpcs = 0;
    for region in &regions {
        if let Some(error) = &region.vpc_error {
            failing.push(format!("{}: not read ({error})", region.region));
        }
        vpcs += region.vpcs;
        failing.extend(
            region
                .vpcs_without_flow_logs
                .iter()
                .map(|v| format!("{}:{v}", region.region)),
        );
    }
    let evidence = if failing.is_empty() {
        format!(
            "{vpcs} VPCs in {} regions ({}){note}, each with a flow log of REJECT or ALL traffic",
            regions.len(),
            region_names(&regions)
        )
    } else {
        format!(
            "{vpcs} VPCs in {} regions{note}; without a flow log of REJECT or ALL traffic: {}",
            regions.len(),
            listing(&failing)
        )
    };
    control(ID, TITLE, pass(failing.is_empty()), evidence)
}
