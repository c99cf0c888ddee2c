//! Progress of long CLI operations on stderr: a bar (indicatif) on a terminal, plain lines
//! otherwise (a log file or CI gets one line per 10% and one at the end, no control codes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// One operation's progress.
pub struct Progress {
    label: String,
    started: Instant,
    kind: Kind,
}

enum Kind {
    Bar(ProgressBar),
    Lines { total: Option<u64>, next_tenth: u64 },
}

impl Progress {
    /// Progress over `total` bytes.
    pub fn bytes(label: &str, total: u64) -> Progress {
        let kind = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            Kind::Bar(bar)
        } else {
            eprintln!("{label}: 0%");
            Kind::Lines {
                total: Some(total),
                next_tenth: 1,
            }
        };
        Progress {
            label: label.to_owned(),
            started: Instant::now(),
            kind,
        }
    }

    /// An operation without a measurable amount (a spinner on a terminal).
    pub fn spinner(label: &str) -> Progress {
        let kind = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            Kind::Bar(bar)
        } else {
            eprintln!("{label}…");
            Kind::Lines {
                total: None,
                next_tenth: 1,
            }
        };
        Progress {
            label: label.to_owned(),
            started: Instant::now(),
            kind,
        }
    }

    /// Sets how far the operation is.
    pub fn set(&mut self, done: u64) {
        match &mut self.kind {
            Kind::Bar(bar) => bar.set_position(done),
            Kind::Lines {
                total: Some(total),
                next_tenth,
            } if *total > 0 => {
                while *next_tenth <= 10 && done * 10 >= *total * *next_tenth {
                    eprintln!("{}: {}%", self.label, *next_tenth * 10);
                    *next_tenth += 1;
                }
            }
            Kind::Lines { .. } => {}
        }
    }

    /// Ends the operation with a summary.
    pub fn finish(self, summary: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        match self.kind {
            Kind::Bar(bar) => bar.finish_with_message(format!("{}: {summary}", self.label)),
            Kind::Lines { .. } => eprintln!("{}: {summary} ({secs:.1} s)", self.label),
        }
    }
}
