//! trailvault-client (work in progress).
