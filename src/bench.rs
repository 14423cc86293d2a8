//! `lnc build --target cpu` and `lnc bench`: generate the C project, compile it with
//! `make`, and time the runner.

use crate::cli::{BenchArgs, BuildArgs, TargetArgs};
use crate::{driver, emit, npy};
use anyhow::{bail, Context, Result};
use lnc_backends::c::Isa;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cpu_options(t: &TargetArgs) -> Result<driver::CpuOptions> {
    if t.target != "cpu" {
        bail!(
            "--target {}: only the cpu target can be built so far",
            t.target
        );
    }
    let isa = match &t.isa {
        Some(s) => Isa::parse(s)?,
        None => Isa::host(),
    };
    if t.threads == 0 || t.threads > 64 {
        bail!("--threads must be between 1 and 64, got {}", t.threads);
    }
    Ok(driver::CpuOptions {
        isa,
        threads: t.threads,
        optimize: !t.no_opt,
    })
}

fn write_files(dir: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// `lnc build`: write the project; prints the arena size and kernel histogram.
pub fn build(a: BuildArgs) -> Result<()> {
    let o = cpu_options(&a.target)?;
    let g = driver::load_model(&a.model)?;
    let (plan, files) = driver::build_cpu(g, &o)?;
    write_files(&a.output, &files)?;
    let hist: Vec<String> = lnc_ir::cpu::kernel_histogram(&plan)
        .into_iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    emit(&format!(
        "wrote {} files to {} (isa {}, {} thread(s)); {} steps, arena {} bytes; kernels: {}\n",
        files.len(),
        a.output.display(),
        o.isa.name(),
        o.threads,
        plan.steps.len(),
        plan.arena_bytes,
        hist.join(" ")
    ))
}

fn make(dir: &Path, isa: Isa) -> Result<()> {
    let mut cmd = Command::new("make");
    cmd.arg("-s").arg("-j2").arg("-C").arg(dir);
    if isa.is_aarch64() && !cfg!(target_arch = "aarch64") {
        bail!("cannot benchmark an AArch64 build on this host");
    }
    let out = cmd.output().context("cannot run make")?;
    if !out.status.success() {
        bail!(
            "make failed in {}:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Deterministic pseudo-random inputs in [-1, 1).
fn random_input(shape: &[usize], seed: u64) -> Result<lnc_ir::Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    lnc_ir::Tensor::from_f32(shape, v).map_err(anyhow::Error::msg)
}

/// `lnc bench`: build, compile, run with a warm-up and `--repeat` timed runs.
pub fn bench(a: BenchArgs) -> Result<()> {
    let o = cpu_options(&a.target)?;
    if a.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let g = driver::load_model(&a.model)?;
    let (plan, files) = driver::build_cpu(g, &o)?;
    /// A temporary build directory, removed however `bench` returns.
    struct TempDir(Option<PathBuf>);
    impl Drop for TempDir {
        fn drop(&mut self) {
            if let Some(d) = &self.0 {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    let (dir, _cleanup) = match &a.output {
        Some(d) => (d.clone(), TempDir(None)),
        None => {
            let d = std::env::temp_dir().join(format!("lnc-bench-{}", std::process::id()));
            (d.clone(), TempDir(Some(d)))
        }
    };
    write_files(&dir, &files)?;
    make(&dir, o.isa)?;
    let mut cmd = Command::new(dir.join("lnc_runner"));
    for (i, io) in plan.inputs.iter().enumerate() {
        let p = dir.join(format!("input{i}.npy"));
        npy::write(&p, &random_input(&io.shape, i as u64 + 1)?)?;
        cmd.arg("--input").arg(&p);
    }
    cmd.arg("--repeat")
        .arg(a.repeat.to_string())
        .arg("--threads")
        .arg(o.threads.to_string());
    let out = cmd.output().context("cannot run lnc_runner")?;
    if !out.status.success() {
        bail!(
            "lnc_runner failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> Result<f64> {
        let key = format!("\"{k}\":");
        let rest = line
            .split(&key)
            .nth(1)
            .with_context(|| format!("runner output has no {k}: {line}"))?;
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        num.parse()
            .with_context(|| format!("bad {k} in runner output"))
    };
    let (med, min, max) = (field("median_ms")?, field("min_ms")?, field("max_ms")?);
    let model = a
        .model
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    emit(&if a.json {
        format!(
            "{{\"model\":\"{model}\",\"target\":\"cpu\",\"isa\":\"{}\",\"threads\":{},\"runs\":{},\"median_ms\":{med},\"min_ms\":{min},\"max_ms\":{max},\"arena_bytes\":{}}}\n",
            o.isa.name(),
            o.threads,
            a.repeat,
            plan.arena_bytes
        )
    } else {
        format!(
            "{model}: median {med:.3} ms, min {min:.3} ms, max {max:.3} ms ({} runs, isa {}, {} thread(s))\n",
            a.repeat,
            o.isa.name(),
            o.threads
        )
    })
}
