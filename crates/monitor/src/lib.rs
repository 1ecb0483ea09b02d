//! trailvault-monitor (work in progress).
