//! The text watermark: where a choice may be made ([`walk`]), how the keys make it
//! ([`mark`]), and how a suspect's texts are scored ([`detect`]).

pub mod detect;
pub mod mark;
pub mod walk;
