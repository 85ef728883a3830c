//! The trail key: observed, diffed, created or repaired, and its ARN handed on.

use super::account::AccountReconcile;
use super::report::{Component, ComponentState};
use super::writes::apply_key;
use crate::aws::AwsError;
use crate::aws::kms::ObservedKey;
use crate::desired::KeySource;
use crate::judge::diff;

impl AccountReconcile<'_> {
    /// Returns the key ARN when the key exists (or was just created).
    pub(super) async fn reconcile_key(&mut self, observed: Result<Option<ObservedKey>, AwsError>) -> Option<String> {
        let desired = self.desired.key.clone();
        if desired.source == KeySource::None {
            self.report
                .components
                .insert(Component::Key, ComponentState::NotManaged);
            // A LogArchive's member encrypts with the archive's key, kept by the archive.
            let archive_key = self.archive.as_ref().map(|a| a.key_arn.clone());
            self.report.key_arn = archive_key.clone();
            return archive_key;
        }
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                self.report.components.insert(Component::Key, ComponentState::Failed(e));
                return None;
            }
        };
        let delta = diff::diff_key(&desired, observed.as_ref());
        if let (Some(known), true) = (
            super::regional::known_key(&desired, observed.as_ref()),
            delta.actions.is_empty(),
        ) {
            let region = self.clients.region.clone();
            self.report.known.entry(region).or_default().keys.push(known);
        }
        let resource = delta.drift.first().map(|d| d.resource.clone()).unwrap_or_default();
        let mut key = observed.map(|k| (k.key_id, k.arn));
        let actions = self.begin(Component::Key, &resource, &delta);
        let mut result = Ok(());
        for action in actions {
            let step = apply_key(&self.clients, &desired, &mut key, &action).await;
            result = self.record(&resource, &action, step);
            if result.is_err() {
                break;
            }
        }
        let ok = self.finish(Component::Key, result);
        let arn = key.map(|(_, arn)| arn);
        self.report.key_arn = arn.clone();
        if ok { arn } else { None }
    }
}
