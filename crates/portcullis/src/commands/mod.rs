//! One module per subcommand: `serve` (the gateway), `demo` (gateway and simulator with a
//! key ready to paste), `guard` (input screening and output redaction on your own data), and
//! `admin/` (the admin API's commands, a file each).

pub mod admin;
pub mod demo;
pub mod guard;
pub mod serve;
