//! What to set so that a failing CIS control passes: the baseline's setting when trailkeeper can
//! keep the control, or what to do in the account when it cannot (it never changes what it does
//! not keep). Shown beside each FAIL of `report -o html`. Pure.

/// The advice for a failing control (None: no advice for that id).
pub fn what_to_set(control: &str) -> Option<&'static str> {
    Some(match control {
        "3.1" => {
            "a Managed trail (trail.source: Managed) with the TrailPolicy's multiRegion: true and managementEvents \
             readWriteType: All; an Existing trail: manageExisting [Logging] in its TrailPolicy, or fix it in its owner's account"
        }
        "3.2" => "the TrailPolicy's logFileValidation: true (an Existing trail: manageExisting [LogFileValidation])",
        "3.3" => {
            "configRules.createRecorder: true with regions: [\"*\"]: trailkeeper keeps a recorder of every resource type \
             in every enabled region (on a baseline with its own buckets; an Existing trail's or a LogArchive member's \
             account: set AWS Config up there, or in its Organization; someone else's recorder must record all \
             supported types, and deliver)"
        }
        "3.4" => {
            "trailkeeper keeps access logging on its own trail bucket; an Existing trail's bucket: turn server access \
             logging on in its owner's account"
        }
        "3.5" => {
            "a Managed trail is encrypted with trailkeeper's key (or encryption.kmsKeyArn); an Existing trail: set a KMS \
             key on it in its owner's account"
        }
        "3.6" => {
            "enable rotation of the keys named (aws kms enable-key-rotation): trailkeeper rotates its own keys and never \
             changes a key it does not keep"
        }
        "3.7" => {
            "regions: [\"*\"] with flowLogs enabled: trailkeeper keeps a flow log on every VPC of every enabled region \
             (a VPC with someone's ACCEPT-only log: flowLogs.replaceNonCompliant: true)"
        }
        "3.8" | "3.9" => {
            "the TrailPolicy's dataEvents (or advancedEventSelectors) with S3 object-level events (charged per event)"
        }
        id if id.starts_with("4.") => {
            "the TrailPolicy's cloudWatchLogs (the trail's log group, and the role CloudTrail writes with) and \
             monitoring: trailkeeper keeps each control's metric filter and alarm, and a topic to subscribe to \
             (monitoring.subscriptions); an Existing trail: send it to CloudWatch Logs in its owner's account"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_judged_has_advice_for_when_it_fails() {
        let controls = crate::judge::compliance::evaluate(&Default::default());
        assert_eq!(controls.len(), 24);
        for c in controls {
            assert!(what_to_set(&c.id).is_some(), "{}", c.id);
        }
        assert!(what_to_set("3.3").unwrap().contains("regions: [\"*\"]"));
        assert!(what_to_set("9.9").is_none());
    }
}
