//! The `faultline` binary: parses the command line (in [`cli`]) and hands each subcommand to
//! its module. Exit codes follow the contract: 0 valid, 1 invalid, 2 unknown, 254 bad usage or
//! input, 255 the harness itself failed.

use clap::Parser;

use faultline::cli::{Cli, Command};
use faultline::exit::{self, Failure};
use faultline::{check, protocols, report, run};

fn main() {
    if std::env::args().nth(1).as_deref() == Some(faultline::lifecycle::GUARD_ARG) {
        std::process::exit(faultline::lifecycle::guard_main());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => exit::USAGE,
            };
            let _ = e.print();
            std::process::exit(if code == 0 && e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { exit::USAGE } else { code });
        }
    };
    init_tracing();
    // Only the commands that start processes need the sweep below; `check` starts none, and
    // the sweep (a scan of /proc) was most of its start-up cost.
    let spawns = !matches!(cli.command, Command::Check(_));
    let result = match cli.command {
        Command::Test(args) => run::main(args),
        Command::Check(args) => check::main(args),
        Command::Suite(args) => report::suite_main(args),
        Command::Report(args) => report::report_main(args),
        Command::Protocols(args) => protocols::main(args),
        Command::Hunt(args) => faultline::hunt::main(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("faultline: {msg}");
            exit::USAGE
        }
        Err(Failure::Internal(err)) => {
            eprintln!("faultline: internal error: {err:#}");
            exit::INTERNAL
        }
    };
    // Whatever the command, no node outlives it.
    if spawns {
        faultline::lifecycle::kill_everything();
    }
    std::process::exit(code);
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
