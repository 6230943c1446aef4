//! Empty until its issue lands; see the workspace README and ../shared/DESIGN.md.
