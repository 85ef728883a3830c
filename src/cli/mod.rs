//! The subcommands: argument parsing, dispatch (to the operator, the engine's fleet run and
//! verification, the desired IAM documents) and output. The offline runs over manifests are
//! driven from here: per baseline, the clients it is read with (its own account's, or its
//! archive's) and where its logs are.

// Output goes through these instead of `print!`/`eprintln!`, which panic when the reader has gone
// (`trailkeeper crds | head -1`, stderr into a closed pipe). A reader that stopped reading is not
// trailkeeper's failure: the rest of the output is dropped, and the command ends with the exit
// code its work earned.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod html;
pub mod output;
pub mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;

use crate::engine::account::{AccountReport, EvidenceScope, RunMode};
use crate::engine::fleet;
use crate::manifests::{self, ManifestSet, ResolvedBaseline};

/// Exit codes shared by the subcommands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Invalid manifests, or a reconcile that failed.
    pub const INVALID: u8 = 1;
    /// Unreadable input (validate); changes pending (plan).
    pub const UNREADABLE: u8 = 2;
    pub const CHANGES_PENDING: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "trailkeeper",
    version,
    about = "Keeps the audit logging of AWS accounts at a declared baseline"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions of the five kinds.
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check manifests offline: schema, CEL rules and references between them.
    Validate {
        /// Files or directories (YAML, multi-document).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
    },
    /// Observe AWS and print what an apply would change. Exit 0 in sync, 2 changes pending, 1 on errors.
    Plan {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Offline: what a manifest change does to the retention in force, per account. Exit 1 when
    /// the change would be rejected (shortening without a new approval, or invalid manifests).
    Diff {
        /// The manifests before the change (a file or directory).
        #[arg(long)]
        base: Vec<PathBuf>,
        /// The manifests after the change.
        #[arg(long)]
        head: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Run the controller (in a cluster, or anywhere with a kubeconfig).
    Run(RunArgs),
    /// Validate the integrity of delivered CloudTrail logs (as `aws cloudtrail validate-logs`):
    /// digest signatures, the digest chain and every log file's hash, for each LoggingBaseline of
    /// the manifests (or `--account`). Exit 0 only when every file is valid.
    Verify {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Only the baseline of this account.
        #[arg(long)]
        account: Option<String>,
        /// Digests that end at or after this time (RFC 3339, e.g. 2026-11-26T00:00:00Z).
        #[arg(long)]
        start_time: String,
        /// Digests that end at or before this time (default: now).
        #[arg(long)]
        end_time: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Audit evidence for a fleet without a cluster: the logging controls of the CIS benchmark per
    /// account, with the setting read as evidence (reads only). Markdown, JSON, or one
    /// self-contained HTML page (a matrix of accounts by controls, delivery and integrity).
    Report {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Markdown)]
        output: Format,
        /// Also verify the integrity of the logs delivered in the last N hours (as `verify`).
        #[arg(long, default_value_t = 0)]
        verify_hours: u32,
    },
    /// Print the IAM policy trailkeeper needs, scoped to what it owns: the account role's policy
    /// (default), the operator identity's policy, or the account role's trust policy.
    IamPolicy(IamPolicyArgs),
    /// Reconcile every LoggingBaseline of the manifests once against AWS, without a cluster.
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
}

/// The flags of `trailkeeper run`, defined with the operator they configure.
pub use crate::operator::RunArgs;

#[derive(clap::Args, Debug, Clone)]
pub struct IamPolicyArgs {
    #[arg(long, value_enum, default_value_t = IamDocument::Account)]
    pub document: IamDocument,
    /// The ARN partition: aws, aws-cn or aws-us-gov.
    #[arg(long, default_value = "aws", value_parser = ["aws", "aws-cn", "aws-us-gov"])]
    pub partition: String,
    /// The role trailkeeper assumes in each account.
    #[arg(long, default_value = "trailkeeper")]
    pub account_role: String,
    /// storage.namePrefix of the baselines.
    #[arg(long, default_value = "trailkeeper")]
    pub name_prefix: String,
    /// trail.name of the Managed trails (repeatable).
    #[arg(long = "trail-name")]
    pub trail_names: Vec<String>,
    /// A bucket a baseline names itself (repeatable).
    #[arg(long = "bucket")]
    pub buckets: Vec<String>,
    /// The name of the operator's events queue (`--events-queue-url`'s last part).
    #[arg(long, default_value = "trailkeeper-events")]
    pub events_queue_name: String,
    /// The name of the central event bus (`--events-bus-name`).
    #[arg(long, default_value = crate::desired::events::DEFAULT_BUS)]
    pub events_bus_name: String,
    /// A key a baseline names in encryption.kmsKeyArn (repeatable).
    #[arg(long = "kms-key-arn")]
    pub kms_keys: Vec<String>,
    /// An Existing trail a TrailPolicy lets trailkeeper repair (repeatable).
    #[arg(long = "existing-trail-arn")]
    pub existing_trails: Vec<String>,
    /// A log group besides the defaults (an instance log file's group; repeatable).
    #[arg(long = "log-group")]
    pub log_groups: Vec<String>,
    /// A trail log group that carries the monitoring controls' metric filters (repeatable; the
    /// manifests' TrailPolicies with monitoring add theirs).
    #[arg(long = "monitored-log-group", default_value = crate::desired::iam::DEFAULT_MONITORED_LOG_GROUPS)]
    pub monitored_log_groups: Vec<String>,
    #[arg(long, default_value = "trailkeeper_audit")]
    pub audit_database: String,
    #[arg(long, default_value = "trailkeeper-audit")]
    pub audit_work_group: String,
    /// The operator's own role (trust policy).
    #[arg(long)]
    pub operator_role_arn: Option<String>,
    /// The external id the baselines set (trust policy).
    #[arg(long)]
    pub external_id: Option<String>,
    /// For baselines without credentials (trailkeeper as its own identity): key maintenance on
    /// every key of the account, since no key policy can name trailkeeper's role.
    #[arg(long)]
    pub own_identity: bool,
    /// Take the names above from these manifests too (their LoggingBaselines).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IamDocument {
    /// The policy of the role trailkeeper assumes in each account.
    Account,
    /// The policy of the operator's own identity (IRSA, Pod Identity).
    Operator,
    /// The trust policy of the account role.
    Trust,
    /// The policy of the role trailkeeper assumes in a log-archive account (LogArchive).
    Archive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
    /// `report` only: one self-contained page.
    Html,
}

/// How many accounts are reconciled at once by `plan` and `apply`.
pub async fn run(cli: Cli) -> ExitCode {
    let html_elsewhere = match &cli.command {
        Command::Plan { output, .. } | Command::Apply { output, .. } | Command::Diff { output, .. } => {
            *output == Format::Html
        }
        Command::Verify { output, .. } => *output == Format::Html,
        _ => false,
    };
    if html_elsewhere {
        errln!("error: -o html is for `report`; this command prints text, json or markdown");
        return ExitCode::from(exit::UNREADABLE);
    }
    match cli.command {
        Command::Crds { dir } => crds(dir),
        Command::Validate { files } => validate(&files),
        Command::Run(args) => run_controller(args).await,
        Command::Diff { base, head, output } => diff(&base, &head, output),
        Command::Plan { files, output } => reconcile(&files, RunMode::Plan, output).await,
        Command::Apply { files, output } => reconcile(&files, RunMode::Apply, output).await,
        Command::IamPolicy(args) => iam_policy(args),
        Command::Report {
            files,
            output,
            verify_hours,
        } => report(&files, output, verify_hours).await,
        Command::Verify {
            files,
            account,
            start_time,
            end_time,
            output,
        } => verify(&files, account.as_deref(), &start_time, end_time.as_deref(), output).await,
    }
}

fn crds(dir: Option<PathBuf>) -> ExitCode {
    let files = match crate::api::crd_files() {
        Ok(files) => files,
        Err(e) => {
            errln!("error: cannot render the CRDs: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let Some(dir) = dir else {
        files.iter().for_each(|(_, yaml)| out!("{yaml}"));
        return ExitCode::SUCCESS;
    };
    for (name, yaml) in files {
        let path = dir.join(name);
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, yaml)) {
            errln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(exit::INVALID);
        }
        outln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

async fn run_controller(args: RunArgs) -> ExitCode {
    match crate::operator::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "trailkeeper stopped");
            errln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

/// Reads and validates manifests; prints one line per problem to stderr.
fn load_valid(files: &[PathBuf]) -> Result<ManifestSet, u8> {
    let paths = manifests::collect_files(files).map_err(|e| {
        errln!("{e}");
        exit::UNREADABLE
    })?;
    let (documents, mut problems) = manifests::load(&paths).map_err(|e| {
        errln!("{e}");
        exit::UNREADABLE
    })?;
    let (set, more) = manifests::validate(&documents);
    problems.extend(more);
    if problems.is_empty() {
        Ok(set)
    } else {
        for p in &problems {
            errln!("{p}");
        }
        Err(exit::INVALID)
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    match load_valid(files) {
        Ok(set) => {
            outln!(
                "valid: {} LoggingBaseline, {} LoggingBaselineSet, {} TrailPolicy, {} RetentionPolicy, {} LogArchive",
                set.baselines.len(),
                set.sets.len(),
                set.trail_policies.len(),
                set.retention_policies.len(),
                set.archives.len()
            );
            for (set_name, expansion) in &set.expansions {
                match expansion {
                    Some(names) => outln!(
                        "{set_name} expands to {} LoggingBaselines: {}",
                        names.len(),
                        names.join(", ")
                    ),
                    None => outln!(
                        "{set_name}: accounts read from AWS Organizations by the controller (not expanded offline)"
                    ),
                }
            }
            ExitCode::SUCCESS
        }
        Err(code) => ExitCode::from(code),
    }
}

async fn verify(files: &[PathBuf], account: Option<&str>, start: &str, end: Option<&str>, format: Format) -> ExitCode {
    use crate::engine::verify;
    let time = |t: &str| {
        aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime)
            .map(|t| t.secs())
            .map_err(|e| errln!("error: {t} is not an RFC 3339 time: {e}"))
    };
    let Ok(start) = time(start) else {
        return ExitCode::from(exit::UNREADABLE);
    };
    let end = match end {
        Some(e) => match time(e) {
            Ok(e) => e,
            Err(()) => return ExitCode::from(exit::UNREADABLE),
        },
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let baselines = match resolved(files, "input") {
        Ok(b) => b,
        Err(code) => return ExitCode::from(code),
    };
    if let Some(account) = account
        && !baselines.iter().any(|b| b.baseline.spec.account_id == account)
    {
        errln!("error: no LoggingBaseline of the manifests is for account {account}: nothing verified");
        return ExitCode::from(exit::INVALID);
    }
    let base = crate::aws::load_base_config().await;
    let mut all_valid = true;
    let mut reports = Vec::new();
    for b in baselines
        .iter()
        .filter(|b| account.is_none_or(|a| a == b.baseline.spec.account_id))
    {
        let spec = &b.baseline.spec;
        // A member's logs are in its archive, read with the archive account's credentials.
        let (clients, location) = match &b.archive {
            Some(archive) => (
                crate::engine::archive::archive_clients(&base, &archive.spec),
                Ok(verify::archive_location(&archive.spec, spec, &b.trail_policy)),
            ),
            None => {
                let clients = crate::aws::AccountClients::new(
                    &base,
                    &spec.primary_region,
                    spec.credentials.as_ref(),
                    crate::aws::CallRecorder::new(),
                );
                let location = verify::location_of(&clients, spec, &b.trail_policy).await;
                (clients, location)
            }
        };
        let location = match location {
            Ok(l) => l,
            Err(e) => {
                errln!("{}: {e}", b.id);
                all_valid = false;
                continue;
            }
        };
        let started = std::time::Instant::now();
        let (progress, shown) = progress::start(format!("{}: verify", b.id), "files");
        let verified = verify::verify_counting(&clients, &location, start, end, &progress).await;
        progress::finish(shown).await;
        match verified {
            Ok(report) => {
                all_valid &= report.valid();
                let calls = clients.calls.snapshot();
                reports.push((b.id.clone(), report, calls.reads, started.elapsed()));
            }
            Err(e) => {
                errln!("{}: {e}", b.id);
                all_valid = false;
            }
        }
    }
    print_verified(&reports, format);
    ExitCode::from(if all_valid && !reports.is_empty() {
        exit::OK
    } else {
        exit::INVALID
    })
}

/// What `verify` found, per baseline: its report, the reads it took and how long.
type Verified = (String, crate::engine::verify::VerifyReport, u32, std::time::Duration);

/// `verify`'s output: one line per baseline (and one per problem), or JSON.
fn print_verified(reports: &[Verified], format: Format) {
    if format == Format::Json {
        let json: Vec<_> = reports
            .iter()
            .map(|(id, r, reads, _)| serde_json::json!({"baseline": id, "valid": r.valid(), "reads": reads, "report": r}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        for (id, r, reads, took) in reports {
            outln!(
                "{id}: {} digest files and {} log files checked in {:.1} s ({reads} reads): {}",
                r.digests,
                r.log_files,
                took.as_secs_f64(),
                if r.valid() {
                    "all valid"
                } else if r.digests == 0 {
                    "no digest file in the time range"
                } else {
                    "NOT VALID"
                }
            );
            for p in &r.problems {
                outln!("  {:?} {} {}: {}", p.verdict, p.kind, p.key, p.detail);
            }
        }
    }
}

fn iam_policy(args: IamPolicyArgs) -> ExitCode {
    use crate::desired::iam::{self, IamSettings};
    let mut settings = IamSettings {
        partition: args.partition,
        account_role: args.account_role,
        name_prefix: args.name_prefix,
        trail_names: args.trail_names,
        buckets: args.buckets,
        kms_keys: args.kms_keys,
        existing_trails: args.existing_trails,
        log_groups: args.log_groups,
        monitored_log_groups: args.monitored_log_groups,
        audit_database: args.audit_database,
        audit_work_group: args.audit_work_group,
        operator_role_arn: args.operator_role_arn,
        external_id: args.external_id,
        events_queue_name: args.events_queue_name,
        events_bus_name: args.events_bus_name,
        own_identity: args.own_identity,
        archive_keys: Vec::new(),
        own_storage: true,
        security_hub: true,
    };
    if !args.files.is_empty() {
        let baselines = match resolved(&args.files, "input") {
            Ok(b) => b,
            Err(code) => return ExitCode::from(code),
        };
        let covered: Vec<iam::Covered<'_>> = baselines
            .iter()
            .map(|b| iam::Covered {
                id: &b.id,
                specs: b.specs(),
                archive: b.archive.as_ref().map(|a| &a.spec),
            })
            .collect();
        for (id, prefix) in settings.cover(&covered) {
            errln!(
                "warning: {id} uses namePrefix {prefix:?}, not {:?}: pass --name-prefix, or print one policy per prefix",
                settings.name_prefix
            );
        }
    }
    settings.settle();
    let document = match args.document {
        IamDocument::Account => iam::account_policy(&settings),
        IamDocument::Operator => iam::operator_policy(&settings),
        IamDocument::Trust => iam::trust_policy(&settings),
        IamDocument::Archive => iam::archive_policy(&settings),
    };
    outln!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
    ExitCode::from(exit::OK)
}

fn resolved(files: &[PathBuf], side: &str) -> Result<Vec<ResolvedBaseline>, u8> {
    let set = load_valid(files).inspect_err(|_| errln!("the {side} manifests are not valid"))?;
    set.resolve_all().map_err(|errors| {
        errors.iter().for_each(|e| errln!("{e}"));
        exit::INVALID
    })
}

/// `resolved`, with each LogArchive as the baseline of its own account (its storage): what a
/// retention review compares.
fn resolved_with_archives(
    files: &[PathBuf],
    side: &str,
) -> Result<(Vec<ResolvedBaseline>, Vec<crate::manifests::ResolvedArchive>), u8> {
    let set = load_valid(files).inspect_err(|_| errln!("the {side} manifests are not valid"))?;
    let report = |errors: Vec<String>| {
        errors.iter().for_each(|e| errln!("{e}"));
        exit::INVALID
    };
    let mut baselines = set.resolve_all().map_err(report)?;
    let archives = set.resolve_archives(&baselines).map_err(report)?;
    baselines.extend(archives.iter().map(|a| a.as_resolved_baseline()));
    Ok((baselines, archives))
}

fn diff(base: &[PathBuf], head: &[PathBuf], format: Format) -> ExitCode {
    if base.is_empty() || head.is_empty() {
        errln!("error: diff needs --base and --head");
        return ExitCode::from(exit::UNREADABLE);
    }
    let (base, head) = match (
        resolved_with_archives(base, "base"),
        resolved_with_archives(head, "head"),
    ) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let ((base, base_archives), (head, head_archives)) = (base, head);
    let changes = crate::judge::retention_review::merged(
        crate::judge::retention_review::diff(&base, &head),
        crate::judge::retention_review::admission_changes(&base_archives, &head_archives),
    );
    out!("{}", output::render_diff(&changes, format));
    let rejected = changes
        .iter()
        .any(|c| c.verdict == crate::judge::retention_review::Verdict::Rejected);
    ExitCode::from(if rejected { exit::INVALID } else { exit::OK })
}

async fn reconcile(files: &[PathBuf], mode: RunMode, format: Format) -> ExitCode {
    let set = match load_valid(files) {
        Ok(set) => set,
        Err(code) => return ExitCode::from(code),
    };
    let resolved = match set.resolve_all() {
        Ok(r) => r,
        Err(errors) => {
            for e in errors {
                errln!("{e}");
            }
            return ExitCode::from(exit::INVALID);
        }
    };
    let archives = match set.resolve_archives(&resolved) {
        Ok(a) => a,
        Err(errors) => {
            for e in errors {
                errln!("{e}");
            }
            return ExitCode::from(exit::INVALID);
        }
    };
    if mode == RunMode::Apply && resolved.iter().any(|b| b.baseline.spec.security_hub.enabled) {
        errln!(
            "note: spec.securityHub findings are exported by the operator (trailkeeper run), once it has judged the account's status; apply does not export them"
        );
    }
    let base = crate::aws::load_base_config().await;
    let label = match mode {
        RunMode::Apply => "apply",
        RunMode::Plan => "plan",
    };
    let (progress, shown) = progress::start(label.to_string(), "accounts");
    // The archives first: a member's trail goes where its archive says, once it admits it.
    let archived = fleet::run_archives(&base, &archives, mode, &progress).await;
    let targets: Vec<(String, crate::desired::archive::ArchiveTarget)> = archives
        .iter()
        .zip(&archived)
        .flat_map(|(a, (_, report))| {
            a.members
                .iter()
                .filter_map(|(id, member)| Some((id.clone(), report.target_for(&a.id, member)?)))
        })
        .collect();
    let mut reports: Vec<(String, AccountReport)> = archived
        .into_iter()
        .map(|(id, report)| (format!("LogArchive/{id}"), report.account))
        .collect();
    let mut accounts =
        fleet::run_all_with_archives(&base, &resolved, &targets, mode, EvidenceScope::KeptRegions, &progress).await;
    fleet::retry_transient_failures(&base, &resolved, &targets, mode, &mut accounts, |accounts, wait| {
        errln!(
            "{accounts} accounts failed for what may pass (a network or AWS error, a timeout, throttling): trying them again in {} s",
            wait.as_secs()
        )
    })
    .await;
    reports.extend(accounts);
    progress::finish(shown).await;
    out!("{}", output::render(&reports, mode, format));
    let code = if reports.iter().any(|(_, r)| r.failed()) {
        exit::INVALID
    } else if mode == RunMode::Plan && reports.iter().any(|(_, r)| !r.in_sync()) {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    };
    ExitCode::from(code)
}

async fn report(files: &[PathBuf], format: Format, verify_hours: u32) -> ExitCode {
    let baselines = match resolved(files, "input") {
        Ok(b) => b,
        Err(code) => return ExitCode::from(code),
    };
    let base = crate::aws::load_base_config().await;
    let (progress, shown) = progress::start("report".to_string(), "accounts");
    // Every region judged, read now: report is the audit, not a reconcile.
    let reports = fleet::run_all_with_archives(
        &base,
        &baselines,
        &[],
        RunMode::Plan,
        EvidenceScope::EveryRegion,
        &progress,
    )
    .await;
    progress::finish(shown).await;
    if format == Format::Html {
        let integrity = integrity_of(&base, &baselines, verify_hours).await;
        out!("{}", render_html(&reports, &integrity));
    } else {
        out!("{}", output::render_compliance(&reports, format));
    }
    ExitCode::from(if reports.iter().any(|(_, r)| r.error.is_some()) {
        exit::INVALID
    } else {
        exit::OK
    })
}

/// The integrity of each baseline's logs of the last `hours` (none when 0), in `baselines`' order.
async fn integrity_of(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    hours: u32,
) -> Vec<Option<html::Integrity>> {
    use crate::engine::verify;
    if hours == 0 {
        return vec![None; baselines.len()];
    }
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let start = end - i64::from(hours) * 3600;
    let (progress, shown) = progress::start("report: verify".to_string(), "accounts");
    progress.add_total(baselines.len() as u64);
    let checked = futures::stream::iter(baselines)
        .map(|b| {
            let progress = progress.clone();
            async move {
                let spec = &b.baseline.spec;
                let clients = crate::aws::AccountClients::new(
                    base,
                    &spec.primary_region,
                    spec.credentials.as_ref(),
                    crate::aws::CallRecorder::new(),
                );
                let verified = match verify::location_of(&clients, spec, &b.trail_policy).await {
                    Ok(location) => verify::verify(&clients, &location, start, end).await,
                    Err(e) => Err(e),
                };
                progress.advance(1);
                Some(match verified {
                    Ok(r) => html::Integrity {
                        hours,
                        valid: r.valid(),
                        digests: r.digests,
                        log_files: r.log_files,
                        problems: if r.digests == 0 {
                            vec![format!("no digest file in the last {hours} hours")]
                        } else {
                            r.problems
                                .iter()
                                .map(|p| format!("{:?} {} {}: {}", p.verdict, p.kind, p.key, p.detail))
                                .collect()
                        },
                    },
                    Err(e) => html::Integrity {
                        hours,
                        valid: false,
                        digests: 0,
                        log_files: 0,
                        problems: vec![format!("not verified: {e}")],
                    },
                })
            }
        })
        .buffered(fleet::ACCOUNT_CONCURRENCY)
        .collect()
        .await;
    progress::finish(shown).await;
    checked
}

/// `report -o html`: the reports judged, with delivery and integrity.
fn render_html(reports: &[(String, AccountReport)], integrity: &[Option<html::Integrity>]) -> String {
    let evidence: Vec<(&str, &crate::judge::evidence::Evidence)> = reports
        .iter()
        .map(|(_, r)| (r.account_id.as_str(), &r.evidence))
        .collect();
    let statuses = crate::judge::coverage::statuses(&evidence);
    let rows: Vec<html::Row<'_>> = reports
        .iter()
        .zip(integrity)
        .zip(statuses)
        .map(|(((id, r), integrity), compliance)| html::Row {
            baseline: id,
            account: &r.account_id,
            error: r.error.as_ref().map(|e| e.to_string()),
            compliance,
            delivery: crate::controller::status::delivery_condition(r),
            integrity: integrity.clone(),
        })
        .collect();
    html::render(crate::judge::compliance::BENCHMARK, &rows)
}
