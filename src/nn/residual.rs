//! Residual networks: the block's closing addition ([`ResidualAdd`]), the
//! settings of a residual network ([`Residual`]) and the initialisation
//! rules that scale its branches ([`ResidualRule`]).
//!
//! A residual network here is an input Linear to the residual width, `L`
//! blocks `x + alpha * F(x)` and an output Linear; `F` is a branch of `m`
//! Linear layers (He et al. 2016, arXiv 1603.05027, Fig. 4: "pre" puts
//! norm and activation before each Linear and keeps the stream an
//! identity path, "post" is the original order with the activation after
//! the addition). [`super::Model::residual`] builds it.

use crate::error::SettingError;
use serde::{Deserialize, Serialize};

/// The end of a residual block, `y = skip + x`: `skip` is the output of
/// the layer at position `from`, `x` the output of the layer just before
/// (the branch, its alpha applied). Backward passes dL/dy on to both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidualAdd {
    /// The position of the layer whose output is the skip.
    pub from: usize,
}

impl ResidualAdd {
    /// `y = skip + x` element-wise, all three the same length.
    pub fn forward(&self, skip: &[f32], x: &[f32], y: &mut [f32]) {
        y[..x.len()].iter_mut().zip(skip.iter().zip(x)).for_each(|(y, (&s, &x))| *y = s + x);
    }
}

/// The normalisation inside each branch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchNorm {
    /// None.
    #[default]
    None,
    /// `nn.BatchNorm1d` (batch statistics in training).
    BatchNorm,
    /// `nn.LayerNorm` (each sample's statistics).
    LayerNorm,
}

/// Where norm and activation sit in a block (He et al. 2016, Fig. 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOrder {
    /// `x + alpha * W_m f(N(... W_1 f(N(x))))`: the stream is an identity
    /// path; a final norm and activation come before the output Linear.
    #[default]
    Pre,
    /// `f(x + alpha * N(W_m ... f(N(W_1 x))))`: the original ResNet order.
    Post,
}

/// The multiplier at the end of each branch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alpha {
    /// Its value at initialisation.
    pub init: f32,
    /// Whether the optimiser trains it (a parameter `blocks.<b>.alpha`).
    #[serde(default)]
    pub trainable: bool,
}

/// How the branches are scaled at initialisation, on top of the variant's
/// schemes (which draw every Linear first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidualRule {
    /// The variant's schemes as drawn, `alpha` as set.
    #[default]
    Standard,
    /// Fixup (Zhang, Dauphin & Ma 2019, arXiv 1901.09321, Sec. 3, the three
    /// steps of "Fixup initialization"): the classifier and each branch's
    /// last Linear start at 0; the branch's other Linears are multiplied by
    /// `L^(-1/(2m-2))`; a scalar multiplier (init 1) ends each branch and a
    /// scalar bias (init 0) comes before each Linear and activation of the
    /// branch and after its multiplier.
    Fixup,
    /// SkipInit (De & Smith 2020, arXiv 2002.10444, Sec. 4): a trainable
    /// scalar at the end of each branch, initialised at 0 unless `alpha`
    /// says otherwise (they allow anything below `1/sqrt(L)`).
    Skipinit,
    /// ReZero (Bachlechner et al. 2020, arXiv 2003.04887, Eq. 3):
    /// `x + alpha F(x)` with a trainable alpha initialised at 0 and no
    /// normalisation. For a fully connected branch it is SkipInit without
    /// a norm.
    Rezero,
    /// The branch's last Linear multiplied by `1/sqrt(2L)` after drawing,
    /// as GPT-2 scales its residual projections (Radford et al. 2019, Sec.
    /// 2.3; `std = 0.02 / sqrt(2 * n_layer)` in its code).
    DepthScaled,
}

/// A residual network's blocks, as a file writes them under
/// `[model] residual = { ... }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residual {
    /// Blocks `L`.
    pub blocks: usize,
    /// Linear layers per branch `m` (1 or 2).
    #[serde(default = "two")]
    pub branch_layers: usize,
    /// The norm inside each branch.
    #[serde(default)]
    pub norm: BranchNorm,
    /// Pre- or post-activation order.
    #[serde(default)]
    pub order: BlockOrder,
    /// The branch multiplier; unsaid, the rule's (1 and fixed for the
    /// standard rule and depth-scaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<Alpha>,
    /// Fixup's scalar biases; unsaid, only with the fixup rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar_biases: Option<bool>,
    /// The initialisation rule.
    #[serde(default)]
    pub rule: ResidualRule,
}

fn two() -> usize {
    2
}

impl Residual {
    /// The branch multiplier the network has: the one set, or the rule's.
    pub fn alpha(&self) -> Alpha {
        let rule = match self.rule {
            ResidualRule::Standard | ResidualRule::DepthScaled => Alpha { init: 1.0, trainable: false },
            ResidualRule::Fixup => Alpha { init: 1.0, trainable: true },
            ResidualRule::Skipinit | ResidualRule::Rezero => Alpha { init: 0.0, trainable: true },
        };
        self.alpha.unwrap_or(rule)
    }

    /// Whether the branches have Fixup's scalar biases.
    pub fn scalar_biases(&self) -> bool {
        self.scalar_biases.unwrap_or(self.rule == ResidualRule::Fixup)
    }

    /// Rejects blocks that cannot be built or contradict their rule; the
    /// message starts with the field under `key` (e.g. `model.residual`).
    pub fn validate(&self, key: &str) -> Result<(), SettingError> {
        if self.blocks == 0 {
            return Err(SettingError::new(format!("{key}.blocks"), "a residual network needs at least one block"));
        }
        if !(1..=2).contains(&self.branch_layers) {
            return Err(SettingError::new(
                format!("{key}.branch_layers"),
                format!("must be 1 or 2, got {}", self.branch_layers),
            ));
        }
        if let Some(alpha) = self.alpha {
            if !alpha.init.is_finite() {
                return Err(SettingError::new(format!("{key}.alpha.init"), "must be finite"));
            }
            let own = matches!(self.rule, ResidualRule::Standard | ResidualRule::Skipinit);
            if !own {
                return Err(SettingError::new(
                    format!("{key}.alpha"),
                    format!("rule {:?} sets the branch multiplier; leave alpha out", self.rule),
                ));
            }
            if self.rule == ResidualRule::Skipinit && !alpha.trainable {
                return Err(SettingError::new(format!("{key}.alpha.trainable"), "SkipInit's multiplier is trained"));
            }
        }
        if self.rule == ResidualRule::Rezero && self.norm != BranchNorm::None {
            return Err(SettingError::new(
                format!("{key}.norm"),
                "ReZero has no normalisation (use rule = \"skipinit\" for a norm)",
            ));
        }
        if self.rule == ResidualRule::Fixup && self.scalar_biases == Some(false) {
            return Err(SettingError::new(format!("{key}.scalar_biases"), "Fixup's branches have scalar biases"));
        }
        Ok(())
    }

    /// The (from 0) Linear indices of block `b`'s branch, first to last
    /// (the input Linear is 0, the output Linear `1 + L m`).
    pub fn branch_linears(&self, b: usize) -> std::ops::Range<usize> {
        1 + b * self.branch_layers..1 + (b + 1) * self.branch_layers
    }

    /// The factor each Linear's weights are multiplied by after drawing,
    /// by Linear index (0 zeroes the biases too): Fixup's and the
    /// depth-scaled rule's.
    pub fn weight_factors(&self) -> Vec<f32> {
        let (blocks, m) = (self.blocks, self.branch_layers);
        let mut factors = vec![1.0f32; 2 + blocks * m];
        let last = |b: usize| self.branch_linears(b).end - 1;
        match self.rule {
            ResidualRule::Fixup => {
                // Step 2: L^(-1/(2m-2)) for the branch's inner layers (none when m = 1).
                let inner = if m > 1 { (blocks as f64).powf(-1.0 / (2.0 * m as f64 - 2.0)) as f32 } else { 1.0 };
                for b in 0..blocks {
                    for l in self.branch_linears(b) {
                        factors[l] = if l == last(b) { 0.0 } else { inner };
                    }
                }
                *factors.last_mut().expect("an output Linear") = 0.0;
            }
            ResidualRule::DepthScaled => {
                let scale = (1.0 / (2.0 * blocks as f64).sqrt()) as f32;
                (0..blocks).for_each(|b| factors[last(b)] = scale);
            }
            _ => {}
        }
        factors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(rule: ResidualRule, blocks: usize, branch_layers: usize) -> Residual {
        let base = Residual {
            blocks,
            branch_layers,
            norm: BranchNorm::None,
            order: BlockOrder::Pre,
            alpha: None,
            scalar_biases: None,
            rule,
        };
        base.validate("r").expect("valid");
        base
    }

    #[test]
    fn fixup_zeroes_the_last_branch_layer_and_the_classifier_and_scales_the_rest_by_its_formula() {
        let fixup = blocks(ResidualRule::Fixup, 16, 2);
        let f = fixup.weight_factors();
        assert_eq!(f.len(), 2 + 32);
        // m = 2: L^(-1/(2*2-2)) = 16^(-1/2) = 1/4.
        assert_eq!((f[0], f[1], f[2], f[3], f[4], f[33]), (1.0, 0.25, 0.0, 0.25, 0.0, 0.0));
        assert_eq!((fixup.alpha(), fixup.scalar_biases()), (Alpha { init: 1.0, trainable: true }, true));
        // m = 1: the branch's only Linear is its last.
        assert!(blocks(ResidualRule::Fixup, 8, 1).weight_factors()[1..9].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn depth_scaled_divides_each_branch_end_by_the_root_of_twice_the_depth() {
        let f = blocks(ResidualRule::DepthScaled, 8, 2).weight_factors();
        assert_eq!((f[1], f[2], f[4], f[17]), (1.0, 0.25, 0.25, 1.0));
        let rezero = blocks(ResidualRule::Rezero, 8, 2);
        assert_eq!(rezero.alpha(), Alpha { init: 0.0, trainable: true });
        assert!(rezero.weight_factors().iter().all(|&v| v == 1.0));
    }

    #[test]
    fn contradictions_are_refused_naming_the_field() {
        let mut r = blocks(ResidualRule::Rezero, 4, 2);
        r.norm = BranchNorm::LayerNorm;
        assert!(r.validate("model.residual").unwrap_err().key == "model.residual.norm");
        r.norm = BranchNorm::None;
        r.alpha = Some(Alpha { init: 0.5, trainable: true });
        assert!(r.validate("m").unwrap_err().key == "m.alpha");
        r.rule = ResidualRule::Skipinit;
        assert!(r.validate("m").is_ok());
        r.branch_layers = 3;
        assert!(r.validate("m").unwrap_err().key == "m.branch_layers");
    }
}
