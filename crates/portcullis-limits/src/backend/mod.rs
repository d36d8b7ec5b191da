//! Where limit state lives: this process, or Redis shared by every replica.

pub mod memory;
pub mod redis;

pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisUnavailable};
