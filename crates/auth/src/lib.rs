//! trailvault-auth (work in progress).
