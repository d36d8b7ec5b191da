//! `portcullis man --dir DIR`: man pages generated from the command-line definition, so they
//! cannot drift from `--help`.

use anyhow::Context;
use std::path::Path;

pub fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut written = Vec::new();
    let mut render = |name: &str, page: clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    render("portcullis", command.clone())?;
    for sub in command.get_subcommands() {
        let name = format!("portcullis-{}", sub.get_name());
        render(&name, sub.clone().name(name.clone()))?;
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
