//! Weights from a file seen as theory sees drawn ones. Mean-field theory
//! needs each layer's sigma_w^2 = fan_in E[W^2] and sigma_b^2 = E[b^2]
//! (Poole et al. 2016, Eq. 3, with the weights' second moment standing for
//! their variance, as for any zero-mean draw); for a file (a PyTorch
//! module's own weights, from `initscope.from_torch`) they are measured on
//! the file's tensors instead of taken from a scheme's formula.

use crate::nn::Init;
use crate::spec::RunSpec;

/// `spec` with each Linear's schemes replaced by zero-mean normal draws of
/// the second moments its weights and biases have in the file of a
/// `from_file` scheme (and the init factors, which the file's weights do
/// not get, set to 1); `None` when the weights are not from a file; `Err`
/// says why the file cannot be read so.
pub fn with_file_moments(spec: &RunSpec) -> Option<Result<RunSpec, String>> {
    let Init::FromFile { path } = &spec.weight_init else { return None };
    Some(measured(spec, path))
}

fn measured(spec: &RunSpec, path: &std::path::Path) -> Result<RunSpec, String> {
    if spec.residual.is_some() {
        return Err("a residual network's weights from a file are not covered".into());
    }
    let tensors = crate::tensorfile::load(path).map_err(|e| format!("{e:#}"))?;
    let second_moment = |name: &str| -> Result<f64, String> {
        let (_, _, values) =
            tensors.iter().find(|t| t.0 == name).ok_or_else(|| format!("{}: no tensor {name}", path.display()))?;
        Ok(values.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / values.len().max(1) as f64)
    };
    let model = spec.model();
    let slots = model.tensors();
    // Each Linear's weight (the 2-D tensors, in order) and the bias after it.
    let linears = slots.windows(2).filter(|pair| pair[0].shape.len() == 2);
    let normal = |moment: f64| Init::Normal { mean: 0.0, std: moment.sqrt() };
    let schemes = linears
        .map(|pair| Ok((normal(second_moment(&pair[0].name)?), normal(second_moment(&pair[1].name)?))))
        .collect::<Result<Vec<_>, String>>()?;
    let mut out = spec.clone();
    out.weight_init = schemes[0].0.clone();
    out.schemes = schemes;
    out.layer_scales.iter_mut().for_each(|s| (s.weight_init, s.bias_init) = (1.0, 1.0));
    Ok(out)
}
