//! Not implemented yet: see the project README for the roadmap.
#![warn(missing_docs)]
