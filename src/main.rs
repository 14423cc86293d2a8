//! `lnc`: the command-line driver.
//!
//! Errors print as `error: ...` with their causes and exit with code 1; usage errors exit
//! with code 2 (clap). The commands live here, the wiring between crates in [`driver`].

mod bench;
mod cli;
mod driver;
mod inspect;
mod npy;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, ConvertArgs, InspectArgs, OptArgs, RunArgs, ZooArgs};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = driver::set_input_shapes(&cli.input_shapes);
    match loaded.and_then(|()| dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cmd: Command) -> Result<()> {
    match cmd {
        Command::Inspect(a) => inspect(a),
        Command::Run(a) => run(a),
        Command::Zoo(a) => zoo(a),
        Command::Convert(a) => convert(a),
        Command::Passes => emit(&driver::passes_listing()),
        Command::Opt(a) => opt(a),
        Command::Build(a) => bench::build(a),
        Command::Bench(a) => bench::bench(a),
    }
}

/// Write to stdout; a closed pipe (`lnc inspect m.onnx | head`) is not an error.
fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn inspect(a: InspectArgs) -> Result<()> {
    let g = driver::load_model(&a.model)?;
    let report = inspect::Report::new(&g)?;
    emit(&if a.json {
        report.to_json()?
    } else {
        report.to_text()
    })
}

/// Match `[NAME=]FILE` arguments to names: named ones first, then the plain ones fill the
/// remaining names in order. Returns one file per name.
fn assign<'a>(specs: &'a [String], names: &[String], what: &str) -> Result<Vec<&'a str>> {
    let mut slots: Vec<Option<&str>> = vec![None; names.len()];
    let mut plain = Vec::new();
    for s in specs {
        let named = s
            .split_once('=')
            .and_then(|(n, f)| names.iter().position(|x| x == n).map(|i| (i, f)));
        match named {
            Some((i, f)) => {
                if slots[i].is_some() {
                    bail!("{what} '{}' is given twice", names[i]);
                }
                slots[i] = Some(f);
            }
            None => plain.push(s.as_str()),
        }
    }
    let mut plain = plain.into_iter();
    for slot in slots.iter_mut().filter(|s| s.is_none()) {
        *slot = plain.next();
    }
    let listing = || {
        format!(
            "the model has {} {what}(s): {}",
            names.len(),
            names.join(", ")
        )
    };
    if plain.next().is_some() {
        bail!("too many --{what} files; {}", listing());
    }
    if let Some(i) = slots.iter().position(|s| s.is_none()) {
        bail!("missing --{what} for {what} '{}'; {}", names[i], listing());
    }
    Ok(slots.into_iter().map(|s| s.unwrap_or_default()).collect())
}

fn run(a: RunArgs) -> Result<()> {
    let g = driver::load_model(&a.model)?;
    let ins = driver::input_types(&g);
    let outs = driver::output_types(&g);
    let in_names: Vec<String> = ins.iter().map(|(n, _)| n.clone()).collect();
    let out_names: Vec<String> = outs.iter().map(|(n, _)| n.clone()).collect();
    let in_files = assign(&a.inputs, &in_names, "input")?;
    let out_files = assign(&a.outputs, &out_names, "output")?;
    let mut tensors = Vec::with_capacity(ins.len());
    for ((name, ty), file) in ins.iter().zip(&in_files) {
        let t = npy::read(Path::new(file)).with_context(|| format!("input '{name}'"))?;
        tensors.push(
            driver::conform_input(ty, t).with_context(|| format!("input '{name}' ({file})"))?,
        );
    }
    let results = driver::run_model(&g, tensors)?;
    if results.len() != out_files.len() {
        bail!(
            "the interpreter returned {} outputs, the model declares {}",
            results.len(),
            out_files.len()
        );
    }
    for (t, file) in results.iter().zip(&out_files) {
        npy::write(Path::new(file), t)?;
    }
    Ok(())
}

fn zoo(a: ZooArgs) -> Result<()> {
    if a.list {
        let rows: Vec<(&str, &str)> = lnc_zoo::list();
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut s = String::new();
        for (name, desc) in rows {
            s.push_str(format!("{name:width$}  {desc}").trim_end());
            s.push('\n');
        }
        return emit(&s);
    }
    let (Some(name), Some(output)) = (a.name, a.output) else {
        bail!("lnc zoo needs a model name and -o FILE (or --list)");
    };
    let mut opts = lnc_zoo::ZooOptions::default();
    if let Some(v) = a.input_size {
        opts.input_size = v;
    }
    if let Some(v) = a.width {
        opts.width = v;
    }
    if let Some(v) = a.classes {
        opts.classes = v;
    }
    if let Some(v) = a.seed {
        opts.seed = v;
    }
    driver::Format::of(&output)?;
    let g = driver::build_zoo(&name, &opts)?;
    driver::save_model(&g, &output)
}

fn convert(a: ConvertArgs) -> Result<()> {
    driver::Format::of(&a.output)?;
    let g = driver::load_model(&a.model)?;
    driver::save_model(&g, &a.output)
}

fn opt(a: OptArgs) -> Result<()> {
    driver::Format::of(&a.output)?;
    let g = driver::load_model(&a.model)?;
    let mut o = driver::OptOptions {
        target: None,
        passes: a.passes,
        exclude: a.exclude,
        explain: a.explain,
        dump_after: a.dump_after,
        eqsat: lnc_passes::EqsatOptions::default(),
    };
    if let Some(t) = &a.target {
        o.target = Some(t.parse().map_err(anyhow::Error::msg)?);
    }
    if let Some(r) = a.rules {
        o.eqsat.families = r
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(n) = a.node_limit {
        o.eqsat.node_limit = n;
    }
    if let Some(n) = a.iter_limit {
        o.eqsat.iter_limit = n;
    }
    if let Some(ms) = a.time_limit_ms {
        o.eqsat.time_limit = std::time::Duration::from_millis(ms);
    }
    let report = driver::optimize(g, &o)?;
    driver::save_model(&report.graph, &a.output)?;
    let mut out = String::new();
    if a.explain {
        out.push_str(&report.explain_text());
    }
    if a.stats {
        out.push_str(&report.stats_text());
    }
    emit(&out)
}

#[cfg(test)]
mod tests {
    use super::assign;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn assigns_named_and_positional_files() {
        let n = names(&["a", "b", "c"]);
        let specs = names(&["c=z.npy", "x.npy", "b=y.npy"]);
        assert_eq!(
            assign(&specs, &n, "input").unwrap(),
            vec!["x.npy", "y.npy", "z.npy"]
        );
        let specs = names(&["weird=name.npy", "b.npy", "c.npy"]);
        assert_eq!(
            assign(&specs, &n, "input").unwrap(),
            vec!["weird=name.npy", "b.npy", "c.npy"]
        );
        let e = assign(&names(&["x.npy"]), &n, "input")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "missing --input for input 'b'; the model has 3 input(s): a, b, c"
        );
        let e = assign(&names(&["a=1", "a=2"]), &n, "input")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "input 'a' is given twice");
        let e = assign(&names(&["1", "2", "3", "4"]), &n, "output")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "too many --output files; the model has 3 output(s): a, b, c"
        );
    }
}
