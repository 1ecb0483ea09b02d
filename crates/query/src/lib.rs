//! trailvault-query (work in progress).
