//! lnc backends crate (see ARCHITECTURE.md).
