//! Progress of long CLI work on stderr, when stderr is a terminal: one line, redrawn five times a
//! second (`plan: 37/200 accounts`), erased at the end. Nothing when stderr is a pipe or a file,
//! so that logs and CI output stay clean.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::progress::Progress;

/// The line being shown; `finish` erases it.
pub struct Shown {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Counts `unit`s of `label`'s work, shown while stderr is a terminal. The returned Progress is
/// given to the work; the Shown, if any, is finished when the work is.
pub fn start(label: String, unit: &'static str) -> (Progress, Option<Shown>) {
    if !std::io::stderr().is_terminal() {
        return (Progress::none(), None);
    }
    let progress = Progress::counting();
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let counts = progress.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let (done, total) = counts.counts();
                    draw(&format!("{label}: {done}/{total} {unit}"));
                }
                _ = &mut stopped => break,
            }
        }
        draw("");
    });
    (progress, Some(Shown { stop, task }))
}

impl Shown {
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Finishes what `start` showed, if anything.
pub async fn finish(shown: Option<Shown>) {
    if let Some(shown) = shown {
        shown.finish().await;
    }
}

/// Redraws the line (carriage return, erase to the end of the line); a closed stderr is ignored.
fn draw(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[K{line}");
    let _ = stderr.flush();
}
