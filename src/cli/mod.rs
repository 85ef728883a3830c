//! The subcommands: argument parsing and wiring only.

mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;

use crate::manifests::{self, ManifestSet, ResolvedBaseline};
use crate::reconcile::account::{self, AccountReport, PreviousApproval, RunMode};

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
    /// Print the CustomResourceDefinitions of the three kinds.
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
    /// Reconcile every LoggingBaseline of the manifests once against AWS, without a cluster.
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TRAILKEEPER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconcile only the LoggingBaselines matching this label selector (shard a large fleet).
    #[arg(long, env = "TRAILKEEPER_SELECTOR")]
    pub selector: Option<String>,
    /// Seconds between two observations of an account in line (jittered by up to 10%; 10 s to a week).
    #[arg(long, env = "TRAILKEEPER_RESYNC_SECONDS", default_value_t = 600)]
    pub resync_seconds: u64,
    /// Seconds one account's reconcile may take as a whole before it fails with reason Timeout
    /// (30 to 3600; each AWS call also has its own timeout).
    #[arg(long, env = "TRAILKEEPER_RECONCILE_TIMEOUT_SECONDS", default_value_t = 300)]
    pub reconcile_timeout_seconds: u64,
    /// LoggingBaselines reconciled at once.
    #[arg(long, env = "TRAILKEEPER_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TRAILKEEPER_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: String,
    /// Take a Lease before reconciling, so that only one replica acts at a time.
    #[arg(long, env = "TRAILKEEPER_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    #[arg(long, env = "TRAILKEEPER_LEASE_NAME", default_value = "trailkeeper")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod's name, POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// How many accounts are reconciled at once by `plan` and `apply`.
const ACCOUNT_CONCURRENCY: usize = 16;

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds { dir } => crds(dir),
        Command::Validate { files } => validate(&files),
        Command::Run(args) => run_controller(args).await,
        Command::Diff { base, head, output } => diff(&base, &head, output),
        Command::Plan { files, output } => reconcile(&files, RunMode::Plan, output).await,
        Command::Apply { files, output } => reconcile(&files, RunMode::Apply, output).await,
    }
}

fn crds(dir: Option<PathBuf>) -> ExitCode {
    let files = match crate::api::crd_files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: cannot render the CRDs: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let Some(dir) = dir else {
        files.iter().for_each(|(_, yaml)| print!("{yaml}"));
        return ExitCode::SUCCESS;
    };
    for (name, yaml) in files {
        let path = dir.join(name);
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, yaml)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(exit::INVALID);
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

async fn run_controller(args: RunArgs) -> ExitCode {
    match crate::operator::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "trailkeeper stopped");
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

/// Reads and validates manifests; prints one line per problem to stderr.
fn load_valid(files: &[PathBuf]) -> Result<ManifestSet, u8> {
    let paths = manifests::collect_files(files).map_err(|e| {
        eprintln!("{e}");
        exit::UNREADABLE
    })?;
    let (documents, mut problems) = manifests::load(&paths).map_err(|e| {
        eprintln!("{e}");
        exit::UNREADABLE
    })?;
    let (set, more) = manifests::validate(&documents);
    problems.extend(more);
    if problems.is_empty() {
        Ok(set)
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        Err(exit::INVALID)
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    match load_valid(files) {
        Ok(set) => {
            println!(
                "valid: {} LoggingBaseline, {} TrailPolicy, {} RetentionPolicy",
                set.baselines.len(),
                set.trail_policies.len(),
                set.retention_policies.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => ExitCode::from(code),
    }
}

fn resolved(files: &[PathBuf], side: &str) -> Result<Vec<ResolvedBaseline>, u8> {
    let set = load_valid(files).inspect_err(|_| eprintln!("the {side} manifests are not valid"))?;
    set.resolve_all().map_err(|errors| {
        errors.iter().for_each(|e| eprintln!("{e}"));
        exit::INVALID
    })
}

fn diff(base: &[PathBuf], head: &[PathBuf], format: Format) -> ExitCode {
    if base.is_empty() || head.is_empty() {
        eprintln!("error: diff needs --base and --head");
        return ExitCode::from(exit::UNREADABLE);
    }
    let (base, head) = match (resolved(base, "base"), resolved(head, "head")) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let changes = crate::reconcile::retention::diff(&base, &head);
    print!("{}", output::render_diff(&changes, format));
    let rejected = changes
        .iter()
        .any(|c| c.verdict == crate::reconcile::retention::Verdict::Rejected);
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
                eprintln!("{e}");
            }
            return ExitCode::from(exit::INVALID);
        }
    };
    let base = crate::aws::load_base_config().await;
    let reports = run_all(&base, &resolved, mode).await;
    print!("{}", output::render(&reports, mode, format));
    let code = if reports.iter().any(|(_, r)| r.failed()) {
        exit::INVALID
    } else if mode == RunMode::Plan && reports.iter().any(|(_, r)| !r.in_sync()) {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    };
    ExitCode::from(code)
}

/// Reconciles the accounts in parallel (each account's own calls are paced by its clients).
pub async fn run_all(
    base: &aws_types::SdkConfig,
    baselines: &[ResolvedBaseline],
    mode: RunMode,
) -> Vec<(String, AccountReport)> {
    let previous = PreviousApproval::default();
    futures::stream::iter(baselines)
        .map(|b| {
            let previous = &previous;
            async move {
                let specs = b.specs();
                (b.id.clone(), account::run_account(base, &specs, mode, previous).await)
            }
        })
        .buffered(ACCOUNT_CONCURRENCY)
        .collect()
        .await
}
