//! Copying saved tensors into live variables, strictly (every missing, unexpected and
//! mis-shaped name reported at once).

use std::collections::BTreeMap;
use std::path::Path;

use petune_core::{Error, Result, ShapeMismatch, WeightReport};
use tch::Tensor;

/// Copies `saved[name]` into each target variable. With `exact`, names in `saved` that
/// match no target are errors too.
pub fn copy_into(
    path: &Path,
    saved: &BTreeMap<String, Tensor>,
    targets: &[(String, Tensor)],
    exact: bool,
) -> Result<()> {
    let mut report = WeightReport::default();
    let _guard = tch::no_grad_guard();
    for (name, var) in targets {
        match saved.get(name) {
            None => report.missing.push(name.clone()),
            Some(t) if t.size() != var.size() => report.mismatched.push(ShapeMismatch {
                key: name.clone(),
                expected: var.size(),
                found: t.size(),
            }),
            Some(t) => {
                let mut v = var.shallow_clone();
                v.f_copy_(&t.to_kind(var.kind()).to_device(var.device()))?;
            }
        }
    }
    if exact {
        let known: std::collections::BTreeSet<&String> = targets.iter().map(|(n, _)| n).collect();
        report.unexpected = saved.keys().filter(|k| !known.contains(k)).cloned().collect();
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(Error::Weights { path: path.to_path_buf(), report })
    }
}
