//! trailvault-integrity (work in progress).
