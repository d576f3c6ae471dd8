//! Lockstep: several runs of the same shapes trained together, a step at a
//! time, each bit-identical to training it alone.
//!
//! Sweeps are made of many small networks. Trained one after another each
//! pays for its own data pass, its own poor 64-wide first-layer products
//! and its own thread hand-overs. In a lockstep group every member takes
//! its step at once:
//!
//! - each step's shards (see [`super::SHARDS`]) go to the threads once,
//!   every member's share of a shard on the same thread;
//! - members that train on the same images (same seed and order: a sweep
//!   over an init, a learning rate...) read them once per shard, and their
//!   input Linears are one wide forward product and one tall weight-gradient
//!   product ([`StackedLinear`]);
//! - the rest of each member's pass, its update, its evaluation and its
//!   observers are its own, exactly as alone.
//!
//! Alone is a group of one ([`super::train_variant`]), and a member's bits
//! are the same in any group: the stacked products give each member its
//! own sums ([`StackedLinear::same_bits`] says where that holds, and
//! members outside it are computed alone), the shards' sums are added in
//! the same order, and nothing else is shared.

use super::variant::{Begun, Member, Resume};
use super::{Shard, Trainer, VariantOutcome};
use crate::data::batch::fill_batch;
use crate::data::{Dataset, LabeledImages};
use crate::nn::loss::Loss;
use crate::nn::stacked::{StackedLinear, StackedScratch};
use crate::nn::{Linear, Model};
use crate::parallel::{for_each_split, part};
use crate::spec::RunSpec;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};

/// One run to train in a group.
pub struct Job<'a> {
    /// The resolved run.
    pub spec: &'a RunSpec,
    /// Where it continues from, if it was interrupted.
    pub resume: Resume<'a>,
    /// Asked after every step: stop here, with a checkpoint.
    pub stop: &'a (dyn Fn() -> bool + Sync),
    /// Raised if this run fails (its run's other units then stop).
    pub failed: Option<&'a AtomicBool>,
    /// Told everything that happens to this run.
    pub observer: &'a mut dyn crate::train::Observer,
}

/// Trains `jobs` together on `data` with `threads` threads; returns each
/// job's outcome, in order. A job that fails (its observer could not
/// write, say) ends with its error and raises its `failed`; the others go
/// on (they stop only when their own `stop` says so).
pub fn train_lockstep(jobs: Vec<Job>, data: &Dataset, threads: usize) -> Vec<Result<VariantOutcome>> {
    let mut outcomes: Vec<Option<Result<VariantOutcome>>> = jobs.iter().map(|_| None).collect();
    let failed: Vec<Option<&AtomicBool>> = jobs.iter().map(|j| j.failed).collect();
    let mut active: Vec<(usize, Box<Member>)> = Vec::new();
    let settle = |outcomes: &mut Vec<Option<Result<VariantOutcome>>>, i: usize, r: Result<VariantOutcome>| {
        if r.is_err() {
            failed[i].inspect(|f| f.store(true, Ordering::SeqCst));
        }
        outcomes[i] = Some(r);
    };
    for (i, job) in jobs.into_iter().enumerate() {
        match Member::begin(job.spec, data, threads, job.resume, job.stop, job.observer) {
            Ok(Begun::Training(member)) => active.push((i, member)),
            Ok(Begun::Ended(outcome)) => settle(&mut outcomes, i, Ok(outcome)),
            Err(e) => settle(&mut outcomes, i, Err(e)),
        }
    }
    let mut scratch = GroupScratch::default();
    while !active.is_empty() {
        let mut stepping = Vec::with_capacity(active.len());
        for (i, mut member) in active.drain(..) {
            match member.next_batch() {
                Ok(Some(range)) => stepping.push((i, member, range)),
                Ok(None) => settle(&mut outcomes, i, member.finish()),
                Err(e) => settle(&mut outcomes, i, Err(e)),
            }
        }
        let losses = {
            let mut steps: Vec<(&mut Trainer, &[u32])> =
                stepping.iter_mut().map(|(_, m, range)| m.trainer_and_batch(range.clone())).collect();
            group_gradients(&mut steps, &data.train, threads, &mut scratch)
        };
        for ((i, mut member, _), loss) in stepping.into_iter().zip(losses) {
            match member.after_gradients(loss) {
                Ok(None) => active.push((i, member)),
                Ok(Some(outcome)) => settle(&mut outcomes, i, Ok(outcome)),
                Err(e) => settle(&mut outcomes, i, Err(e)),
            }
        }
    }
    outcomes.into_iter().map(|o| o.expect("every job ends")).collect()
}

/// One shard's buffers for the group: the shared input and the stacked
/// products' scratch.
#[derive(Default)]
struct ShardScratch {
    input: Vec<f32>,
    labels: Vec<u8>,
    stacked: StackedScratch,
}

/// A group's buffers, kept from step to step: each shard's, and each input
/// set's stacked input Linears.
#[derive(Default)]
struct GroupScratch {
    shards: Vec<ShardScratch>,
    stacks: Vec<StackedLinear>,
}

/// Forward and backward of every member on its batch (`steps[m]`: its
/// trainer and images): afterwards each trainer holds its gradient as
/// [`Trainer::compute_gradients`] leaves it. Returns each batch's mean loss.
fn group_gradients(
    steps: &mut [(&mut Trainer, &[u32])],
    data: &LabeledImages,
    threads: usize,
    scratch: &mut GroupScratch,
) -> Vec<f32> {
    let (batch, shard_count) = match steps {
        [(trainer, indices)] => return vec![trainer.compute_gradients(data, indices)],
        [] => return Vec::new(),
        [(first, indices), ..] => (indices.len(), first.shards.len()),
    };
    if steps.iter().any(|(t, b)| t.shards.len() != shard_count || b.len() != batch) {
        return steps.iter_mut().map(|(t, b)| t.compute_gradients(data, b)).collect();
    }
    let sets = input_sets(steps);
    let mut set_of = vec![0; steps.len()];
    for (i, set) in sets.iter().enumerate() {
        set.iter().for_each(|&m| set_of[m] = i);
    }
    let GroupScratch { shards: shard_scratch, stacks } = scratch;
    stacks.resize_with(sets.len(), Default::default);
    let stacked: Vec<bool> =
        sets.iter().zip(stacks.iter_mut()).map(|(set, into)| stack(steps, set, batch, shard_count, into)).collect();
    let stacked: Vec<Option<&StackedLinear>> = stacks.iter().zip(stacked).map(|(s, ok)| ok.then_some(s)).collect();
    shard_scratch.resize_with(shard_count, Default::default);
    let mut models: Vec<&Model> = Vec::with_capacity(steps.len());
    let mut losses: Vec<Loss> = Vec::with_capacity(steps.len());
    let mut batches: Vec<&[u32]> = Vec::with_capacity(steps.len());
    let mut tasks: Vec<(Vec<&mut Shard>, &mut ShardScratch)> =
        shard_scratch.iter_mut().map(|s| (Vec::with_capacity(steps.len()), s)).collect();
    for (trainer, indices) in steps.iter_mut() {
        let Trainer { model, shards, loss, .. } = &mut **trainer;
        models.push(model);
        losses.push(*loss);
        batches.push(indices);
        for (s, shard) in shards.iter_mut().enumerate() {
            tasks[s].0.push(shard);
        }
    }
    let shared =
        Shared { sets: &sets, set_of: &set_of, stacked: &stacked, models: &models, losses: &losses, batches: &batches };
    for_each_split(&mut tasks, threads.min(shard_count), |s, (shards, scratch)| {
        shared.shard(data, s, shard_count, shards, scratch);
    });
    drop(tasks);
    steps.iter_mut().map(|(t, _)| t.reduce_shards(batch)).collect()
}

/// The members (by position) in sets that train on the same images, in
/// order.
fn input_sets(steps: &[(&mut Trainer, &[u32])]) -> Vec<Vec<usize>> {
    let mut sets: Vec<Vec<usize>> = Vec::new();
    for (m, (_, batch)) in steps.iter().enumerate() {
        match sets.iter_mut().find(|set| steps[set[0]].1 == *batch) {
            Some(set) => set.push(m),
            None => sets.push(vec![m]),
        }
    }
    sets
}

/// Stacks the input Linears of `set` into `into`, when it has several
/// members and each one's own products, for every shard's rows, have the
/// stacked products' bits; whether it did.
fn stack(
    steps: &[(&mut Trainer, &[u32])],
    set: &[usize],
    batch: usize,
    shard_count: usize,
    into: &mut StackedLinear,
) -> bool {
    if set.len() < 2 {
        return false;
    }
    let Some(linears) = set.iter().map(|&m| steps[m].0.model.input_linear()).collect::<Option<Vec<&Linear>>>() else {
        return false;
    };
    let rows = (0..shard_count).map(|s| part(batch, shard_count, s).len());
    if !rows.clone().all(|r| linears.iter().all(|l| StackedLinear::same_bits(r, l))) {
        return false;
    }
    let params: Vec<&[f32]> = set.iter().map(|&m| steps[m].0.model.params.as_slice()).collect();
    into.gather_into(&linears, &params)
}

/// What every shard of a group step reads.
struct Shared<'a> {
    sets: &'a [Vec<usize>],
    /// Each member's set, by position.
    set_of: &'a [usize],
    stacked: &'a [Option<&'a StackedLinear>],
    models: &'a [&'a Model],
    losses: &'a [Loss],
    batches: &'a [&'a [u32]],
}

impl Shared<'_> {
    /// Shard `s` of every member: each input set's images read once, its
    /// input Linears stacked where they can be, each member's own pass.
    fn shard(
        &self,
        data: &LabeledImages,
        s: usize,
        count: usize,
        shards: &mut [&mut Shard],
        scratch: &mut ShardScratch,
    ) {
        let mut per_set: Vec<Vec<&mut Shard>> = self.sets.iter().map(|set| Vec::with_capacity(set.len())).collect();
        for (m, shard) in shards.iter_mut().enumerate() {
            per_set[self.set_of[m]].push(&mut **shard);
        }
        for ((set, stacked), members) in self.sets.iter().zip(self.stacked).zip(per_set) {
            let batch = self.batches[set[0]].len();
            let rows = &self.batches[set[0]][part(batch, count, s)];
            scratch.input.resize(rows.len() * data.pixels_per_image(), 0.0);
            fill_batch(data, rows, &mut scratch.input, &mut scratch.labels);
            self.set_shard(set, *stacked, members, scratch, rows.len(), batch);
        }
    }

    /// One input set's share of a shard, its images in `scratch`. Stacked
    /// members read them from there (nothing after the input Linear reads
    /// a workspace's input); the others get their own copy.
    fn set_shard(
        &self,
        set: &[usize],
        stacked: Option<&StackedLinear>,
        mut members: Vec<&mut Shard>,
        scratch: &mut ShardScratch,
        rows: usize,
        batch: usize,
    ) {
        for shard in members.iter_mut() {
            shard.labels.clone_from(&scratch.labels);
        }
        let Some(stacked) = stacked else {
            let n = scratch.input.len();
            for (&m, shard) in set.iter().zip(members.iter_mut()) {
                shard.ws.input[..n].copy_from_slice(&scratch.input);
                let Shard { ws, grads, labels, loss_sum } = &mut **shard;
                *loss_sum = self.models[m].forward_backward_part(ws, labels, grads, batch, &self.losses[m]);
            }
            return;
        };
        let mut outputs: Vec<&mut [f32]> = members.iter_mut().map(|s| s.ws.outputs[0].as_mut_slice()).collect();
        stacked.forward(&scratch.input, rows, &mut outputs, &mut scratch.stacked);
        for (&m, shard) in set.iter().zip(members.iter_mut()) {
            let Shard { ws, grads, labels, loss_sum } = &mut **shard;
            *loss_sum = self.models[m].forward_backward_above_input(ws, labels, grads, batch, &self.losses[m]);
        }
        let linears: Vec<&Linear> =
            set.iter().map(|&m| self.models[m].input_linear().expect("stacked members have one")).collect();
        let (dzs, mut grads): (Vec<&[f32]>, Vec<&mut [f32]>) = members
            .iter_mut()
            .map(|s| {
                let Shard { ws, grads, .. } = &mut **s;
                (ws.grad.as_slice(), grads.as_mut_slice())
            })
            .unzip();
        stacked.backward_weights(&scratch.input, &dzs, &linears, &mut grads, rows, &mut scratch.stacked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Experiment;
    use crate::spec::DataShape;

    /// Trainers of three tanh networks 784-40-40-10 drawn with seeds 1, 2, 3.
    fn trainers() -> Vec<Trainer> {
        let text = "seeds = [1, 2, 3]\nbatch_size = 40\n[model]\nwidth = 40\ndepth = 2\nactivation = \"tanh\"\n\
                    [[variants]]\nname = \"a\"\nweight_init = { scheme = \"kaiming_normal\" }\n\
                    bias_init = { scheme = \"normal\", mean = 0.0, std = 0.1 }\n";
        let exp = Experiment::from_toml(text, std::path::Path::new("t.toml")).unwrap();
        let specs = RunSpec::all(&exp, DataShape { input_width: 784, classes: 10 });
        specs
            .iter()
            .map(|s| Trainer::with_optimizer(s.drawn_model(&|| false).unwrap().0, s.optimizer(&s.model()), 40, 1))
            .collect()
    }

    fn images(count: usize) -> LabeledImages {
        let pixels = (0..count * 784).map(|i| ((i * 2_654_435_761usize) >> 9) as u8).collect();
        LabeledImages { count, rows: 28, cols: 28, pixels, labels: (0..count).map(|i| (i * 7 % 10) as u8).collect() }
    }

    /// Two members on one batch (stacked) and one on another: for two
    /// steps each gets the loss and gradient bits it gets alone.
    #[test]
    fn a_group_step_gives_each_member_its_own_bits() {
        let data = images(200);
        let (shared, other): (Vec<u32>, Vec<u32>) = ((0..40).collect(), (100..140).rev().collect());
        let batches = [&shared[..], &shared[..], &other[..]];
        let (mut alone, mut group, mut scratch) = (trainers(), trainers(), GroupScratch::default());
        {
            let steps: Vec<(&mut Trainer, &[u32])> = group.iter_mut().zip(batches).collect();
            assert_eq!(input_sets(&steps), vec![vec![0, 1], vec![2]]);
            let mut into = StackedLinear::default();
            assert!(stack(&steps, &[0, 1], 40, crate::train::SHARDS, &mut into), "the shared pair is stacked");
        }
        for round in 0..2 {
            let losses = {
                let mut steps: Vec<(&mut Trainer, &[u32])> = group.iter_mut().zip(batches).collect();
                group_gradients(&mut steps, &data, 1, &mut scratch)
            };
            for (m, (t, own)) in group.iter_mut().zip(alone.iter_mut()).enumerate() {
                let loss = own.compute_gradients(&data, batches[m]);
                assert_eq!(losses[m].to_bits(), loss.to_bits(), "round {round}, member {m}: loss");
                let same = t.grads().iter().zip(own.grads()).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "round {round}, member {m}: gradient");
                t.apply_update();
                own.apply_update();
            }
        }
    }
}
