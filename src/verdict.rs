//! Verdicts: short diagnoses of a variant's training, each with its kind
//! and the numbers that fired it. The probe draws them (its `diagnose`
//! module), the run summary keeps them and the report shows them; this leaf
//! module is the type all three share.

use serde::{Deserialize, Serialize};

/// What a verdict diagnoses. Written in `summary.json` in snake case
/// (`vanishing_gradients`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// The loss became NaN or infinite.
    NonfiniteLoss,
    /// Hidden layers' weight gradients are orders of magnitude smaller than
    /// the output layer's.
    VanishingGradients,
    /// Layers whose weight gradients are exactly zero: nothing flows back
    /// to them at all (typically every unit of a ReLU layer above is dead).
    ZeroGradients,
    /// The forward signal shrinks from layer to layer at the first step.
    VanishingSignal,
    /// Updates are tiny relative to the weights.
    StalledUpdates,
    /// Gradients or weights became huge or non-finite.
    ExplodingGradients,
    /// Some or all parameters never changed.
    ParametersUnchanged,
    /// The loss stayed on a plateau.
    FlatLoss,
    /// Most ReLU units of a layer output zero for every sample.
    DeadRelu,
    /// A residual stream grows by orders of magnitude from the first block
    /// to the last at the first step.
    ExplodingStream,
    /// Residual branches that contribute nothing at the first step and
    /// still nothing at the last.
    BranchesOff,
    /// Gradient clipping changed the gradient on most steps.
    ClippedMostSteps,
    /// A network with norms: what its norms divided out at step 0, beside
    /// what theory predicts the same initialisation would do without them.
    NormCompensating,
}

impl VerdictKind {
    /// Every kind, in the order the probe checks them.
    pub const ALL: [VerdictKind; 13] = [
        VerdictKind::NonfiniteLoss,
        VerdictKind::VanishingGradients,
        VerdictKind::ZeroGradients,
        VerdictKind::VanishingSignal,
        VerdictKind::StalledUpdates,
        VerdictKind::ExplodingGradients,
        VerdictKind::ParametersUnchanged,
        VerdictKind::FlatLoss,
        VerdictKind::DeadRelu,
        VerdictKind::ExplodingStream,
        VerdictKind::BranchesOff,
        VerdictKind::ClippedMostSteps,
        VerdictKind::NormCompensating,
    ];

    /// The name written in `summary.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::NonfiniteLoss => "nonfinite_loss",
            VerdictKind::VanishingGradients => "vanishing_gradients",
            VerdictKind::ZeroGradients => "zero_gradients",
            VerdictKind::VanishingSignal => "vanishing_signal",
            VerdictKind::StalledUpdates => "stalled_updates",
            VerdictKind::ExplodingGradients => "exploding_gradients",
            VerdictKind::ParametersUnchanged => "parameters_unchanged",
            VerdictKind::FlatLoss => "flat_loss",
            VerdictKind::DeadRelu => "dead_relu",
            VerdictKind::ExplodingStream => "exploding_stream",
            VerdictKind::BranchesOff => "branches_off",
            VerdictKind::ClippedMostSteps => "clipped_most_steps",
            VerdictKind::NormCompensating => "norm_compensating",
        }
    }
}

/// One diagnosis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What it diagnoses.
    pub kind: VerdictKind,
    /// One sentence with the evidence.
    pub message: String,
}

impl Verdict {
    /// A verdict of `kind` with its evidence.
    pub fn new(kind: VerdictKind, message: String) -> Self {
        Verdict { kind, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_written_by_their_names() {
        for kind in VerdictKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
    }
}
