//! The counts of one import run and their rendering at the end.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Lines of each file list shown in the summary; the rest are counted.
const LISTED_FILES_MAX: usize = 50;

/// What one import run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub source: String,
    pub target: String,
    pub files_listed: u64,
    /// Files parsed and written, by format id.
    pub files_by_format: BTreeMap<&'static str, u64>,
    /// Files the ledger marked complete: not fetched again.
    pub files_already_imported: u64,
    /// Files AWS writes next to logs (ConfigWritabilityCheckFile, ...).
    pub files_skipped: u64,
    /// CloudTrail digest files recognized (not stored as events).
    pub digests: u64,
    /// (key, why) of files whose format could not be identified.
    pub unknown: Vec<(String, String)>,
    /// (key, why) of files quarantined as a whole (corrupt compression, over the size cap).
    pub quarantined_files: Vec<(String, String)>,
    /// (key, why) of files that could not be read from the source.
    pub unreadable: Vec<(String, String)>,
    /// (key, why) of files whose stream already holds another file's records.
    pub conflicts: Vec<(String, String)>,
    pub records_read: u64,
    pub records_stored: u64,
    pub records_quarantined: u64,
    /// Records an earlier, interrupted run had stored already (skipped on resume).
    pub records_already_present: u64,
    /// Lines that are not records by design (headers, control lines, blank lines).
    pub lines_skipped: u64,
    /// Source bytes read (compressed, as stored).
    pub bytes_read: u64,
    pub bytes_decompressed: u64,
    pub elapsed: Duration,
    /// Nothing was written: "stored" and "quarantined" say what an import would do.
    pub dry_run: bool,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

impl Summary {
    pub fn new(source: String, target: String) -> Summary {
        Summary {
            source,
            target,
            ..Summary::default()
        }
    }

    pub fn files_imported(&self) -> u64 {
        self.files_by_format.values().sum()
    }

    /// Files handled so far in this run (for the progress message).
    pub fn files_done(&self) -> u64 {
        self.files_imported()
            + self.files_skipped
            + self.digests
            + (self.unknown.len() + self.quarantined_files.len() + self.unreadable.len()) as u64
    }

    /// 0 when every file was accounted for; 1 when some were unknown (unless allowed),
    /// unreadable or in conflict.
    pub fn exit_code(&self, skip_unknown: bool) -> i32 {
        let bad = !self.unreadable.is_empty()
            || !self.conflicts.is_empty()
            || (!skip_unknown && !self.unknown.is_empty());
        i32::from(bad)
    }

    /// The human summary printed at the end of an import.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "imported {} into {} in {:.1} s",
            self.source, self.target, secs
        );
        if self.dry_run {
            let _ = writeln!(
                s,
                "dry run: nothing was written; the counts say what an import would do"
            );
        }
        let _ = writeln!(
            s,
            "files:   {} listed, {} imported, {} already imported, {} skipped (not logs), {} digests, {} unknown, {} quarantined, {} unreadable, {} conflicts",
            self.files_listed,
            self.files_imported(),
            self.files_already_imported,
            self.files_skipped,
            self.digests,
            self.unknown.len(),
            self.quarantined_files.len(),
            self.unreadable.len(),
            self.conflicts.len()
        );
        if !self.files_by_format.is_empty() {
            let by: Vec<String> = self
                .files_by_format
                .iter()
                .map(|(f, n)| format!("{f} {n}"))
                .collect();
            let _ = writeln!(s, "formats: {}", by.join(", "));
        }
        let _ = write!(
            s,
            "records: {} read = {} stored + {} quarantined",
            self.records_read, self.records_stored, self.records_quarantined
        );
        if self.records_already_present > 0 {
            let _ = write!(
                s,
                " + {} already stored by an earlier run",
                self.records_already_present
            );
        }
        let _ = writeln!(s, "; {} non-record lines skipped", self.lines_skipped);
        let _ = writeln!(
            s,
            "bytes:   {:.1} MB read ({:.1} MB decompressed), {:.1} MB/s ({:.1} MB/s decompressed)",
            mb(self.bytes_read),
            mb(self.bytes_decompressed),
            mb(self.bytes_read) / secs,
            mb(self.bytes_decompressed) / secs
        );
        for (title, list) in [
            (
                "unknown files (use --format to name their format)",
                &self.unknown,
            ),
            ("quarantined files", &self.quarantined_files),
            (
                "unreadable files (retried by the next run)",
                &self.unreadable,
            ),
            ("conflicts", &self.conflicts),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(s, "{title}:");
            for (key, why) in list.iter().take(LISTED_FILES_MAX) {
                let _ = writeln!(s, "  {key}: {why}");
            }
            if list.len() > LISTED_FILES_MAX {
                let _ = writeln!(s, "  … and {} more", list.len() - LISTED_FILES_MAX);
            }
        }
        if self.records_quarantined > 0 || !self.quarantined_files.is_empty() {
            let _ = writeln!(
                s,
                "quarantined records are in log group trailvault/quarantine, one stream per source file"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_rendering() {
        let mut s = Summary::new("src".into(), "dst".into());
        assert_eq!(s.exit_code(false), 0);
        s.unknown.push(("a".into(), "why".into()));
        assert_eq!(s.exit_code(false), 1);
        assert_eq!(s.exit_code(true), 0);
        s.conflicts.push(("b".into(), "why".into()));
        assert_eq!(s.exit_code(true), 1);
        s.records_read = 3;
        s.records_stored = 2;
        s.records_quarantined = 1;
        let text = s.render();
        assert!(
            text.contains("records: 3 read = 2 stored + 1 quarantined"),
            "{text}"
        );
        assert!(text.contains("  a: why"));
    }
}
