//! Forensic watermarks: a model distilled from the gateway's outputs carries evidence of
//! where they came from, and through which tenant.
//!
//! - [`text`]: a keyed, context-conditioned lexical watermark (synonyms from WordNet,
//!   negative contractions) applied to generated prose, whole or streamed, and its detector
//!   with exact p-values.
//! - [`embed`]: an EmbMarker/WARDEN-style watermark for embedding vectors, and its test.
//! - [`keys`]: a global detection key and per-tenant attribution keys from versioned secrets.
//! - [`stats`]: the exact tests both detectors report.

pub mod embed;
pub mod keys;
pub mod lexicon;
pub mod shares;
pub mod stats;
pub mod text;

pub use keys::{Key, KeyRing, MarkKeys, Secret};
pub use shares::Shares;
pub use text::detect::{Detection, Evidence, KeyScore};
pub use text::mark::{mark, mark_with, MarkStats, TextMarker};
