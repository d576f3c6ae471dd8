//! The order in which each epoch visits the training images: initscope's
//! own per-epoch streams, or the notebook's `DataLoader`s drawing from
//! PyTorch's generator (`rng = "torch"`).

use super::batch::epoch_order;
use crate::rng::torch::TorchGenerator;
use std::ops::Range;

/// One epoch's orders of training-image indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochOrders {
    /// The training steps' order (full batches of it are used).
    pub train: Vec<u32>,
    /// The order of the training-accuracy pass after the epoch.
    pub train_eval: Vec<u32>,
    /// The validation pass's order (file order from the streams; its
    /// order changes no accuracy).
    pub valid: Vec<u32>,
}

/// Where each epoch's orders come from.
#[derive(Clone, Debug)]
pub enum Orders {
    /// The ChaCha streams `(seed, "shuffle/train", epoch)` and
    /// `(seed, "shuffle/train-eval", epoch)`.
    Streams {
        /// The run's seed.
        seed: u64,
        /// The training images.
        train: Range<usize>,
        /// The validation images.
        valid: Range<usize>,
        /// Shuffle (else file order).
        shuffle: bool,
    },
    /// PyTorch's generator, as the notebook's loaders draw from it.
    Torch(Box<TorchLoaders>),
}

impl Orders {
    /// Epoch `epoch`'s (1-based) orders. Any epoch can be asked for, in any
    /// order (a resumed run starts in the middle).
    pub fn epoch(&mut self, epoch: usize) -> EpochOrders {
        match self {
            Orders::Streams { seed, train, valid, shuffle } => EpochOrders {
                train: epoch_order(train.clone(), *shuffle, *seed, "shuffle/train", epoch as u64),
                train_eval: epoch_order(train.clone(), *shuffle, *seed, "shuffle/train-eval", epoch as u64),
                valid: valid.clone().map(|i| i as u32).collect(),
            },
            Orders::Torch(loaders) => loaders.epoch(epoch),
        }
    }
}

/// The notebook's loaders over PyTorch's global generator: per epoch, the
/// training loader's iterator (a `DataLoader` base seed, then
/// `SubsetRandomSampler`'s `randperm` of the training indices), the
/// training loader again for the accuracy pass, and the validation
/// loader (base seed and `randperm` of the validation indices, drawn
/// though its order does not change an accuracy). With `shuffle` off every
/// pass is in file order and only the base seeds are drawn. With no
/// validation images there is no validation loader.
#[derive(Clone, Debug)]
pub struct TorchLoaders {
    after_init: TorchGenerator,
    generator: TorchGenerator,
    next_epoch: usize,
    train: Range<usize>,
    valid: Range<usize>,
    shuffle: bool,
}

impl TorchLoaders {
    /// The loaders, with `after_init` the generator as the model's
    /// initialisation left it.
    pub fn new(after_init: TorchGenerator, train: Range<usize>, valid: Range<usize>, shuffle: bool) -> Self {
        TorchLoaders { generator: after_init.clone(), after_init, next_epoch: 1, train, valid, shuffle }
    }

    /// Epoch `epoch`'s orders, replaying the earlier epochs' draws when
    /// needed.
    pub fn epoch(&mut self, epoch: usize) -> EpochOrders {
        assert!(epoch >= 1, "epochs count from 1");
        if epoch < self.next_epoch {
            self.generator = self.after_init.clone();
            self.next_epoch = 1;
        }
        loop {
            let orders = self.draw_epoch();
            if self.next_epoch > epoch {
                return orders;
            }
        }
    }

    fn draw_epoch(&mut self) -> EpochOrders {
        let train = self.pass(self.train.clone());
        let train_eval = self.pass(self.train.clone());
        let valid = if self.valid.is_empty() { Vec::new() } else { self.pass(self.valid.clone()) };
        self.next_epoch += 1;
        EpochOrders { train, train_eval, valid }
    }

    /// One loader iterator: its base seed, then the sampler's order.
    fn pass(&mut self, range: Range<usize>) -> Vec<u32> {
        self.generator.dataloader_base_seed();
        if !self.shuffle {
            return range.map(|i| i as u32).collect();
        }
        let start = range.start as u32;
        self.generator.randperm(range.len()).into_iter().map(|i| start + i).collect()
    }
}
