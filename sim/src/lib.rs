//! lnc sim crate (see ARCHITECTURE.md).
