//! Per-member proof of delivery into a log archive: the newest log file and digest under each
//! member's path, read from a bounded listing of today's (then yesterday's) date folder, never a
//! scan of the bucket. Pure: the paths to list, the times in CloudTrail's file names (also read
//! by the duplicate trails' count) and the verdict on what was listed.

use super::delivery::{self, DeliveryFinding};
use crate::aws::cloudtrail::TrailDelivery;
use crate::desired::archive::Member;

/// Where a member's trail writes in its home region: `{prefix}/AWSLogs/{account}/` (an
/// Organization trail: `{prefix}/AWSLogs/{o-id}/{account}/`), then `CloudTrail/{region}/` or
/// `CloudTrail-Digest/{region}/` and the day (CloudTrail user guide, "Finding your CloudTrail log
/// files": `bucket/prefix/AWSLogs/O-ID/AccountID/CloudTrail/Region/YYYY/MM/DD/`).
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-find-log-files.html
pub fn day_folder(key_prefix: &str, organization_id: Option<&str>, member: &Member, kind: &str, day: &str) -> String {
    let region = member.trail_arn.split(':').nth(3).unwrap_or_default();
    let base = match (member.organization, organization_id) {
        (true, Some(organization)) => format!("{key_prefix}/AWSLogs/{organization}/{}", member.account_id),
        _ => format!("{key_prefix}/AWSLogs/{}", member.account_id),
    };
    format!("{base}/{kind}/{region}/{day}/")
}

/// The root under which an Organization trail writes every account's folder:
/// `{prefix}/AWSLogs/{o-id}/`.
pub fn organization_root(key_prefix: &str, organization_id: &str) -> String {
    format!("{key_prefix}/AWSLogs/{organization_id}/")
}

/// The account of a folder listed under `root` (`{root}{account}/`), when it is one.
pub fn account_of_folder(root: &str, folder: &str) -> Option<String> {
    let account = folder.strip_prefix(root)?.strip_suffix('/')?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| account.to_string())
}

/// Where to list `account`'s log files of `region` under `root` so that the first key found, if
/// any, was delivered at `since` or later: (prefix, start-after). Day folders and file names sort
/// by time (`YYYY/MM/DD/{account}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_...`), so one request of
/// one key answers, however many files the folder holds.
pub fn delivered_since(root: &str, account: &str, region: &str, since: i64) -> (String, String) {
    let prefix = format!("{root}{account}/CloudTrail/{region}/");
    let stamp = aws_smithy_types::DateTime::from_secs(since)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    let minute: String = stamp
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(13)
        .collect();
    let start_after = format!("{prefix}{}/{account}_CloudTrail_{region}_{minute}Z", day_of(since));
    (prefix, start_after)
}

/// `YYYY/MM/DD` of `secs` (UTC).
pub fn day_of(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|t| t.get(..10).map(|d| d.replace('-', "/")))
        .unwrap_or_default()
}

/// When a log file (`..._20261204T1605Z_id.json.gz`) or digest (`..._20261204T160512Z.json.gz`)
/// was delivered, from its name, as seconds since the epoch.
pub fn delivered_at(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    let stamp = name
        .trim_end_matches(".json.gz")
        .split('_')
        .find(|p| (p.len() == 14 || p.len() == 16) && p.ends_with('Z') && p.as_bytes().get(8) == Some(&b'T'))?;
    let seconds = if stamp.len() == 16 { &stamp[13..15] } else { "00" };
    let text = format!(
        "{}-{}-{}T{}:{}:{seconds}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13]
    );
    aws_smithy_types::DateTime::from_str(&text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

/// The newest delivery among `keys`: (key, time).
pub fn newest(keys: &[String]) -> Option<(String, i64)> {
    keys.iter()
        .filter_map(|k| delivered_at(k).map(|t| (k.clone(), t)))
        .max_by_key(|(_, t)| *t)
}

/// What was found under one member's path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberDelivery {
    pub account_id: String,
    pub log_file: Option<(String, i64)>,
    pub digest: Option<(String, i64)>,
    /// Why the member is late; None when it delivers (or has not delivered yet).
    pub problem: Option<String>,
    /// An Organization trail's account folders: (delivering, quiet).
    pub organization_accounts: Option<(Vec<String>, Vec<String>)>,
}

/// Whether a member's logs arrive: log files late after `alarm_after` seconds, digests an hour
/// later, as for an account's own trail (`delivery::trail`). Nothing found today or yesterday is
/// late only for a member seen delivering before (a new member awaits its first delivery).
pub fn judge_member(
    member: &Member,
    log_file: Option<(String, i64)>,
    digest: Option<(String, i64)>,
    delivered_before: bool,
    now: i64,
    alarm_after: i64,
) -> MemberDelivery {
    let observed = TrailDelivery {
        log_files: log_file.as_ref().map(|(_, t)| *t),
        digests: digest.as_ref().map(|(_, t)| *t),
        ..Default::default()
    };
    let findings: Vec<DeliveryFinding> = delivery::trail(&observed, true, true, false, now, alarm_after);
    let mut problem = delivery::first_problem(&findings).and_then(|f| f.problem.clone());
    if log_file.is_none() && digest.is_none() && delivered_before {
        problem = Some(format!(
            "cloudtrail: nothing delivered under the account's path today or yesterday (alarm after {} minutes)",
            alarm_after / 60
        ));
    }
    MemberDelivery {
        account_id: member.account_id.clone(),
        log_file,
        digest,
        problem: problem.map(|p| format!("account {}: {p}", member.account_id)),
        organization_accounts: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(organization: bool) -> Member {
        Member {
            account_id: "111122223333".into(),
            trail_arn: "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper".into(),
            organization,
            role_arn: None,
        }
    }

    #[test]
    fn a_members_folders_are_its_own_and_its_organizations() {
        assert_eq!(
            day_folder("AWS/CloudTrail", None, &member(false), "CloudTrail", "2026/12/04"),
            "AWS/CloudTrail/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/04/"
        );
        assert_eq!(
            day_folder(
                "logs",
                Some("o-abcdefghij"),
                &member(true),
                "CloudTrail-Digest",
                "2026/12/04"
            ),
            "logs/AWSLogs/o-abcdefghij/111122223333/CloudTrail-Digest/eu-west-1/2026/12/04/"
        );
    }

    /// N4: an Organization trail's account folders are found by listing its root with a
    /// delimiter, and one key after the window's start tells whether an account delivered.
    #[test]
    fn an_organization_trails_accounts_are_its_folders_and_one_key_tells_recent_delivery() {
        let root = organization_root("AWS/CloudTrail", "o-abcdefghij");
        assert_eq!(root, "AWS/CloudTrail/AWSLogs/o-abcdefghij/");
        assert_eq!(
            account_of_folder(&root, "AWS/CloudTrail/AWSLogs/o-abcdefghij/111122223333/").as_deref(),
            Some("111122223333")
        );
        assert_eq!(account_of_folder(&root, "AWS/CloudTrail/AWSLogs/o-abcdefghij/x/"), None);
        let (prefix, start_after) = delivered_since(&root, "111122223333", "eu-west-1", 1_796_400_300);
        assert_eq!(
            prefix,
            "AWS/CloudTrail/AWSLogs/o-abcdefghij/111122223333/CloudTrail/eu-west-1/"
        );
        assert_eq!(
            start_after,
            "AWS/CloudTrail/AWSLogs/o-abcdefghij/111122223333/CloudTrail/eu-west-1/2026/12/04/111122223333_CloudTrail_eu-west-1_20261204T1605Z"
        );
        let file =
            |day: &str, stamp: &str| format!("{prefix}{day}/111122223333_CloudTrail_eu-west-1_{stamp}_AbC.json.gz");
        // Files of the same minute or later sort after; earlier ones (and yesterday's) before.
        assert!(file("2026/12/04", "20261204T1605Z") > start_after);
        assert!(file("2026/12/05", "20261205T0000Z") > start_after);
        assert!(file("2026/12/04", "20261204T1604Z") < start_after);
        assert!(file("2026/12/03", "20261203T2359Z") < start_after);
    }

    #[test]
    fn log_files_and_digests_are_dated_by_their_names() {
        let log =
            "p/AWSLogs/1/CloudTrail/eu-west-1/2026/12/04/111122223333_CloudTrail_eu-west-1_20261204T1605Z_AbC.json.gz";
        let digest = "p/AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/12/04/111122223333_CloudTrail-Digest_eu-west-1_trailkeeper_eu-west-1_20261204T160512Z.json.gz";
        assert_eq!(delivered_at(log), Some(1_796_400_300));
        assert_eq!(delivered_at(digest), Some(1_796_400_312));
        assert_eq!(day_of(1_796_400_312), "2026/12/04");
        assert_eq!(day_of(0), "1970/01/01");
        assert_eq!(
            delivered_at("p/AWSLogs/1/CloudTrail/us-east-1/2026/12/04/x.json.gz"),
            None
        );
        assert_eq!(
            newest(&[log.to_string(), digest.to_string()]).map(|(_, t)| t),
            Some(1_796_400_312)
        );
    }

    #[test]
    fn a_member_is_late_after_the_alarm_and_a_new_one_awaits_its_first_delivery() {
        let now = 1_796_400_000;
        let recent = Some(("k".to_string(), now - 600));
        let healthy = judge_member(&member(false), recent.clone(), recent.clone(), true, now, 3600);
        assert_eq!(healthy.problem, None);
        let stale = Some(("k".to_string(), now - 3 * 3600));
        let late = judge_member(&member(false), stale.clone(), stale, true, now, 3600);
        let problem = late.problem.unwrap();
        assert!(problem.starts_with("account 111122223333: cloudtrail"), "{problem}");
        assert_eq!(judge_member(&member(false), None, None, false, now, 3600).problem, None);
        let gone = judge_member(&member(false), None, None, true, now, 3600)
            .problem
            .unwrap();
        assert!(gone.contains("today or yesterday"), "{gone}");
    }
}
