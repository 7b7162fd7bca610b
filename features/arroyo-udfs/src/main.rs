//! Prints weir's Arroyo UDFs for registering them with a cluster.
//!
//! ```text
//! weir-arroyo-udfs list                  # name, SQL signature, description
//! weir-arroyo-udfs show NAME             # the Rust definition Arroyo compiles
//! weir-arroyo-udfs request NAME [PREFIX] # JSON body for POST /api/v1/udfs
//! ```

use std::process::ExitCode;

use weir_arroyo_udfs::{find, UDFS};

const USAGE: &str = "usage: weir-arroyo-udfs list | show NAME | request NAME [PREFIX]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list"] => {
            for udf in &UDFS {
                println!("{}{}\t{}", udf.name, udf.signature, udf.description);
            }
        }
        ["show", name] => match find(name) {
            Some(udf) => print!("{}", udf.definition),
            None => return unknown(name),
        },
        ["request", name, prefix @ ..] if prefix.len() <= 1 => match find(name) {
            Some(udf) => println!("{}", udf.create_request(prefix.first().copied().unwrap_or(""))),
            None => return unknown(name),
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn unknown(name: &str) -> ExitCode {
    let names: Vec<&str> = UDFS.iter().map(|u| u.name).collect();
    eprintln!("no UDF named {name:?}; weir's are: {}", names.join(", "));
    ExitCode::from(2)
}
