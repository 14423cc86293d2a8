//! lnc passes crate (see ARCHITECTURE.md).
