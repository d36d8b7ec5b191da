//! One module per subcommand: `serve` (the gateway), `demo` (gateway and simulator with a
//! key ready to paste), `guard` (input screening and output redaction on your own data), and
//! `admin/` (the admin API's commands, a file each), `hunt` (the threat detector offline: traffic simulation, replay, evaluation), `health` (a health check for container
//! images without curl) and `man` (man pages from the command-line definition).

pub mod admin;
pub mod demo;
pub mod guard;
pub mod health;
pub mod hunt;
pub mod man;
pub mod serve;
pub mod sim_send;
pub mod watermark;
